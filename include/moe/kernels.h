// The element-wise and vector kernels of the MoE layer, behind a per-path dispatch table.
// kernels/ref/ holds the definition of each (plain scalar C++); kernels/avx2 and
// kernels/avx512 hold SIMD twins tested against it. Pointers are not checked: the layer
// validates shapes at its boundary and trusts itself inside.
#pragma once
#include <cstdint>

#include "moe/bf16.h"
#include "moe/cpu.h"

namespace moe {

struct KernelTable {
    CpuPath path;
    // act[i] = silu(gate[i]) * up[i], silu(a) = a / (1 + exp(-a))
    void (*swiglu_forward)(float* act, const float* gate, const float* up, int64_t n);
    // dgate[i] = dact[i] * up[i] * silu'(gate[i]); dup[i] = dact[i] * silu(gate[i]).
    // May be called in place with dgate == gate and dup == up.
    void (*swiglu_backward)(float* dgate, float* dup, const float* dact, const float* gate,
                            const float* up, int64_t n);
    // y[i] += a * x[i]
    void (*axpy)(float* y, float a, const float* x, int64_t n);
    // y[i] = a * x[i]
    void (*scale_copy)(float* y, float a, const float* x, int64_t n);
    // sum_i a[i] * b[i], accumulated in f32 lanes (order differs between paths)
    float (*dot)(const float* a, const float* b, int64_t n);
    // round to nearest even; NaN stays NaN
    void (*f32_to_bf16)(bf16* out, const float* in, int64_t n);
    void (*bf16_to_f32)(float* out, const bf16* in, int64_t n);
    // true when every value is finite
    bool (*all_finite)(const float* x, int64_t n);
};

// The table for the active path (cpu_active_path(), MOE_CPU override honoured), resolved once.
const KernelTable& kernels();
// The table of a given path, or nullptr when that path is not compiled in or the CPU lacks it.
const KernelTable* kernels_for(CpuPath p);

// Defined in kernels/<path>/ (each file compiled with its own -m flags).
extern const KernelTable kKernelsScalar;
extern const KernelTable kKernelsAvx2;
extern const KernelTable kKernelsAvx512;

}  // namespace moe
