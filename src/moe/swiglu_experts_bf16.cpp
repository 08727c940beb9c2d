// Grouped SwiGLU experts in bf16: the same algorithm as swiglu_experts.cpp with every GEMM
// input in bf16 (weights: bf16 copies of the f32 masters; activations rounded just before the
// GEMM that reads them) and every GEMM output, saved activation and gradient in f32.
#include "moe/gemm_bf16.h"
#include "moe/kernels.h"
#include "moe/swiglu_experts.h"

namespace moe {
namespace {

void to_bf16(bf16* out, const float* in, int64_t n) {
    const KernelTable& k = kernels();
    parallel_chunks(n, [&](int64_t i, int64_t len) { k.f32_to_bf16(out + i, in + i, len); });
}

}  // namespace

void swiglu_experts_forward_bf16(float* out, float* h1, float* h3, float* scratch,
                                 bf16* scratch_b, const bf16* rows_b, const SwigluGroupBf16& g,
                                 float beta_out) {
    const KernelTable& k = kernels();
    const int64_t D = g.D, F = g.F;
    for (int64_t e = 0; e < g.n_experts; ++e) {
        int64_t r0 = g.offsets[e], n = g.offsets[e + 1] - r0;
        if (n == 0) continue;
        const bf16* x = rows_b + r0 * D;
        float* a1 = h1 + r0 * F;
        float* a3 = h3 + r0 * F;
        gemm_bf16(false, true, n, F, D, 1.0f, x, D, g.w1 + e * F * D, D, 0.0f, a1, F);
        gemm_bf16(false, true, n, F, D, 1.0f, x, D, g.w3 + e * F * D, D, 0.0f, a3, F);
        parallel_chunks(n * F, [&](int64_t i, int64_t len) {
            k.swiglu_forward(scratch + i, a1 + i, a3 + i, len);
            k.f32_to_bf16(scratch_b + i, scratch + i, len);
        });
        gemm_bf16(false, true, n, D, F, 1.0f, scratch_b, F, g.w2 + e * D * F, F, beta_out,
                  out + r0 * D, D);
    }
}

void swiglu_experts_backward_bf16(float* drows, float* dw1, float* dw3, float* dw2,
                                  const float* dout, float* h1, float* h3, float* scratch,
                                  bf16* scratch_b, const bf16* rows_b, const SwigluGroupBf16& g,
                                  float beta_drows) {
    const KernelTable& k = kernels();
    const int64_t D = g.D, F = g.F;
    for (int64_t e = 0; e < g.n_experts; ++e) {
        int64_t r0 = g.offsets[e], n = g.offsets[e + 1] - r0;
        if (n == 0) continue;
        const bf16* x = rows_b + r0 * D;
        float* a1 = h1 + r0 * F;
        float* a3 = h3 + r0 * F;
        bf16* act_b = scratch_b;           // (n, F), later d gate
        bf16* dup_b = scratch_b + n * F;   // (n, F)
        bf16* dout_b = scratch_b + 2 * n * F;  // (n, D)
        to_bf16(dout_b, dout + r0 * D, n * D);
        parallel_chunks(n * F, [&](int64_t i, int64_t len) {
            k.swiglu_forward(scratch + i, a1 + i, a3 + i, len);
            k.f32_to_bf16(act_b + i, scratch + i, len);
        });
        gemm_bf16(true, false, D, F, n, 1.0f, dout_b, D, act_b, F, 1.0f, dw2 + e * D * F, F);
        gemm_bf16(false, false, n, F, D, 1.0f, dout_b, D, g.w2 + e * D * F, F, 0.0f, scratch, F);
        parallel_chunks(n * F, [&](int64_t i, int64_t len) {
            k.swiglu_backward(a1 + i, a3 + i, scratch + i, a1 + i, a3 + i, len);
            k.f32_to_bf16(act_b + i, a1 + i, len);
            k.f32_to_bf16(dup_b + i, a3 + i, len);
        });
        gemm_bf16(true, false, F, D, n, 1.0f, act_b, F, x, D, 1.0f, dw1 + e * F * D, D);
        gemm_bf16(true, false, F, D, n, 1.0f, dup_b, F, x, D, 1.0f, dw3 + e * F * D, D);
        // dout is dead (its bf16 copy too), so drows may alias it.
        float* dx = drows + r0 * D;
        gemm_bf16(false, false, n, D, F, 1.0f, act_b, F, g.w1 + e * F * D, D, beta_drows, dx, D);
        gemm_bf16(false, false, n, D, F, 1.0f, dup_b, F, g.w3 + e * F * D, D, 1.0f, dx, D);
    }
}

}  // namespace moe
