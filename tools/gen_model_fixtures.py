#!/usr/bin/env python3
"""Reference fixtures for the C++ model layers (tooling only: CI never runs this).

An independent PyTorch implementation of docs/model_spec.md: RMSNorm and causal self-attention
with RoPE (Hugging Face's rotate_half layout) and grouped-query attention, written in the style of
Hugging Face's LlamaRMSNorm / LlamaAttention (cat(freqs, freqs) cos / sin tables, rotate_half,
repeat_kv, additive causal mask). Computed in float64 from float32-drawn inputs, with every
gradient from torch autograd; the vectorised forward is cross-checked against a literal
per-element transcription of the spec, and a few gradient entries against central differences.
Writes tests/fixtures/model_attention_<case>.safetensors and tests/fixtures/model_rmsnorm.safetensors
(float32 tensors, the config in __metadata__).

    /usr/bin/python3 tools/gen_model_fixtures.py      # Debian's python3-torch (1.13) is enough
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_layer_fixtures import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
GENERATOR = "tools/gen_model_fixtures.py"

ATTENTION_CASES = [
    dict(name="gqa", B=2, T=7, D=32, H=4, Hkv=2, hd=8, rope_theta=10000, seed=1),
    dict(name="mha", B=1, T=12, D=24, H=3, Hkv=3, hd=8, rope_theta=500, seed=2),
    # hd != D / H on purpose: the scale is 1 / sqrt(hd) and q_proj is (H * hd, D), not (D, D).
    dict(name="mqa_wide_head", B=2, T=5, D=16, H=2, Hkv=1, hd=12, rope_theta=10000, seed=3),
]

RMSNORM_CASE = dict(R=10, D=24, rms_norm_eps="1e-05", seed=11)


# ----------------------------------------------------------------------------------------------
# RMSNorm (LlamaRMSNorm)

def rmsnorm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


# ----------------------------------------------------------------------------------------------
# Attention (LlamaAttention, eager path)

def rotary_cos_sin(T, hd, theta, dtype=torch.float64):
    """(T, hd) tables; the angle for column j is p * theta^(-2 (j mod hd/2) / hd)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=dtype) / hd))  # (hd/2,)
    pos = torch.arange(T, dtype=dtype)
    freqs = torch.outer(pos, inv_freq)  # (T, hd/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, hd): rotate_half layout, not interleaved
    return emb.cos(), emb.sin()


