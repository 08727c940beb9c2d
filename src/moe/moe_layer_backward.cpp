// MoE layer backward: the forward's plan walked in reverse. The router gets its gradient
// through the combine weights (and the renormalisation), the aux loss and the z-loss.
#include <cmath>
#include <string>

#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/kernels.h"
#include "moe/moe_layer.h"
#include "moe/moe_layer_internal.h"
#include "moe/router_internal.h"
#include "moe/swiglu_experts.h"

namespace moe {
void moe_layer_backward(TensorView dx, const MoeLayerParams& grads, TensorView dy,
                        const MoeLossCoefs& coefs, MoeLayerCache& cache, const MoeLayerConfig& c,
                        const MoeLayerParams& params, TensorView x, ExpertExchange* exchange) {
    const char* op = "moe_layer_backward";
    moe_layer_validate(c);
    const int64_t D = c.d_model, F = c.d_ff;
    const int64_t S = c.n_shared, Fs = c.d_ff_shared, T = cache.T;
    MOE_CHECK(T > 0 && cache.plan.n_tokens == T, op, "backward called without a forward");
    check_tensor(op, "x", x, {T, D});
    check_tensor(op, "dy", dy, {T, D});
    check_tensor(op, "dx", dx, {T, D});
    moe_layer_check_params(op, "", c, params);
    moe_layer_check_params(op, "grad.", c, grads);
    const KernelTable& k = kernels();
    MOE_CHECK(k.all_finite(dy.f32(), dy.numel()), op,
              "dy of shape " + dy.shape.str() + " contains NaN or Inf");
    LocalExchange local;
    ExpertExchange& ex = exchange ? *exchange : local;
    const RoutePlan& plan = cache.plan;
    const int64_t A = plan.n_assignments();
    const float* dyp = dy.f32();
    float* dxp = dx.f32();
    float* out = cache.out.f32();

    PhaseClock clock;
    // 1. Combine backward: d weight_a = <dy_t, out_a>, then out_a := weight_a * dy_t is the
    //    gradient of the expert output, written over the output it no longer needs.
    std::vector<float> dw(static_cast<size_t>(A));
#pragma omp parallel for schedule(static)
    for (int64_t a = 0; a < A; ++a) {
        const float* dyt = dyp + int64_t(plan.token_index[size_t(a)]) * D;
        dw[size_t(a)] = k.dot(dyt, out + a * D, D);
        k.scale_copy(out + a * D, plan.weight[size_t(a)], dyt, D);
    }

    cache.times.bwd_combine = clock.lap();
    // 2. Experts backward on the owners' rows; d rows come back in plan order, over `out`.
    const int64_t e0 = ex.expert_begin(plan), n_local = ex.expert_end(plan) - e0;
    std::vector<int64_t> offsets;
    float* dout_local = ex.to_experts(plan, out, D, offsets);
    MOE_CHECK(offsets == cache.local_offsets, op, "the exchange changed the expert layout between forward and backward");
    float* dw1 = grads.w1.f32() + e0 * F * D;
    float* dw3 = grads.w3.f32() + e0 * F * D;
    float* dw2 = grads.w2.f32() + e0 * D * F;
    const bool bf = c.dtype == DType::bf16;
    // The bf16 copies made by this forward (not refreshed: backward must see the same weights).
    MoeBf16Weights wb{};
    if (bf) wb = moe_layer_bf16_weights(cache, c, params, e0, n_local, false);
    if (bf) {
        SwigluGroupBf16 g{offsets.data(), n_local, D, F, wb.w1, wb.w3, wb.w2};
        swiglu_experts_backward_bf16(dout_local, dw1, dw3, dw2, dout_local, cache.h1.f32(),
                                     cache.h3.f32(), cache.scratch.f32(), cache.scratch_b.bf(),
                                     cache.rows_b.bf(), g, 0.0f);
    } else {
        const float* rows_local = ex.in_place() ? cache.rows.f32() : cache.rows_local.f32();
        SwigluGroup g{offsets.data(), n_local, D, F, params.w1.f32() + e0 * F * D,
                      params.w3.f32() + e0 * F * D, params.w2.f32() + e0 * D * F};
        swiglu_experts_backward(dout_local, dw1, dw3, dw2, dout_local, cache.h1.f32(),
                                cache.h3.f32(), cache.scratch.f32(), rows_local, g, 0.0f);
    }
    ex.from_experts(plan, dout_local, D, out);

    cache.times.bwd_experts = clock.lap();
    // 3. Scatter d rows to tokens: each token sums its kept assignments in k order.
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t)
        for (int64_t kk = 0; kk < plan.top_k; ++kk) {
            int32_t a = plan.assignment[size_t(t * plan.top_k + kk)];
            if (a >= 0) k.axpy(dxp + t * D, 1.0f, out + int64_t(a) * D, D);
        }

    cache.times.bwd_scatter = clock.lap();
    // 4. Router: d logits, then d router = dlogits^T @ x, dx += dlogits @ router.
    router_backward(dxp, grads, dw, coefs, cache, c, params, x.f32());

    cache.times.bwd_router = clock.lap();
    // 5. Shared experts: every token with weight 1, d rows accumulate straight into dx.
    if (S > 0) {
        int64_t offs[2] = {0, T};
        for (int64_t s = 0; s < S; ++s) {
            float* dws1 = grads.ws1.f32() + s * Fs * D;
            float* dws3 = grads.ws3.f32() + s * Fs * D;
            float* dws2 = grads.ws2.f32() + s * D * Fs;
            float* sh1 = cache.sh1.f32() + s * T * Fs;
            float* sh3 = cache.sh3.f32() + s * T * Fs;
            if (bf) {
                SwigluGroupBf16 gs{offs, 1, D, Fs, wb.ws1 + s * Fs * D, wb.ws3 + s * Fs * D,
                                   wb.ws2 + s * D * Fs};
                swiglu_experts_backward_bf16(dxp, dws1, dws3, dws2, dyp, sh1, sh3, cache.scratch.f32(),
                                             cache.scratch_b.bf(), cache.x_b.bf(), gs, 1.0f);
            } else {
                SwigluGroup gs{offs, 1, D, Fs, params.ws1.f32() + s * Fs * D,
                               params.ws3.f32() + s * Fs * D, params.ws2.f32() + s * D * Fs};
                swiglu_experts_backward(dxp, dws1, dws3, dws2, dyp, sh1, sh3, cache.scratch.f32(),
                                        x.f32(), gs, 1.0f);
            }
        }
    }
    cache.times.bwd_shared = clock.lap();
    cache.T = 0;  // the saved activations were consumed
}

}  // namespace moe
