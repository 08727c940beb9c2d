// Core pieces: shapes and checks, arena layout, RNG reproducibility, CPU path selection.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "moe/arena.h"
#include "moe/cpu.h"
#include "moe/error.h"
#include "moe/rng.h"
#include "moe/tensor.h"

using namespace moe;

TEST(Core, ShapeStrAndNumel) {
    Shape s{4096, 1024};
    EXPECT_EQ(s.numel(), 4096 * 1024);
    EXPECT_EQ(s.str(), "(4096, 1024)");
    EXPECT_EQ(Shape{7}.str(), "(7,)");
    EXPECT_THROW((Shape{1, 2, 3, 4, 5}), Error);
}

TEST(Core, CheckTensorNamesOpAndShapes) {
    Buffer b(DType::f32, {3, 5});
    try {
        check_tensor("moe_layer", "x", b.view(), {3, 4});
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "[moe_layer] expected x of shape (3, 4), got (3, 5)");
    }
    EXPECT_THROW(check_tensor("op", "x", b.view(), {3, 5}, DType::bf16), Error);
    EXPECT_NO_THROW(check_tensor("op", "x", b.view(), {3, 5}));
}

TEST(Core, ArenaAlignsAndZeroes) {
    Arena a;
    size_t i0 = a.reserve(DType::f32, {3});
    size_t i1 = a.reserve(DType::bf16, {5, 7});
    size_t i2 = a.reserve(DType::f32, {0});
    a.allocate();
    EXPECT_EQ(a.bytes(), 64u + 128u);
    for (size_t i : {i0, i1}) {
        TensorView v = a.view(i);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % 64, 0u);
        for (size_t b = 0; b < v.nbytes(); ++b) EXPECT_EQ(static_cast<char*>(v.data)[b], 0);
    }
    EXPECT_EQ(a.view(i1).shape, (Shape{5, 7}));
    EXPECT_EQ(a.view(i2).numel(), 0);
    EXPECT_THROW(a.reserve(DType::f32, {1}), Error);
    EXPECT_THROW(a.view(99), Error);
}

TEST(Core, RngIsReproducibleAndNormal) {
    Rng a(7), b(7), c(8);
    EXPECT_EQ(a.next_u64(), b.next_u64());
    EXPECT_NE(a.next_u64(), c.next_u64());
    Rng r(1);
    double sum = 0, sq = 0;
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
        double v = r.normal();
        sum += v, sq += v * v;
    }
    EXPECT_NEAR(sum / n, 0.0, 0.01);
    EXPECT_NEAR(sq / n, 1.0, 0.01);
    for (int i = 0; i < 1000; ++i) {
        float u = r.uniform();
        ASSERT_GE(u, 0.0f);
        ASSERT_LT(u, 1.0f);
    }
}

TEST(Core, CpuOverrideIsValidated) {
    const char* old = std::getenv("MOE_CPU");
    std::string saved = old ? old : "";
    setenv("MOE_CPU", "scalar", 1);
    EXPECT_EQ(cpu_active_path(), CpuPath::scalar);
    setenv("MOE_CPU", "sse9", 1);
    EXPECT_THROW(cpu_active_path(), Error);
    if (!cpu_supports(CpuPath::avx512)) {
        setenv("MOE_CPU", "avx512", 1);
        EXPECT_THROW(cpu_active_path(), Error);
    }
    if (old) setenv("MOE_CPU", saved.c_str(), 1); else unsetenv("MOE_CPU");
    EXPECT_TRUE(cpu_supports(CpuPath::scalar));
    EXPECT_TRUE(cpu_supports(cpu_best_path()));
}
