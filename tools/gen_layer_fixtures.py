#!/usr/bin/env python3
"""Reference fixtures for the C++ MoE layer (tooling only: CI never runs this).

An independent PyTorch implementation of docs/moe_layer_spec.md, written in the style of
Hugging Face's MixtralSparseMoeBlock (one-hot expert mask, loop over experts, index_add_),
computed in float64 from float32 inputs, with every gradient from torch autograd. Writes
tests/fixtures/layer_<case>.safetensors (float32 / int32 tensors, the config in __metadata__).

    /usr/bin/python3 tools/gen_layer_fixtures.py      # Debian's python3-torch (1.13) is enough
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")

CASES = [
    dict(name="basic", T=32, D=16, F=24, E=4, K=2, S=0, Fs=0, renormalize=1, capacity_factor=0.0,
         aux_coef=0.01, z_coef=0.001, skew=0.0, seed=1),
    dict(name="shared_norenorm", T=24, D=16, F=20, E=8, K=3, S=2, Fs=12, renormalize=0,
         capacity_factor=0.0, aux_coef=0.02, z_coef=0.01, skew=0.0, seed=2),
    dict(name="capacity_top2", T=32, D=16, F=24, E=4, K=2, S=0, Fs=0, renormalize=1,
         capacity_factor=1.0, aux_coef=0.01, z_coef=0.001, skew=0.6, seed=3),
    dict(name="switch_top1", T=32, D=16, F=24, E=8, K=1, S=0, Fs=0, renormalize=0,
         capacity_factor=1.25, aux_coef=0.01, z_coef=0.001, skew=0.5, seed=4),
    dict(name="wide_k", T=20, D=8, F=12, E=16, K=6, S=1, Fs=16, renormalize=1, capacity_factor=0.0,
         aux_coef=0.05, z_coef=0.02, skew=0.0, seed=5),
]


def swiglu(v, w1, w3, w2):
    return (F.silu(v @ w1.T) * (v @ w3.T)) @ w2.T


def layer(c, x, router, w1, w3, w2, ws1, ws3, ws2):
    """Returns y, aux, z and the routing decisions (probs, topk_idx, topk_weight, kept)."""
    T, E, K = c["T"], c["E"], c["K"]
    logits = x @ router.T
    probs = torch.softmax(logits, dim=-1)
    topk_p, topk_idx = torch.topk(probs, K, dim=-1)  # descending
    weight = topk_p / topk_p.sum(-1, keepdim=True) if c["renormalize"] else topk_p
    kept = torch.ones(T, K, dtype=torch.bool)
    if c["capacity_factor"] > 0:
        cap = max(1, math.ceil(c["capacity_factor"] * T * K / E))
        fill = [0] * E
        for k in range(K):          # GShard priority: all first choices, then second, ...
            for t in range(T):
                e = int(topk_idx[t, k])
                if fill[e] < cap:
                    fill[e] += 1
                else:
                    kept[t, k] = False
    y = torch.zeros_like(x)
    mask = F.one_hot(topk_idx, E).permute(2, 1, 0) & kept.T.unsqueeze(0)  # (E, K, T)
    for e in range(E):
        k_sel, t_sel = torch.where(mask[e])
        if t_sel.numel() == 0:
            continue
        out = swiglu(x[t_sel], w1[e], w3[e], w2[e]) * weight[t_sel, k_sel, None]
        y = y.index_add(0, t_sel, out)
    for s in range(c["S"]):
        y = y + swiglu(x, ws1[s], ws3[s], ws2[s])
    # Switch / HF load balancing: E * sum_e f_e P_e, f_e counted before capacity drops.
    f = F.one_hot(topk_idx, E).to(x.dtype).sum(dim=(0, 1)) / T
    aux = E * torch.sum(f * probs.mean(0))
    z = torch.mean(torch.logsumexp(logits, dim=-1) ** 2)
    return y, aux, z, probs, topk_idx, weight, kept


def make_inputs(c):
    g = torch.Generator().manual_seed(c["seed"])
    T, D, Fh, E, S, Fs = c["T"], c["D"], c["F"], c["E"], c["S"], c["Fs"]

    def rnd(*shape, scale=1.0):  # drawn in float32, then used exactly in float64
        return (torch.randn(*shape, generator=g, dtype=torch.float32) * scale).double()

    t = {
        "x": rnd(T, D),
        "router.weight": rnd(E, D, scale=1 / math.sqrt(D)),
        "experts.w1": rnd(E, Fh, D, scale=1 / math.sqrt(D)),
        "experts.w3": rnd(E, Fh, D, scale=1 / math.sqrt(D)),
        "experts.w2": rnd(E, D, Fh, scale=1 / math.sqrt(Fh)),
        "shared.w1": rnd(S, Fs, D, scale=1 / math.sqrt(D)),
        "shared.w3": rnd(S, Fs, D, scale=1 / math.sqrt(D)),
        "shared.w2": rnd(S, D, Fs, scale=1 / math.sqrt(max(Fs, 1))),
        "dy": rnd(T, D),
    }
    if c["skew"]:
        # Push every token towards experts 0 and 1 so capacity actually drops assignments.
        direction = rnd(D)
        t["x"] = (t["x"] + 0.8 * direction).float().double()
        bias = torch.zeros(E, D, dtype=torch.float64)
        bias[0] = c["skew"] * direction / direction.norm()
        bias[1] = 0.5 * c["skew"] * direction / direction.norm()
        t["router.weight"] = (t["router.weight"] + bias).float().double()
    return t


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}[arr.dtype]
        data = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def finite_difference_selfcheck(c, t, grads):
    """Guards the reference itself: a few autograd entries against central differences."""
    names = ["x", "router.weight", "experts.w1", "experts.w3", "experts.w2"] + (["shared.w1"] if c["S"] else [])
    for name in names:
        for flat in (0, t[name].numel() // 2):
            def loss_at(delta):
                tt = {k: v.clone() for k, v in t.items()}
                tt[name].view(-1)[flat] += delta
                y, aux, z, *_ = layer(c, tt["x"], tt["router.weight"], tt["experts.w1"], tt["experts.w3"],
                                      tt["experts.w2"], tt["shared.w1"], tt["shared.w3"], tt["shared.w2"])
                return float((y * tt["dy"]).sum() + c["aux_coef"] * aux + c["z_coef"] * z)
            h = 1e-6
            fd = (loss_at(h) - loss_at(-h)) / (2 * h)
            an = float(grads[name].reshape(-1)[flat])
            assert abs(fd - an) <= 1e-6 + 1e-5 * abs(fd), (c["name"], name, flat, fd, an)


def generate(c):
    t = make_inputs(c)
    params = {k: v.clone().requires_grad_(True) for k, v in t.items() if k != "dy"}
    y, aux, z, probs, topk_idx, weight, kept = layer(
        c, params["x"], params["router.weight"], params["experts.w1"], params["experts.w3"],
        params["experts.w2"], params["shared.w1"], params["shared.w3"], params["shared.w2"])
    loss = (y * t["dy"]).sum() + c["aux_coef"] * aux + c["z_coef"] * z
    loss.backward()
    grads = {k: v.grad for k, v in params.items()}
    finite_difference_selfcheck(c, t, grads)
    n_dropped = int((~kept).sum())
    if c["capacity_factor"] > 0:
        assert n_dropped >= 3, f"{c['name']}: only {n_dropped} assignments dropped; raise the skew"

    f32 = lambda v: v.detach().float().numpy()
    out = {k: f32(v) for k, v in t.items() if c["S"] or not k.startswith("shared.")}
    out.update({
        "probs": f32(probs), "topk_idx": topk_idx.int().numpy(), "topk_weight": f32(weight),
        "kept": kept.int().numpy(), "y": f32(y), "aux_loss": f32(aux.reshape(1)),
        "z_loss": f32(z.reshape(1)),
    })
    for k, g in grads.items():
        if c["S"] or not k.startswith("shared."):
            out["grad." + k] = f32(g)
    meta = {k: str(v) for k, v in c.items() if k not in ("name", "skew")}
    meta["generator"] = "tools/gen_layer_fixtures.py"
    meta["torch"] = torch.__version__
    path = os.path.join(OUT, f"layer_{c['name']}.safetensors")
    write_safetensors(path, out, meta)
    print(f"{path}: {os.path.getsize(path)} bytes, dropped {n_dropped} of {c['T'] * c['K']}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for case in CASES:
        generate(case)
