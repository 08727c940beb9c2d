#!/usr/bin/env python3
"""PyTorch peer for `moe bench layer`: the same MoE layer shapes, float32, on the CPU.

Two implementations, both dropless with renormalised top-k weights:
  torch_hf_loop  Hugging Face MixtralSparseMoeBlock: one-hot expert mask, a loop over experts,
                 torch.where to find each expert's tokens, index_add_ to combine;
  torch_sorted   the tokens' assignments sorted by expert once, each expert run on its
                 contiguous slice, index_add_ to combine (MegaBlocks-like, without padding).
Prints one JSON line per measurement, the same fields as `moe bench layer`.

    /usr/bin/python3 bench/torch_layer.py --shape S1 --backward --threads 2
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {
    "S1": dict(T=4096, D=1024, F=2816, E=8, K=2, S=0, Fs=0),
    "S2": dict(T=2048, D=2048, F=1024, E=64, K=8, S=0, Fs=0),
    "S3": dict(T=2048, D=2048, F=1408, E=64, K=6, S=2, Fs=1408),
}


class MoeLayer(torch.nn.Module):
    def __init__(self, D, F_, E, K, S, Fs, impl):
        super().__init__()
        self.E, self.K, self.impl = E, K, impl
        init = lambda *s: torch.nn.Parameter(torch.randn(*s) / s[-1] ** 0.5)
        self.router = init(E, D)
        # One parameter per expert, as Hugging Face's ModuleList of experts: indexing one
        # stacked (E, F, D) parameter would make autograd build a full-size gradient per expert.
        self.w1 = torch.nn.ParameterList([init(F_, D) for _ in range(E)])
        self.w3 = torch.nn.ParameterList([init(F_, D) for _ in range(E)])
        self.w2 = torch.nn.ParameterList([init(D, F_) for _ in range(E)])
        self.shared = torch.nn.ParameterList([init(Fs, D) for _ in range(3 * S)]) if S else None
        if S:  # the down projections are (D, Fs)
            for s in range(S):
                self.shared[3 * s + 2] = init(D, Fs)

    def expert(self, x, e):
        return (F.silu(x @ self.w1[e].T) * (x @ self.w3[e].T)) @ self.w2[e].T

    def forward(self, x):
        probs = torch.softmax(x @ self.router.T, dim=-1)
        w, idx = torch.topk(probs, self.K, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        y = torch.zeros_like(x)
        if self.impl == "hf_loop":
            mask = F.one_hot(idx, self.E).permute(2, 1, 0)  # (E, K, T)
            for e in range(self.E):
                k_sel, t_sel = torch.where(mask[e])
                if t_sel.numel():
                    y.index_add_(0, t_sel, self.expert(x[t_sel], e) * w[t_sel, k_sel, None])
        else:
            flat = idx.reshape(-1)
            order = torch.argsort(flat, stable=True)
            tokens = order // self.K
            counts = torch.bincount(flat, minlength=self.E).tolist()
            # torch.split, not slicing: the backward of 64 slices of one tensor would build 64
            # full-size zero gradients; split's backward is one concatenation.
            chunks = torch.split(x[tokens], counts)
            outs = [self.expert(chunk, e) for e, chunk in enumerate(chunks) if chunk.shape[0]]
            out = torch.cat(outs) * w.reshape(-1)[order, None]
            y.index_add_(0, tokens, out)
        if self.shared is not None:
            for s in range(len(self.shared) // 3):
                a, b, c = self.shared[3 * s], self.shared[3 * s + 1], self.shared[3 * s + 2]
                y = y + (F.silu(x @ a.T) * (x @ b.T)) @ c.T
        return y


def bench(shape, impl, backward, reps, warmup, threads):
    s = SHAPES[shape]
    torch.manual_seed(0)
    layer = MoeLayer(s["D"], s["F"], s["E"], s["K"], s["S"], s["Fs"], impl)
    x = torch.randn(s["T"], s["D"], requires_grad=backward)
    dy = torch.randn(s["T"], s["D"])
    times = []
    for r in range(warmup + reps):
        t0 = time.perf_counter()
        if backward:
            layer.zero_grad(set_to_none=False)
            layer(x).backward(dy)
        else:
            with torch.no_grad():
                layer(x)
        if r >= warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    fwd = s["T"] * s["K"] * 6 * s["D"] * s["F"] + s["T"] * s["S"] * 6 * s["D"] * s["Fs"]
    flops = 3 * fwd if backward else fwd
    print(json.dumps(dict(
        bench="layer", impl="torch_" + impl, shape=shape, **{"pass": "fwd+bwd" if backward else "fwd"},
        dtype="f32", threads=threads, **s, reps=reps, median_ms=med * 1e3, min_ms=min(times) * 1e3,
        tokens_per_s=s["T"] / med, gflops=flops / med * 1e-9,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, torch=torch.__version__)),
        flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="all", choices=["S1", "S2", "S3", "all"])
    p.add_argument("--impl", default="all", choices=["hf_loop", "sorted", "all"])
    p.add_argument("--backward", action="store_true", help="time forward + backward")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    for shape in SHAPES if a.shape == "all" else [a.shape]:
        for impl in ["hf_loop", "sorted"] if a.impl == "all" else [a.impl]:
            bench(shape, impl, a.backward, a.reps, a.warmup, a.threads)


if __name__ == "__main__":
    main()
