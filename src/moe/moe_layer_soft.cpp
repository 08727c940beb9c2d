// Soft MoE (Puigcerver et al. 2023): no token-to-expert assignment; every slot is a
// softmax-over-tokens mixture of all tokens, every token a softmax-over-slots mixture of the
// slots' outputs. docs/routers.md (soft_moe). The experts are the layer's usual ones.
#include <algorithm>
#include <cmath>
#include <vector>

#include "moe/gemm.h"
#include "moe/moe_layer_internal.h"
#include "moe/router_internal.h"

namespace moe {

void soft_moe_forward(float* y, MoeLayerLosses& losses, MoeLayerCache& cache,
                      const MoeLayerConfig& c, const MoeLayerParams& params, const float* x, int64_t T) {
    const int64_t D = c.d_model, E = c.n_experts, P = c.router.slots_per_expert, R = E * P;
    RouterCache& rc = cache.router;
    PhaseClock clock;
    rc.logits.resize(size_t(T * R));
    rc.probs.resize(size_t(T * R));   // dispatch weights Dw: softmax over the tokens
    rc.choice.resize(size_t(T * R));  // combine weights Cw: softmax over the slots
    rc.lse.resize(size_t(T));
    float* L = rc.logits.data();
    float* Dw = rc.probs.data();
    float* Cw = rc.choice.data();
    gemm_f32(false, true, T, R, D, 1.0f, x, D, params.router.f32(), D, 0.0f, L, R);
    double z = 0;
#pragma omp parallel for schedule(static) reduction(+ : z)
    for (int64_t t = 0; t < T; ++t) {
        const float* l = L + t * R;
        float m = *std::max_element(l, l + R);
        double sum = 0;
        for (int64_t s = 0; s < R; ++s) sum += std::exp(double(l[s] - m));
        float lse = m + float(std::log(sum));
        rc.lse[size_t(t)] = lse;
        z += double(lse) * lse;
        for (int64_t s = 0; s < R; ++s) Cw[t * R + s] = std::exp(l[s] - lse);
    }
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < R; ++s) {
        float m = L[s];
        for (int64_t t = 1; t < T; ++t) m = std::max(m, L[t * R + s]);
        double sum = 0;
        for (int64_t t = 0; t < T; ++t) sum += std::exp(double(L[t * R + s] - m));
        float lse = m + float(std::log(sum));
        for (int64_t t = 0; t < T; ++t) Dw[t * R + s] = std::exp(L[t * R + s] - lse);
    }
    losses = MoeLayerLosses{};
    losses.z = float(z / double(T));
    // The plan only records the slots per expert (for the load statistics and the FLOP count).
    RoutePlan& plan = cache.plan;
    plan.n_tokens = T;
    plan.n_experts = E;
    plan.top_k = 1;
    plan.capacity = 0;
    plan.n_dropped = 0;
    plan.expert_offsets.resize(size_t(E + 1));
    for (int64_t e = 0; e <= E; ++e) plan.expert_offsets[size_t(e)] = e * P;
    plan.token_index.assign(size_t(R), 0);
    plan.weight.assign(size_t(R), 1.0f);
    plan.assignment.clear();  // no per-token view: every token reads every slot
    plan.topk_idx.clear();
    plan.topk_weight.clear();
    cache.local_offsets = plan.expert_offsets;
    cache.times.router = clock.lap();

    float* rows = grow(cache.rows, R * D);  // slot inputs: Dw^T x
    gemm_f32(true, false, R, D, T, 1.0f, Dw, R, x, D, 0.0f, rows, D);
    cache.times.dispatch = clock.lap();
    float* out = grow(cache.out, R * D);
    experts_forward(out, cache, c, params, rows, 0, E);
    cache.times.experts = clock.lap();
    gemm_f32(false, false, T, D, R, 1.0f, Cw, R, out, D, 0.0f, y, D);
    cache.times.combine = clock.lap();
    shared_forward(y, cache, c, params, x, T, 0, E);
    cache.times.shared = clock.lap();
}

void soft_moe_backward(float* dx, const MoeLayerParams& grads, const float* dy, const MoeLossCoefs& coefs,
                       MoeLayerCache& cache, const MoeLayerConfig& c, const MoeLayerParams& params,
                       const float* x, int64_t T) {
    const int64_t D = c.d_model, E = c.n_experts, R = E * c.router.slots_per_expert;
    const RouterCache& rc = cache.router;
    const float* Dw = rc.probs.data();
    const float* Cw = rc.choice.data();
    float* out = cache.out.f32();
    float* rows = cache.rows.f32();
    PhaseClock clock;
    std::vector<float> dC(static_cast<size_t>(T * R)), dD(static_cast<size_t>(T * R));
    gemm_f32(false, true, T, R, D, 1.0f, dy, D, out, D, 0.0f, dC.data(), R);  // d Cw = dy out^T
    gemm_f32(true, false, R, D, T, 1.0f, Cw, R, dy, D, 0.0f, out, D);         // d out = Cw^T dy
    cache.times.bwd_combine = clock.lap();
    experts_backward(out, grads, cache, c, params, rows, 0, E);               // out := d rows
    cache.times.bwd_experts = clock.lap();
    gemm_f32(false, true, T, R, D, 1.0f, x, D, out, D, 0.0f, dD.data(), R);   // d Dw = x drows^T
    gemm_f32(false, false, T, D, R, 1.0f, Dw, R, out, D, 1.0f, dx, D);        // dx += Dw drows
    cache.times.bwd_scatter = clock.lap();

    // d L: the row softmax (combine, and the z-loss through lse) and the column softmax (dispatch).
    std::vector<float> dL(static_cast<size_t>(T * R));
    const float zscale = coefs.z * 2.0f / float(T);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
        double dot = 0;
        for (int64_t s = 0; s < R; ++s) dot += double(Cw[t * R + s]) * dC[size_t(t * R + s)];
        const float zt = zscale * rc.lse[size_t(t)];
        for (int64_t s = 0; s < R; ++s)
            dL[size_t(t * R + s)] = Cw[t * R + s] * (dC[size_t(t * R + s)] - float(dot) + zt);
    }
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < R; ++s) {
        double dot = 0;
        for (int64_t t = 0; t < T; ++t) dot += double(Dw[t * R + s]) * dD[size_t(t * R + s)];
        for (int64_t t = 0; t < T; ++t)
            dL[size_t(t * R + s)] += Dw[t * R + s] * (dD[size_t(t * R + s)] - float(dot));
    }
    gemm_f32(true, false, R, D, T, 1.0f, dL.data(), R, x, D, 1.0f, grads.router.f32(), D);
    gemm_f32(false, false, T, D, R, 1.0f, dL.data(), R, params.router.f32(), D, 1.0f, dx, D);
    cache.times.bwd_router = clock.lap();
    shared_backward(dx, dy, grads, cache, c, params, x, T, 0, E);
    cache.times.bwd_shared = clock.lap();
}

}  // namespace moe
