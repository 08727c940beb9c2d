#!/usr/bin/env python3
"""Side-by-side layer benchmark: moe vs its SGEMM ceiling vs PyTorch, alternated in rounds.

This host is noisy (the same run moves by 10-30 % minutes apart), so every implementation is
measured once per round, in turn, and the best median over the rounds is kept for each. Prints
the JSON lines as they come (to stderr) and a markdown table (stdout) for docs/benchmarks.md.

    /usr/bin/python3 bench/compare_layer.py --rounds 2 --threads 2 > table.md
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    for r in rows:
        print(json.dumps(r), file=sys.stderr, flush=True)
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", default="S1,S2,S3")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--torch-reps", type=int, default=3)
    p.add_argument("--moe", default=os.path.join(ROOT, "build", "moe"))
    p.add_argument("--dtypes", default="f32")
    a = p.parse_args()
    t = ["-t", str(a.threads)]
    best = {}  # (shape, pass, impl) -> row with the highest gflops

    def keep(rows):
        for r in rows:
            key = (r["shape"], r["pass"], r["impl"] + ("" if r.get("dtype", "f32") == "f32" else "_" + r["dtype"]))
            if key not in best or r["gflops"] > best[key]["gflops"]:
                best[key] = r

    for _ in range(a.rounds):
        for shape in a.shapes.split(","):
            keep(run([a.moe, "bench", "gemm", "--shape", shape, "--reps", str(a.reps)] + t))
            for bwd in ([], ["--backward"]):
                for dtype in a.dtypes.split(","):
                    keep(run([a.moe, "bench", "layer", "--shape", shape, "--reps", str(a.reps),
                              "--dtype", dtype] + bwd + t))
                keep(run([sys.executable, "bench/torch_layer.py", "--shape", shape, "--reps",
                          str(a.torch_reps), "--threads", str(a.threads)] + bwd))

    print("| shape | pass | moe ms | moe GFLOP/s | SGEMM GFLOP/s (same products) | moe / SGEMM "
          "| torch_hf_loop ms | torch_sorted ms | moe speed-up vs best torch | peak RSS / needed |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for shape in a.shapes.split(","):
        for ps in ("fwd", "fwd+bwd"):
            m, g = best[(shape, ps, "moe")], best[(shape, ps, "openblas")]
            th, ts = best[(shape, ps, "torch_hf_loop")], best[(shape, ps, "torch_sorted")]
            tbest = min(th["median_ms"], ts["median_ms"])
            print(f"| {shape} | {ps} | {m['median_ms']:.0f} | {m['gflops']:.1f} | {g['gflops']:.1f} | "
                  f"{m['gflops'] / g['gflops']:.0%} | {th['median_ms']:.0f} | {ts['median_ms']:.0f} | "
                  f"{tbest / m['median_ms']:.2f}x | {m['rss_over_needed']:.2f} |")
            bf = best.get((shape, ps, "moe_bf16"))
            if bf:
                print(f"| {shape} | {ps} bf16 | {bf['median_ms']:.0f} | {bf['gflops']:.1f} | | "
                      f"{bf['gflops'] / m['gflops']:.2f}x f32 | | | {tbest / bf['median_ms']:.2f}x | "
                      f"{bf['rss_over_needed']:.2f} |")


if __name__ == "__main__":
    main()
