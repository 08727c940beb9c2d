#!/usr/bin/env python3
"""Reference fixtures for the C++ MoE routers (tooling only: CI never runs this).

An independent PyTorch implementation of docs/routers.md (every router kind, its gate matrix and
its aux / z / entropy losses) on top of the layer of docs/moe_layer_spec.md, computed in float64
from float32-drawn inputs, with every gradient from torch autograd, checked against central
finite differences before anything is written. Writes tests/fixtures/router_<case>.safetensors
(float32 / int32 tensors; the config as strings in __metadata__). The router's random draws
(noisy_topk's n, gshard's u, the jitter multipliers) are stored as inputs so the C++ side can
replay them. The balanced assignment of `base` is found by exhaustive enumeration (the independent
check of the C++ auction algorithm), so that case is kept small. `soft_moe` routes slots, not tokens:
its router returns the routed part of y itself (every token reaches every expert through the slots).
`shared_gate` (Qwen-MoE, any router): shared expert s's output is scaled per token by
sigmoid(x_t . shared.gate[s]); the gate sees x, not the jittered router input.

    /usr/bin/python3 tools/gen_router_fixtures.py      # Debian's python3-torch (1.13) is enough
"""
import functools
import itertools
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_layer_fixtures import OUT, swiglu, write_safetensors  # noqa: E402

DEFAULTS = dict(T=32, D=16, F=24, K=2, S=0, Fs=0, renormalize=0, norm_p=1.0, capacity_factor=0.0,
                routed_scaling_factor=1.0, n_group=1, topk_group=1, seq_len=0, top_p=0.0, jitter=0.0,
                seed=0, aux_coef=0.01, z_coef=0.001, entropy_coef=0.0, skew=0.0, avoid=False, rng=0)
META_KEYS = ["router", "T", "D", "F", "E", "K", "S", "Fs", "renormalize", "norm_p", "capacity_factor",
             "routed_scaling_factor", "n_group", "topk_group", "seq_len", "top_p", "jitter", "seed",
             "aux_coef", "z_coef", "entropy_coef"]
OPTIONAL_META_KEYS = ["sinkhorn_iters", "router_dim", "dselect_gamma",
                      "slots_per_expert", "shared_gate"]   # only by the cases that set them


def case(name, router, **kw):
    return dict(DEFAULTS, name=name, router=router, **kw)


CASES = [
    case("topk_group", "topk", F=20, E=8, K=3, n_group=4, topk_group=2, routed_scaling_factor=2.5,
         S=1, Fs=12, rng=11),
    case("topk_dbrx", "topk", F=20, E=8, K=2, renormalize=1, norm_p=2.0, rng=12),
    case("switch_jitter", "topk", F=20, E=8, K=1, capacity_factor=1.25, jitter=0.1, skew=0.5, rng=13),
    case("gshard", "gshard", E=4, K=2, capacity_factor=1.0, skew=0.6, rng=14),
    case("noisy_topk", "noisy_topk", F=20, E=8, K=2, aux_coef=0.1, rng=25),
    case("sigmoid_bias", "sigmoid_bias", F=20, E=8, K=2, n_group=4, topk_group=2, renormalize=1,
         routed_scaling_factor=2.5, seq_len=8, S=1, Fs=12, rng=16),
    case("expert_choice", "expert_choice", E=4, K=1, capacity_factor=2.0, S=1, Fs=12, avoid=True,
         rng=21),
    case("hash", "hash", E=4, K=2, seed=7, rng=18),
    case("dense", "dense", E=4, K=4, entropy_coef=0.02, rng=19),
    case("top_p", "top_p", F=20, E=8, K=8, top_p=0.6, entropy_coef=0.05, rng=20),
    case("sinkhorn", "sinkhorn", F=20, E=8, K=2, renormalize=1, sinkhorn_iters=8, skew=0.5,
         rng=29),
    case("base", "base", T=12, F=20, E=3, K=1, skew=0.5, rng=23),
    # temperature: the stored tau (the 0.07 init would make the logits O(10)).
    case("xmoe", "xmoe", F=20, E=8, K=2, router_dim=4, temperature=0.3, renormalize=1,
         entropy_coef=0.02, rng=31),
    # router_scale: the selector rows are drawn at router_scale / sqrt(D), so z ~ N(0, ~1.5^2):
    # a part inside the smooth step's open interval, the rest saturated.
    case("dselect", "dselect", F=20, E=8, K=2, dselect_gamma=1.0, router_scale=1.5,
         entropy_coef=0.01, rng=50),
    case("mod", "mod", F=20, E=1, K=1, S=1, Fs=12, capacity_factor=0.25, rng=33),
    # router.weight is Phi^T, (E * P, D): 8 slots, 2 per expert; no discrete decision anywhere.
    case("soft_moe", "soft_moe", F=20, E=4, K=1, S=1, Fs=12, slots_per_expert=2, rng=37),
    # Qwen1.5-MoE: softmax top-K without renormalisation (norm_topk_prob = false) and a shared
    # expert scaled per token by sigmoid(x . shared.gate) (HF Qwen2-MoE shared_expert_gate).
    case("topk_qwen", "topk", F=20, E=8, K=2, renormalize=0, S=1, Fs=12, shared_gate=1, rng=41),
]

