// Our own f32 GEMM: a BLIS-style blocked driver (pack A and B panels, run an MR x NR register
// microkernel over them) with one microkernel per CpuPath. It exists to measure how close a
// small, readable kernel gets to the BLAS libraries (docs/gemm.md) and as a BLAS-free fallback;
// the product calls moe::gemm_f32 (include/moe/gemm.h).
#pragma once
#include <cstdint>

#include "moe/cpu.h"

namespace moe {

// Same contract as moe::gemm_f32: C(M, N) = alpha * op(A)(M, K) @ op(B)(K, N) + beta * C, all
// row-major, leading dimensions in elements. op(A) = A (M, K) when !trans_a, else A is stored
// (K, M); same for B (stored (K, N) or, when trans_b, (N, K)). beta == 0 means C is not read
// (NaN in C does not propagate), as in BLAS. Runs on the active path (cpu_active_path()) with
// omp_get_max_threads() threads.
void gemm_f32_own(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc);

// The same on a given path (for tests and benchmarks). Throws moe::Error when the CPU cannot
// run `path`.
void gemm_f32_own_path(CpuPath path, bool trans_a, bool trans_b, int64_t M, int64_t N,
                       int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                       int64_t ldb, float beta, float* C, int64_t ldc);

// Internal: one microkernel and the cache blocking it was tuned with. Defined in
// src/kernels/gemm_own.cpp (scalar), src/kernels/avx2/, src/kernels/avx512/.
struct GemmOwnKernel {
    CpuPath path;
    int mr, nr;              // register tile
    int64_t mc, kc, nc;      // cache blocks: A block (mc, kc) in L2, B block (kc, nc) in L3
    // C(m, n) = alpha * acc + beta * C, acc(mr, nr) = sum_p a(p, :)^T b(p, :), where
    // a (kc, mr) and b (kc, nr) are packed panels (zero-padded past m and n) and m <= mr,
    // n <= nr select the part of the tile that exists in C. beta == 0: C is not read.
    void (*tile)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m,
                 int n, float alpha, float beta);
};

extern const GemmOwnKernel kGemmOwnScalar;
extern const GemmOwnKernel kGemmOwnAvx2;
extern const GemmOwnKernel kGemmOwnAvx512;

}  // namespace moe
