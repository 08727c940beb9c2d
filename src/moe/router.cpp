// Router forward: names, validation, random draws, logits and scores, the selection of every
// kind, the RoutePlan and the losses (docs/routers.md).
#include "moe/router.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/router_internal.h"

namespace moe {
namespace {

constexpr RouterKind kAllKinds[] = {RouterKind::topk,          RouterKind::gshard,
                                    RouterKind::noisy_topk,    RouterKind::sigmoid_bias,
                                    RouterKind::expert_choice, RouterKind::hash,
                                    RouterKind::dense,         RouterKind::top_p,
                                    RouterKind::sinkhorn,      RouterKind::base,
                                    RouterKind::xmoe,          RouterKind::dselect,
                                    RouterKind::soft_moe,      RouterKind::mod};

uint64_t splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

bool softmax_kind(RouterKind k) {
    return k == RouterKind::topk || k == RouterKind::gshard || k == RouterKind::expert_choice ||
           k == RouterKind::dense || k == RouterKind::top_p || k == RouterKind::sinkhorn ||
           k == RouterKind::xmoe;
}

// The draws of one forward: given by the caller (checked), or from the seeded stream.
void draw_noise(RouterCache& rc, const MoeLayerConfig& c, int64_t T) {
    const RouterConfig& r = c.router;
    RouterNoise& n = rc.noise;
    const bool jitter = r.training && r.router_jitter_noise > 0;
    const bool normal = r.training && r.kind == RouterKind::noisy_topk;
    const bool uniform = r.training && r.kind == RouterKind::gshard;
    if (n.given) {
        auto need = [](const std::vector<float>& v, bool used, int64_t size, const char* what) {
            MOE_CHECK(!used || int64_t(v.size()) == size, "router",
                      std::string("given noise '") + what + "' has " + std::to_string(v.size()) +
                          " values, expected " + std::to_string(size));
        };
        need(n.jitter, jitter, T * c.d_model, "jitter");
        need(n.normal, normal, T * c.n_experts, "normal");
        need(n.uniform, uniform, T, "uniform");
        return;
    }
    if (!jitter && !normal && !uniform) return;
    Rng rng(r.seed ^ splitmix64(uint64_t(rc.step++)));
    if (jitter) {  // T * D draws: one stream per token, so threads do not change them
        const int64_t D = c.d_model;
        n.jitter.resize(size_t(T * D));
        const float eps = float(r.router_jitter_noise);
        const uint64_t base = rng.next_u64();
#pragma omp parallel for schedule(static)
        for (int64_t t = 0; t < T; ++t) {
            Rng row(base ^ splitmix64(uint64_t(t)));
            row.fill_uniform(n.jitter.data() + t * D, D, 1.0f - eps, 1.0f + eps);
        }
    }
    if (normal) {
        n.normal.resize(size_t(T * c.n_experts));
        rng.fill_normal(n.normal.data(), T * c.n_experts, 0.0f, 1.0f);
    }
    if (uniform) {
        n.uniform.resize(size_t(T));
        rng.fill_uniform(n.uniform.data(), T, 0.0f, 1.0f);
    }
}

// Which experts token t may choose under group-limited routing (nullptr when ungrouped).
// Group score: max of the scores (DeepSeek-V2) or the sum of the two largest (DeepSeek-V3).
const uint8_t* allowed_groups(const MoeLayerConfig& c, const float* score, uint8_t* allowed,
                              bool top2_sum) {
    const int64_t G = c.router.n_group, E = c.n_experts, size = E / G;
    if (G <= 1) return nullptr;
    float gscore[256];
    int32_t gidx[256];
    float gval[256];
    for (int64_t g = 0; g < G; ++g) {
        const float* s = score + g * size;
        if (top2_sum && size >= 2) {
            int32_t i2[2];
            float v2[2];
            topk_row(s, size, 2, nullptr, i2, v2);
            gscore[g] = v2[0] + v2[1];
        } else {
            gscore[g] = *std::max_element(s, s + size);
        }
    }
    topk_row(gscore, G, c.router.topk_group, nullptr, gidx, gval);
    std::fill_n(allowed, E, uint8_t(0));
    for (int64_t j = 0; j < c.router.topk_group; ++j)
        std::fill_n(allowed + gidx[j] * size, size, uint8_t(1));
    return allowed;
}

// weights = base / norm_p(base) (when renormalising) * scale, over the K values.
void finish_weights(float* w, int64_t K, bool renorm, double norm_p, double scale) {
    if (renorm) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += std::pow(double(w[k]), norm_p);
        double n = std::pow(s, 1.0 / norm_p);
        for (int64_t k = 0; k < K; ++k) w[k] = float(w[k] / n);
    }
    for (int64_t k = 0; k < K; ++k) w[k] = float(w[k] * scale);
}

// Token-choice selection of every kind but noisy_topk, one token at a time.
void select_token(const MoeLayerConfig& c, const RouterCache& rc, int64_t t, int32_t* idx,
                  float* w, uint8_t* skip, const int32_t* token_ids) {
    const RouterConfig& r = c.router;
    const int64_t E = c.n_experts, K = c.top_k;
    const float* p = rc.probs.data() + t * E;
    uint8_t allowed_buf[1024];
    switch (r.kind) {
    case RouterKind::topk:
    case RouterKind::xmoe:
    case RouterKind::dense: {
        const uint8_t* allowed = allowed_groups(c, p, allowed_buf, false);
        topk_row(p, E, K, allowed, idx, w);
        const bool dense = r.kind == RouterKind::dense;  // dense: the plain probabilities
        finish_weights(w, K, c.renormalize && !dense, r.norm_p, dense ? 1.0 : r.routed_scaling_factor);
        break;
    }
    case RouterKind::sigmoid_bias: {
        float choice[1024];
        for (int64_t e = 0; e < E; ++e) choice[e] = p[e] + rc.bias[size_t(e)];
        const uint8_t* allowed = allowed_groups(c, choice, allowed_buf, true);
        topk_row(choice, E, K, allowed, idx, w);
        for (int64_t k = 0; k < K; ++k) w[k] = p[idx[k]];  // the bias selects, never weighs
        finish_weights(w, K, c.renormalize, r.norm_p, r.routed_scaling_factor);
        break;
    }
    case RouterKind::sinkhorn: {  // the balanced matrix selects (training), p weighs
        topk_row(r.training ? rc.choice.data() + t * E : p, E, K, nullptr, idx, w);
        for (int64_t k = 0; k < K; ++k) w[k] = p[idx[k]];
        finish_weights(w, K, c.renormalize, r.norm_p, 1.0);
        break;
    }
    case RouterKind::gshard: {
        topk_row(p, E, 2, nullptr, idx, w);
        finish_weights(w, 2, true, 1.0, 1.0);
        if (r.training && !(rc.noise.uniform[size_t(t)] < 2.0f * w[1])) skip[1] = 1;
        break;
    }
    case RouterKind::hash:
        for (int64_t k = 0; k < K; ++k) {
            uint64_t h = splitmix64(uint64_t(int64_t(token_ids[t])) +
                                    uint64_t(k) * 0x9E3779B97F4A7C15ull + r.seed);
            idx[k] = int32_t(h % uint64_t(E));
            w[k] = 1.0f / float(K);
        }
        break;
    case RouterKind::top_p: {
        int32_t order[1024];
        std::iota(order, order + E, 0);
        std::stable_sort(order, order + E, [&](int32_t a, int32_t b) { return p[a] > p[b]; });
        double cum = 0;
        int64_t m = K;
        for (int64_t j = 0; j < K; ++j) {
            cum += p[order[j]];
            if (cum > r.top_p) {
                m = j + 1;
                break;
            }
        }
        for (int64_t k = 0; k < K; ++k) {
            idx[k] = k < m ? order[k] : -1;
            w[k] = k < m ? p[order[k]] : 0.0f;
            skip[k] = k < m ? 0 : 1;
        }
        break;
    }
    default:
        break;
    }
}

// Expert choice: expert e takes the C tokens with the largest score[:, e] (ties to the lower
// token), weight score[t, e]: p for expert_choice, the raw logit for mod (E = 1).
void select_expert_choice(const MoeLayerConfig& c, RoutePlan& plan, RouterCache& rc, int64_t T,
                          const float* p, double default_cf) {
    const int64_t E = c.n_experts;
    double cf = c.capacity_factor > 0 ? c.capacity_factor : default_cf;
    int64_t C = std::min(T, std::max<int64_t>(1, int64_t(std::ceil(cf * double(T) / double(E)))));
    std::fill(plan.topk_idx.begin(), plan.topk_idx.end(), -1);
    std::fill(plan.topk_weight.begin(), plan.topk_weight.end(), 0.0f);
    std::fill(rc.skip.begin(), rc.skip.end(), uint8_t(1));
#pragma omp parallel for schedule(static)
    for (int64_t e = 0; e < E; ++e) {
        std::vector<int32_t> tok(static_cast<size_t>(T));
        std::iota(tok.begin(), tok.end(), 0);
        std::partial_sort(tok.begin(), tok.begin() + C, tok.end(), [&](int32_t a, int32_t b) {
            float pa = p[a * E + e], pb = p[b * E + e];
            return pa > pb || (pa == pb && a < b);
        });
        for (int64_t j = 0; j < C; ++j) {
            int64_t s = int64_t(tok[size_t(j)]) * E + e;
            plan.topk_idx[size_t(s)] = int32_t(e);
            plan.topk_weight[size_t(s)] = p[s];
            rc.skip[size_t(s)] = 0;
        }
    }
}

}  // namespace

