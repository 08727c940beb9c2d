#!/usr/bin/env python3
"""Reference fixture for the C++ decoder-only MoE language model (tooling only: CI never runs this).

An independent PyTorch implementation of the section "The model" of docs/model_spec.md (Mixtral
layout), assembled from the existing references rather than rewritten: the MoE layer is
`layer(...)` of tools/gen_layer_fixtures.py (docs/moe_layer_spec.md, Hugging Face
MixtralSparseMoeBlock style; its expert weights come from that script's `make_inputs`), RMSNorm
and the RoPE / GQA causal self-attention are `rmsnorm(...)` and `attention(...)` of
tools/gen_model_fixtures.py. Embedding and cross-entropy are PyTorch's own F.embedding and
F.cross_entropy(ignore_index=-100). Computed in float64 from float32-drawn inputs, every gradient
from torch autograd. Before anything is written: the forward is recomputed with the
element-by-element attention transcription (`attention_literal`) and a hand-written
cross-entropy, a few gradient entries are checked against central differences, and the top-K
routing decision of every token in every layer is required to be at least MIN_GAP (in router
logits) from flipping, so that a float32 implementation routes identically.

    loss = ce + aux_coef * sum_l aux_l + z_coef * sum_l z_l

where aux_l / z_l are the layer's load-balance and z losses over all B * T rows of the batch
(the row with target -100 included: it only drops out of the cross-entropy).
Writes tests/fixtures/lm_tiny.safetensors (float32 / int32 tensors, the config in __metadata__).

Also the llm.c-style training check, tests/fixtures/lm_tiny_train.safetensors: the same model,
initial weights, tokens and targets, but in float32 (the float64 reference parameters, exactly
float32 values, converted; the same reference functions, which follow their inputs' dtype),
trained for TRAIN["steps"] steps on that one batch with PyTorch's own machinery: forward, loss
(as above), backward, torch.nn.utils.clip_grad_norm_(max_norm) over all parameters, then
torch.optim.AdamW (foreach=False) in two groups (weight decay on every tensor with ndim >= 2, none
on the 1-D RMSNorm weights), the learning rate of step s set to the spec's warm-up + cosine closed
form (`lr_closed_form` of tools/gen_train_fixtures.py, checked there against torch's
SequentialLR). Stores loss / ce / pre-clip gradient norm of every step's forward (before that
step's update) and the loss after the last update. Before writing: the loss must go down, every
forward's top-K routing must be at least TRAIN_MIN_GAP (router logits) from a tie, and a float64
shadow run of the same steps must route identically and stay close.

    /usr/bin/python3 tools/gen_lm_fixtures.py      # Debian's python3-torch (1.13) is enough
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_layer_fixtures import layer, make_inputs, write_safetensors  # noqa: E402
from gen_model_fixtures import attention, attention_literal, drawer, rmsnorm  # noqa: E402
from gen_train_fixtures import lr_closed_form  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
GENERATOR = "tools/gen_lm_fixtures.py"

CASE = dict(name="tiny", V=50, D=16, L=2, H=4, Hkv=2, hd=4, rope_theta=10000, rms_norm_eps="1e-05",
            E=4, K=2, F=24, renormalize=1, capacity_factor=0.0, tie_word_embeddings=0,
            aux_coef=0.01, z_coef=0.001, B=2, T=6)
IGNORED = (1, 2)       # (sequence, position) whose target is -100
MIN_GAP = 1e-2         # K-th minus (K+1)-th router logit, every token, every layer
FIRST_SEED = 1

TRAIN = dict(lr=1e-2, lr_min=1e-3, warmup=2, total=10, beta1=0.9, beta2=0.95, eps=1e-8,
             weight_decay=0.1, max_norm=1.0, steps=10)
TRAIN_MIN_GAP = 1e-4   # K-th minus (K+1)-th router logit, every token, layer and step, in float32


def attn_cfg(c):
    return {k: c[k] for k in ("B", "T", "D", "H", "Hkv", "hd", "rope_theta")}


def moe_cfg(c, seed):
    """The dict both make_inputs and layer() of gen_layer_fixtures read: T is all B * T rows."""
    return dict(T=c["B"] * c["T"], D=c["D"], F=c["F"], E=c["E"], K=c["K"], S=0, Fs=0,
                renormalize=c["renormalize"], capacity_factor=c["capacity_factor"], skew=0.0, seed=seed)


def make_model(c, seed):
    V, D, L, H, Hkv, hd = c["V"], c["D"], c["L"], c["H"], c["Hkv"], c["hd"]
    rnd = drawer(seed)

    def norm_weight():   # 1 + 0.1 randn, rounded to float32 so that the stored value is the one used
        return (1.0 + 0.1 * rnd(D)).float().double()

    p = {"model.embed_tokens.weight": rnd(V, D)}
    for l in range(L):
        pre = f"model.layers.{l}."
        p[pre + "input_layernorm.weight"] = norm_weight()
        p[pre + "self_attn.q_proj.weight"] = rnd(H * hd, D, scale=1 / math.sqrt(D))
        p[pre + "self_attn.k_proj.weight"] = rnd(Hkv * hd, D, scale=1 / math.sqrt(D))
        p[pre + "self_attn.v_proj.weight"] = rnd(Hkv * hd, D, scale=1 / math.sqrt(D))
        p[pre + "self_attn.o_proj.weight"] = rnd(D, H * hd, scale=1 / math.sqrt(H * hd))
        p[pre + "post_attention_layernorm.weight"] = norm_weight()
        # Router N(0, 1/sqrt(D)), w1 / w3 N(0, 1/sqrt(D)), w2 N(0, 1/sqrt(F)): the layer script's own draw.
        m = make_inputs(moe_cfg(c, 1000 * seed + l))
        p[pre + "block_sparse_moe.gate.weight"] = m["router.weight"]
        p[pre + "block_sparse_moe.experts.w1"] = m["experts.w1"]
        p[pre + "block_sparse_moe.experts.w3"] = m["experts.w3"]
        p[pre + "block_sparse_moe.experts.w2"] = m["experts.w2"]
    p["model.norm.weight"] = norm_weight()
    p["lm_head.weight"] = rnd(V, D, scale=1 / math.sqrt(D))
    assert not c["tie_word_embeddings"]

    g = torch.Generator().manual_seed(seed + 7)
    stream = torch.randint(0, V, (c["B"], c["T"] + 1), generator=g, dtype=torch.int64)
    tokens = stream[:, :-1].reshape(-1).clone()
    targets = stream[:, 1:].reshape(-1).clone()          # the next token of each sequence
    targets[IGNORED[0] * c["T"] + IGNORED[1]] = -100
    return p, tokens, targets


def forward(c, p, tokens, targets, attn=attention):
    """Returns loss, ce, aux (sum over layers), z (sum over layers), logits, per-layer router logits."""
    eps = float(c["rms_norm_eps"])
    ac = attn_cfg(c)
    mc = moe_cfg(c, 0)
    empty = torch.zeros(0, 1, c["D"], dtype=p["model.embed_tokens.weight"].dtype)   # S = 0: unused
    h = F.embedding(tokens, p["model.embed_tokens.weight"])
    aux_sum, z_sum, router_logits = 0.0, 0.0, []
    for l in range(c["L"]):
        pre = f"model.layers.{l}."
        a = rmsnorm(h, p[pre + "input_layernorm.weight"], eps)
        h = h + attn(ac, a, p[pre + "self_attn.q_proj.weight"], p[pre + "self_attn.k_proj.weight"],
                     p[pre + "self_attn.v_proj.weight"], p[pre + "self_attn.o_proj.weight"])
        m = rmsnorm(h, p[pre + "post_attention_layernorm.weight"], eps)
        moe = pre + "block_sparse_moe."
        y, aux, z, *_ = layer(mc, m, p[moe + "gate.weight"], p[moe + "experts.w1"], p[moe + "experts.w3"],
                              p[moe + "experts.w2"], empty, empty, empty)
        router_logits.append((m @ p[moe + "gate.weight"].T).detach())
        h = h + y
        aux_sum = aux_sum + aux
        z_sum = z_sum + z
    logits = rmsnorm(h, p["model.norm.weight"], eps) @ p["lm_head.weight"].T
    ce = F.cross_entropy(logits, targets, ignore_index=-100, reduction="mean")
    loss = ce + c["aux_coef"] * aux_sum + c["z_coef"] * z_sum
    return loss, ce, aux_sum, z_sum, logits, router_logits


def routing_gap(c, router_logits):
    K = c["K"]
    gaps = []
    for lg in router_logits:
        s = torch.sort(lg, dim=-1, descending=True).values
        gaps.append(float((s[:, K - 1] - s[:, K]).min()))
    return min(gaps)


def finite_difference_selfcheck(c, p, tokens, targets, grads):
    """Guards the reference itself: a few autograd entries against central differences."""
    chosen = {   # name -> the flat entries checked besides the largest |grad| entry
        "model.embed_tokens.weight": [int(tokens[0]) * c["D"] + 3],
        "model.layers.0.self_attn.q_proj.weight": [5],
        "model.layers.1.self_attn.k_proj.weight": [7],
        "model.layers.1.block_sparse_moe.experts.w1": [],
        "model.layers.0.block_sparse_moe.experts.w2": [],
        "model.layers.0.block_sparse_moe.gate.weight": [9],
        "model.layers.1.block_sparse_moe.gate.weight": [],
        "model.layers.1.post_attention_layernorm.weight": [],
        "model.norm.weight": [2],
        "lm_head.weight": [],
    }
    worst = 0.0
    for name, flats in chosen.items():
        g = grads[name].reshape(-1)
        for flat in flats + [int(g.abs().argmax())]:
            def loss_at(delta):
                pp = {k: v.clone() for k, v in p.items()}
                pp[name].view(-1)[flat] += delta
                return float(forward(c, pp, tokens, targets)[0])
            h = 1e-6
            fd = (loss_at(h) - loss_at(-h)) / (2 * h)
            an = float(g[flat])
            assert abs(fd - an) <= 1e-8 + 1e-6 * abs(fd), (name, flat, fd, an)
            assert flats or an != 0.0, (name, flat, "zero gradient at the largest entry")
            worst = max(worst, abs(fd - an))
    return worst


def generate(c):
    # Seed search: the first seed whose routing is robust and that repeats a token (embedding
    # backward accumulates into a row more than once).
    seed = FIRST_SEED
    while True:
        p, tokens, targets = make_model(c, seed)
        with torch.no_grad():
            rl = forward(c, p, tokens, targets)[5]
        if routing_gap(c, rl) >= MIN_GAP and len(set(tokens.tolist())) < tokens.numel():
            break
        seed += 1
        assert seed < FIRST_SEED + 1000

    params = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    loss, ce, aux, z, logits, rl = forward(c, params, tokens, targets)
    loss.backward()
    grads = {k: v.grad for k, v in params.items()}
    gap = routing_gap(c, rl)

    # Forward cross-checks: the literal attention transcription and a hand-written cross-entropy.
    with torch.no_grad():
        loss_lit, ce_lit, aux_lit, z_lit, logits_lit, _ = forward(c, p, tokens, targets, attention_literal)
    err = float((logits.detach() - logits_lit).abs().max())
    assert err < 1e-12 and abs(float(loss) - float(loss_lit)) < 1e-12, ("literal forward", err)
    keep = targets != -100
    n = int(keep.sum())
    assert n == tokens.numel() - 1
    lg = logits.detach()
    ce_hand = sum(float(torch.logsumexp(lg[r], 0) - lg[r, targets[r]]) for r in range(len(targets)) if keep[r]) / n
    assert abs(ce_hand - float(ce)) < 1e-12, (ce_hand, float(ce))
    assert abs(float(loss) - (float(ce) + c["aux_coef"] * float(aux) + c["z_coef"] * float(z))) < 1e-12

    fd_err = finite_difference_selfcheck(c, p, tokens, targets, grads)
    for k, g in grads.items():
        assert g is not None and torch.isfinite(g).all() and g.abs().max() > 0, k

    f32 = lambda v: v.detach().float().numpy()
    out = {"tokens": tokens.int().numpy(), "targets": targets.int().numpy()}
    out.update({k: f32(v) for k, v in p.items()})
    out.update({"logits": f32(logits), "loss": f32(loss.reshape(1)), "ce_loss": f32(ce.reshape(1)),
                "aux_loss": f32(aux.reshape(1)), "z_loss": f32(z.reshape(1))})
    out.update({"grad." + k: f32(g) for k, g in grads.items()})
    meta = {k: str(v) for k, v in c.items() if k != "name"}
    meta["S"] = "0"
    meta["ignore_index"] = "-100"
    meta["seed"] = str(seed)
    meta["generator"] = GENERATOR
    meta["torch"] = torch.__version__
    path = os.path.join(OUT, f"lm_{c['name']}.safetensors")
    write_safetensors(path, out, meta)
    print(f"{path}: {os.path.getsize(path)} bytes, seed {seed}, loss {float(loss):.10f} "
          f"(ce {float(ce):.10f}, aux {float(aux):.10f}, z {float(z):.10f}), "
          f"min routing gap {gap:.3e}, literal-forward max diff {err:.2e}, fd max diff {fd_err:.2e}")
    return seed, p, tokens, targets


def train_run(c, p0, tokens, targets, dtype):
    """TRAIN["steps"] AdamW steps on the one batch; per step (loss, ce, gnorm, routing gap, top-K
    choices) of the forward before the update, then the same for the forward after the last one."""
    t = TRAIN
    names = list(p0)
    params = {k: torch.nn.Parameter(v.detach().to(dtype).clone()) for k, v in p0.items()}
    plist = [params[k] for k in names]
    opt = torch.optim.AdamW(
        [dict(params=[params[k] for k in names if params[k].ndim >= 2], weight_decay=t["weight_decay"]),
         dict(params=[params[k] for k in names if params[k].ndim < 2], weight_decay=0.0)],
        lr=t["lr"], betas=(t["beta1"], t["beta2"]), eps=t["eps"], foreach=False)

    def choices(rl):
        return [torch.topk(lg, c["K"], dim=-1).indices.sort(-1).values for lg in rl]

    hist = []
    for s in range(1, t["steps"] + 1):
        opt.zero_grad(set_to_none=True)
        loss, ce, aux, z, _, rl = forward(c, params, tokens, targets)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(plist, t["max_norm"])
        for group in opt.param_groups:
            group["lr"] = lr_closed_form(s, t["lr"], t["lr_min"], t["warmup"], t["total"])
        opt.step()
        hist.append((loss.detach(), ce.detach(), gnorm.detach(), routing_gap(c, rl), choices(rl)))
    with torch.no_grad():
        loss, ce, aux, z, _, rl = forward(c, params, tokens, targets)
    hist.append((loss, ce, None, routing_gap(c, rl), choices(rl)))
    return hist


def generate_train(c, seed, p, tokens, targets):
    t = TRAIN
    n = t["steps"]
    run = train_run(c, p, tokens, targets, torch.float32)
    shadow = train_run(c, p, tokens, targets, torch.float64)   # same steps in float64: a guard only

    losses = [float(h[0]) for h in run]
    assert all(h[0].dtype == torch.float32 for h in run)
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0], ("loss did not go down", losses)
    min_gap = min(h[3] for h in run)
    assert min_gap >= TRAIN_MIN_GAP, ("float32 routing too close to a tie", [h[3] for h in run])
    for s, (h32, h64) in enumerate(zip(run, shadow), 1):
        assert all(torch.equal(a, b) for a, b in zip(h32[4], h64[4])), ("routing differs from float64", s)
    loss_diff = max(abs(a - float(b[0])) for a, b in zip(losses, shadow))
    gn_rel = max(abs(float(a[2]) - float(b[2])) / float(b[2]) for a, b in zip(run[:n], shadow[:n]))
    assert loss_diff < 1e-4 and gn_rel < 1e-3, (loss_diff, gn_rel)

    one = lambda v: v.detach().float().reshape(1).numpy()
    out = {}
    for s in range(1, n + 1):
        loss, ce, gnorm, _, _ = run[s - 1]
        out[f"loss.step{s}"] = one(loss)
        out[f"ce.step{s}"] = one(ce)
        out[f"gnorm.step{s}"] = one(gnorm)
    out["loss.final"] = one(run[n][0])
    meta = {k: repr(v) if isinstance(v, float) else str(v) for k, v in t.items()}
    meta["decay"] = "every tensor with ndim >= 2 (the 1-D RMSNorm weights in a group with weight_decay=0)"
    meta["init"] = f"lm_{c['name']}.safetensors (weights, tokens, targets; seed {seed})"
    meta["generator"] = GENERATOR
    meta["torch"] = torch.__version__
    path = os.path.join(OUT, f"lm_{c['name']}_train.safetensors")
    write_safetensors(path, out, meta)
    clipped = [s for s in range(1, n + 1) if float(run[s - 1][2]) > t["max_norm"]]
    print(f"{path}: {os.path.getsize(path)} bytes, float32, loss "
          + " ".join(f"{x:.6f}" for x in losses[:n]) + f" -> final {losses[n]:.6f}; "
          f"clipped at steps {clipped}; min routing gap {min_gap:.3e} "
          f"(per forward {' '.join(f'{h[3]:.2e}' for h in run)}); "
          f"vs float64 shadow: loss max diff {loss_diff:.2e}, gnorm max rel diff {gn_rel:.2e}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    generate_train(CASE, *generate(CASE))
