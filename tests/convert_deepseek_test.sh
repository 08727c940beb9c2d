#!/usr/bin/env bash
# moe convert of DeepSeek to llama.cpp's deepseek2 GGUF, end to end through the CLI: the tiny V3
# fixture (rms_norm_eps set to 1e-6, as llama.cpp's one eps needs) converts; moe generate by token
# ids continues greedily from the F32 file exactly as from the directory; Q8_0 and Q4_0 files
# generate and bench run maps them; the fixture as saved (eps 1e-5) is refused and leaves no file.
# Usage: convert_deepseek_test.sh MOE_BINARY FIXTURE_DIR WORKDIR
set -euo pipefail
moe="$1" fixtures="$2" work="$3"
rm -rf "$work" && mkdir -p "$work"
cp -r "$fixtures/hf_deepseek_v3_tiny" "$work/v3"
sed -i 's/"rms_norm_eps": 1e-05/"rms_norm_eps": 1e-06/' "$work/v3/config.json"
grep -q '"rms_norm_eps": 1e-06' "$work/v3/config.json" || { echo "FAIL: could not edit rms_norm_eps"; exit 1; }
ids=5,17,42,3,88,61
"$moe" convert -m "$work/v3" -o "$work/v3.gguf" > /dev/null 2>&1
dir=$("$moe" generate -m "$work/v3" --prompt-ids $ids -n 16 --temp 0 -t 1)
gguf=$("$moe" generate -m "$work/v3.gguf" --prompt-ids $ids -n 16 --temp 0 -t 1)
[ "$dir" = "$gguf" ] || { echo "FAIL: the F32 GGUF continues differently: '$dir' vs '$gguf'"; exit 1; }
for t in q8_0 q4_0; do
  "$moe" convert -m "$work/v3" -o "$work/v3_$t.gguf" --outtype $t > /dev/null 2>&1
  out=$("$moe" generate -m "$work/v3_$t.gguf" --prompt-ids $ids -n 8 --temp 0 -t 1)
  [[ "$out" =~ ^5\ 17\ 42\ 3\ 88\ 61(\ [0-9]+){8}$ ]] || { echo "FAIL: $t generated '$out'"; exit 1; }
  up=$(echo $t | tr a-z A-Z)
  bench=$("$moe" bench run -m "$work/v3_$t.gguf" -p 8 -n 4 -r 1 -t 1 --no-stream 2>&1)
  echo "$bench" | grep -q "\"weights_type\":\"$up\"" || { echo "FAIL: bench run on $t printed: $bench"; exit 1; }
done
if out=$("$moe" convert -m "$fixtures/hf_deepseek_v3_tiny" -o "$work/eps.gguf" 2>&1); then
  echo "FAIL: converted a model whose q_a / kv_a eps llama.cpp would change"; exit 1
fi
echo "$out" | grep -q "uses rms_norm_eps for every RMSNorm" || { echo "FAIL: unclear error: $out"; exit 1; }
[ ! -e "$work/eps.gguf" ] || { echo "FAIL: a refused conversion left a file"; exit 1; }
echo "PASS"