const char* router_kind_name(RouterKind k) {
    switch (k) {
    case RouterKind::topk: return "topk";
    case RouterKind::gshard: return "gshard";
    case RouterKind::noisy_topk: return "noisy_topk";
    case RouterKind::sigmoid_bias: return "sigmoid_bias";
    case RouterKind::expert_choice: return "expert_choice";
    case RouterKind::hash: return "hash";
    case RouterKind::dense: return "dense";
    case RouterKind::top_p: return "top_p";
    case RouterKind::sinkhorn: return "sinkhorn";
    case RouterKind::base: return "base";
    case RouterKind::xmoe: return "xmoe";
    case RouterKind::dselect: return "dselect";
    case RouterKind::soft_moe: return "soft_moe";
    case RouterKind::mod: return "mod";
    }
    return "?";
}

std::string router_kind_list() {
    std::string s;
    for (RouterKind k : kAllKinds) s += (s.empty() ? "" : ", ") + std::string(router_kind_name(k));
    return s;
}

RouterKind parse_router_kind(const std::string& name) {
    for (RouterKind k : kAllKinds)
        if (name == router_kind_name(k)) return k;
    throw Error("[router] unknown router '" + name + "'; expected one of: " + router_kind_list());
}

void topk_row(const float* score, int64_t n, int64_t k, const uint8_t* allowed, int32_t* idx,
              float* val) {
    int64_t m = 0;
    for (int64_t e = 0; e < n; ++e) {
        if (allowed && !allowed[e]) continue;
        if (m == k && !(score[e] > val[k - 1])) continue;
        int64_t j = m < k ? m++ : k - 1;
        while (j > 0 && score[e] > val[j - 1]) {
            val[j] = val[j - 1];
            idx[j] = idx[j - 1];
            --j;
        }
        val[j] = score[e];
        idx[j] = int32_t(e);
    }
}

