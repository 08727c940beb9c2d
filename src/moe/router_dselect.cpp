// DSelect-k (Hazimeh et al. 2021): K selectors, each a product of m = log2 E smooth steps
// over the bits of the expert index, mixed by a softmax; experts with a non-zero gate are run.
// docs/routers.md (dselect).
#include <algorithm>
#include <cmath>
#include <vector>

#include "moe/router_internal.h"

namespace moe {
namespace {

int64_t log2_of(int64_t E) {
    int64_t m = 0;
    while ((int64_t(1) << m) < E) ++m;
    return m;
}

double smooth_step(double u, double g) {
    if (u <= -g / 2) return 0;
    if (u >= g / 2) return 1;
    return -2 * u * u * u / (g * g * g) + 3 * u / (2 * g) + 0.5;
}

double smooth_step_grad(double u, double g) {
    if (u <= -g / 2 || u >= g / 2) return 0;
    return -6 * u * u / (g * g * g) + 3 / (2 * g);
}

// One token: S (K, m), the selectors' distributions r (K, E) and the mixture a (K).
struct Selectors {
    std::vector<double> S, r, a;
    Selectors(const float* l, int64_t K, int64_t m, int64_t E, double g)
        : S(size_t(K * m)), r(size_t(K * E)), a(size_t(K)) {
        for (int64_t i = 0; i < K * m; ++i) S[size_t(i)] = smooth_step(l[i], g);
        for (int64_t i = 0; i < K; ++i)
            for (int64_t e = 0; e < E; ++e) {
                double v = 1;
                for (int64_t j = 0; j < m; ++j) {
                    double s = S[size_t(i * m + j)];
                    v *= (e >> j) & 1 ? s : 1 - s;
                }
                r[size_t(i * E + e)] = v;
            }
        double mx = l[K * m];
        for (int64_t i = 1; i < K; ++i) mx = std::max(mx, double(l[K * m + i]));
        double sum = 0;
        for (int64_t i = 0; i < K; ++i) sum += a[size_t(i)] = std::exp(l[K * m + i] - mx);
        for (int64_t i = 0; i < K; ++i) a[size_t(i)] /= sum;
    }
};

}  // namespace

void dselect_forward(MoeLayerCache& cache, MoeLayerLosses& losses, const MoeLayerConfig& c, int64_t T) {
    const int64_t E = c.n_experts, K = c.top_k, m = log2_of(E), rows = K * (m + 1);
    RoutePlan& plan = cache.plan;
    RouterCache& rc = cache.router;
    double ent = 0;
#pragma omp parallel for schedule(static) reduction(+ : ent)
    for (int64_t t = 0; t < T; ++t) {
        Selectors sel(rc.logits.data() + t * rows, K, m, E, c.router.dselect_gamma);
        for (int64_t e = 0; e < E; ++e) {
            double gate = 0;
            for (int64_t i = 0; i < K; ++i) gate += sel.a[size_t(i)] * sel.r[size_t(i * E + e)];
            const size_t s = size_t(t * E + e);
            plan.topk_idx[s] = gate > 0 ? int32_t(e) : -1;
            plan.topk_weight[s] = float(gate);
            rc.skip[s] = gate > 0 ? 0 : 1;
        }
        for (double r : sel.r)
            if (r > 0) ent -= r * std::log(r);
    }
    losses.entropy = float(ent / double(T));
}

void dselect_backward(float* dl, const std::vector<float>& dslot, float entropy_coef,
                      const MoeLayerCache& cache, const MoeLayerConfig& c) {
    const int64_t E = c.n_experts, K = c.top_k, m = log2_of(E), rows = K * (m + 1);
    const int64_t T = cache.plan.n_tokens;
    const double g = c.router.dselect_gamma, ent_scale = double(entropy_coef) / double(T);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
        const float* l = cache.router.logits.data() + t * rows;
        float* d = dl + t * rows;
        Selectors sel(l, K, m, E, g);
        const float* dgate = dslot.data() + t * E;
        // Mixture: gate_e = sum_i a_i r_i(e).
        std::vector<double> da(static_cast<size_t>(K), 0.0);
        for (int64_t i = 0; i < K; ++i)
            for (int64_t e = 0; e < E; ++e) da[size_t(i)] += double(dgate[e]) * sel.r[size_t(i * E + e)];
        double dot = 0;
        for (int64_t i = 0; i < K; ++i) dot += sel.a[size_t(i)] * da[size_t(i)];
        for (int64_t i = 0; i < K; ++i) d[K * m + i] = float(sel.a[size_t(i)] * (da[size_t(i)] - dot));
        // Selectors: d r_i(e) from the gate and the entropy, then through the product of steps.
        for (int64_t i = 0; i < K; ++i) {
            std::vector<double> dS(static_cast<size_t>(m), 0.0);
            for (int64_t e = 0; e < E; ++e) {
                double r = sel.r[size_t(i * E + e)];
                double dr = double(dgate[e]) * sel.a[size_t(i)] - (r > 0 ? ent_scale * (std::log(r) + 1) : 0.0);
                if (dr == 0) continue;
                for (int64_t j = 0; j < m; ++j) {
                    double others = 1;  // the product without factor j
                    for (int64_t jj = 0; jj < m; ++jj) {
                        if (jj == j) continue;
                        double s = sel.S[size_t(i * m + jj)];
                        others *= (e >> jj) & 1 ? s : 1 - s;
                    }
                    dS[size_t(j)] += dr * ((e >> j) & 1 ? others : -others);
                }
            }
            for (int64_t j = 0; j < m; ++j)
                d[i * m + j] = float(dS[size_t(j)] * smooth_step_grad(l[i * m + j], g));
        }
    }
}

}  // namespace moe
