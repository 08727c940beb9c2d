// bf16 GEMM tests: every path this CPU supports (scalar, avx2, avx512, avx512_bf16), every
// transpose case, odd / empty / multi-block shapes, padded leading dimensions, alpha / beta
// variants, against a double-precision product of the same bf16 values.
//
// Tolerance: for each C(i, j), |C - ref| <= (K + 4) * FLT_EPSILON * bound(i, j) with
// bound = |alpha| * sum_p |op(A)(i, p)| |op(B)(p, j)| + |beta * C0(i, j)|.
// The products of two bf16 values are exact in f32, so the only errors are the f32 additions:
// at most K of them per element (VDPBF16PS rounds after each of its two products, still one
// rounding per product), plus one per KC block for the C update and a few for alpha / beta.
// The worst-case bound of such a sum is ~(K + K / KC + 3) u sum |a||b|, u = FLT_EPSILON / 2
// (Higham 3.1), whatever the order; the tolerance is twice that, so no correct kernel can fail
// it, while a dropped, doubled or misplaced product (an error of order |a||b| ~ bound / K) is
// far above it for every K here, as is rounding the accumulator to bf16 (2^-9 relative).
//
// Beyond the tolerance: the scalar, AVX2 and AVX-512 f32 kernels are bit-identical (exact products: their
// multiply-then-add and FMA round alike), and every path is bit-identical across thread counts.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "moe/error.h"
#include "moe/gemm_bf16.h"
#include "moe/rng.h"

using namespace moe;