void router_validate(const MoeLayerConfig& c) {
    const char* op = "moe_layer";
    const RouterConfig& r = c.router;
    const int64_t E = c.n_experts, K = c.top_k;
    std::string kind = std::string("router ") + router_kind_name(r.kind);
    MOE_CHECK(E <= 1024, op, "n_experts must be <= 1024, got " + std::to_string(E));
    MOE_CHECK(r.kind != RouterKind::gshard || K == 2, op, kind + " routes to exactly 2 experts; set top_k = 2, got " + std::to_string(K));
    MOE_CHECK(r.kind != RouterKind::noisy_topk || K < E, op, kind + " needs top_k < n_experts (the load loss uses the (K+1)-th logit), got K = " + std::to_string(K) + ", E = " + std::to_string(E));
    MOE_CHECK(r.kind != RouterKind::xmoe || (r.router_dim >= 1 && r.router_dim <= 4096), op, kind + ": router_dim must be in [1, 4096], got " + std::to_string(r.router_dim));
    MOE_CHECK(r.kind != RouterKind::dselect || (E >= 2 && (E & (E - 1)) == 0), op, kind + " needs n_experts to be a power of two >= 2, got " + std::to_string(E));
    MOE_CHECK(r.kind != RouterKind::dselect || (r.dselect_gamma > 0 && std::isfinite(r.dselect_gamma)), op, kind + ": dselect_gamma must be > 0, got " + std::to_string(r.dselect_gamma));
    MOE_CHECK(r.kind != RouterKind::mod || (E == 1 && K == 1), op, kind + " routes tokens through one block: set n_experts = 1 and top_k = 1, got E = " + std::to_string(E) + ", K = " + std::to_string(K));
    MOE_CHECK(r.kind != RouterKind::mod || c.capacity_factor <= 1, op, kind + ": capacity_factor is the fraction of tokens through the block, in (0, 1], got " + std::to_string(c.capacity_factor));
    MOE_CHECK(r.kind != RouterKind::soft_moe || (r.slots_per_expert >= 1 && r.slots_per_expert <= 4096), op, kind + ": slots_per_expert must be in [1, 4096], got " + std::to_string(r.slots_per_expert));
    MOE_CHECK(r.kind != RouterKind::soft_moe || r.router_jitter_noise == 0, op, kind + " does not take router jitter; set router_jitter_noise = 0");
    MOE_CHECK(r.kind != RouterKind::base || K == 1, op, kind + " assigns each token to one expert; set top_k = 1, got " + std::to_string(K));
    MOE_CHECK(r.sinkhorn_iters >= 1 && r.sinkhorn_iters <= 1000, op, "sinkhorn_iters must be in [1, 1000], got " + std::to_string(r.sinkhorn_iters));
    MOE_CHECK(r.kind != RouterKind::dense || K == E, op, kind + " uses every expert; set top_k = n_experts = " + std::to_string(E) + ", got " + std::to_string(K));
    MOE_CHECK(r.kind != RouterKind::top_p || (r.top_p > 0 && r.top_p < 1), op, kind + ": top_p must be in (0, 1), got " + std::to_string(r.top_p));
    MOE_CHECK(r.norm_p > 0 && std::isfinite(r.norm_p), op, "norm_p must be > 0, got " + std::to_string(r.norm_p));
    MOE_CHECK(r.routed_scaling_factor > 0 && std::isfinite(r.routed_scaling_factor), op, "routed_scaling_factor must be > 0, got " + std::to_string(r.routed_scaling_factor));
    MOE_CHECK(r.router_jitter_noise >= 0 && r.router_jitter_noise < 1, op, "router_jitter_noise must be in [0, 1), got " + std::to_string(r.router_jitter_noise));
    MOE_CHECK(r.seq_len >= 0, op, "seq_len must be >= 0, got " + std::to_string(r.seq_len));
    MOE_CHECK(r.n_group >= 1 && r.n_group <= 256 && E % r.n_group == 0, op,
              "n_group must divide n_experts = " + std::to_string(E) + " (and be <= 256), got " + std::to_string(r.n_group));
    MOE_CHECK(r.topk_group >= 1 && r.topk_group <= r.n_group, op,
              "topk_group must be in [1, n_group = " + std::to_string(r.n_group) + "], got " + std::to_string(r.topk_group));
    if (r.n_group > 1) {
        MOE_CHECK(r.kind == RouterKind::topk || r.kind == RouterKind::sigmoid_bias, op,
                  "group-limited routing (n_group > 1) is for the topk and sigmoid_bias routers, not " + kind);
        MOE_CHECK(K <= r.topk_group * (E / r.n_group), op,
                  "top_k = " + std::to_string(K) + " exceeds the experts of topk_group groups (" +
                      std::to_string(r.topk_group * (E / r.n_group)) + ")");
    }
}

