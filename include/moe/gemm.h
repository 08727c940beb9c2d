// Dense matrix products. The backend is a BLAS library (chosen in docs/gemm.md by measurement);
// every call goes through here so a CUDA or oneDNN backend can slot in at one place.
#pragma once
#include <cstdint>

#include "moe/bf16.h"

namespace moe {

// C(M, N) = alpha * op(A)(M, K) @ op(B)(K, N) + beta * C, all row-major, leading dimensions in
// elements. op(A) = A (M, K) when !trans_a, else A is stored (K, M); same for B.
void gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc);

// Threads used by the GEMM backend and the OpenMP loops (the -t flag).
void set_num_threads(int n);
int get_num_threads();
const char* gemm_backend_name();

}  // namespace moe
