// GEMM through OpenBLAS (the OpenMP build, so its threads and ours are one pool).
// docs/gemm.md has the measurement that chose it over oneDNN, BLIS and our own kernel.
#include <cblas.h>
#include <omp.h>

#include "moe/gemm.h"

extern "C" void openblas_set_num_threads(int);

namespace moe {

void gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc) {
    if (M == 0 || N == 0) return;
    // Vector shapes (a router with one output, a rank-1 update): OpenBLAS's sgemm packs the whole
    // matrix for them and runs near 1 GFLOP/s; gemv / ger stream it once.
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    if (N == 1 && K > 0) {  // c (M) = alpha op(A) b + beta c
        const blasint incb = trans_b ? 1 : blasint(ldb);
        cblas_sgemv(CblasRowMajor, ta, blasint(trans_a ? K : M), blasint(trans_a ? M : K), alpha, A,
                    blasint(lda), B, incb, beta, C, blasint(ldc));
        return;
    }
    if (M == 1 && K > 0) {  // c (N) = alpha op(B)^T a + beta c
        const blasint inca = trans_a ? blasint(lda) : 1;
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, blasint(trans_b ? N : K),
                    blasint(trans_b ? K : N), alpha, B, blasint(ldb), A, inca, beta, C, 1);
        return;
    }
    if (K == 1) {  // C = beta C + alpha a b^T
        for (int64_t i = 0; i < M; ++i) {
            float* c = C + i * ldc;
            if (beta == 0.0f) {
                for (int64_t j = 0; j < N; ++j) c[j] = 0.0f;
            } else if (beta != 1.0f) {
                for (int64_t j = 0; j < N; ++j) c[j] *= beta;
            }
        }
        cblas_sger(CblasRowMajor, blasint(M), blasint(N), alpha, A, trans_a ? 1 : blasint(lda), B,
                   trans_b ? blasint(ldb) : 1, C, blasint(ldc));
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, blasint(M), blasint(N), blasint(K), alpha, A,
                blasint(lda), B, blasint(ldb), beta, C, blasint(ldc));
}

void set_num_threads(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

const char* gemm_backend_name() { return "openblas"; }

}  // namespace moe