int64_t router_view_width(const MoeLayerConfig& c) {
    RouterKind k = c.router.kind;
    return k == RouterKind::expert_choice || k == RouterKind::dselect || k == RouterKind::mod ? c.n_experts : c.top_k;
}

int64_t router_rows(const MoeLayerConfig& c) {
    if (c.router.kind == RouterKind::soft_moe) return c.n_experts * c.router.slots_per_expert;
    if (c.router.kind != RouterKind::dselect) return c.n_experts;
    int64_t m = 0;
    while ((int64_t(1) << m) < c.n_experts) ++m;
    return c.top_k * (m + 1);
}

int64_t router_cols(const MoeLayerConfig& c) {
    return c.router.kind == RouterKind::xmoe ? c.router.router_dim : c.d_model;
}

void router_forward(MoeLayerCache& cache, MoeLayerLosses& losses, const MoeLayerConfig& c,
                    const MoeLayerParams& prm, const float* x, int64_t T, const int32_t* token_ids) {
    const RouterConfig& r = c.router;
    RouterCache& rc = cache.router;
    RoutePlan& plan = cache.plan;
    const int64_t D = c.d_model, E = c.n_experts, K = c.top_k, Kv = router_view_width(c);
    MOE_CHECK(r.kind != RouterKind::hash || token_ids, "moe_layer_forward",
              "the hash router needs the tokens' ids (token_ids of length T = " + std::to_string(T) + ")");
    draw_noise(rc, c, T);
    plan.topk_idx.assign(size_t(T * Kv), 0);
    plan.topk_weight.assign(size_t(T * Kv), 0.0f);
    rc.skip.assign(size_t(T * Kv), uint8_t(0));
    losses = MoeLayerLosses{};

    const float* xr = x;
    if (r.training && r.router_jitter_noise > 0) {
        rc.x_router.resize(size_t(T * D));
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < T * D; ++i) rc.x_router[size_t(i)] = x[i] * rc.noise.jitter[size_t(i)];
        xr = rc.x_router.data();
    }
    if (r.kind == RouterKind::dselect) {
        const int64_t rows = router_rows(c);
        rc.logits.resize(size_t(T * rows));
        gemm_f32(false, true, T, rows, D, 1.0f, xr, D, prm.router.f32(), D, 0.0f, rc.logits.data(), rows);
    } else if (r.kind != RouterKind::hash) {
        rc.logits.resize(size_t(T * E));
        rc.probs.resize(size_t(T * E));
        rc.lse.resize(size_t(T));
        if (r.kind == RouterKind::xmoe) {
            xmoe_logits(rc, c, prm, xr, T);
        } else {
            gemm_f32(false, true, T, E, D, 1.0f, xr, D, prm.router.f32(), D, 0.0f, rc.logits.data(), E);
        }
        double z = 0, ent = 0;
#pragma omp parallel for schedule(static) reduction(+ : z, ent)
        for (int64_t t = 0; t < T; ++t) {
            const float* l = rc.logits.data() + t * E;
            float* p = rc.probs.data() + t * E;
            float m = *std::max_element(l, l + E);
            double sum = 0;
            for (int64_t e = 0; e < E; ++e) sum += std::exp(double(l[e] - m));
            float lse = m + float(std::log(sum));
            rc.lse[size_t(t)] = lse;
            z += double(lse) * lse;
            if (r.kind == RouterKind::sigmoid_bias || r.kind == RouterKind::base) {
                for (int64_t e = 0; e < E; ++e) p[e] = 1.0f / (1.0f + std::exp(-l[e]));
            } else {
                for (int64_t e = 0; e < E; ++e) p[e] = std::exp(l[e] - lse);
                if (softmax_kind(r.kind))
                    for (int64_t e = 0; e < E; ++e) ent -= p[e] > 0 ? double(p[e]) * std::log(double(p[e])) : 0.0;
            }
        }
        losses.z = float(z / double(T));
        losses.entropy = float(ent / double(T));
    }
    if (r.kind == RouterKind::sigmoid_bias) {
        rc.bias.assign(prm.router_bias.f32(), prm.router_bias.f32() + E);
    }

    if (r.kind == RouterKind::noisy_topk) {
        std::vector<float> raw(static_cast<size_t>(T * E));
        gemm_f32(false, true, T, E, D, 1.0f, xr, D, prm.router_noise.f32(), D, 0.0f, raw.data(), E);
        noisy_topk_forward(cache, losses, c, raw.data(), T);
    } else if (r.kind == RouterKind::expert_choice) {
        select_expert_choice(c, plan, rc, T, rc.probs.data(), 2.0);
    } else if (r.kind == RouterKind::mod) {
        select_expert_choice(c, plan, rc, T, rc.logits.data(), 0.125);
    } else if (r.kind == RouterKind::dselect) {
        dselect_forward(cache, losses, c, T);
    } else if (r.kind == RouterKind::base) {
        if (r.training) {
            balanced_assignment(plan.topk_idx.data(), rc.logits.data(), T, E);
        } else {
            for (int64_t t = 0; t < T; ++t) {
                const float* l = rc.logits.data() + t * E;
                plan.topk_idx[size_t(t)] = int32_t(std::max_element(l, l + E) - l);
            }
        }
        for (int64_t t = 0; t < T; ++t) plan.topk_weight[size_t(t)] = rc.probs[size_t(t * E + plan.topk_idx[size_t(t)])];
    } else {
        if (r.kind == RouterKind::sinkhorn && r.training) {
            rc.choice.resize(size_t(T * E));
            sinkhorn_balance(rc.choice.data(), rc.logits.data(), T, E, r.sinkhorn_iters);
        }
#pragma omp parallel for schedule(static) if (T >= 16)
        for (int64_t t = 0; t < T; ++t)
            select_token(c, rc, t, plan.topk_idx.data() + t * Kv, plan.topk_weight.data() + t * Kv,
                         rc.skip.data() + t * Kv, token_ids);
    }
    // Capacity applies to token choice; these kinds bound (or balance) the load themselves.
    const bool own_capacity = r.kind == RouterKind::expert_choice || r.kind == RouterKind::base ||
                              r.kind == RouterKind::mod || r.kind == RouterKind::dselect;
    int64_t capacity = own_capacity ? 0 : route_capacity(c.capacity_factor, T, K, E);
    route_plan_build(plan, T, Kv, E, capacity, rc.skip.data());
    if (r.kind == RouterKind::hash || r.kind == RouterKind::noisy_topk || r.kind == RouterKind::expert_choice ||
        r.kind == RouterKind::sinkhorn || r.kind == RouterKind::base || r.kind == RouterKind::dselect ||
        r.kind == RouterKind::mod)
        return;  // no balance loss (hash, balanced by construction) or already computed (noisy)

    // Balance losses. f_e counts choices before capacity (gshard: first choices only).
    const float* p = rc.probs.data();
    if (r.kind == RouterKind::sigmoid_bias) {
        // Sequence-wise (DeepSeek-V3): per sequence f_e = E / (K L) count_e, P_e = mean s'.
        const int64_t L = r.seq_len > 0 ? r.seq_len : T, n_seq = T / L;
        MOE_CHECK(T % L == 0, "moe_layer_forward",
                  "sigmoid_bias: T = " + std::to_string(T) + " is not a multiple of seq_len = " + std::to_string(L));
        rc.load.assign(size_t(n_seq * E), 0.0f);
        double aux = 0;
        for (int64_t q = 0; q < n_seq; ++q) {
            float* f = rc.load.data() + q * E;
            std::vector<double> P(static_cast<size_t>(E), 0.0);
            for (int64_t t = q * L; t < (q + 1) * L; ++t) {
                for (int64_t k = 0; k < K; ++k) f[plan.topk_idx[size_t(t * K + k)]] += 1.0f;
                double s = 0;
                for (int64_t e = 0; e < E; ++e) s += p[t * E + e];
                for (int64_t e = 0; e < E; ++e) P[size_t(e)] += p[t * E + e] / s;
            }
            for (int64_t e = 0; e < E; ++e) {
                f[e] *= float(E) / float(K * L);
                aux += double(f[e]) * P[size_t(e)] / double(L);
            }
        }
        losses.aux = float(aux / double(n_seq));
        return;
    }
    rc.load.assign(size_t(E), 0.0f);
    std::vector<double> P(static_cast<size_t>(E), 0.0);
    const int64_t counted = r.kind == RouterKind::gshard ? 1 : Kv;
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t k = 0; k < counted; ++k) {
            int32_t e = plan.topk_idx[size_t(t * Kv + k)];
            if (e >= 0 && !(r.kind == RouterKind::top_p && rc.skip[size_t(t * Kv + k)])) rc.load[size_t(e)] += 1.0f;
        }
        for (int64_t e = 0; e < E; ++e) P[size_t(e)] += p[t * E + e];
    }
    double aux = 0;
    for (int64_t e = 0; e < E; ++e) {
        rc.load[size_t(e)] /= float(T);
        aux += double(rc.load[size_t(e)]) * P[size_t(e)] / double(T);
    }
    losses.aux = float(double(E) * aux);
}

}  // namespace moe
