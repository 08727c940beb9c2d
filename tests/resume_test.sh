#!/usr/bin/env bash
# moe train --resume continues an interrupted run with exactly the losses of an uninterrupted
# one; a checkpoint of another shape or a truncated one is refused with a clear error; and
# moe generate samples from the run.
# Usage: resume_test.sh MOE_BINARY CORPUS WORKDIR
set -euo pipefail
moe="$1" corpus="$2" work="$3"
rm -rf "$work" && mkdir -p "$work"
base=(--data "$corpus" --vocab-size 300 --num-hidden-layers 2 --num-attention-heads 4
      --num-key-value-heads 2 --num-local-experts 4 --intermediate-size 32 --ctx-size 32 --batch 4
      --steps 8 --eval-every 4 --log-every 1 -n 4 -t 1)
args=("${base[@]}" --hidden-size 32)
"$moe" train "${args[@]}" --out "$work/straight" > /dev/null 2>&1
"$moe" train "${args[@]}" --out "$work/resumed" --stop-after 5 > /dev/null 2>&1
before=$(stat -c %Y "$work/resumed/train.tokens")
sleep 1
"$moe" train "${args[@]}" --out "$work/resumed" --resume > /dev/null 2>&1
# The token shards were mapped, not encoded again.
[ "$(stat -c %Y "$work/resumed/train.tokens")" = "$before" ] || { echo "FAIL: resume re-encoded the corpus"; exit 1; }
fields() { grep -o '"loss":[^,]*\|"step":[0-9]*\|"val_loss":[^,}]*' "$1"; }
if ! diff <(fields "$work/straight/metrics.jsonl") <(fields "$work/resumed/metrics.jsonl"); then
  echo "FAIL: the resumed run's losses differ from the uninterrupted run's"; exit 1
fi
[ "$(fields "$work/straight/metrics.jsonl" | grep -c '"step"')" -eq 8 ] || { echo "FAIL: expected 8 logged steps"; exit 1; }
# Another shape: refused, naming both.
if out=$("$moe" train "${base[@]}" --hidden-size 64 --out "$work/resumed" --resume 2>&1); then
  echo "FAIL: resumed a checkpoint of another shape"; exit 1
fi
echo "$out" | grep -q "was written for V=300 L=2 D=32.*this run is V=300 L=2 D=64" || { echo "FAIL: unclear error: $out"; exit 1; }
# Truncated: refused.
head -c 1000 "$work/resumed/checkpoint.safetensors" > "$work/trunc.safetensors"
mv "$work/trunc.safetensors" "$work/resumed/checkpoint.safetensors"
if out=$("$moe" train "${args[@]}" --out "$work/resumed" --resume 2>&1); then
  echo "FAIL: resumed a truncated checkpoint"; exit 1
fi
echo "$out" | grep -q "checkpoint.safetensors" || { echo "FAIL: the error does not name the file: $out"; exit 1; }
# moe generate reads the run back (config.json, tokenizer.json, checkpoint) and continues the prompt.
gen=$("$moe" generate -m "$work/straight" -p "And God" -n 6 --temp 0 -t 1)
case "$gen" in "And God"?*) ;; *) echo "FAIL: moe generate printed: $gen"; exit 1 ;; esac
[ "$gen" = "$("$moe" generate -m "$work/straight" -p "And God" -n 6 --temp 0 -t 1)" ] || { echo "FAIL: greedy is not deterministic"; exit 1; }
# moe run (KV cache) continues greedily exactly as moe generate (full recompute) does.
run=$("$moe" run -m "$work/straight" -p "And God" -n 6 --temp 0 -t 1 2>/dev/null)
[ "$run" = "$gen" ] || { echo "FAIL: moe run printed '$run', moe generate '$gen'"; exit 1; }
"$moe" run -m "$work/straight" -p "And God" -n 6 -t 1 2>&1 >/dev/null | grep -q "generation 6 tokens in" || { echo "FAIL: no timings from moe run"; exit 1; }
if out=$("$moe" run -m "$work/straight" -n 6 --top-p 0 2>&1); then echo "FAIL: accepted --top-p 0"; exit 1; fi
echo "$out" | grep -q "top-p must be in (0, 1]" || { echo "FAIL: unclear error: $out"; exit 1; }
if out=$("$moe" run -m "$work/straight" -n 100 -c 16 2>&1); then echo "FAIL: accepted a context overflow"; exit 1; fi
echo "$out" | grep -q "do not fit the context of 16 tokens" || { echo "FAIL: unclear error: $out"; exit 1; }
# Gradient accumulation: 2 micro-batches of 2 sequences = one batch of 4 (the same sequences;
# without the balance loss, which is not linear in the batch), to f32 rounding.
acc=(--data "$corpus" --vocab-size 300 --num-hidden-layers 2 --hidden-size 32 --num-attention-heads 4
     --num-key-value-heads 2 --num-local-experts 4 --intermediate-size 32 --ctx-size 32 --steps 4
     --eval-every 4 --log-every 1 -n 0 -t 1 --aux-coef 0)
"$moe" train "${acc[@]}" --batch 4 --out "$work/big" > /dev/null 2>&1
"$moe" train "${acc[@]}" --batch 2 --grad-accum 2 --out "$work/accum" > /dev/null 2>&1
paste <(grep -o '"loss":[^,]*' "$work/big/metrics.jsonl" | cut -d: -f2) \
      <(grep -o '"loss":[^,]*' "$work/accum/metrics.jsonl" | cut -d: -f2) |
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) { print "FAIL: accumulated loss " $2 " vs " $1; bad = 1 } n++ }
       END { if (n != 4) { print "FAIL: expected 4 losses, got " n; exit 1 } exit bad }'
echo "PASS: resumed losses identical; other shape and truncated checkpoints refused; generate reads the run; accumulation = large batch"
