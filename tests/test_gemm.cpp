// GEMM tests: the own kernel on every path this CPU supports, and the BLAS backend (gemm_f32),
// against a double-precision naive reference, over all four transpose cases, odd and empty
// shapes, padded leading dimensions and alpha / beta variants.
//
// Tolerance: for each C(i, j), |C - ref| <= (K + 4) * FLT_EPSILON * bound(i, j) with
// bound = |alpha| * sum_p |op(A)(i, p)| |op(B)(p, j)| + |beta * C0(i, j)|.
// This is the textbook worst-case bound for a length-K f32 dot product (Higham, Accuracy and
// Stability of Numerical Algorithms, 3.1: |error| <= K u sum |a||b| / (1 - K u), u =
// FLT_EPSILON / 2) with a factor 2 and 4 extra roundings for the alpha / beta update, so it
// holds for every summation order (blocking, FMA, threads) and no correct kernel can fail it,
// while a dropped or doubled term (an error of order |a||b| ~ bound / K) is far above it for
// every K tested here.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "moe/cpu.h"
#include "moe/gemm.h"
#include "moe/gemm_own.h"
#include "moe/rng.h"

namespace {

using moe::CpuPath;

using GemmFn = std::function<void(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                  int64_t, const float*, int64_t, float, float*, int64_t)>;

struct Impl {
    std::string name;
    GemmFn fn;
};

// Every own path this CPU can run, plus the BLAS backend.
std::vector<Impl> impls() {
    std::vector<Impl> out;
    for (int p = 0; p < moe::kNumCpuPaths; ++p) {
        const CpuPath path = CpuPath(p);
        if (!moe::cpu_supports(path)) continue;
        out.push_back({std::string("own_") + moe::cpu_path_name(path),
                       [path](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                              const float* A, int64_t lda, const float* B, int64_t ldb,
                              float beta, float* C, int64_t ldc) {
                           moe::gemm_f32_own_path(path, ta, tb, M, N, K, alpha, A, lda, B, ldb,
                                                  beta, C, ldc);
                       }});
    }
    out.push_back({std::string("blas_") + moe::gemm_backend_name(), moe::gemm_f32});
    return out;
}

constexpr float kGapSentinel = 12345.0f;  // in the ldc padding: must come back untouched

struct Problem {
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    std::vector<float> A, B, C0;
    std::vector<double> ref, bound;  // (M, N)
};

// pad > 0 makes every leading dimension larger than its minimum.
Problem make_problem(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t pad, float alpha,
                     float beta, uint64_t seed) {
    Problem pr{ta, tb, M, N, K, 0, 0, 0, alpha, beta, {}, {}, {}, {}, {}};
    const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
    const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
    pr.lda = std::max<int64_t>(1, a_cols) + pad;
    pr.ldb = std::max<int64_t>(1, b_cols) + pad;
    pr.ldc = std::max<int64_t>(1, N) + pad;
    moe::Rng rng(seed);
    pr.A.resize(size_t(a_rows * pr.lda));
    pr.B.resize(size_t(b_rows * pr.ldb));
    pr.C0.resize(size_t(M * pr.ldc));
    rng.fill_uniform(pr.A.data(), int64_t(pr.A.size()), -1.0f, 1.0f);
    rng.fill_uniform(pr.B.data(), int64_t(pr.B.size()), -1.0f, 1.0f);
    rng.fill_uniform(pr.C0.data(), int64_t(pr.C0.size()), -1.0f, 1.0f);
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = N; j < pr.ldc; ++j) pr.C0[size_t(i * pr.ldc + j)] = kGapSentinel;
    // beta == 0: C must not be read, so NaN in C must not reach the result.
    if (beta == 0.0f)
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j)
                pr.C0[size_t(i * pr.ldc + j)] = std::numeric_limits<float>::quiet_NaN();

    // op(A) as (M, K) and op(B)^T as (N, K), in double, so the reference dots are contiguous.
    std::vector<double> a(size_t(M * K)), bt(size_t(N * K));
    for (int64_t i = 0; i < M; ++i)
        for (int64_t p = 0; p < K; ++p)
            a[size_t(i * K + p)] = ta ? pr.A[size_t(p * pr.lda + i)] : pr.A[size_t(i * pr.lda + p)];
    for (int64_t j = 0; j < N; ++j)
        for (int64_t p = 0; p < K; ++p)
            bt[size_t(j * K + p)] = tb ? pr.B[size_t(j * pr.ldb + p)] : pr.B[size_t(p * pr.ldb + j)];
    pr.ref.resize(size_t(M * N));
    pr.bound.resize(size_t(M * N));
    for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
            double s = 0.0, sa = 0.0;
            const double* ai = a.data() + i * K;  // K may be 0: no element to reference
            const double* bj = bt.data() + j * K;
            for (int64_t p = 0; p < K; ++p) {
                s += ai[p] * bj[p];
                sa += std::fabs(ai[p] * bj[p]);
            }
            const double c0 = beta == 0.0f ? 0.0 : double(pr.C0[size_t(i * pr.ldc + j)]);
            pr.ref[size_t(i * N + j)] = double(alpha) * s + double(beta) * c0;
            pr.bound[size_t(i * N + j)] = std::fabs(double(alpha)) * sa + std::fabs(double(beta) * c0);
        }
    }
    return pr;
}

