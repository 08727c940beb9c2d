#!/usr/bin/env python3
"""Reference fixtures for the C++ training pieces (tooling only: CI never runs this).

An independent PyTorch reference for the sections "Embedding and the language-model loss",
"AdamW" and "Learning-rate schedule" of docs/model_spec.md, built on PyTorch's own machinery:

- train_adamw: the real torch.optim.AdamW (two param groups, weight decay on p0 only), driven
  for 10 steps by given gradients that go through the real torch.nn.utils.clip_grad_norm_ over
  both tensors together, with the learning rate of each step set to the spec's closed
  form (plain Python float64), asserted equal (to 1e-14 relative, and exactly once rounded to
  float32) to torch's own SequentialLR(LinearLR, CosineAnnealingLR). Everything in float32, like a real training run. The whole run is
  cross-checked against a literal float64 transcription of the spec's update rule.
- train_cross_entropy: F.cross_entropy(ignore_index=-100, mean) and its autograd gradient, in
  float64 from float32-drawn logits, cross-checked against the spec's
  (softmax - onehot) / n; plus the embedding backward (autograd of sum(embed[tokens] * dx)) with
  repeated token ids, cross-checked against a row-by-row accumulation.

Writes tests/fixtures/train_adamw.safetensors and tests/fixtures/train_cross_entropy.safetensors
(float32 / int32 tensors, the config in __metadata__).

    /usr/bin/python3 tools/gen_train_fixtures.py      # Debian's python3-torch (1.13) is enough
"""
import math
import os
import sys
import warnings

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_layer_fixtures import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
GENERATOR = "tools/gen_train_fixtures.py"

ADAMW_CASE = dict(lr=1e-2, lr_min=1e-3, warmup=3, total=10, beta1=0.9, beta2=0.95, eps=1e-8,
                  weight_decay=0.1, max_norm=1.0, steps=10, seed=21)
GRAD_SCALE = 0.1          # ||(g0, g1)|| ~ 0.1 * sqrt(46) ~ 0.7 < max_norm: not clipped ...
BIG_STEPS = {3: 20.0, 7: 20.0}   # ... except these steps (~14 > max_norm): clipped

CE_CASE = dict(N=9, V=13, D=6, seed=22)


# ----------------------------------------------------------------------------------------------
# Learning-rate schedule

def lr_closed_form(s, lr, lr_min, W, S):
    """The spec's formula, plain Python float64, s 1-based."""
    if s <= W:
        return lr * s / W
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * (s - W) / (S - W)))


def lr_torch_schedule(lr, lr_min, W, S):
    """torch's own warm-up + cosine: SequentialLR(LinearLR, CosineAnnealingLR).

    Scheduler epoch e = s - 1. LinearLR goes from lr / W (s = 1) to lr (s = W) over W - 1 epochs;
    from epoch W - 1 on, CosineAnnealingLR(T_max = S - W) at its epoch k = s - W gives
    lr_min + 0.5 (lr - lr_min)(1 + cos(pi k / (S - W))); its k = 0 (s = W) is lr, which is also the
    warm-up's last value, and its k = S - W (s = S) is lr_min.
    """
    dummy = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([dummy], lr=lr)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / W, end_factor=1.0, total_iters=W - 1)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=S - W, eta_min=lr_min)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # SequentialLR's internal step(0) deprecation notice
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[W - 1])
        out = []
        for _ in range(S):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return out


# ----------------------------------------------------------------------------------------------
# AdamW

def adamw_spec_float64(c, p_init, grads, lrs):
    """Literal transcription of the spec's clip + AdamW, float64, for cross-checking torch."""
    ps = [p.double().clone() for p in p_init]
    decay = [c["weight_decay"], 0.0]
    m = [torch.zeros_like(p) for p in ps]
    v = [torch.zeros_like(p) for p in ps]
    b1, b2, eps = c["beta1"], c["beta2"], c["eps"]
    hist = []
    for t in range(1, c["steps"] + 1):
        g = [x.double() for x in grads[t]]
        n = math.sqrt(sum(float((x * x).sum()) for x in g))
        coef = min(1.0, c["max_norm"] / (n + 1e-6))
        g = [x * coef for x in g]
        lr_t = lrs[t]
        for i in range(len(ps)):
            ps[i] = ps[i] - lr_t * decay[i] * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            ps[i] = ps[i] - lr_t * (m[i] / (1 - b1 ** t)) / (torch.sqrt(v[i] / (1 - b2 ** t)) + eps)
        hist.append(([p.clone() for p in ps], n))
    return hist


