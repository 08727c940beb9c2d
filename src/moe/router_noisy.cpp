// Noisy top-k gating (Shazeer et al. 2017): H = clean + n * (softplus(raw) + 1e-2), the K
// largest H kept and softmaxed, and the importance + load losses (docs/routers.md).
#include <algorithm>
#include <cmath>
#include <vector>

#include "moe/router_internal.h"

namespace moe {
namespace {

constexpr double kCvEps = 1e-10;

double cv_squared(const float* v, int64_t n) {
    if (n < 2) return 0;
    double m = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) m += v[i];
    m /= double(n);
    for (int64_t i = 0; i < n; ++i) var += (v[i] - m) * (v[i] - m);
    var /= double(n - 1);
    return var / (m * m + kCvEps);
}

// d cv_squared / d v, times coef.
void cv_squared_grad(float* g, const float* v, int64_t n, float coef) {
    std::fill_n(g, n, 0.0f);
    if (n < 2) return;
    double m = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) m += v[i];
    m /= double(n);
    for (int64_t i = 0; i < n; ++i) var += (v[i] - m) * (v[i] - m);
    var /= double(n - 1);
    double den = m * m + kCvEps;
    for (int64_t i = 0; i < n; ++i)
        g[i] = float(coef * (2.0 * (v[i] - m) / (double(n - 1) * den) - var * 2.0 * m / (double(n) * den * den)));
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
double normal_pdf(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2.0 * M_PI); }

// The threshold H[t, e] must beat to be in the top K: the (K+1)-th largest if it is in, else
// the K-th largest (vals / idx: the K+1 largest, descending).
inline void threshold(float h, const float* vals, const int32_t* idx, int64_t K, float& thr, int32_t& at) {
    bool in = h > vals[K];
    thr = in ? vals[K] : vals[K - 1];
    at = in ? idx[K] : idx[K - 1];
}

}  // namespace

void noisy_topk_forward(MoeLayerCache& cache, MoeLayerLosses& losses, const MoeLayerConfig& c,
                        const float* raw, int64_t T) {
    RouterCache& rc = cache.router;
    RoutePlan& plan = cache.plan;
    const int64_t E = c.n_experts, K = c.top_k;
    const bool train = c.router.training;
    rc.noise_sd.resize(size_t(T * E));
    rc.noisy.resize(size_t(T * E));
    // rc.load holds [importance (E), load (E)].
    rc.load.assign(size_t(2 * E), 0.0f);
    std::vector<float> prob(train ? size_t(T * E) : 0);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
        const float* clean = rc.logits.data() + t * E;
        float* sd = rc.noise_sd.data() + t * E;
        float* h = rc.noisy.data() + t * E;
        for (int64_t e = 0; e < E; ++e) {
            float r = raw[t * E + e];
            sd[e] = (r > 20.0f ? r : std::log1p(std::exp(r))) + 1e-2f;
            h[e] = train ? clean[e] + rc.noise.normal[size_t(t * E + e)] * sd[e] : clean[e];
        }
        int32_t idx[1025];
        float vals[1025];
        topk_row(h, E, K + 1, nullptr, idx, vals);
        double sum = 0;
        for (int64_t k = 0; k < K; ++k) sum += std::exp(double(vals[k] - vals[0]));
        for (int64_t k = 0; k < K; ++k) {
            plan.topk_idx[size_t(t * K + k)] = idx[k];
            plan.topk_weight[size_t(t * K + k)] = float(std::exp(double(vals[k] - vals[0])) / sum);
        }
        if (train)
            for (int64_t e = 0; e < E; ++e) {
                float thr;
                int32_t at;
                threshold(h[e], vals, idx, K, thr, at);
                prob[size_t(t * E + e)] = float(normal_cdf((double(clean[e]) - thr) / sd[e]));
            }
    }
    float* importance = rc.load.data();
    float* load = rc.load.data() + E;
    std::vector<double> imp(static_cast<size_t>(E), 0.0), ld(static_cast<size_t>(E), 0.0);
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t k = 0; k < K; ++k) {
            int32_t e = plan.topk_idx[size_t(t * K + k)];
            imp[size_t(e)] += plan.topk_weight[size_t(t * K + k)];
            if (!train) ld[size_t(e)] += 1.0;
        }
        if (train)
            for (int64_t e = 0; e < E; ++e) ld[size_t(e)] += prob[size_t(t * E + e)];
    }
    for (int64_t e = 0; e < E; ++e) {
        importance[e] = float(imp[size_t(e)]);
        load[e] = float(ld[size_t(e)]);
    }
    losses.aux = float(cv_squared(importance, E) + cv_squared(load, E));
}

void noisy_topk_backward(float* dclean, float* draw, const std::vector<float>& dslot,
                         float aux_coef, const MoeLayerCache& cache, const MoeLayerConfig& c) {
    const RouterCache& rc = cache.router;
    const RoutePlan& plan = cache.plan;
    const int64_t E = c.n_experts, K = c.top_k, T = plan.n_tokens;
    const bool train = c.router.training;
    std::vector<float> dimp(static_cast<size_t>(E)), dload(static_cast<size_t>(E), 0.0f);
    cv_squared_grad(dimp.data(), rc.load.data(), E, aux_coef);
    if (train) cv_squared_grad(dload.data(), rc.load.data() + E, E, aux_coef);  // eval: counts
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
        const float* clean = rc.logits.data() + t * E;
        const float* sd = rc.noise_sd.data() + t * E;
        const float* h = rc.noisy.data() + t * E;
        float* dc = dclean + t * E;
        float* dr = draw + t * E;
        float dh[1024], dsd[1024];
        std::fill_n(dh, E, 0.0f);
        std::fill_n(dsd, E, 0.0f);
        std::fill_n(dc, E, 0.0f);
        int32_t idx[1025];
        float vals[1025];
        topk_row(h, E, K + 1, nullptr, idx, vals);
        // Gates: softmax over the K kept H; d gate = combine gradient + importance term.
        double s = 0;
        float dg[1024];
        for (int64_t k = 0; k < K; ++k) {
            dg[k] = dslot[size_t(t * K + k)] + dimp[size_t(idx[k])];
            s += double(plan.topk_weight[size_t(t * K + k)]) * dg[k];
        }
        for (int64_t k = 0; k < K; ++k)
            dh[idx[k]] += plan.topk_weight[size_t(t * K + k)] * float(dg[k] - s);
        // Load: Phi((clean - thr) / sd), through clean, the threshold's H and sd.
        if (train)
            for (int64_t e = 0; e < E; ++e) {
                float thr;
                int32_t at;
                threshold(h[e], vals, idx, K, thr, at);
                double z = (double(clean[e]) - thr) / sd[e];
                double dz = normal_pdf(z) * dload[size_t(e)];
                dc[e] += float(dz / sd[e]);
                dh[at] -= float(dz / sd[e]);
                dsd[e] -= float(dz * z / sd[e]);
            }
        for (int64_t e = 0; e < E; ++e) {
            dc[e] += dh[e];
            if (train) dsd[e] += dh[e] * rc.noise.normal[size_t(t * E + e)];
            // sd = softplus(raw) + 1e-2 and softplus' = sigmoid = 1 - exp(-softplus).
            dr[e] = dsd[e] * float(-std::expm1(-(double(sd[e]) - 1e-2)));
        }
    }
}

}  // namespace moe
