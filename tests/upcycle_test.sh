#!/usr/bin/env bash
# Sparse upcycling end to end: a dense model (moe train --num-local-experts 0) becomes an MoE
# one (moe upcycle) that greedily continues a prompt exactly as the dense one did (identical
# experts, renormalised top-k weights), and moe train --init trains it further. An MoE source
# is refused. Also a Switch-style interleave (--decoder-sparse-step 2) trains and generates.
# Usage: upcycle_test.sh MOE_BINARY CORPUS WORKDIR
set -euo pipefail
moe="$1" corpus="$2" work="$3"
rm -rf "$work" && mkdir -p "$work"
base=(--data "$corpus" --vocab-size 300 --num-hidden-layers 2 --hidden-size 32 --num-attention-heads 4
      --num-key-value-heads 2 --intermediate-size 16 --ctx-size 32 --batch 4 --steps 6 --eval-every 3 -n 4 -t 1)
"$moe" train "${base[@]}" --num-local-experts 0 --out "$work/dense" > /dev/null 2>&1
grep -aq 'layers.0.mlp.gate_proj.weight' <(head -c 4096 "$work/dense/model.safetensors") || { echo "FAIL: no dense FFN tensors"; exit 1; }
"$moe" upcycle -m "$work/dense" --out "$work/up" --num-local-experts 4 --num-experts-per-tok 2 > "$work/upcycle.txt"
grep -q "2 of 2 layers MoE with E = 4, K = 2" "$work/upcycle.txt" || { echo "FAIL: upcycle printed: $(cat "$work/upcycle.txt")"; exit 1; }
dense=$("$moe" generate -m "$work/dense" -p "And God" -n 12 --temp 0 -t 1)
up=$("$moe" generate -m "$work/up" -p "And God" -n 12 --temp 0 -t 1)
[ "$dense" = "$up" ] || { echo "FAIL: the upcycled model continues differently: '$dense' vs '$up'"; exit 1; }
out=$("$moe" train --data "$corpus" --init "$work/up" --out "$work/cont" --ctx-size 32 --batch 4 --steps 4 --eval-every 2 -n 4 -t 1 2>&1)
echo "$out" | grep -q "4 steps.*validation loss" || { echo "FAIL: training from the upcycled model: $out"; exit 1; }
grep -q '"num_local_experts": 4' "$work/cont/config.json" || { echo "FAIL: the continued run lost its experts"; exit 1; }
"$moe" generate -m "$work/cont" -p "And" -n 2 -t 1 > /dev/null || { echo "FAIL: the continued run cannot generate"; exit 1; }
if out=$("$moe" upcycle -m "$work/up" --out "$work/up2" 2>&1); then echo "FAIL: upcycled an MoE model"; exit 1; fi
echo "$out" | grep -q "already has MoE layers (layer 0); upcycle takes a dense model" || { echo "FAIL: unclear error: $out"; exit 1; }
if out=$("$moe" upcycle -m "$work/dense" --out "$work/dense" 2>&1); then echo "FAIL: upcycled over its own source"; exit 1; fi
echo "$out" | grep -q -- "--out must differ from -m" || { echo "FAIL: unclear error: $out"; exit 1; }
grep -q '"num_local_experts": 0' "$work/dense/config.json" || { echo "FAIL: the refused upcycle touched the dense model"; exit 1; }
# Switch / ST-MoE interleave: layer 0 dense, layer 1 MoE.
out=$("$moe" train "${base[@]}" --num-local-experts 4 --decoder-sparse-step 2 --out "$work/inter" 2>&1)
echo "$out" | grep -q "6 steps.*validation loss" || { echo "FAIL: interleaved training: $out"; exit 1; }
grep -q '"expert_load":\[\[' "$work/inter/metrics.jsonl" || { echo "FAIL: no expert load logged"; exit 1; }
"$moe" generate -m "$work/inter" -p "And" -n 4 -t 1 > /dev/null
echo "PASS"