def generate_adamw():
    c = ADAMW_CASE
    g = torch.Generator().manual_seed(c["seed"])
    p_init = [torch.randn(7, 5, generator=g, dtype=torch.float32),
              torch.randn(11, generator=g, dtype=torch.float32)]
    grads = {}
    for t in range(1, c["steps"] + 1):
        s = GRAD_SCALE * BIG_STEPS.get(t, 1.0)
        grads[t] = [torch.randn(7, 5, generator=g, dtype=torch.float32) * s,
                    torch.randn(11, generator=g, dtype=torch.float32) * s]

    # Schedule: torch's schedulers vs the spec's closed form (plain float64).
    torch_lrs = lr_torch_schedule(c["lr"], c["lr_min"], c["warmup"], c["total"])
    lrs = {}
    for t in range(1, c["steps"] + 1):
        ref = lr_closed_form(t, c["lr"], c["lr_min"], c["warmup"], c["total"])
        got = torch_lrs[t - 1]
        assert abs(got - ref) <= 1e-14 * ref, (t, got, ref)
        assert torch.tensor(got, dtype=torch.float32) == torch.tensor(ref, dtype=torch.float32), (t, got, ref)
        lrs[t] = ref   # the closed form is what is set (torch's chained form is off by <= 2 ulp)
    assert lrs[c["warmup"]] == c["lr"] and lrs[c["total"]] == c["lr_min"]

    # The real thing: float32 params, torch.optim.AdamW with two groups, clip_grad_norm_.
    params = [torch.nn.Parameter(p.clone()) for p in p_init]
    opt = torch.optim.AdamW(
        [dict(params=[params[0]], weight_decay=c["weight_decay"]),
         dict(params=[params[1]], weight_decay=0.0)],
        lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"], foreach=False)

    out = {"p0.init": p_init[0].numpy(), "p1.init": p_init[1].numpy()}
    ref_hist = adamw_spec_float64(c, p_init, grads, lrs)
    clipped = []
    for t in range(1, c["steps"] + 1):
        opt.zero_grad(set_to_none=True)
        for p, gr in zip(params, grads[t]):
            p.grad = gr.clone()
        gnorm = torch.nn.utils.clip_grad_norm_(params, c["max_norm"])
        for group in opt.param_groups:
            group["lr"] = lrs[t]
        opt.step()

        gn = float(gnorm)
        if gn > c["max_norm"]:
            clipped.append(t)
            assert gn > 1.5 * c["max_norm"], (t, gn)   # far from the threshold either way
        else:
            assert gn < 0.95 * c["max_norm"], (t, gn)
        ref_ps, ref_n = ref_hist[t - 1]
        assert abs(gn - ref_n) <= 1e-5 * ref_n, (t, gn, ref_n)
        for p, rp in zip(params, ref_ps):
            err = float((p.detach().double() - rp).abs().max())
            assert err <= 1e-5, (t, err)

        out[f"g0.step{t}"] = grads[t][0].numpy()
        out[f"g1.step{t}"] = grads[t][1].numpy()
        out[f"p0.step{t}"] = params[0].detach().clone().numpy()
        out[f"p1.step{t}"] = params[1].detach().clone().numpy()
        out[f"lr.step{t}"] = torch.tensor([lrs[t]], dtype=torch.float32).numpy()
        out[f"gnorm.step{t}"] = gnorm.detach().float().reshape(1).numpy()
    assert clipped == sorted(BIG_STEPS), clipped

    meta = {k: repr(v) if isinstance(v, float) else str(v) for k, v in c.items() if k != "seed"}
    meta["decay"] = "p0 only (p1 in a param group with weight_decay=0)"
    meta["generator"] = GENERATOR
    meta["torch"] = torch.__version__
    path = os.path.join(OUT, "train_adamw.safetensors")
    write_safetensors(path, out, meta)
    print(f"{path}: {os.path.getsize(path)} bytes, clipped at steps {clipped}, "
          f"lr {[f'{lrs[t]:.6g}' for t in range(1, c['steps'] + 1)]}")


# ----------------------------------------------------------------------------------------------
# Cross-entropy and embedding

def generate_cross_entropy():
    c = CE_CASE
    N, V, D = c["N"], c["V"], c["D"]
    g = torch.Generator().manual_seed(c["seed"])

    def rnd(*shape, scale=1.0):  # drawn in float32, then used exactly in float64
        return (torch.randn(*shape, generator=g, dtype=torch.float32) * scale).double()

    logits = rnd(N, V, scale=3.0)
    target = torch.randint(0, V, (N,), generator=g, dtype=torch.int64)
    target[0], target[N - 1] = 0, V - 1          # both ends of the vocabulary
    target[2] = target[6] = -100                 # two ignored rows
    n = int((target != -100).sum())
    assert n == N - 2

    lg = logits.clone().requires_grad_(True)
    loss = F.cross_entropy(lg, target, ignore_index=-100, reduction="mean")
    loss.backward()
    grad_logits = lg.grad

    # Spec transcription: mean of logsumexp - logit[target] over kept rows; (softmax - onehot)/n.
    keep = target != -100
    ref_loss = sum(float(torch.logsumexp(logits[r], 0) - logits[r, target[r]]) for r in range(N) if keep[r]) / n
    assert abs(float(loss) - ref_loss) <= 1e-12, (float(loss), ref_loss)
    ref_grad = torch.zeros(N, V, dtype=torch.float64)
    for r in range(N):
        if keep[r]:
            ref_grad[r] = torch.softmax(logits[r], 0)
            ref_grad[r, target[r]] -= 1.0
            ref_grad[r] /= n
    assert float((grad_logits - ref_grad).abs().max()) <= 1e-14
    assert float(grad_logits[~keep].abs().max()) == 0.0

    # Embedding: x[r] = embed[tokens[r]]; grad of sum(x * dx) wrt embed, via autograd.
    embed = rnd(V, D)
    tokens = torch.randint(0, V, (N,), generator=g, dtype=torch.int64)
    tokens[0], tokens[3] = 0, V - 1
    tokens[5] = tokens[8] = tokens[1]            # one id three times
    tokens[7] = tokens[4]                        # another one twice
    dx = rnd(N, D)
    em = embed.clone().requires_grad_(True)
    x = F.embedding(tokens, em)
    assert torch.equal(x.detach(), embed[tokens])
    (x * dx).sum().backward()
    grad_embed = em.grad
    ref_ge = torch.zeros(V, D, dtype=torch.float64)
    for r in range(N):                           # rows in order, as the spec says
        ref_ge[tokens[r]] += dx[r]
    assert float((grad_embed - ref_ge).abs().max()) <= 1e-15
    unused = V - len(set(tokens.tolist()))
    assert unused > 0 and len(set(tokens.tolist())) < N

    f32 = lambda v: v.detach().float().numpy()
    out = {
        "logits": f32(logits), "target": target.int().numpy(), "loss": f32(loss.reshape(1)),
        "grad.logits": f32(grad_logits),
        "embed": f32(embed), "tokens": tokens.int().numpy(), "dx": f32(dx), "grad.embed": f32(grad_embed),
    }
    meta = {k: str(v) for k, v in c.items() if k != "seed"}
    meta["ignore_index"] = "-100"
    meta["generator"] = GENERATOR
    meta["torch"] = torch.__version__
    path = os.path.join(OUT, "train_cross_entropy.safetensors")
    write_safetensors(path, out, meta)
    print(f"{path}: {os.path.getsize(path)} bytes, loss {float(loss):.6f} over {n} of {N} rows, "
          f"{unused} of {V} embedding rows unused")


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    generate_adamw()
    generate_cross_entropy()
