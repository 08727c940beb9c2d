#!/usr/bin/env bash
# moe train under mpirun (docs/distributed.md, "Training under mpirun").
# Usage: train_dist_test.sh CASE MOE_BINARY CORPUS WORKDIR MPIRUN...
#   match:   the per-step losses (and validation losses) of 2 and 4 ranks equal one process's,
#            also with 4 ranks as 2 copies of the experts on 2 ranks each (--expert-ranks 2), and
#            with the sigmoid_bias router (its bias updated from every rank's load) on 2 ranks
#   reshard: a checkpoint written by 2 ranks, resumed on 1, 2 and 4 ranks (and 4 as 2 copies of
#            the experts), and one written by 4 ranks as 2 copies resumed in one process,
#            continue with the losses of the uninterrupted 2-rank run
#   errors:  -np 3 with 4 experts, a batch that does not split, an expert group that does not
#            divide the ranks, are refused with the fix
# Losses agree to a relative 1e-5, not bit for bit: a rank's GEMMs see B / N sequences instead of
# B (OpenBLAS blocks by rows), the replicated gradients are summed by MPI in its own order, and
# each expert sums every rank's rows at once. The balance loss is per rank (not linear in the
# batch), so these runs use --aux-coef 0; the z-loss is a mean over tokens and matches.
set -euo pipefail
case="$1" moe="$2" corpus="$3" work="$4"
shift 4
mpirun=("$@")
rm -rf "$work" && mkdir -p "$work"
base=(--data "$corpus" --vocab-size 300 --num-hidden-layers 2 --hidden-size 32 --num-attention-heads 4
      --num-key-value-heads 2 --num-local-experts 4 --intermediate-size 32 --ctx-size 32
      --steps 8 --warmup 2 --eval-every 4 --log-every 1 -t 1 --aux-coef 0)
args=("${base[@]}" --batch 4 -n 4)
export OMP_NUM_THREADS=1

run() {  # run NP OUT [extra args...]: NP = 0 is one process without mpirun
  local np="$1" out="$2"
  shift 2
  local cmd=("$moe" train "${args[@]}" --out "$out" "$@")
  [ "$np" = 0 ] || cmd=("${mpirun[@]}" -np "$np" "${cmd[@]}")
  if ! "${cmd[@]}" > "$out.log" 2>&1; then
    echo "FAIL: ${cmd[*]}"; cat "$out.log"; exit 1
  fi
}

# compare REF OTHER FIELD STEPS: FIELD of every step in both metrics.jsonl, to a relative 1e-5.
compare() {
  paste <(grep -o "\"$3\":[^,}]*" "$1/metrics.jsonl" | cut -d: -f2) \
        <(grep -o "\"$3\":[^,}]*" "$2/metrics.jsonl" | cut -d: -f2) |
    awk -v f="$3" -v a="$1" -v b="$2" -v want="$4" '
      { d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1); if (r > worst) worst = r
        if (r > 1e-5) { print "FAIL: " f " " $1 " (" a ") vs " $2 " (" b "), relative " r; bad = 1 } n++ }
      END { if (n != want) { print "FAIL: expected " want " values of " f ", got " n; exit 1 }
            printf "%s vs %s: %d values of %s, worst relative difference %.2g\n", a, b, n, f, worst; exit bad }'
}

