// The definition of every element-wise kernel: plain scalar C++, compiled for baseline x86-64.
#include <cmath>

#include "moe/kernels.h"

namespace moe {
namespace {

void swiglu_forward(float* act, const float* gate, const float* up, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        float g = gate[i];
        act[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

void swiglu_backward(float* dgate, float* dup, const float* dact, const float* gate,
                     const float* up, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        float g = gate[i], u = up[i], d = dact[i];
        float s = 1.0f / (1.0f + std::exp(-g));
        float silu = g * s;
        // d silu / dg = s * (1 + g * (1 - s))
        dgate[i] = d * u * s * (1.0f + g * (1.0f - s));
        dup[i] = d * silu;
    }
}

void axpy(float* y, float a, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void scale_copy(float* y, float a, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = a * x[i];
}

float dot(const float* a, const float* b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

void f32_to_bf16(bf16* out, const float* in, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = float_to_bf16(in[i]);
}

void bf16_to_f32(float* out, const bf16* in, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(in[i]);
}

bool all_finite(const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i])) return false;
    return true;
}

}  // namespace

const KernelTable kKernelsScalar = {CpuPath::scalar, swiglu_forward, swiglu_backward, axpy,
                                    scale_copy,      dot,            f32_to_bf16,     bf16_to_f32,
                                    all_finite};

}  // namespace moe
