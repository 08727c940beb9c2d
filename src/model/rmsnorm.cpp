// RMSNorm (Zhang & Sennrich 2019; Llama's input_layernorm), forward and backward.
#include <cmath>
#include <vector>

#include "moe/attention.h"

namespace moe {

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t R, int64_t D,
                     float eps) {
#pragma omp parallel for schedule(static) if (R * D >= 32768)
    for (int64_t r = 0; r < R; ++r) {
        const float* xr = x + r * D;
        double ss = 0;
        for (int64_t j = 0; j < D; ++j) ss += double(xr[j]) * xr[j];
        const float s = float(1.0 / std::sqrt(ss / double(D) + double(eps)));
        rstd[r] = s;
        for (int64_t j = 0; j < D; ++j) y[r * D + j] = xr[j] * s * w[j];
    }
}

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, int64_t R, int64_t D) {
    // dx_j = s (w_j dy_j - x_j s^2 mean_k(w_k dy_k x_k)); dw_j += sum_r dy_rj x_rj s_r.
#pragma omp parallel for schedule(static) if (R * D >= 32768)
    for (int64_t r = 0; r < R; ++r) {
        const float* xr = x + r * D;
        const float* g = dy + r * D;
        const double s = rstd[r];
        double dot = 0;
        for (int64_t j = 0; j < D; ++j) dot += double(w[j]) * g[j] * xr[j];
        const double m = dot / double(D) * s * s;
        for (int64_t j = 0; j < D; ++j) dx[r * D + j] += float(s * (double(w[j]) * g[j] - xr[j] * m));
    }
    // The weight gradient sums over rows: columns split across threads, rows in fixed order.
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < D; ++j) {
        double acc = 0;
        for (int64_t r = 0; r < R; ++r) acc += double(dy[r * D + j]) * x[r * D + j] * rstd[r];
        dw[j] += float(acc);
    }
}

}  // namespace moe
