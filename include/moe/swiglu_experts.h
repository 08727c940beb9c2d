// Grouped SwiGLU expert compute (MegaBlocks-style dropless): rows arrive grouped by expert,
// one GEMM per expert segment, no padding. expert(v) = w2 @ (silu(w1 @ v) * (w3 @ v)).
#pragma once
#include <cstdint>
#include <functional>

#include "moe/bf16.h"

namespace moe {

struct SwigluGroup {
    const int64_t* offsets;  // (n_experts + 1,) segment e is rows [offsets[e], offsets[e+1])
    int64_t n_experts;
    int64_t D, F;
    const float* w1;  // (n_experts, F, D)
    const float* w3;  // (n_experts, F, D)
    const float* w2;  // (n_experts, D, F)
};

// out (N, D) = beta_out * out + expert(rows); saves h1, h3 (N, F) for backward.
// scratch: at least max segment length * F floats.
void swiglu_experts_forward(float* out, float* h1, float* h3, float* scratch, const float* rows,
                            const SwigluGroup& g, float beta_out);

// Backward. dout (N, D) is the gradient of out; drows (N, D) = beta_drows * drows + d rows
// (drows may alias dout: each segment's dout is consumed before its drows is written).
// h1 / h3 are overwritten with their gradients. dw1, dw3, dw2 accumulate (+=).
void swiglu_experts_backward(float* drows, float* dw1, float* dw3, float* dw2, const float* dout,
                             float* h1, float* h3, float* scratch, const float* rows,
                             const SwigluGroup& g, float beta_drows);

// bf16 compute (bf16 GEMM inputs, f32 accumulation and outputs). Weights are the bf16 copies
// of the f32 masters; weight gradients accumulate in f32. rows_b (N, D) are the rows in bf16.
struct SwigluGroupBf16 {
    const int64_t* offsets;  // (n_experts + 1,)
    int64_t n_experts;
    int64_t D, F;
    const bf16* w1;  // (n_experts, F, D)
    const bf16* w3;  // (n_experts, F, D)
    const bf16* w2;  // (n_experts, D, F)
};

// Scratch: at least max segment length * F floats and max segment length * (2F + D) bf16.
void swiglu_experts_forward_bf16(float* out, float* h1, float* h3, float* scratch,
                                 bf16* scratch_b, const bf16* rows_b, const SwigluGroupBf16& g,
                                 float beta_out);
void swiglu_experts_backward_bf16(float* drows, float* dw1, float* dw3, float* dw2,
                                  const float* dout, float* h1, float* h3, float* scratch,
                                  bf16* scratch_b, const bf16* rows_b, const SwigluGroupBf16& g,
                                  float beta_drows);

// Element-wise work over a large array, split in fixed chunks across the OpenMP threads.
void parallel_chunks(int64_t n, const std::function<void(int64_t begin, int64_t len)>& fn);

}  // namespace moe
