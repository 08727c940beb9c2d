#!/usr/bin/env bash
# A Llama-style (SentencePiece BPE) model end to end: moe train --tokenizer with the fixture
# tokenizer.json, moe run prepends BOS (as llama.cpp), moe convert writes a "llama" vocabulary whose
# GGUF continues the prompt exactly as the directory does, and moe run --chat keeps the
# conversation in the KV cache (turn 2 feeds only its new tokens) with the template taken from the
# model (general.architecture) or named; a bad template name is refused with the list.
# Usage: spm_chat_test.sh MOE_BINARY FIXTURE_DIR WORKDIR
set -euo pipefail
moe="$1" fix="$2" work="$3"
rm -rf "$work" && mkdir -p "$work"
"$moe" train --data "$fix/kjv_genesis.txt" --tokenizer "$fix/tokenizer_spm.json" --num-hidden-layers 2 --hidden-size 32 \
  --num-attention-heads 4 --num-key-value-heads 2 --intermediate-size 32 --num-local-experts 4 --ctx-size 32 \
  --batch 4 --steps 6 --eval-every 3 -n 4 -t 1 --out "$work/mix" > /dev/null 2>&1
cmp -s "$fix/tokenizer_spm.json" "$work/mix/tokenizer.json" || { echo "FAIL: the run's tokenizer.json differs from the one given"; exit 1; }
dir=$("$moe" run -m "$work/mix" -p "And God said" -n 12 --temp 0 -t 1 2> "$work/run.err")
grep -q "prompt 4 tokens" "$work/run.err" || { echo "FAIL: expected BOS + 3 prompt tokens: $(cat "$work/run.err")"; exit 1; }
"$moe" convert -m "$work/mix" -o "$work/mix.gguf" > /dev/null 2>&1
"$moe" inspect "$work/mix.gguf" | grep -q 'tokenizer.ggml.model *string *"llama"' || { echo "FAIL: not a llama vocabulary"; exit 1; }
gguf=$("$moe" run -m "$work/mix.gguf" -p "And God said" -n 12 --temp 0 -t 1 2> /dev/null)
[ "$dir" = "$gguf" ] || { echo "FAIL: the GGUF continues differently: '$dir' vs '$gguf'"; exit 1; }
printf 'Hello there\n\nWho said "Let there be light"?\n' |
  "$moe" run -m "$work/mix.gguf" --chat -n 10 --temp 0 -t 1 -c 200 > "$work/chat.out" 2> "$work/chat.err"
[ "$(wc -l < "$work/chat.out")" -eq 2 ] || { echo "FAIL: expected two replies: $(cat "$work/chat.out")"; exit 1; }
grep -q 'template mistral (from general.architecture "llama"), BOS added' "$work/chat.err" || { echo "FAIL: $(cat "$work/chat.err")"; exit 1; }
# Turn 1: BOS + "[INST] Hello there [/INST]"; turn 2: only </s> + the new [INST] ... [/INST]
# (28 tokens), after the 20 + 10 positions of turn 1 in the cache.
grep -q "turn 1 fed 20 new tokens, replied 10 tokens; 30 of 200 positions used" "$work/chat.err" || { echo "FAIL: $(cat "$work/chat.err")"; exit 1; }
grep -q "turn 2 fed 28 new tokens, replied 10 tokens; 68 of 200 positions used" "$work/chat.err" || { echo "FAIL: $(cat "$work/chat.err")"; exit 1; }
printf 'Hello\n' | "$moe" run -m "$work/mix" --chat --chat-template qwen2 -n 4 --temp 0 -t 1 -c 200 > /dev/null 2> "$work/chat2.err"
grep -q "template qwen2 (from --chat-template)" "$work/chat2.err" || { echo "FAIL: $(cat "$work/chat2.err")"; exit 1; }
if out=$(printf 'Hello\n' | "$moe" run -m "$work/mix" --chat --chat-template vicuna -n 4 2>&1); then echo "FAIL: accepted an unknown template"; exit 1; fi
echo "$out" | grep -q 'unknown chat template "vicuna"; known: mistral, chatml, qwen, qwen2, olmoe, deepseek2' || { echo "FAIL: unclear error: $out"; exit 1; }
echo "PASS"
