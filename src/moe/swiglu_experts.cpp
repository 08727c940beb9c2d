#include "moe/swiglu_experts.h"

#include <omp.h>

#include "moe/gemm.h"
#include "moe/kernels.h"

namespace moe {
void parallel_chunks(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
    const int64_t chunk = 16384;  // 64 KiB of f32: large enough to amortise the call
    int64_t n_chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (n_chunks > 1)
    for (int64_t c = 0; c < n_chunks; ++c) {
        int64_t begin = c * chunk;
        fn(begin, n - begin < chunk ? n - begin : chunk);
    }
}

void swiglu_experts_forward(float* out, float* h1, float* h3, float* scratch, const float* rows,
                            const SwigluGroup& g, float beta_out) {
    const KernelTable& k = kernels();
    const int64_t D = g.D, F = g.F;
    for (int64_t e = 0; e < g.n_experts; ++e) {
        int64_t r0 = g.offsets[e], n = g.offsets[e + 1] - r0;
        if (n == 0) continue;
        const float* x = rows + r0 * D;
        float* a1 = h1 + r0 * F;
        float* a3 = h3 + r0 * F;
        gemm_f32(false, true, n, F, D, 1.0f, x, D, g.w1 + e * F * D, D, 0.0f, a1, F);
        gemm_f32(false, true, n, F, D, 1.0f, x, D, g.w3 + e * F * D, D, 0.0f, a3, F);
        parallel_chunks(n * F, [&](int64_t i, int64_t len) {
            k.swiglu_forward(scratch + i, a1 + i, a3 + i, len);
        });
        gemm_f32(false, true, n, D, F, 1.0f, scratch, F, g.w2 + e * D * F, F, beta_out,
                 out + r0 * D, D);
    }
}

void swiglu_experts_backward(float* drows, float* dw1, float* dw3, float* dw2, const float* dout,
                             float* h1, float* h3, float* scratch, const float* rows,
                             const SwigluGroup& g, float beta_drows) {
    const KernelTable& k = kernels();
    const int64_t D = g.D, F = g.F;
    for (int64_t e = 0; e < g.n_experts; ++e) {
        int64_t r0 = g.offsets[e], n = g.offsets[e + 1] - r0;
        if (n == 0) continue;
        const float* x = rows + r0 * D;
        const float* dy = dout + r0 * D;
        float* a1 = h1 + r0 * F;
        float* a3 = h3 + r0 * F;
        const float* w1 = g.w1 + e * F * D;
        const float* w3 = g.w3 + e * F * D;
        const float* w2 = g.w2 + e * D * F;
        // act is recomputed rather than saved: one cheap element-wise pass saves (A, F) floats.
        parallel_chunks(n * F, [&](int64_t i, int64_t len) {
            k.swiglu_forward(scratch + i, a1 + i, a3 + i, len);
        });
        gemm_f32(true, false, D, F, n, 1.0f, dy, D, scratch, F, 1.0f, dw2 + e * D * F, F);
        gemm_f32(false, false, n, F, D, 1.0f, dy, D, w2, F, 0.0f, scratch, F);  // dact
        parallel_chunks(n * F, [&](int64_t i, int64_t len) {
            k.swiglu_backward(a1 + i, a3 + i, scratch + i, a1 + i, a3 + i, len);
        });
        gemm_f32(true, false, F, D, n, 1.0f, a1, F, x, D, 1.0f, dw1 + e * F * D, D);
        gemm_f32(true, false, F, D, n, 1.0f, a3, F, x, D, 1.0f, dw3 + e * F * D, D);
        // dy is dead from here on, so drows may alias it.
        float* dx = drows + r0 * D;
        gemm_f32(false, false, n, D, F, 1.0f, a1, F, w1, D, beta_drows, dx, D);
        gemm_f32(false, false, n, D, F, 1.0f, a3, F, w3, D, 1.0f, dx, D);
    }
}

}  // namespace moe
