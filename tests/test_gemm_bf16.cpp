// bf16 GEMM: every path this CPU has against a double-precision product of the same bf16 values.
// Tolerance per element: (K + 4) * FLT_EPSILON * (|alpha| sum_k |a b| + |beta C0|), the
// worst-case bound of a K-term f32 sum (whatever the order or pairing of the products).
#include <gtest/gtest.h>
#include <omp.h>

#include <cfloat>
#include <cmath>
#include <limits>
#include <vector>

#include "moe/gemm_bf16.h"
#include "moe/rng.h"

using namespace moe;

namespace {

std::vector<bf16> random_bf16(int64_t n, uint64_t seed) {
    std::vector<float> f(static_cast<size_t>(n));
    Rng(seed).fill_normal(f.data(), n, 0, 1);
    std::vector<bf16> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out[size_t(i)] = float_to_bf16(f[size_t(i)]);
    return out;
}

std::vector<CpuPath> paths() {
    std::vector<CpuPath> out;
    for (int p = 0; p < kNumCpuPaths; ++p)
        if (cpu_supports(CpuPath(p))) out.push_back(CpuPath(p));
    return out;
}

void check(CpuPath path, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
           float beta, int64_t pad) {
    const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    auto A = random_bf16((ta ? K : M) * lda + 1, 1), B = random_bf16((tb ? N : K) * ldb + 1, 2);
    std::vector<float> C(static_cast<size_t>(M * ldc + 1));
    Rng(3).fill_normal(C.data(), int64_t(C.size()), 0, 1);
    if (beta == 0.0f) std::fill(C.begin(), C.end(), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> C0 = C;
    gemm_bf16_path(path, ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < K; ++k) {
                double a = bf16_to_float(ta ? A[size_t(k * lda + i)] : A[size_t(i * lda + k)]);
                double b = bf16_to_float(tb ? B[size_t(j * ldb + k)] : B[size_t(k * ldb + j)]);
                ref += a * b, mag += std::fabs(a * b);
            }
            double c0 = beta == 0.0f ? 0.0 : C0[size_t(i * ldc + j)];
            ref = alpha * ref + beta * c0;
            double tol = (K + 4) * double(FLT_EPSILON) * (std::fabs(alpha) * mag + std::fabs(beta * c0)) + 1e-30;
            ASSERT_NEAR(C[size_t(i * ldc + j)], ref, tol)
                << cpu_path_name(path) << " ta=" << ta << " tb=" << tb << " M=" << M << " N=" << N
                << " K=" << K << " at (" << i << ", " << j << ")";
        }
    for (int64_t i = 0; i < M; ++i)  // padding columns are never written
        for (int64_t j = N; j < ldc && i * ldc + j < int64_t(C.size()); ++j)
            ASSERT_TRUE(std::isnan(C0[size_t(i * ldc + j)]) ? std::isnan(C[size_t(i * ldc + j)])
                                                            : C[size_t(i * ldc + j)] == C0[size_t(i * ldc + j)]);
}

}  // namespace

TEST(GemmBf16, EveryPathEveryTransposeOddShapes) {
    const int64_t shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 129}, {13, 40, 600}, {100, 70, 3}};
    for (CpuPath p : paths())
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (auto& s : shapes) {
                    check(p, ta, tb, s[0], s[1], s[2], 1.0f, 0.0f, 0);
                    check(p, ta, tb, s[0], s[1], s[2], -0.75f, 0.5f, 3);
                }
}

TEST(GemmBf16, BetaOneAccumulatesAndEmptyShapes) {
    for (CpuPath p : paths()) {
        check(p, false, false, 20, 37, 64, 1.0f, 1.0f, 1);
        check(p, true, false, 0, 5, 7, 1.0f, 0.0f, 0);
        check(p, false, true, 5, 0, 7, 1.0f, 0.0f, 0);
        check(p, false, false, 5, 6, 0, 1.0f, 0.5f, 0);  // K = 0: C = beta * C
    }
}

TEST(GemmBf16, NativeKernelIsBitIdenticalAcrossThreadCounts) {
    if (!cpu_supports(CpuPath::avx512_bf16)) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
    const int64_t M = 200, N = 300, K = 700;
    auto A = random_bf16(M * K, 4), B = random_bf16(K * N, 5);
    std::vector<float> c1(size_t(M * N)), c4(size_t(M * N));
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    gemm_bf16_path(CpuPath::avx512_bf16, false, true, M, N, K, 1, A.data(), K, B.data(), K, 0, c1.data(), N);
    omp_set_num_threads(4);
    gemm_bf16_path(CpuPath::avx512_bf16, false, true, M, N, K, 1, A.data(), K, B.data(), K, 0, c4.data(), N);
    omp_set_num_threads(saved);
    EXPECT_EQ(c1, c4);
}
