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
    const int64_t D = c.d_model, T = cache.T;
    MOE_CHECK(T > 0 && cache.plan.n_tokens == T, op, "backward called without a forward");
    check_tensor(op, "x", x, {T, D});
    check_tensor(op, "dy", dy, {T, D});
    check_tensor(op, "dx", dx, {T, D});
    LocalExchange local;
    ExpertExchange& ex = exchange ? *exchange : local;
    const LocalExperts mine = moe_layer_local_experts(ex, c);
    MOE_CHECK(!params.quant.active(), op, "the experts are quantized (inference weights); backward needs f32 weights");
    moe_layer_check_params(op, "", c, params, mine.n_local);
    moe_layer_check_params(op, "grad.", c, grads, mine.n_local);
    MOE_CHECK(grads.w1.shape[0] == params.w1.shape[0], op,
              "grad.w1 holds " + std::to_string(grads.w1.shape[0]) + " experts but w1 holds " +
                  std::to_string(params.w1.shape[0]) + "; allocate both for the same experts");
    const KernelTable& k = kernels();
    MOE_CHECK(k.all_finite(dy.f32(), dy.numel()), op,
              "dy of shape " + dy.shape.str() + " contains NaN or Inf");
    if (c.router.kind == RouterKind::soft_moe) {
        soft_moe_backward(dx.f32(), grads, dy.f32(), coefs, cache, c, params, x.f32(), T);
        cache.T = 0;
        return;
    }
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
    const int64_t n_local = mine.n_local;
    const int64_t w0 = moe_layer_weight_index(params, c, mine);  // expert e0's index in params.w1
    std::vector<int64_t> offsets;
    ex.prepare_backward(plan);
    float* dout_local = ex.to_experts(plan, out, D, offsets);
    MOE_CHECK(offsets == cache.local_offsets, op, "the exchange changed the expert layout between forward and backward");
    const float* rows_local = ex.in_place() ? cache.rows.f32() : cache.rows_local.f32();
    experts_backward(dout_local, grads, cache, c, params, rows_local, w0, n_local);
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
    shared_backward(dxp, dyp, grads, cache, c, params, x.f32(), T, w0, n_local);
    cache.times.bwd_shared = clock.lap();
    cache.T = 0;  // the saved activations were consumed
}

}  // namespace moe