case "$case" in
match)
  run 0 "$work/np1"
  for np in 2 4; do
    run "$np" "$work/np$np"
    grep -q "$np ranks (mpirun), $((4 / np)) of 4 experts and $((4 / np)) of 4 sequences per rank" "$work/np$np.log" ||
      { echo "FAIL: np $np did not run distributed"; cat "$work/np$np.log"; exit 1; }
    compare "$work/np1" "$work/np$np" loss 8
    compare "$work/np1" "$work/np$np" val_loss 2
    compare "$work/np1" "$work/np$np" grad_norm 8
    # The whole model gathered by rank 0: the sample's model file holds every expert.
    grep -q "8 steps.*validation loss" "$work/np$np.log" || { echo "FAIL: no summary"; cat "$work/np$np.log"; exit 1; }
  done
  # Expert parallelism inside data parallelism: 2 copies of the experts, 2 ranks each.
  run 4 "$work/np4g2" --expert-ranks 2
  grep -q "4 ranks (mpirun), 2 of 4 experts and 1 of 4 sequences per rank, 2 copies of the experts" "$work/np4g2.log" ||
    { echo "FAIL: np 4 --expert-ranks 2 did not run 2 copies"; cat "$work/np4g2.log"; exit 1; }
  compare "$work/np1" "$work/np4g2" loss 8
  compare "$work/np1" "$work/np4g2" val_loss 2
  compare "$work/np1" "$work/np4g2" grad_norm 8
  # sigmoid_bias: the replicated bias is updated from every rank's load (a sequence-wise balance
  # loss is a mean over sequences, so it would match too; these runs leave it out).
  # (--stop-after 8: no sample, whose prompt of 9 tokens the router refuses in one process
  # too: "T = 9 is not a multiple of seq_len = 32".)
  run 0 "$work/sb1" --router sigmoid_bias --balance-seq-len 32 --stop-after 8
  run 2 "$work/sb2" --router sigmoid_bias --balance-seq-len 32 --stop-after 8
  compare "$work/sb1" "$work/sb2" loss 8
  compare "$work/sb1" "$work/sb2" grad_norm 8
  # Only rank 0 logs: one line per step.
  [ "$(grep -c '"step"' "$work/np2/metrics.jsonl")" -eq 8 ] || { echo "FAIL: metrics.jsonl has other than 8 lines"; exit 1; }
  echo "PASS: 2 and 4 ranks train with the losses of one process"
  ;;
reshard)
  run 2 "$work/straight"
  run 2 "$work/stopped" --stop-after 4
  for to in 1 2 4; do
    cp -r "$work/stopped" "$work/to$to"
    run "$([ $to = 1 ] && echo 0 || echo $to)" "$work/to$to" --resume
    compare "$work/straight" "$work/to$to" loss 8
    compare "$work/straight" "$work/to$to" val_loss 2
  done
  # 4 ranks as 2 copies of the experts: resumed from the 2-rank checkpoint, and writing one
  # (gathered from the first copy) that one process resumes.
  cp -r "$work/stopped" "$work/to4g2"
  run 4 "$work/to4g2" --resume --expert-ranks 2
  compare "$work/straight" "$work/to4g2" loss 8
  run 4 "$work/g2stopped" --expert-ranks 2 --stop-after 4
  run 0 "$work/g2stopped" --resume
  compare "$work/straight" "$work/g2stopped" loss 8
  compare "$work/straight" "$work/g2stopped" val_loss 2
  # The 2-rank checkpoint is the single-process format: moe generate reads it.
  gen=$("$moe" generate -m "$work/straight" -p "And God" -n 4 --temp 0 -t 1)
  case "$gen" in "And God"?*) ;; *) echo "FAIL: moe generate printed: $gen"; exit 1 ;; esac
  echo "PASS: a 2-rank checkpoint resumes on 1, 2 and 4 ranks with the losses of the uninterrupted run"
  ;;
errors)
  if out=$("${mpirun[@]}" -np 3 "$moe" train "${base[@]}" --batch 3 -n 4 --out "$work/np3" 2>&1); then
    echo "FAIL: 4 experts on 3 ranks accepted"; exit 1
  fi
  echo "$out" | grep -q "num-local-experts 4 does not split over 3 ranks (mpirun -np 3)" ||
    { echo "FAIL: unclear error: $out"; exit 1; }
  if out=$("${mpirun[@]}" -np 2 "$moe" train "${base[@]}" --batch 3 -n 4 --out "$work/b3" 2>&1); then
    echo "FAIL: a batch of 3 on 2 ranks accepted"; exit 1
  fi
  echo "$out" | grep -q "batch 3 does not split over 2 ranks" || { echo "FAIL: unclear error: $out"; exit 1; }
  if out=$("${mpirun[@]}" -np 2 "$moe" train "${args[@]}" --expert-ranks 4 --out "$work/g4" 2>&1); then
    echo "FAIL: --expert-ranks 4 on 2 ranks accepted"; exit 1
  fi
  echo "$out" | grep -q "expert-ranks 4 does not divide the 2 ranks" || { echo "FAIL: unclear error: $out"; exit 1; }
  echo "PASS: ranks that do not divide the experts or the batch are refused"
  ;;
*) echo "unknown case $case"; exit 2 ;;
esac