namespace {

std::vector<bf16> random_bf16(int64_t n, uint64_t seed) {
    std::vector<float> f(size_t(std::max<int64_t>(n, 1)));
    Rng(seed).fill_normal(f.data(), n, 0, 1);
    std::vector<bf16> out(f.size());
    for (size_t i = 0; i < f.size(); ++i) out[i] = float_to_bf16(f[i]);
    return out;
}

std::vector<CpuPath> paths() {
    std::vector<CpuPath> out;
    for (int p = 0; p < kNumCpuPaths; ++p)
        if (cpu_supports(CpuPath(p))) out.push_back(CpuPath(p));
    return out;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

struct Case {
    bool ta, tb;
    int64_t M, N, K;
    float alpha, beta;
    int64_t pad;  // added to every leading dimension
};

std::string describe(CpuPath path, const Case& c) {
    return std::string(cpu_path_name(path)) + " ta=" + std::to_string(c.ta) +
           " tb=" + std::to_string(c.tb) + " M=" + std::to_string(c.M) +
           " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
           " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta) +
           " pad=" + std::to_string(c.pad);
}

// Runs one case on one path and checks it against the double reference; with beta == 0, C
// starts as NaN everywhere (it must not be read). Padding columns of C must stay untouched.
void check(CpuPath path, const Case& c, bool amx = false) {
    SCOPED_TRACE(describe(path, c) + (amx ? " (AMX)" : ""));
    const int64_t lda = (c.ta ? c.M : c.K) + c.pad, ldb = (c.tb ? c.K : c.N) + c.pad;
    const int64_t ldc = c.N + c.pad;
    const auto A = random_bf16((c.ta ? c.K : c.M) * lda, 1);
    const auto B = random_bf16((c.tb ? c.N : c.K) * ldb, 2);
    std::vector<float> C(size_t(std::max<int64_t>(c.M * ldc, 1)));
    Rng(3).fill_normal(C.data(), int64_t(C.size()), 0, 1);
    if (c.beta == 0.0f) std::fill(C.begin(), C.end(), std::numeric_limits<float>::quiet_NaN());
    const std::vector<float> C0 = C;

    if (amx)
        gemm_bf16_amx(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta,
                      C.data(), ldc);
    else
        gemm_bf16_path(path, c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb,
                       c.beta, C.data(), ldc);

    auto a_at = [&](int64_t i, int64_t p) {
        return double(bf16_to_float(c.ta ? A[size_t(p * lda + i)] : A[size_t(i * lda + p)]));
    };
    auto b_at = [&](int64_t p, int64_t j) {
        return double(bf16_to_float(c.tb ? B[size_t(j * ldb + p)] : B[size_t(p * ldb + j)]));
    };
    int64_t failures = 0;
    for (int64_t i = 0; i < c.M; ++i)
        for (int64_t j = 0; j < c.N; ++j) {
            double dot = 0.0, mag = 0.0;
            for (int64_t p = 0; p < c.K; ++p) {
                const double ab = a_at(i, p) * b_at(p, j);
                dot += ab;
                mag += std::fabs(ab);
            }
            const double c0 = c.beta == 0.0f ? 0.0 : double(C0[size_t(i * ldc + j)]);
            const double ref = double(c.alpha) * dot + double(c.beta) * c0;
            const double tol = (double(c.K) + 4.0) * double(FLT_EPSILON) *
                               (std::fabs(double(c.alpha)) * mag + std::fabs(double(c.beta) * c0));
            const double got = C[size_t(i * ldc + j)];
            if (!(std::fabs(got - ref) <= tol) && failures++ < 5)
                ADD_FAILURE() << "C(" << i << ", " << j << ") = " << got << ", reference " << ref
                              << ", tolerance " << tol;
        }
    EXPECT_EQ(failures, 0);
    for (int64_t i = 0; i < c.M; ++i)
        for (int64_t j = c.N; j < ldc; ++j)
            ASSERT_TRUE(same_bits(C[size_t(i * ldc + j)], C0[size_t(i * ldc + j)]))
                << "padding C(" << i << ", " << j << ") was written";
}

}  // namespace

TEST(GemmBf16, EveryPathEveryTransposeOddShapes) {
    // (M, N, K): tiny, odd, odd K (an odd tail of k-pairs), and products spanning several
    // tiles, tasks (128 columns) and KC blocks (192 / 384) with partial ones at every edge.
    const int64_t shapes[][3] = {{1, 1, 1},   {7, 13, 5},   {33, 65, 129}, {13, 40, 600},
                                 {100, 70, 3}, {2, 3, 1001}, {37, 300, 385}};
    for (CpuPath path : paths())
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (const auto& s : shapes) {
                    check(path, {ta, tb, s[0], s[1], s[2], 1.0f, 0.0f, 0});
                    check(path, {ta, tb, s[0], s[1], s[2], -0.75f, 0.5f, 3});
                    check(path, {ta, tb, s[0], s[1], s[2], 1.5f, 1.0f, 1});
                }
}

TEST(GemmBf16, LargeBlocksAndEmptyShapes) {
    for (CpuPath path : paths()) {
        // More rows than MC and than the packed row super-block (32 MC), more columns than NC.
        check(path, {false, true, 6200, 3, 5, 1.0f, 0.0f, 0});
        check(path, {true, false, 3, 3100, 20, 0.5f, 1.0f, 2});
        check(path, {false, false, 250, 200, 70, 1.0f, 0.5f, 0});
        // Empty: nothing happens for M or N = 0; K = 0 (or alpha = 0) gives C = beta * C.
        check(path, {true, false, 0, 5, 7, 1.0f, 0.0f, 0});
        check(path, {false, true, 5, 0, 7, 1.0f, 0.0f, 0});
        check(path, {false, false, 5, 6, 0, 1.0f, 0.5f, 0});
        check(path, {false, false, 5, 6, 0, 1.0f, 0.0f, 2});  // NaN C, beta 0 -> zeros
        check(path, {true, true, 9, 17, 30, 0.0f, 0.0f, 1});  // alpha 0: C = 0, A, B unused
        check(path, {true, true, 9, 17, 30, 0.0f, 1.0f, 1});  // alpha 0, beta 1: C unchanged
    }
}

TEST(GemmBf16, UnsupportedPathThrows) {
    for (int p = 0; p < kNumCpuPaths; ++p) {
        if (cpu_supports(CpuPath(p))) continue;
        float c = 0.0f;
        const bf16 one = float_to_bf16(1.0f);
        EXPECT_THROW(gemm_bf16_path(CpuPath(p), false, false, 1, 1, 1, 1.0f, &one, 1, &one, 1,
                                    0.0f, &c, 1),
                     Error);
    }
}

// The scalar kernel is the twin of the AVX2 and AVX-512 f32 kernels: same packing, same KC,
// exact products, so they must agree bit for bit.
TEST(GemmBf16, F32KernelsMatchScalarBitForBit) {
    const int64_t M = 45, N = 150, K = 600;
    const auto A = random_bf16(K * M, 7), B = random_bf16(N * K, 8);
    std::vector<float> c0(size_t(M * N));
    Rng(9).fill_normal(c0.data(), M * N, 0, 1);
    for (CpuPath path : {CpuPath::avx2, CpuPath::avx512}) {
        if (!cpu_supports(path)) continue;
        for (bool ta : {false, true})
            for (bool tb : {false, true}) {
                const int64_t lda = ta ? M : K, ldb = tb ? K : N;
                std::vector<float> ref = c0, got = c0;
                gemm_bf16_path(CpuPath::scalar, ta, tb, M, N, K, 0.75f, A.data(), lda, B.data(),
                               ldb, 0.5f, ref.data(), N);
                gemm_bf16_path(path, ta, tb, M, N, K, 0.75f, A.data(), lda, B.data(), ldb, 0.5f,
                               got.data(), N);
                for (int64_t i = 0; i < M * N; ++i)
                    ASSERT_TRUE(same_bits(ref[size_t(i)], got[size_t(i)]))
                        << cpu_path_name(path) << " ta=" << ta << " tb=" << tb << " element "
                        << i << ": " << got[size_t(i)] << " vs scalar " << ref[size_t(i)];
            }
    }
}

TEST(GemmBf16, BitIdenticalAcrossThreadCounts) {
    // Large enough to run threaded (> 64^3), with several tasks and KC blocks.
    const int64_t M = 200, N = 300, K = 700;
    const auto A = random_bf16(M * K, 4), B = random_bf16(K * N, 5);
    const int saved = omp_get_max_threads();
    for (CpuPath path : paths()) {
        std::vector<float> first;
        for (int threads : {1, 2, 3}) {
            std::vector<float> c(size_t(M * N), 1.0f);
            omp_set_num_threads(threads);
            gemm_bf16_path(path, false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.5f,
                           c.data(), N);
            if (first.empty()) {
                first = c;
                continue;
            }
            for (int64_t i = 0; i < M * N; ++i)
                ASSERT_TRUE(same_bits(first[size_t(i)], c[size_t(i)]))
                    << cpu_path_name(path) << " " << threads << " threads, element " << i;
        }
    }
    omp_set_num_threads(saved);
}

// The AMX kernel (what gemm_bf16 runs on Sapphire Rapids): the same reference check on shapes
// that cross its 32 x 32 blocks, 32-deep k steps and 256-deep K blocks, and bit-identical
// results for any thread count.
TEST(GemmBf16, AmxKernelMatchesReferenceAndThreadCounts) {
    if (!cpu_supports(CpuPath::avx512_bf16) || !amx_bf16_usable()) GTEST_SKIP() << "no AMX-BF16 here";
    for (bool ta : {false, true})
        for (bool tb : {false, true}) {
            check(CpuPath::avx512_bf16, {ta, tb, 1, 1, 1, 1.0f, 0.0f, 0}, true);
            check(CpuPath::avx512_bf16, {ta, tb, 7, 13, 5, 1.0f, 0.0f, 3}, true);
            check(CpuPath::avx512_bf16, {ta, tb, 33, 65, 129, -0.75f, 0.5f, 0}, true);
            check(CpuPath::avx512_bf16, {ta, tb, 70, 150, 600, 1.5f, 1.0f, 5}, true);
        }
    const int64_t M = 200, N = 300, K = 700;
    const auto A = random_bf16(M * K, 4), B = random_bf16(K * N, 5);
    std::vector<float> c1(size_t(M * N)), c3(size_t(M * N));
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    gemm_bf16_amx(false, true, M, N, K, 1, A.data(), K, B.data(), K, 0, c1.data(), N);
    omp_set_num_threads(3);
    gemm_bf16_amx(false, true, M, N, K, 1, A.data(), K, B.data(), K, 0, c3.data(), N);
    omp_set_num_threads(saved);
    EXPECT_EQ(std::memcmp(c1.data(), c3.data(), c1.size() * 4), 0);
}