void expect_matches(const Problem& pr, const Impl& impl) {
    SCOPED_TRACE(impl.name + " ta=" + std::to_string(pr.ta) + " tb=" + std::to_string(pr.tb) +
                 " M=" + std::to_string(pr.M) + " N=" + std::to_string(pr.N) +
                 " K=" + std::to_string(pr.K) + " lda=" + std::to_string(pr.lda) +
                 " ldb=" + std::to_string(pr.ldb) + " ldc=" + std::to_string(pr.ldc) +
                 " alpha=" + std::to_string(pr.alpha) + " beta=" + std::to_string(pr.beta));
    std::vector<float> C = pr.C0;
    impl.fn(pr.ta, pr.tb, pr.M, pr.N, pr.K, pr.alpha, pr.A.data(), pr.lda, pr.B.data(), pr.ldb,
            pr.beta, C.data(), pr.ldc);
    int64_t bad = 0, gap_touched = 0;
    double worst_ratio = 0.0;
    std::string first_bad;
    for (int64_t i = 0; i < pr.M; ++i) {
        for (int64_t j = 0; j < pr.ldc; ++j) {
            const float got = C[size_t(i * pr.ldc + j)];
            if (j >= pr.N) {
                gap_touched += got != kGapSentinel;
                continue;
            }
            const double want = pr.ref[size_t(i * pr.N + j)];
            const double tol = double(pr.K + 4) * FLT_EPSILON * pr.bound[size_t(i * pr.N + j)];
            const double err = std::fabs(double(got) - want);
            if (!(err <= tol)) {  // also catches NaN
                if (bad++ == 0)
                    first_bad = "C(" + std::to_string(i) + "," + std::to_string(j) +
                                ") = " + std::to_string(got) + " want " + std::to_string(want) +
                                " tol " + std::to_string(tol);
            }
            if (tol > 0.0) worst_ratio = std::max(worst_ratio, err / tol);
        }
    }
    EXPECT_EQ(bad, 0) << "first: " << first_bad << "; worst err/tol " << worst_ratio;
    EXPECT_EQ(gap_touched, 0) << "wrote into the ldc padding";
}

// Restores the OpenMP / BLAS thread count a test changes.
class GemmThreads {
public:
    explicit GemmThreads(int n) : saved_(moe::get_num_threads()) { moe::set_num_threads(n); }
    ~GemmThreads() { moe::set_num_threads(saved_); }

private:
    int saved_;
};

struct Shape {
    int64_t M, N, K;
};

TEST(Gemm, PathsListed) {
    // The scalar twin always runs; on an AVX2 machine the AVX2 kernel must be among the tested.
    const auto list = impls();
    ASSERT_GE(list.size(), 2u);
    EXPECT_EQ(list.front().name, "own_scalar");
    if (moe::cpu_supports(CpuPath::avx2)) {
        EXPECT_EQ(list[1].name, "own_avx2");
    }
}

