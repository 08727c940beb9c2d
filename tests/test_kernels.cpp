// Every SIMD path the machine supports against its scalar twin (kernels/ref).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "moe/kernels.h"
#include "moe/rng.h"

using namespace moe;

namespace {

std::vector<const KernelTable*> simd_paths() {
    std::vector<const KernelTable*> out;
    for (CpuPath p : {CpuPath::avx2, CpuPath::avx512, CpuPath::avx512_bf16})
        if (const KernelTable* t = kernels_for(p)) out.push_back(t);
    return out;
}

std::vector<float> randn(int64_t n, uint64_t seed, float scale = 3.0f) {
    std::vector<float> v(static_cast<size_t>(n));
    Rng(seed).fill_normal(v.data(), n, 0.0f, scale);
    return v;
}

// Lengths that exercise full vectors and every tail length of 8 and 16 lanes.
const int64_t kLengths[] = {0, 1, 7, 8, 15, 16, 17, 31, 33, 100, 1000};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float rtol,
                  float atol, const char* what, CpuPath p) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], atol + rtol * std::fabs(want[i]))
            << what << " [" << cpu_path_name(p) << "] at " << i << " of " << got.size();
}

}  // namespace

TEST(Kernels, ScalarPathAlwaysAvailable) {
    ASSERT_NE(kernels_for(CpuPath::scalar), nullptr);
    EXPECT_EQ(kernels_for(CpuPath::scalar)->path, CpuPath::scalar);
}

TEST(Kernels, ActiveTableMatchesActivePath) {
    EXPECT_TRUE(kernels().path == cpu_active_path() ||
                (cpu_active_path() == CpuPath::avx512_bf16 && kernels().path == CpuPath::avx512));
}

TEST(Kernels, SwigluForwardMatchesScalar) {
    const KernelTable& ref = *kernels_for(CpuPath::scalar);
    for (const KernelTable* t : simd_paths())
        for (int64_t n : kLengths) {
            auto g = randn(n, 1), u = randn(n, 2);
            if (n > 3) g[3] = -100.0f, g[2] = 100.0f;  // saturated sigmoid on both sides
            std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
            ref.swiglu_forward(want.data(), g.data(), u.data(), n);
            t->swiglu_forward(got.data(), g.data(), u.data(), n);
            expect_close(got, want, 2e-6f, 1e-30f, "swiglu_forward", t->path);
        }
}

TEST(Kernels, SwigluBackwardMatchesScalarAndRunsInPlace) {
    const KernelTable& ref = *kernels_for(CpuPath::scalar);
    for (const KernelTable* t : simd_paths())
        for (int64_t n : kLengths) {
            auto g = randn(n, 3), u = randn(n, 4), d = randn(n, 5, 1.0f);
            std::vector<float> dg(static_cast<size_t>(n)), du(static_cast<size_t>(n));
            ref.swiglu_backward(dg.data(), du.data(), d.data(), g.data(), u.data(), n);
            auto g2 = g, u2 = u;  // in place: outputs over the inputs
            t->swiglu_backward(g2.data(), u2.data(), d.data(), g2.data(), u2.data(), n);
            // silu'(g) = s (1 + g (1 - s)) cancels to 0 near g = -1.28: bound the error by the
            // size of the factors, |d u| (1 + |g|), not by the (tiny) result.
            for (int64_t i = 0; i < n; ++i)
                ASSERT_NEAR(g2[size_t(i)], dg[size_t(i)], 4e-6f * std::fabs(d[size_t(i)] * u[size_t(i)]) * (1 + std::fabs(g[size_t(i)])))
                    << "swiglu_backward dgate [" << cpu_path_name(t->path) << "] at " << i << " g=" << g[size_t(i)];
            expect_close(u2, du, 2e-6f, 1e-30f, "swiglu_backward dup", t->path);
        }
}

TEST(Kernels, ScalarSwigluBackwardMatchesFiniteDifferences) {
    const KernelTable& ref = *kernels_for(CpuPath::scalar);
    // Derivatives in double by central differences of the scalar forward.
    for (float g : {-6.0f, -1.5f, -0.3f, 0.0f, 0.7f, 2.0f, 5.0f}) {
        float u = 1.3f, d = 1.0f, dg, du;
        ref.swiglu_backward(&dg, &du, &d, &g, &u, 1);
        auto f = [&](double gg, double uu) { return gg / (1.0 + std::exp(-gg)) * uu; };
        double h = 1e-4;
        EXPECT_NEAR(dg, (f(g + h, u) - f(g - h, u)) / (2 * h), 1e-5) << "g=" << g;
        EXPECT_NEAR(du, (f(g, u + h) - f(g, u - h)) / (2 * h), 1e-5) << "g=" << g;
    }
}