MARGIN = 1e-4   # every discrete decision must be this far from flipping (f32 C++ side, FD check)
# dselect: S(-g/2 + d) ~ 3 d^2 / g^2, and an f32 evaluation of the cubic has an absolute error of
# ~1e-7, so a z within 1e-4 of +-g/2 could give an f32 gate of 0: keep the z further away.
DSELECT_EDGE_MARGIN = 1e-3
GRAD_NAMES = ["x", "router.weight", "router.noise_weight", "experts.w1", "experts.w3", "experts.w2",
              "shared.w1", "shared.w3", "shared.w2", "router.proj", "router.temperature",
              "shared.gate"]


# ---------------------------------------------------------------- helpers shared by the routers
def sort_desc(v):
    """Descending sort along the last dim, ties to the lower index (stable)."""
    return torch.sort(v, dim=-1, descending=True, stable=True)


def topk_idx(v, k):
    return sort_desc(v)[1][..., :k]


def n_changed(idx_a, idx_b):
    """Number of tokens whose selected expert sets differ (to prove a mechanism matters)."""
    return int((idx_a.sort(-1).values != idx_b.sort(-1).values).any(-1).sum())


def note_gap(info, v, k):
    """Record how close the top-k cut of v (last dim) is to a tie (-inf entries are excluded)."""
    if k >= v.shape[-1]:
        return
    s = sort_desc(v.detach())[0]
    g = s[..., k - 1] - s[..., k]
    g = g[torch.isfinite(g)]
    if g.numel():
        info["margin"] = min(info["margin"], float(g.min()))


def router_input(c, t):
    """x, or x * j with the stored jitter multipliers j (Switch): the router's input only."""
    return t["x"] * t["router.jitter"] if c["jitter"] > 0 else t["x"]


def router_logits(c, t):
    return router_input(c, t) @ t["router.weight"].T


def z_loss(logits):
    return torch.mean(torch.logsumexp(logits, dim=-1) ** 2)


def entropy(p):
    return torch.mean(-(p * torch.log(p)).sum(-1))


def zero():
    return torch.zeros((), dtype=torch.float64)


