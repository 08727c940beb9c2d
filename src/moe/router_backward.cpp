// Router backward: d logits from the combine-weight gradients and the losses, for every kind,
// then the router weights' gradient and the input's (docs/routers.md).
#include <algorithm>
#include <cmath>

#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/router_internal.h"

namespace moe {
namespace {

// w_k = scale * b_k / N, N = (sum_j b_j^q)^(1/q) (renorm) or w_k = scale * b_k:
// d b_k = scale / N * (dw_k - (sum_j dw_j w'_j) * (b_k / N)^(q - 1)), w' = b / N.
void weights_backward(float* db, const float* b, const float* dw, int64_t n, bool renorm,
                      double q, double scale) {
    if (!renorm) {
        for (int64_t k = 0; k < n; ++k) db[k] = float(scale * dw[k]);
        return;
    }
    double s = 0;
    for (int64_t k = 0; k < n; ++k) s += std::pow(double(b[k]), q);
    double N = std::pow(s, 1.0 / q), dot = 0;
    for (int64_t k = 0; k < n; ++k) dot += double(dw[k]) * b[k] / N;
    for (int64_t k = 0; k < n; ++k)
        db[k] = float(scale / N * (dw[k] - dot * std::pow(double(b[k]) / N, q - 1.0)));
}

// d scores (T, E) of one token: p (softmax or sigmoid scores) for every kind but noisy_topk.
void token_dscores(float* d, const MoeLayerConfig& c, const RouterCache& rc, const RoutePlan& plan,
                   const float* dslot, const MoeLossCoefs& coefs, int64_t t) {
    const RouterConfig& r = c.router;
    const int64_t E = c.n_experts, K = c.top_k, Kv = plan.top_k, T = plan.n_tokens;
    const float* p = rc.probs.data() + t * E;
    const int32_t* idx = plan.topk_idx.data() + t * Kv;
    const bool softmax = r.kind != RouterKind::sigmoid_bias && r.kind != RouterKind::base &&
                         r.kind != RouterKind::mod;
    const bool switch_aux = r.kind == RouterKind::topk || r.kind == RouterKind::gshard ||
                            r.kind == RouterKind::dense || r.kind == RouterKind::top_p ||
                            r.kind == RouterKind::xmoe;
    std::fill_n(d, E, 0.0f);
    if (softmax) {
        if (switch_aux) {  // Switch balance loss: d/dp = E f_e / T
            for (int64_t e = 0; e < E; ++e) d[e] = coefs.aux * float(E) * rc.load[size_t(e)] / float(T);
        }
        if (coefs.entropy != 0) {
            for (int64_t e = 0; e < E; ++e)
                d[e] -= coefs.entropy / float(T) * (p[e] > 0 ? std::log(p[e]) + 1.0f : 0.0f);
        }
    }
    float b[1024], db[1024];
    switch (r.kind) {
    case RouterKind::topk:
    case RouterKind::xmoe:
    case RouterKind::gshard:
    case RouterKind::sigmoid_bias:
    case RouterKind::sinkhorn: {
        const bool gshard = r.kind == RouterKind::gshard;
        const bool scaled = r.kind == RouterKind::topk || r.kind == RouterKind::xmoe ||
                            r.kind == RouterKind::sigmoid_bias;
        for (int64_t k = 0; k < K; ++k) b[k] = p[idx[k]];
        weights_backward(db, b, dslot, K, gshard || c.renormalize, gshard ? 1.0 : r.norm_p,
                         scaled ? r.routed_scaling_factor : 1.0);
        for (int64_t k = 0; k < K; ++k) d[idx[k]] += db[k];
        break;
    }
    default:  // dense, top_p, expert_choice: w = p; base: w = sigmoid(logit); mod: w = logit
        for (int64_t k = 0; k < Kv; ++k)
            if (idx[k] >= 0) d[idx[k]] += dslot[k];
        break;
    }
    if (r.kind == RouterKind::sigmoid_bias) {
        // Sequence-wise balance: aux = mean_q sum_e f_e P_e, P_e = mean_t s'_te, s' = s / sum s.
        const int64_t L = r.seq_len > 0 ? r.seq_len : T, n_seq = T / L;
        const float* f = rc.load.data() + (t / L) * E;
        double sum = 0, dot = 0;
        for (int64_t e = 0; e < E; ++e) sum += p[e];
        float dsp[1024];
        for (int64_t e = 0; e < E; ++e) {
            dsp[e] = coefs.aux * f[e] / float(L * n_seq);
            dot += double(dsp[e]) * p[e] / sum;
        }
        for (int64_t e = 0; e < E; ++e) d[e] += float((dsp[e] - dot) / sum);
    }
}

}  // namespace

void router_backward(float* dx, const MoeLayerParams& grads, const std::vector<float>& dw,
                     const MoeLossCoefs& coefs, const MoeLayerCache& cache,
                     const MoeLayerConfig& c, const MoeLayerParams& prm, const float* x) {
    const RouterConfig& r = c.router;
    if (r.kind == RouterKind::hash) return;  // no learned router
    const RouterCache& rc = cache.router;
    const RoutePlan& plan = cache.plan;
    const int64_t T = plan.n_tokens, E = c.n_experts, D = c.d_model, Kv = plan.top_k;
    const int64_t rows = router_rows(c);  // d logits width: E, or dselect's selector logits
    std::vector<float> dslot(static_cast<size_t>(T * Kv));
    for (int64_t s = 0; s < T * Kv; ++s) {
        int32_t a = plan.assignment[size_t(s)];
        dslot[size_t(s)] = a >= 0 ? dw[size_t(a)] : 0.0f;
    }
    std::vector<float> dl(static_cast<size_t>(T * rows)), draw;
    if (r.kind == RouterKind::noisy_topk) {
        draw.resize(size_t(T * E));
        noisy_topk_backward(dl.data(), draw.data(), dslot, coefs.aux, cache, c);
    }
    if (r.kind == RouterKind::dselect) dselect_backward(dl.data(), dslot, coefs.entropy, cache, c);
    const float zscale = coefs.z * 2.0f / float(T);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < (r.kind == RouterKind::dselect ? 0 : T); ++t) {
        float* d = dl.data() + t * E;
        const float* p = rc.probs.data() + t * E;
        const float* l = rc.logits.data() + t * E;
        const float lse = rc.lse[size_t(t)];
        if (r.kind != RouterKind::noisy_topk) {
            token_dscores(d, c, rc, plan, dslot.data() + t * Kv, coefs, t);
            if (r.kind == RouterKind::sigmoid_bias || r.kind == RouterKind::base) {
                for (int64_t e = 0; e < E; ++e) d[e] *= p[e] * (1.0f - p[e]);
            } else if (r.kind != RouterKind::mod) {  // softmax backward (mod: the logit itself)
                double s = 0;
                for (int64_t e = 0; e < E; ++e) s += double(p[e]) * d[e];
                for (int64_t e = 0; e < E; ++e) d[e] = p[e] * (d[e] - float(s));
            }
        }
        // z-loss: d/dlogit = 2 z / T * lse * softmax(logits).
        const float zt = zscale * lse;
        for (int64_t e = 0; e < E; ++e) d[e] += zt * std::exp(l[e] - lse);
    }
    const bool jitter = r.training && r.router_jitter_noise > 0;
    const float* xr = jitter ? rc.x_router.data() : x;
    std::vector<float> dxr(jitter ? size_t(T * D) : 0, 0.0f);
    float* into = jitter ? dxr.data() : dx;
    if (r.kind == RouterKind::xmoe) {
        xmoe_backward(into, grads, dl.data(), rc, c, prm, xr, T);
    } else {
        gemm_f32(true, false, rows, D, T, 1.0f, dl.data(), rows, xr, D, 1.0f, grads.router.f32(), D);
        gemm_f32(false, false, T, D, rows, 1.0f, dl.data(), rows, prm.router.f32(), D, 1.0f, into, D);
    }
    if (r.kind == RouterKind::noisy_topk) {
        gemm_f32(true, false, E, D, T, 1.0f, draw.data(), E, xr, D, 1.0f, grads.router_noise.f32(), D);
        gemm_f32(false, false, T, D, E, 1.0f, draw.data(), E, prm.router_noise.f32(), D, 1.0f, into, D);
    }
    if (jitter) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < T * D; ++i) dx[i] += dxr[size_t(i)] * rc.noise.jitter[size_t(i)];
    }
}

