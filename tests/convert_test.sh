#!/usr/bin/env bash
# moe convert end to end: a Mixtral-style model trained here (with its tokenizer.json) becomes a
# GGUF that moe generate runs: F32 continues a prompt greedily exactly as the directory does,
# Q8_0 / Q4_0 generate; a model llama.cpp's llama architecture cannot express is refused.
# Usage: convert_test.sh MOE_BINARY CORPUS WORKDIR
set -euo pipefail
moe="$1" corpus="$2" work="$3"
rm -rf "$work" && mkdir -p "$work"
base=(--data "$corpus" --vocab-size 300 --num-hidden-layers 2 --hidden-size 32 --num-attention-heads 4
      --num-key-value-heads 2 --intermediate-size 32 --ctx-size 32 --batch 4 --steps 6 --eval-every 3 -n 4 -t 1)
"$moe" train "${base[@]}" --num-local-experts 4 --out "$work/mix" > /dev/null 2>&1
"$moe" convert -m "$work/mix" -o "$work/mix.gguf" > "$work/convert.txt" 2>&1
grep -q "wrote $work/mix.gguf (f32)" "$work/convert.txt" || { echo "FAIL: convert printed: $(cat "$work/convert.txt")"; exit 1; }
dir=$("$moe" generate -m "$work/mix" -p "And God said" -n 16 --temp 0 -t 1)
gguf=$("$moe" generate -m "$work/mix.gguf" -p "And God said" -n 16 --temp 0 -t 1)
[ "$dir" = "$gguf" ] || { echo "FAIL: the F32 GGUF continues differently: '$dir' vs '$gguf'"; exit 1; }
# moe run (KV cache) reads the GGUF too and continues the same way.
run=$("$moe" run -m "$work/mix.gguf" -p "And God said" -n 16 --temp 0 -t 1 2>/dev/null)
[ "$run" = "$dir" ] || { echo "FAIL: moe run on the GGUF printed '$run', the directory '$dir'"; exit 1; }
for t in q8_0 q4_0; do
  "$moe" convert -m "$work/mix" -o "$work/mix_$t.gguf" --outtype $t > /dev/null 2>&1
  out=$("$moe" generate -m "$work/mix_$t.gguf" -p "And God said" -n 8 --temp 0 -t 1)
  [[ "$out" == "And God said"* ]] || { echo "FAIL: $t generated '$out'"; exit 1; }
done
"$moe" train "${base[@]}" --num-local-experts 4 --decoder-sparse-step 2 --out "$work/inter" > /dev/null 2>&1
if out=$("$moe" convert -m "$work/inter" -o "$work/inter.gguf" 2>&1); then echo "FAIL: converted a dense/MoE interleave"; exit 1; fi
echo "$out" | grep -q "has no GGUF form llama.cpp runs" || { echo "FAIL: unclear error: $out"; exit 1; }
[ ! -e "$work/inter.gguf" ] || { echo "FAIL: a refused conversion left a file"; exit 1; }
# Without tokenizer.json: a "no_vocab" GGUF, which moe generate refuses with the reason.
"$moe" convert -m "$(dirname "$corpus")/hf_mixtral_tiny" -o "$work/tiny.gguf" > /dev/null 2>&1
if out=$("$moe" generate -m "$work/tiny.gguf" -n 1 2>&1); then echo "FAIL: generated without a tokenizer"; exit 1; fi
echo "$out" | grep -q "has no tokenizer metadata" || { echo "FAIL: unclear error: $out"; exit 1; }
echo "PASS"