def rotate_half(u):
    u1 = u[..., : u.shape[-1] // 2]
    u2 = u[..., u.shape[-1] // 2:]
    return torch.cat((-u2, u1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def repeat_kv(h, n_rep):
    """(B, Hkv, T, hd) -> (B, Hkv * n_rep, T, hd); query head h reads kv head h // n_rep."""
    B, Hkv, T, hd = h.shape
    if n_rep == 1:
        return h
    return h[:, :, None, :, :].expand(B, Hkv, n_rep, T, hd).reshape(B, Hkv * n_rep, T, hd)


def attention(c, x, q_proj, k_proj, v_proj, o_proj):
    B, T, D, H, Hkv, hd = c["B"], c["T"], c["D"], c["H"], c["Hkv"], c["hd"]
    xs = x.view(B, T, D)  # rows are sequence-major: row b * T + p
    q = (xs @ q_proj.T).view(B, T, H, hd).transpose(1, 2)  # (B, H, T, hd)
    k = (xs @ k_proj.T).view(B, T, Hkv, hd).transpose(1, 2)
    v = (xs @ v_proj.T).view(B, T, Hkv, hd).transpose(1, 2)
    cos, sin = rotary_cos_sin(T, hd, float(c["rope_theta"]), x.dtype)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    k = repeat_kv(k, H // Hkv)
    v = repeat_kv(v, H // Hkv)
    scores = (q @ k.transpose(2, 3)) / math.sqrt(hd)  # (B, H, T, T)
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    mask = torch.zeros(T, T, dtype=x.dtype).masked_fill(causal, float("-inf"))
    probs = torch.softmax(scores + mask, dim=-1)
    o = (probs @ v).transpose(1, 2).reshape(B * T, H * hd)
    return o @ o_proj.T


def attention_literal(c, x, q_proj, k_proj, v_proj, o_proj):
    """docs/model_spec.md steps 1-4 transcribed element by element (a forward cross-check)."""
    B, T, H, Hkv, hd = c["B"], c["T"], c["H"], c["Hkv"], c["hd"]
    theta, half = float(c["rope_theta"]), hd // 2
    q, k, v = x @ q_proj.T, x @ k_proj.T, x @ v_proj.T

    def rope(u, p):
        out = u.clone()
        for i in range(half):
            ang = p * theta ** (-2.0 * i / hd)
            cs, sn = math.cos(ang), math.sin(ang)
            out[i] = u[i] * cs - u[i + half] * sn
            out[i + half] = u[i + half] * cs + u[i] * sn
        return out

    o = torch.zeros(B * T, H * hd, dtype=x.dtype)
    for b in range(B):
        for h in range(H):
            g = h // (H // Hkv)
            qs = [rope(q[b * T + p, h * hd:(h + 1) * hd], p) for p in range(T)]
            ks = [rope(k[b * T + p, g * hd:(g + 1) * hd], p) for p in range(T)]
            for p in range(T):
                s = torch.stack([qs[p].dot(ks[pp]) / math.sqrt(hd) for pp in range(p + 1)])
                w = torch.exp(s - s.max())
                w = w / w.sum()
                o[b * T + p, h * hd:(h + 1) * hd] = sum(
                    w[pp] * v[b * T + pp, g * hd:(g + 1) * hd] for pp in range(p + 1))
    return o @ o_proj.T


# ----------------------------------------------------------------------------------------------

def drawer(seed):
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=1.0):  # drawn in float32, then used exactly in float64
        return (torch.randn(*shape, generator=g, dtype=torch.float32) * scale).double()
    return rnd


def finite_difference_selfcheck(tag, loss_fn, t, grads, names):
    """Guards the reference itself: a few autograd entries against central differences."""
    for name in names:
        n = t[name].numel()
        for flat in sorted({0, n // 3, n // 2, n - 1}):
            def loss_at(delta):
                tt = {k: v.clone() for k, v in t.items()}
                tt[name].view(-1)[flat] += delta
                return float(loss_fn(tt))
            h = 1e-6
            fd = (loss_at(h) - loss_at(-h)) / (2 * h)
            an = float(grads[name].reshape(-1)[flat])
            assert abs(fd - an) <= 1e-7 + 1e-5 * abs(fd), (tag, name, flat, fd, an)


def f32(v):
    return v.detach().float().numpy()


def generate_attention(c):
    B, T, D, H, Hkv, hd = c["B"], c["T"], c["D"], c["H"], c["Hkv"], c["hd"]
    assert H % Hkv == 0 and hd % 2 == 0
    rnd = drawer(c["seed"])
    t = {
        "x": rnd(B * T, D),
        "q_proj": rnd(H * hd, D, scale=1 / math.sqrt(D)),
        "k_proj": rnd(Hkv * hd, D, scale=1 / math.sqrt(D)),
        "v_proj": rnd(Hkv * hd, D, scale=1 / math.sqrt(D)),
        "o_proj": rnd(D, H * hd, scale=1 / math.sqrt(H * hd)),
        "dy": rnd(B * T, D),
    }
    names = ["x", "q_proj", "k_proj", "v_proj", "o_proj"]
    params = {k: t[k].clone().requires_grad_(True) for k in names}
    y = attention(c, *(params[k] for k in names))
    (y * t["dy"]).sum().backward()
    grads = {k: params[k].grad for k in names}

    y_lit = attention_literal(c, *(t[k] for k in names))
    err = float((y.detach() - y_lit).abs().max())
    assert err < 1e-12, (c["name"], "vectorised vs literal forward", err)
    finite_difference_selfcheck(c["name"], lambda tt: (attention(c, *(tt[k] for k in names)) * tt["dy"]).sum(),
                                t, grads, names)

    out = {k: f32(t[k]) for k in names + ["dy"]}
    out["y"] = f32(y)
    out.update({"grad." + k: f32(grads[k]) for k in names})
    meta = {k: str(c[k]) for k in ("B", "T", "D", "H", "Hkv", "hd", "rope_theta")}
    meta["generator"] = GENERATOR
    meta["torch"] = torch.__version__
    path = os.path.join(OUT, f"model_attention_{c['name']}.safetensors")
    write_safetensors(path, out, meta)
    print(f"{path}: {os.path.getsize(path)} bytes, literal-forward max diff {err:.2e}")


def generate_rmsnorm(c):
    R, D, eps = c["R"], c["D"], float(c["rms_norm_eps"])
    rnd = drawer(c["seed"])
    x = rnd(R, D)
    x[3] = (x[3] * 1e-3).float().double()  # mean square ~1e-6, below eps: eps matters
    x[7] = (x[7] * 50.0).float().double()  # large row
    t = {"x": x, "weight": 1.0 + 0.1 * rnd(D), "dy": rnd(R, D)}
    t["weight"] = t["weight"].float().double()  # exactly representable in float32

    names = ["x", "weight"]
    params = {k: t[k].clone().requires_grad_(True) for k in names}
    y = rmsnorm(params["x"], params["weight"], eps)
    (y * t["dy"]).sum().backward()
    grads = {k: params[k].grad for k in names}

    ms = (t["x"] ** 2).mean(1, keepdim=True)
    y_lit = t["x"] / torch.sqrt(ms + eps) * t["weight"]
    err = float((y.detach() - y_lit).abs().max())
    assert err < 1e-12, ("rmsnorm", "literal forward", err)
    finite_difference_selfcheck("rmsnorm", lambda tt: (rmsnorm(tt["x"], tt["weight"], eps) * tt["dy"]).sum(),
                                t, grads, names)
    # Also every entry of the tiny and the large row of x.
    for row in (3, 7):
        for j in range(D):
            def loss_at(delta):
                xx = t["x"].clone()
                xx[row, j] += delta
                return float((rmsnorm(xx, t["weight"], eps) * t["dy"]).sum())
            h = 1e-7 if row == 3 else 1e-5
            fd = (loss_at(h) - loss_at(-h)) / (2 * h)
            an = float(grads["x"][row, j])
            assert abs(fd - an) <= 1e-6 + 1e-5 * abs(fd), ("rmsnorm", row, j, fd, an)

    out = {"x": f32(t["x"]), "weight": f32(t["weight"]), "dy": f32(t["dy"]), "y": f32(y),
           "grad.x": f32(grads["x"]), "grad.weight": f32(grads["weight"])}
    meta = {"R": str(R), "D": str(D), "rms_norm_eps": c["rms_norm_eps"], "generator": GENERATOR,
            "torch": torch.__version__}
    path = os.path.join(OUT, "model_rmsnorm.safetensors")
    write_safetensors(path, out, meta)
    print(f"{path}: {os.path.getsize(path)} bytes, literal-forward max diff {err:.2e}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for case in ATTENTION_CASES:
        generate_attention(case)
    generate_rmsnorm(RMSNORM_CASE)