def group_allowed(c, score, group_score, info):
    """(T, E) mask of the experts in the topk_group best of n_group contiguous groups."""
    T, E = score.shape
    G = c["n_group"]
    gs = group_score(score.view(T, G, E // G))
    note_gap(info, gs, c["topk_group"])
    chosen = torch.zeros(T, G, dtype=torch.bool).scatter_(1, topk_idx(gs, c["topk_group"]), True)
    return chosen.repeat_interleave(E // G, dim=1)


def apply_capacity(c, idx, active, info):
    """GShard priority: walk (k, t); an active slot is kept iff its expert has < C kept already."""
    if c["capacity_factor"] <= 0:
        return active
    T, K = idx.shape
    cap = max(1, math.ceil(c["capacity_factor"] * T * K / c["E"]))
    kept, fill = active.clone(), [0] * c["E"]
    for k in range(K):
        for t in range(T):
            if not active[t, k]:
                continue          # empty slots (gshard's random drop, top-p's unused) take none
            e = int(idx[t, k])
            if fill[e] < cap:
                fill[e] += 1
            else:
                kept[t, k] = False
    info["capacity"] = cap
    info["dropped_by_capacity"] = int((active & ~kept).sum())
    return kept


def combine(idx, w, kept, E):
    """Gate matrix (T, E) from slots (T, K): kept weights added per expert (hash duplicates add)."""
    onehot = F.one_hot(idx, E).to(w.dtype) * kept.unsqueeze(-1).to(w.dtype)   # (T, K, E)
    return (onehot * w.unsqueeze(-1)).sum(1), onehot.sum(1) > 0


def switch_aux(E, counts, p):
    """E * sum_e f_e P_e, f_e = counts_e / T (no gradient), P_e = mean_t p[t, e]."""
    return E * torch.sum(counts.to(p.dtype) / p.shape[0] * p.mean(0))


# ---------------------------------------------------------------- the routers, one per kind
# Each returns gates (T, E) (differentiable), routed (T, E) bool, aux, z, entropy; a router that
# does not send tokens to experts (soft_moe) appends the routed part of y (T, D) it computed itself.
def route_topk(c, t, info):
    return topk_from_logits(c, router_logits(c, t), info)


def topk_from_logits(c, logits, info):
    """topk from the logits on (shared with xmoe): softmax, top-K, weights, capacity, losses."""
    E, K = c["E"], c["K"]
    p = torch.softmax(logits, dim=-1)
    score = p.detach()
    if c["n_group"] > 1:     # DeepSeek-V2: group score = max p in the group
        allowed = group_allowed(c, score, lambda g: g.max(-1).values, info)
        score, unlimited = score.masked_fill(~allowed, -math.inf), score
        info["tokens_changed_by_groups"] = n_changed(topk_idx(unlimited, K), topk_idx(score, K))
    note_gap(info, score, K)
    idx = topk_idx(score, K)
    pk = p.gather(1, idx)
    if c["renormalize"]:
        w = pk / (pk ** c["norm_p"]).sum(-1, keepdim=True) ** (1.0 / c["norm_p"])
    else:
        w = pk
    w = w * c["routed_scaling_factor"]
    kept = apply_capacity(c, idx, torch.ones_like(idx, dtype=torch.bool), info)
    aux = switch_aux(E, F.one_hot(idx, E).sum((0, 1)), p)        # counted before capacity
    gates, routed = combine(idx, w, kept, E)
    return gates, routed, aux, z_loss(logits), entropy(p)


def route_gshard(c, t, info):
    E, T = c["E"], c["T"]
    assert c["K"] == 2
    logits = router_logits(c, t)
    p = torch.softmax(logits, dim=-1)
    note_gap(info, p, 2)
    idx = topk_idx(p.detach(), 2)
    pk = p.gather(1, idx)
    w = pk / pk.sum(-1, keepdim=True)
    u = t["router.uniform"]
    second = u < 2 * w[:, 1].detach()
    info["margin"] = min(info["margin"], float((u - 2 * w[:, 1].detach()).abs().min()))
    info["second_dropped_by_u"] = int((~second).sum())
    info["second_kept_by_u"] = int(second.sum())
    active = torch.stack([torch.ones(T, dtype=torch.bool), second], dim=1)
    kept = apply_capacity(c, idx, active, info)
    aux = switch_aux(E, F.one_hot(idx[:, 0], E).sum(0), p)      # f1: first choices only
    gates, routed = combine(idx, w, kept, E)
    return gates, routed, aux, z_loss(logits), entropy(p)


def cv_squared(v):
    return v.var(unbiased=True) / (v.mean() ** 2 + 1e-10)


def route_noisy_topk(c, t, info):
    E, K = c["E"], c["K"]
    assert K < E
    xr = router_input(c, t)
    clean = xr @ t["router.weight"].T
    sd = F.softplus(xr @ t["router.noise_weight"].T) + 1e-2
    H = clean + t["router.noise"] * sd
    note_gap(info, H, K)
    note_gap(info, H, K + 1)          # the (K+1)-th largest is a threshold of load
    Hs, order = sort_desc(H)          # values keep their gradient
    idx = order[:, :K]
    info["tokens_changed_by_noise"] = n_changed(topk_idx(clean.detach(), K), idx)
    w = torch.softmax(Hs[:, :K], dim=-1)
    pre_gates, _ = combine(idx, w, torch.ones_like(idx, dtype=torch.bool), E)
    importance = pre_gates.sum(0)
    kth, k1th = Hs[:, K - 1:K], Hs[:, K:K + 1]
    thr = torch.where(H > k1th, k1th, kth)
    load = (0.5 * (1 + torch.erf((clean - thr) / sd / math.sqrt(2)))).sum(0)
    aux = cv_squared(importance) + cv_squared(load)
    kept = apply_capacity(c, idx, torch.ones_like(idx, dtype=torch.bool), info)
    gates, routed = combine(idx, w, kept, E)
    return gates, routed, aux, z_loss(clean), zero()


def route_sigmoid_bias(c, t, info):
    E, K, T = c["E"], c["K"], c["T"]
    logits = router_logits(c, t)
    s = torch.sigmoid(logits)
    score = s.detach() + t["router.bias"]           # the bias selects, never weighs
    info["tokens_changed_by_bias"] = n_changed(topk_idx(score, K), topk_idx(s.detach(), K))
    if c["n_group"] > 1:     # DeepSeek-V3: group score = sum of its two largest s + b
        def gscore(g):
            return g.max(-1).values if g.shape[-1] == 1 else sort_desc(g)[0][..., :2].sum(-1)
        allowed = group_allowed(c, score, gscore, info)
        score, unlimited = score.masked_fill(~allowed, -math.inf), score
        info["tokens_changed_by_groups"] = n_changed(topk_idx(unlimited, K), topk_idx(score, K))
    note_gap(info, score, K)
    idx = topk_idx(score, K)
    sk = s.gather(1, idx)
    w = sk / sk.sum(-1, keepdim=True) if c["renormalize"] else sk
    w = w * c["routed_scaling_factor"]
    kept = apply_capacity(c, idx, torch.ones_like(idx, dtype=torch.bool), info)
    # Sequence-wise balance: f_e = E / (K L) count_e, P_e = mean_t s[t,e] / sum_j s[t,j].
    L = c["seq_len"] or T
    assert T % L == 0
    counts = F.one_hot(idx, E).sum(1).to(s.dtype).view(T // L, L, E).sum(1)   # before capacity
    f = E / (K * L) * counts
    P = (s / s.sum(-1, keepdim=True)).view(T // L, L, E).mean(1)
    aux = (f * P).sum(-1).mean()
    gates, routed = combine(idx, w, kept, E)
    return gates, routed, aux, z_loss(logits), zero()


def route_expert_choice(c, t, info):
    E, T = c["E"], c["T"]
    logits = router_logits(c, t)
    p = torch.softmax(logits, dim=-1)
    cf = c["capacity_factor"] or 2.0
    C = min(T, max(1, math.ceil(cf * T / E)))
    note_gap(info, p.T, C)
    tok = topk_idx(p.detach().T, C)                                   # (E, C), ties to lower t
    routed = torch.zeros(E, T, dtype=torch.bool).scatter_(1, tok, True).T
    gates = p * routed.to(p.dtype)
    per_token = routed.sum(1)
    info["capacity"] = C
    info["tokens_by_no_expert"] = int((per_token == 0).sum())
    info["tokens_by_2plus_experts"] = int((per_token >= 2).sum())
    return gates, routed, zero(), z_loss(logits), entropy(p)


GOLDEN, MASK64 = 0x9E3779B97F4A7C15, (1 << 64) - 1


def splitmix64(z):
    z = (z + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def route_hash(c, t, info):
    E, K, T = c["E"], c["K"], c["T"]
    ids = [int(v) for v in t["token_ids"]]
    idx = torch.tensor([[splitmix64((ids[i] + k * GOLDEN + c["seed"]) & MASK64) % E for k in range(K)]
                        for i in range(T)], dtype=torch.long)
    info["tokens_with_duplicate_experts"] = int(sum(len(set(r)) < K for r in idx.tolist()))
    w = torch.full((T, K), 1.0 / K, dtype=torch.float64)
    kept = apply_capacity(c, idx, torch.ones_like(idx, dtype=torch.bool), info)
    gates, routed = combine(idx, w, kept, E)
    return gates, routed, zero(), zero(), zero()


def route_dense(c, t, info):
    E = c["E"]
    logits = router_logits(c, t)
    p = torch.softmax(logits, dim=-1)
    aux = switch_aux(E, torch.full((E,), c["T"]), p)                  # f_e = 1 for every e
    return p, torch.ones_like(p, dtype=torch.bool), aux, z_loss(logits), entropy(p)


def route_top_p(c, t, info):
    E, K = c["E"], c["K"]
    logits = router_logits(c, t)
    p = torch.softmax(logits, dim=-1)
    ps, order = sort_desc(p)
    cs = ps.detach().cumsum(-1)
    if K > 1:   # cs[:, j] > top_p decides whether the prefix stops at j + 1 < K
        info["margin"] = min(info["margin"], float((cs[:, :K - 1] - c["top_p"]).abs().min()))
    m = ((cs <= c["top_p"]).sum(-1) + 1).clamp(max=min(K, E))      # first cumsum strictly above
    active = torch.arange(K).unsqueeze(0) < m.unsqueeze(1)
    idx, w = order[:, :K], ps[:, :K]                                  # weights p, not renormalised
    info["experts_per_token_histogram"] = {int(v): int((m == v).sum()) for v in m.unique()}
    kept = apply_capacity(c, idx, active, info)
    aux = switch_aux(E, (F.one_hot(idx, E) * active.unsqueeze(-1)).sum((0, 1)), p)
    gates, routed = combine(idx, w, kept, E)
    return gates, routed, aux, z_loss(logits), entropy(p)


def sinkhorn(logits, iters):
    """Pi from exp(logits - row max): `iters` times rows to sum 1, then columns to sum T / E."""
    T, E = logits.shape
    pi = torch.exp(logits - logits.max(-1, keepdim=True).values)
    for _ in range(iters):
        pi = pi / pi.sum(-1, keepdim=True)
        pi = pi / pi.sum(0, keepdim=True) * (T / E)
    return pi


def max_load(idx, E):
    return int(F.one_hot(idx, E).sum((0, 1)).max())


def route_sinkhorn(c, t, info):
    E, K = c["E"], c["K"]
    logits = router_logits(c, t)
    p = torch.softmax(logits, dim=-1)
    pi = sinkhorn(logits.detach(), c.get("sinkhorn_iters", 8))     # selects only: no gradient
    note_gap(info, pi, K)
    idx, plain = topk_idx(pi, K), topk_idx(p.detach(), K)
    info["tokens_changed_by_sinkhorn"] = n_changed(plain, idx)
    info["max_load_topk_p"], info["max_load_sinkhorn"] = max_load(plain, E), max_load(idx, E)
    pk = p.gather(1, idx)
    w = pk / pk.sum(-1, keepdim=True) if c["renormalize"] else pk
    kept = apply_capacity(c, idx, torch.ones_like(idx, dtype=torch.bool), info)
    gates, routed = combine(idx, w, kept, E)
    return gates, routed, zero(), z_loss(logits), entropy(p)


@functools.lru_cache(maxsize=None)
def balanced_assignments(T, E):
    """Every assignment of T tokens to E experts, exactly T / E each, as an (N, T) expert index."""
    C, out = T // E, []

    def fill(assign, free, e):
        if e == E:
            out.append(list(assign))
            return
        for chosen in itertools.combinations(free, C):
            for i in chosen:
                assign[i] = e
            fill(assign, [i for i in free if i not in chosen], e + 1)

    fill([0] * T, list(range(T)), 0)
    assert len(out) == math.factorial(T) // math.factorial(C) ** E
    return torch.tensor(out, dtype=torch.long)


def route_base(c, t, info):
    E, T = c["E"], c["T"]
    assert c["K"] == 1 and T % E == 0     # C = T / E: every expert gets exactly C tokens
    logits = router_logits(c, t)
    cand = balanced_assignments(T, E)                                   # (N, T)
    totals = logits.detach().gather(1, cand.T).sum(0)                   # sum_t logits[t, e(t)]
    best = torch.topk(totals, 2)
    info["optimum_margin"] = float(best.values[0] - best.values[1])
    info["margin"] = min(info["margin"], info["optimum_margin"])
    idx = cand[best.indices[0]].unsqueeze(1)                            # (T, 1), held fixed
    plain = logits.detach().argmax(-1, keepdim=True)
    info["tokens_changed_by_balance"] = n_changed(plain, idx)
    info["max_load_argmax"] = max_load(plain, E)
    w = torch.sigmoid(logits.gather(1, idx))
    gates, routed = combine(idx, w, torch.ones_like(idx, dtype=torch.bool), E)
    return gates, routed, zero(), z_loss(logits), zero()


def route_xmoe(c, t, info):
    """X-MoE: cosine of the projected token and the expert embedding, over tau, then topk."""
    assert c["n_group"] == 1
    h = router_input(c, t) @ t["router.proj"].T                                   # (T, R)
    hn = h / h.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    w = t["router.weight"]                                                          # (E, R)
    en = w / w.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    logits = (hn @ en.T) / t["router.temperature"]
    info["logit_absmax"] = round(float(logits.detach().abs().max()), 4)
    return topk_from_logits(c, logits, info)


def smooth_step(u, g):
    cubic = -2 * u ** 3 / g ** 3 + 3 * u / (2 * g) + 0.5
    return torch.where(u <= -g / 2, torch.zeros_like(u), torch.where(u >= g / 2, torch.ones_like(u), cubic))


def route_dselect(c, t, info):
    """DSelect-k: K selectors, each a product of m = log2 E smooth steps, mixed by softmax(alpha)."""
    E, K, T = c["E"], c["K"], c["T"]
    m = E.bit_length() - 1
    assert E == 1 << m and m >= 1
    g = c.get("dselect_gamma", 1.0)
    a = router_input(c, t) @ t["router.weight"].T                                  # (T, K (m + 1))
    assert a.shape[1] == K * (m + 1)
    z = a[:, :K * m].reshape(T, K, m)                                               # row i * m + j
    alpha = a[:, K * m:]                                                            # row K * m + i
    # A z at +-g/2 is a kink (and decides which gates are exactly 0): keep every z away from it.
    info["margin"] = min(info["margin"], float((z.detach().abs() - g / 2).abs().min()))
    info["z_inside_fraction"] = round(float((z.detach().abs() < g / 2).double().mean()), 3)
    s = smooth_step(z, g)                                                           # (T, K, m)
    r = torch.ones(T, K, E, dtype=z.dtype)
    for j in range(m):
        bit = torch.tensor([(e >> j) & 1 for e in range(E)], dtype=torch.bool)      # bit j of e
        sj = s[:, :, j:j + 1]
        r = r * torch.where(bit, sj, 1 - sj)                                        # (T, K, E)
    gate = (torch.softmax(alpha, dim=-1).unsqueeze(-1) * r).sum(1)                 # (T, E)
    routed = gate.detach() > 0
    gates = torch.where(routed, gate, torch.zeros_like(gate))
    per_token = routed.sum(1)
    info["experts_per_token_histogram"] = {int(v): int((per_token == v).sum()) for v in per_token.unique()}
    rs = torch.where(r > 0, r, torch.ones_like(r))                                  # 0 log 0 = 0
    ent = torch.mean((-(r * torch.log(rs)).sum(-1)).sum(-1))
    return gates, routed, zero(), zero(), ent


def route_mod(c, t, info):
    """Mixture-of-Depths: the C tokens with the largest scalar logit go through the block."""
    E, K, T = c["E"], c["K"], c["T"]
    assert E == 1 and K == 1
    cf = c["capacity_factor"] or 0.125
    assert 0 < cf <= 1
    C = min(T, max(1, math.ceil(cf * T)))
    r = router_logits(c, t)[:, 0]                                                   # (T,)
    note_gap(info, r.unsqueeze(0), C)
    tok = topk_idx(r.detach(), C)                                                   # ties to lower t
    routed = torch.zeros(T, 1, dtype=torch.bool)
    routed[tok, 0] = True
    gates = torch.where(routed, r.unsqueeze(1), torch.zeros(T, 1, dtype=r.dtype))  # weight r_t
    info["capacity"] = C
    info["negative_weights_kept"] = int((r.detach()[tok] < 0).sum())
    info["negative_logits"] = int((r.detach() < 0).sum())
    return gates, routed, zero(), torch.mean(r ** 2), zero()


def route_soft_moe(c, t, info):
    """Soft MoE: every slot takes a convex mix of all tokens, every token a convex mix of all slots."""
    E, K, T = c["E"], c["K"], c["T"]
    P = c.get("slots_per_expert", 1)
    assert K == 1 and P >= 1
    logits = router_logits(c, t)                                                    # L (T, E P)
    assert logits.shape == (T, E * P)
    dispatch = torch.softmax(logits, dim=0)           # over the tokens: each column sums to 1
    comb = torch.softmax(logits, dim=1)               # over the slots: each row sums to 1
    slots_in = dispatch.T @ t["x"]                    # X~ (E P, D): the experts see x, not x_r
    slots_out = torch.stack([swiglu(slots_in[s], t["experts.w1"][s // P], t["experts.w3"][s // P],
                                    t["experts.w2"][s // P]) for s in range(E * P)])  # Y~ (E P, D)
    y_routed = comb @ slots_out
    gates = comb.view(T, E, P).sum(-1)                # combine mass per expert: its P slots
    info["dispatch_max"] = round(float(dispatch.detach().max()), 4)
    info["gates_min"] = float(gates.detach().min())
    info["gates_max"] = round(float(gates.detach().max()), 4)
    info["max_dispatch_sum_err"] = float((dispatch.detach().sum(0) - 1).abs().max())
    info["max_gates_rowsum_err"] = float((gates.detach().sum(1) - 1).abs().max())
    routed = torch.ones(T, E, dtype=torch.bool)       # no token is dropped, no slot is empty
    return gates, routed, zero(), z_loss(logits), zero(), y_routed


ROUTERS = dict(topk=route_topk, gshard=route_gshard, noisy_topk=route_noisy_topk,
               sigmoid_bias=route_sigmoid_bias, expert_choice=route_expert_choice, hash=route_hash,
               dense=route_dense, top_p=route_top_p, sinkhorn=route_sinkhorn, base=route_base,
               xmoe=route_xmoe, dselect=route_dselect, mod=route_mod, soft_moe=route_soft_moe)


# ---------------------------------------------------------------- layer, inputs, checks, output
def forward(c, t):
    info = {"margin": math.inf}
    res = ROUTERS[c["router"]](c, t, info)
    gates, routed, aux, z, ent = res[:5]
    x = t["x"]
    if len(res) == 6:         # soft_moe: the router mixed the tokens into slots and back itself
        y = res[5]
    else:
        y = torch.zeros_like(x)
        for e in range(c["E"]):
            ts = torch.where(routed[:, e])[0]
            if ts.numel():
                out = swiglu(x[ts], t["experts.w1"][e], t["experts.w3"][e], t["experts.w2"][e])
                y = y.index_add(0, ts, out * gates[ts, e, None])
    for s in range(c["S"]):
        ys = swiglu(x, t["shared.w1"][s], t["shared.w3"][s], t["shared.w2"][s])
        if c.get("shared_gate"):  # Qwen-MoE: sigmoid(x_t . gate_s) per token (x, not x_r)
            sg = torch.sigmoid(x @ t["shared.gate"][s])                              # (T,)
            info["shared_gate_min"] = round(min(info.get("shared_gate_min", 1.0), float(sg.detach().min())), 4)
            info["shared_gate_max"] = round(max(info.get("shared_gate_max", 0.0), float(sg.detach().max())), 4)
            ys = ys * sg.unsqueeze(1)
        y = y + ys
    loss = (y * t["dy"]).sum() + c["aux_coef"] * aux + c["z_coef"] * z + c["entropy_coef"] * ent
    return dict(y=y, gates=gates, routed=routed, aux=aux, z=z, ent=ent, loss=loss, info=info)


def make_inputs(c):
    g = torch.Generator().manual_seed(c["rng"])
    T, D, Fh, E, S, Fs = c["T"], c["D"], c["F"], c["E"], c["S"], c["Fs"]

    def rnd(*shape, scale=1.0):  # drawn in float32, then used exactly in float64
        return (torch.randn(*shape, generator=g, dtype=torch.float32) * scale).double()

    kind = c["router"]
    if kind == "xmoe":        # the expert embeddings (E, R); only their direction matters
        router_weight = rnd(E, c["router_dim"], scale=1 / math.sqrt(c["router_dim"]))
    elif kind == "dselect":   # K * (m + 1) rows: the K * m selector rows z, then the K rows alpha
        m = E.bit_length() - 1
        router_weight = rnd(c["K"] * (m + 1), D, scale=c["router_scale"] / math.sqrt(D))
    else:
        router_weight = None
    rows = E * c.get("slots_per_expert", 1) if kind == "soft_moe" else E    # soft_moe: Phi^T (E P, D)
    t = {
        "x": rnd(T, D),
        "router.weight": rnd(rows, D, scale=1 / math.sqrt(D)) if router_weight is None else router_weight,
        "experts.w1": rnd(E, Fh, D, scale=1 / math.sqrt(D)),
        "experts.w3": rnd(E, Fh, D, scale=1 / math.sqrt(D)),
        "experts.w2": rnd(E, D, Fh, scale=1 / math.sqrt(Fh)),
        "shared.w1": rnd(S, Fs, D, scale=1 / math.sqrt(D)),
        "shared.w3": rnd(S, Fs, D, scale=1 / math.sqrt(D)),
        "shared.w2": rnd(S, D, Fs, scale=1 / math.sqrt(max(Fs, 1))),
        "dy": rnd(T, D),
    }
    if kind == "noisy_topk":
        t["router.noise_weight"] = rnd(E, D, scale=1 / math.sqrt(D))
        t["router.noise"] = rnd(T, E)
    if kind == "sigmoid_bias":
        t["router.bias"] = rnd(E, scale=0.1)
    if kind == "gshard":
        t["router.uniform"] = torch.rand(T, generator=g, dtype=torch.float32).double()
    if c["jitter"] > 0:
        eps = c["jitter"]
        u = torch.rand(T, D, generator=g, dtype=torch.float32)
        t["router.jitter"] = ((1 - eps) + 2 * eps * u).double()        # f32 arithmetic, f32 values
    if kind == "xmoe":
        t["router.proj"] = rnd(c["router_dim"], D, scale=1 / math.sqrt(D))
        t["router.temperature"] = torch.tensor([c["temperature"]], dtype=torch.float32).double()
    if kind == "hash":
        t["token_ids"] = torch.randint(0, 1000, (T,), generator=g, dtype=torch.int32)
    if c["skew"]:
        # Push every token towards experts 0 and 1 so capacity drops assignments and the balancing
        # routers (sinkhorn, base) choose differently from plain top-k / argmax.
        direction = rnd(D)
        t["x"] = (t["x"] + 0.8 * direction).float().double()
        bias = torch.zeros(E, D, dtype=torch.float64)
        bias[0] = c["skew"] * direction / direction.norm()
        bias[1] = 0.5 * c["skew"] * direction / direction.norm()
        t["router.weight"] = (t["router.weight"] + bias).float().double()
    if c["avoid"]:
        # Expert choice: shrink each token's logits to 5% (x moves in W's row space via pinv(W)),
        # then drop one random logit by 0.5..4. A token's other three p are then nearly equal,
        # and one that avoids little is below the C-th best of all its columns: nobody picks it.
        pinv = torch.linalg.pinv(t["router.weight"])                        # (D, E)
        avoided = torch.randint(0, E, (T,), generator=g)
        amount = 0.5 + 3.5 * torch.rand(T, generator=g, dtype=torch.float32).double()
        x = t["x"] - 0.95 * (t["x"] @ t["router.weight"].T) @ pinv.T - amount[:, None] * pinv.T[avoided]
        t["x"] = x.float().double()
    if c.get("shared_gate"):  # drawn last, so that nothing the other cases draw changes
        t["shared.gate"] = rnd(S, D, scale=1 / math.sqrt(D))
    return t


def finite_difference_selfcheck(c, t, grads, routed):
    """Guards the reference itself: a few autograd entries against central differences."""
    names = ["x", "router.weight", "experts.w1"] + (["router.noise_weight"] if c["router"] == "noisy_topk" else [])
    names += ["router.proj", "router.temperature"] if c["router"] == "xmoe" else []
    names += ["experts.w2", "shared.w1"] if c["router"] == "soft_moe" else []   # its own expert path
    names += ["shared.gate", "shared.w1"] if c.get("shared_gate") else []        # the gated shared path
    for name in names:
        n = t[name].numel()
        for flat in (0, n // 2, n - 1):
            def loss_at(delta):
                tt = dict(t)
                tt[name] = t[name].clone()
                tt[name].view(-1)[flat] += delta
                r = forward(c, tt)
                assert torch.equal(r["routed"], routed), (c["name"], name, flat, "selection changed")
                return float(r["loss"])
            h = 1e-6
            fd = (loss_at(h) - loss_at(-h)) / (2 * h)
            an = float(grads[name].reshape(-1)[flat])
            assert abs(fd - an) <= 1e-6 + 1e-5 * abs(fd), (c["name"], name, flat, fd, an)


def check_properties(c, info):
    name = c["name"]
    assert info["margin"] >= MARGIN, f"{name}: a decision is {info['margin']:.2e} from a tie; change rng"
    if c["capacity_factor"] > 0 and c["router"] not in ("expert_choice", "mod"):
        assert info["dropped_by_capacity"] >= 3, f"{name}: only {info['dropped_by_capacity']} dropped"
    if c["router"] == "gshard":
        assert info["second_dropped_by_u"] >= 3 and info["second_kept_by_u"] >= 3, info
    if c["n_group"] > 1:
        assert info["tokens_changed_by_groups"] >= 1, info
    if c["router"] == "expert_choice":
        assert info["tokens_by_no_expert"] >= 1 and info["tokens_by_2plus_experts"] >= 1, info
    if c["router"] == "top_p":
        assert len(info["experts_per_token_histogram"]) >= 2, info
    if c["router"] == "sinkhorn":
        assert info["tokens_changed_by_sinkhorn"] >= 5, info
    if c["router"] == "base":
        assert info["optimum_margin"] >= 1e-3 and info["tokens_changed_by_balance"] >= 3, info
    if c["router"] == "xmoe":
        assert 1.0 <= info["logit_absmax"] <= 1 / c["temperature"] + 1e-6, info
    if c["router"] == "dselect":   # tokens use different numbers of experts, one of them exactly 1
        hist = info["experts_per_token_histogram"]
        assert hist.get(1, 0) >= 1 and sum(v for k, v in hist.items() if k >= 3) >= 1, info
        assert 0.2 <= info["z_inside_fraction"] <= 0.8, info
        assert info["margin"] >= DSELECT_EDGE_MARGIN, info
    if c["router"] == "mod":
        assert 1 <= info["capacity"] < c["T"], info      # some tokens go around the block
    if c.get("shared_gate"):        # the gate varies per token and is far from saturated
        assert info["shared_gate_min"] < 0.3 and info["shared_gate_max"] > 0.7, info
        assert 0.01 < info["shared_gate_min"] and info["shared_gate_max"] < 0.99, info
    if c["router"] == "soft_moe":   # convex dispatch / combine, every gate positive, a real mix
        assert info["max_dispatch_sum_err"] < 1e-12 and info["max_gates_rowsum_err"] < 1e-12, info
        assert info["gates_min"] > 0 and info["dispatch_max"] > 2 / c["T"], info


def meta_value(v):
    return repr(float(v)) if isinstance(v, float) else str(v)


def generate(c):
    t = make_inputs(c)
    params = {k: (v.clone().requires_grad_(True) if k in GRAD_NAMES else v) for k, v in t.items()}
    r = forward(c, params)
    r["loss"].backward()
    grads = {k: (params[k].grad if params[k].grad is not None else torch.zeros_like(t[k]))
             for k in GRAD_NAMES if k in t}
    check_properties(c, r["info"])
    finite_difference_selfcheck(c, t, grads, r["routed"])

    f32 = lambda v: v.detach().float().numpy()  # noqa: E731
    keep = lambda k: c["S"] > 0 or not k.startswith("shared.")  # noqa: E731
    out = {}
    for k, v in t.items():
        if keep(k):
            out[k] = v.numpy() if k == "token_ids" else f32(v)
    out.update({"y": f32(r["y"]), "gates": f32(r["gates"]), "aux_loss": f32(r["aux"].reshape(1)),
                "z_loss": f32(r["z"].reshape(1)), "entropy_loss": f32(r["ent"].reshape(1))})
    for k, g in grads.items():
        if keep(k):
            out["grad." + k] = f32(g)
    meta = {k: meta_value(c[k]) for k in META_KEYS}
    meta.update({k: meta_value(c[k]) for k in OPTIONAL_META_KEYS if k in c})
    meta["generator"] = "tools/gen_router_fixtures.py"
    meta["torch"] = torch.__version__
    path = os.path.join(OUT, f"router_{c['name']}.safetensors")
    write_safetensors(path, out, meta)
    info = dict(r["info"])
    info["margin"] = f"{info['margin']:.2e}"
    print(f"{os.path.relpath(path)}: {os.path.getsize(path)} bytes, "
          f"aux {float(r['aux']):.6g} z {float(r['z']):.6g} entropy {float(r['ent']):.6g}, {info}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for cs in CASES:
        generate(cs)