std::vector<double> moe_layer_bias_load(const MoeLayerCache& cache, const MoeLayerConfig& c) {
    const RoutePlan& plan = cache.plan;
    const int64_t E = c.n_experts, K = c.top_k, T = plan.n_tokens;
    std::vector<double> count(static_cast<size_t>(E), 0.0);
    for (int64_t s = 0; s < T * K; ++s) count[size_t(plan.topk_idx[size_t(s)])] += 1.0;
    return count;
}

void moe_layer_update_bias(const MoeLayerParams& params, const std::vector<double>& load,
                           const MoeLayerConfig& c) {
    if (c.router.kind != RouterKind::sigmoid_bias) return;
    const int64_t E = c.n_experts;
    MOE_CHECK(int64_t(load.size()) == E, "moe_layer_update_bias",
              "expected a load of E = " + std::to_string(E) + " counts, got " + std::to_string(load.size()));
    double total = 0;
    for (double n : load) total += n;
    const double mean = total / double(E);  // T K / E: every token picks K experts
    float* b = params.router_bias.f32();
    for (int64_t e = 0; e < E; ++e) {
        double err = mean - load[size_t(e)];
        b[e] += float(c.router.bias_update_rate * double((err > 0) - (err < 0)));
    }
}

void moe_layer_update_bias(const MoeLayerParams& params, const MoeLayerCache& cache,
                           const MoeLayerConfig& c) {
    if (c.router.kind != RouterKind::sigmoid_bias) return;
    moe_layer_update_bias(params, moe_layer_bias_load(cache, c), c);
}

}  // namespace moe
