#!/usr/bin/env python3
"""PNG plots of `moe train` runs (tooling: matplotlib from pip).

    python3 tools/plot_run.py runs/kjv                      # one run: loss, tokens/s, expert load
    python3 tools/plot_run.py runs/a runs/b --labels A B --out docs/img/compare.png   # val loss of several runs

One run writes <run>/loss.png (train and validation loss), <run>/throughput.png (tokens/s) and
<run>/expert_load.png (a heatmap per layer: experts x steps, each cell the expert's share of
the layer's assignments). Several runs write one figure comparing their losses.
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_one(run):
    rows = read(run)
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [r["ce"] for r in rows], label="train (batch)", alpha=0.6)
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    ax.plot([s for s, _ in val], [v for _, v in val], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(run, "loss.png"), dpi=120)

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(steps, [r["tokens_per_s"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("tokens / s (cumulative)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(run, "throughput.png"), dpi=120)

    layers = len(rows[0]["expert_load"])
    fig, axes = plt.subplots(layers, 1, figsize=(7, 1.6 * layers + 0.6), squeeze=False)
    for l in range(layers):
        share = []
        for r in rows:
            counts = r["expert_load"][l]
            total = max(1, sum(counts))
            share.append([c / total for c in counts])
        experts = list(map(list, zip(*share)))  # experts x time
        im = axes[l][0].imshow(experts, aspect="auto", cmap="viridis", interpolation="nearest",
                               extent=[steps[0], steps[-1], len(experts) - 0.5, -0.5])
        axes[l][0].set_ylabel(f"layer {l}\nexpert")
        fig.colorbar(im, ax=axes[l][0], fraction=0.03, pad=0.01)
    axes[-1][0].set_xlabel("step")
    fig.suptitle("expert load (share of the layer's assignments)")
    fig.tight_layout()
    fig.savefig(os.path.join(run, "expert_load.png"), dpi=120)
    print(f"{run}: loss.png, throughput.png, expert_load.png")


def plot_compare(runs, labels, out):
    fig, ax = plt.subplots(figsize=(6, 4))
    for run, label in zip(runs, labels):
        rows = read(run)
        val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
        ax.plot([s for s, _ in val], [v for _, v in val], "o-", label=f"{label} (final {val[-1][1]:.3f})")
    ax.set_xlabel("step (same tokens per step)")
    ax.set_ylabel("validation cross-entropy (nats / token)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    fig.savefig(out, dpi=120)
    print(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+")
    p.add_argument("--labels", nargs="*")
    p.add_argument("--out", default="compare.png")
    a = p.parse_args()
    if len(a.runs) == 1:
        plot_one(a.runs[0])
    else:
        plot_compare(a.runs, a.labels or a.runs, a.out)


if __name__ == "__main__":
    main()
