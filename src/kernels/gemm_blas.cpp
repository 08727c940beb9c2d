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