TEST(Gemm, OddShapesAllTransposes) {
    const Shape shapes[] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 129}, {6, 16, 8},  {12, 32, 3},
                            {5, 17, 1}, {0, 5, 3}, {5, 0, 3},     {4, 6, 0},   {2, 3, 300},
                            {1, 37, 50}, {41, 1, 50}, {41, 37, 1}, {1, 1, 50}};  // vector shapes
    const float alphas[] = {1.0f, -0.75f};
    const float betas[] = {0.0f, 1.0f, 0.5f};
    const auto list = impls();
    uint64_t seed = 1;
    for (const Shape& s : shapes)
        for (int t = 0; t < 4; ++t)
            for (int64_t pad : {0, 3})
                for (float alpha : alphas)
                    for (float beta : betas) {
                        const Problem pr = make_problem(t & 1, t & 2, s.M, s.N, s.K, pad, alpha,
                                                        beta, seed++);
                        for (const Impl& impl : list) expect_matches(pr, impl);
                    }
}

// Larger than every cache block of every path (MC 144, KC 256 / 192, NC 4080 / 4096) on one
// thread, so all five loops wrap, the depth loop accumulates over several blocks, and the
// edge tiles sit at block borders.
TEST(Gemm, CrossesCacheBlocks) {
    GemmThreads threads(1);
    const auto list = impls();
    for (int t = 0; t < 4; ++t) {
        const Problem pr = make_problem(t & 1, t & 2, 150, 4100, 520, 1, 1.5f, 0.5f, 100 + t);
        for (const Impl& impl : list) expect_matches(pr, impl);
    }
}

// The thread grid (1x2, 1x3, 2x2, ...) and shapes with fewer tiles than threads.
TEST(Gemm, ThreadCounts) {
    const Shape shapes[] = {{97, 203, 77}, {203, 97, 77}, {7, 300, 50}, {300, 7, 50}, {65, 65, 65}};
    const auto list = impls();
    uint64_t seed = 200;
    for (int n : {1, 2, 3, 4}) {
        GemmThreads threads(n);
        SCOPED_TRACE("threads=" + std::to_string(n));
        for (const Shape& s : shapes)
            for (int t = 0; t < 4; ++t) {
                const Problem pr = make_problem(t & 1, t & 2, s.M, s.N, s.K, 2, 1.0f, 0.5f, seed++);
                for (const Impl& impl : list) expect_matches(pr, impl);
            }
    }
}

// The GEMM shapes of one small MoE expert (x @ w1^T, dy^T @ a, dh @ w1) at a size where the
// default thread count, several panels and all edge cases meet.
TEST(Gemm, ExpertShapes) {
    const int64_t n = 37, D = 96, F = 160;
    struct Case {
        bool ta, tb;
        int64_t M, N, K;
    };
    const Case cases[] = {{false, true, n, F, D}, {false, true, n, D, F}, {false, false, n, F, D},
                          {true, false, D, F, n}, {true, false, F, D, n}, {false, false, n, D, F}};
    const auto list = impls();
    uint64_t seed = 300;
    for (const Case& c : cases) {
        const Problem pr = make_problem(c.ta, c.tb, c.M, c.N, c.K, 0, 1.0f, 0.0f, seed++);
        for (const Impl& impl : list) expect_matches(pr, impl);
    }
}

TEST(Gemm, OwnUnsupportedPathThrows) {
    for (int p = 0; p < moe::kNumCpuPaths; ++p) {
        if (moe::cpu_supports(CpuPath(p))) continue;
        float a = 1.0f, b = 1.0f, c = 0.0f;
        EXPECT_THROW(moe::gemm_f32_own_path(CpuPath(p), false, false, 1, 1, 1, 1.0f, &a, 1, &b,
                                            1, 0.0f, &c, 1),
                     std::exception);
    }
}

TEST(Gemm, OwnDefaultPathMatchesActive) {
    const Problem pr = make_problem(false, true, 50, 70, 90, 0, 1.0f, 0.0f, 400);
    expect_matches(pr, {"own_default", moe::gemm_f32_own});
}

}  // namespace