TEST(Kernels, AxpyScaleDotMatchScalar) {
    const KernelTable& ref = *kernels_for(CpuPath::scalar);
    for (const KernelTable* t : simd_paths())
        for (int64_t n : kLengths) {
            auto x = randn(n, 6), y = randn(n, 7);
            auto want = y, got = y;
            ref.axpy(want.data(), 0.37f, x.data(), n);
            t->axpy(got.data(), 0.37f, x.data(), n);
            expect_close(got, want, 1e-6f, 1e-6f, "axpy", t->path);  // FMA vs mul+add
            ref.scale_copy(want.data(), -1.25f, x.data(), n);
            t->scale_copy(got.data(), -1.25f, x.data(), n);
            expect_close(got, want, 0.0f, 0.0f, "scale_copy", t->path);
            double exact = 0, mag = 0;
            for (int64_t i = 0; i < n; ++i) exact += double(x[i]) * y[i], mag += std::fabs(double(x[i]) * y[i]);
            EXPECT_NEAR(t->dot(x.data(), y.data(), n), exact, 1e-6 * mag + 1e-6) << cpu_path_name(t->path) << " n=" << n;
            EXPECT_NEAR(ref.dot(x.data(), y.data(), n), exact, 1e-6 * mag + 1e-6) << "scalar n=" << n;
        }
}

TEST(Kernels, Bf16ConversionsAreBitExact) {
    const KernelTable& ref = *kernels_for(CpuPath::scalar);
    std::vector<float> v = randn(1000, 8);
    const float inf = std::numeric_limits<float>::infinity();
    float specials[] = {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(),
                        1e-40f /* subnormal */, 3.4e38f, 1.00390625f /* exact tie: 1 + 2^-8 */,
                        1.01171875f /* tie, rounds up to even */};
    v.insert(v.begin(), std::begin(specials), std::end(specials));
    const int64_t n = int64_t(v.size());
    std::vector<bf16> want(static_cast<size_t>(n));
    ref.f32_to_bf16(want.data(), v.data(), n);
    EXPECT_EQ(want[7].bits, 0x3f80);  // 1 + 2^-8 ties to even: 1.0
    EXPECT_EQ(want[8].bits, 0x3f82);  // 1.01171875 = 1 + 3 * 2^-8 ties up to 1 + 2^-6
    EXPECT_EQ(want[2].bits, 0x7f80);  // inf stays inf
    EXPECT_TRUE(std::isnan(bf16_to_float(want[4])));
    EXPECT_EQ(want[6].bits, 0x7f80);  // 3.4e38 rounds to inf, as PyTorch does
    for (const KernelTable* t : simd_paths())
        for (int64_t len : kLengths) {
            if (len > n) continue;
            std::vector<bf16> got(static_cast<size_t>(len));
            t->f32_to_bf16(got.data(), v.data(), len);
            for (int64_t i = 0; i < len; ++i)
                ASSERT_EQ(got[size_t(i)].bits, want[size_t(i)].bits) << cpu_path_name(t->path) << " at " << i;
            std::vector<float> back(static_cast<size_t>(len)), back_ref(static_cast<size_t>(len));
            t->bf16_to_f32(back.data(), got.data(), len);
            ref.bf16_to_f32(back_ref.data(), got.data(), len);
            if (len > 0) {  // memcmp on the null data() of an empty vector is undefined
                ASSERT_EQ(std::memcmp(back.data(), back_ref.data(), size_t(len) * 4), 0) << cpu_path_name(t->path);
            }
        }
}

TEST(Kernels, AllFiniteFindsNanAndInfAnywhere) {
    for (CpuPath p : {CpuPath::scalar, CpuPath::avx2, CpuPath::avx512}) {
        const KernelTable* t = kernels_for(p);
        if (!t) continue;
        for (int64_t n : {1, 9, 16, 17, 100}) {
            std::vector<float> v = randn(n, 9);
            EXPECT_TRUE(t->all_finite(v.data(), n));
            for (int64_t pos : {int64_t(0), n / 2, n - 1}) {
                for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
                    auto w = v;
                    w[size_t(pos)] = bad;
                    EXPECT_FALSE(t->all_finite(w.data(), n)) << cpu_path_name(p) << " n=" << n << " pos=" << pos;
                }
            }
        }
    }
}
