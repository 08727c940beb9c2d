// bf16 GEMM with f32 accumulation and f32 output, for bf16 training (f32 master weights).
// C(M, N) = alpha * op(A)(M, K) @ op(B)(K, N) + beta * C; A and B bf16, C f32; row-major,
// leading dimensions in elements; op(A) = A (M, K) when !trans_a, else A is stored (K, M);
// same for B. beta == 0: C is not read.
//
// Paths: avx512_bf16 runs our VDPBF16PS kernel (src/kernels/avx512_bf16/); every other path
// widens the operands to f32 (exact: a bf16 is the top half of an f32) and calls gemm_f32.
// The widening path is the definition the native kernel is tested against.
#pragma once
#include <cstdint>

#include "moe/bf16.h"
#include "moe/cpu.h"

namespace moe {

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, float* C,
               int64_t ldc);

// The same on a given path; throws moe::Error when the CPU cannot run it.
void gemm_bf16_path(CpuPath path, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                    float alpha, const bf16* A, int64_t lda, const bf16* B, int64_t ldb,
                    float beta, float* C, int64_t ldc);

// The native AVX512-BF16 GEMM (defined in src/kernels/avx512_bf16/gemm_bf16_avx512bf16.cpp).
void gemm_bf16_avx512bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                          float alpha, const bf16* A, int64_t lda, const bf16* B, int64_t ldb,
                          float beta, float* C, int64_t ldc);

}  // namespace moe
