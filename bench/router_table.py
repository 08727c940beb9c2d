#!/usr/bin/env python3
"""Markdown table of `moe bench router` JSON lines (stdin), for docs/benchmarks.md.

    ./build/moe bench router -t 2 | python3 bench/router_table.py
"""
import json
import sys


def main():
    print("| router | T | K | kept assignments | router fwd ms | router bwd ms | experts fwd ms "
          "| experts bwd ms | router / experts (fwd+bwd) | router / experts (fwd) | max/mean load | unrouted |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in sys.stdin:
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        print(f"| {r['router']} | {r['T']} | {r['K']} | {r['assignments']} | {r['router_fwd_ms']:.1f} "
              f"| {r['router_bwd_ms']:.1f} | {r['experts_fwd_ms']:.0f} | {r['experts_bwd_ms']:.0f} "
              f"| {100 * r['router_over_experts']:.2f} % | {100 * r['router_over_experts_fwd']:.2f} % "
              f"| {r['load_max_over_mean']:.2f} | {100 * r.get('unrouted_fraction', 0):.1f} % |")


if __name__ == "__main__":
    main()
