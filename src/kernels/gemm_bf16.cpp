// bf16 GEMM front end: the native kernel where the CPU has AVX512-BF16, else exact widening to
// f32 and the f32 GEMM backend.
#include "moe/gemm_bf16.h"

#include <vector>

#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/kernels.h"

namespace moe {
namespace {

// Widens a rows x cols bf16 matrix (leading dimension ld) into a dense f32 one.
void widen(std::vector<float>& out, const bf16* in, int64_t rows, int64_t cols, int64_t ld,
           const KernelTable& k) {
    out.resize(size_t(rows * cols));
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; ++r) k.bf16_to_f32(out.data() + r * cols, in + r * ld, cols);
}

void gemm_bf16_widen(const KernelTable& k, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                     float alpha, const bf16* A, int64_t lda, const bf16* B, int64_t ldb,
                     float beta, float* C, int64_t ldc) {
    // Reused across calls: one layer step makes hundreds of these.
    thread_local std::vector<float> a, b;
    const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
    const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
    widen(a, A, a_rows, a_cols, lda, k);
    widen(b, B, b_rows, b_cols, ldb, k);
    gemm_f32(ta, tb, M, N, K, alpha, a.data(), a_cols, b.data(), b_cols, beta, C, ldc);
}

}  // namespace

void gemm_bf16_path(CpuPath path, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                    float alpha, const bf16* A, int64_t lda, const bf16* B, int64_t ldb,
                    float beta, float* C, int64_t ldc) {
    MOE_CHECK(cpu_supports(path), "gemm_bf16",
              std::string("this CPU cannot run the ") + cpu_path_name(path) + " path");
    if (M == 0 || N == 0) return;
    if (path == CpuPath::avx512_bf16)
        gemm_bf16_avx512bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        gemm_bf16_widen(*kernels_for(path), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A,
               int64_t lda, const bf16* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    static const CpuPath path = cpu_active_path();
    gemm_bf16_path(path, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace moe
