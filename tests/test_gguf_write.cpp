// GGUF writing and quantization: the quantizers bit for bit against gguf-py
// (tests/fixtures/quant_ref.gguf, tools/gen_quant_fixtures.py); every half round-trips through
// fp32_to_fp16; a written file reads back with our reader (metadata, dims, data, alignment);
// misuse fails clearly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "layer_fixture.h"
#include "moe/error.h"
#include "moe/gguf.h"
#include "moe/gguf_write.h"
#include "moe/quant.h"

using namespace moe;
using moe::test::error_of;

TEST(Quantize, BitIdenticalToGgufPy) {
    GgufFile f(std::string(MOE_FIXTURE_DIR) + "/quant_ref.gguf");
    const GgufTensor& in = f.tensor("in");
    ASSERT_EQ(in.type, GgmlType::f32);
    const int64_t n = in.ne[0], rows = in.ne[1];
    const float* x = reinterpret_cast<const float*>(f.tensor_data(in));
    for (const char* name : {"f16", "bf16", "q8_0", "q4_0"}) {
        const GgufTensor& t = f.tensor(name);
        const int64_t row_bytes = ggml_row_bytes(t.type, n);
        std::vector<uint8_t> got(static_cast<size_t>(row_bytes));
        for (int64_t r = 0; r < rows; ++r) {
            quantize_row(t.type, x + r * n, got.data(), n);
            EXPECT_EQ(std::memcmp(got.data(), f.tensor_data(t) + r * row_bytes, size_t(row_bytes)), 0)
                << name << " row " << r;
        }
    }
}

TEST(Quantize, HalfConversionRoundTripsAndRoundsToNearestEven) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN
        EXPECT_EQ(fp32_to_fp16(fp16_to_fp32(uint16_t(h))), h) << h;
    }
    EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bff);   // below the midpoint to 65536: the largest half
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);   // the midpoint rounds to even: infinity
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0);  // half of the smallest subnormal: to even (0)
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 1);
    EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie between 1 and 1 + 2^-10: even
    EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
    EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(std::nanf("")))));
}

TEST(Quantize, ErrorsNameTheTypeAndTheRow) {
    std::vector<float> x(40, 1.0f);
    std::vector<uint8_t> out(100);
    EXPECT_NE(error_of([&] { quantize_row(GgmlType::q8_0, x.data(), out.data(), 40); })
                  .find("Q8_0 rows hold a multiple of 32 values, got 40"),
              std::string::npos);
    EXPECT_NE(error_of([&] { quantize_row(GgmlType::q4_k, x.data(), out.data(), 256); })
                  .find("quantizing to Q4_K is not supported"),
              std::string::npos);
}

TEST(GgufWrite, ReadsBackWithOurReader) {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("a.u32", 7);
    w.add_i32("a.i32", -3);
    w.add_u64("a.u64", uint64_t(1) << 40);
    w.add_f32("a.f32", 0.25f);
    w.add_bool("a.bool", true);
    w.add_strings("a.strings", {"x", "", "Ġthe"});
    w.add_i32s("a.i32s", {1, -2, 3});
    w.add_f32s("a.f32s", {0.5f, -1.5f});
    std::vector<float> v(3 * 64);
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(float(i));
    w.add_tensor_f32("t.f32", GgmlType::f32, {5}, v.data());  // 20 bytes: the next one is padded
    w.add_tensor_f32("t.q8_0", GgmlType::q8_0, {3, 64}, v.data());
    w.add_tensor_f32("t.f16", GgmlType::f16, {1, 3, 64}, v.data());
    const std::string path = (std::filesystem::temp_directory_path() / "moe_test_write.gguf").string();
    w.write(path);
    GgufFile f(path);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.metadata().size(), 9u);
    EXPECT_EQ(f.get<std::string>("general.architecture"), "llama");
    EXPECT_EQ(f.get<uint32_t>("a.u32"), 7u);
    EXPECT_EQ(f.get<int32_t>("a.i32"), -3);
    EXPECT_EQ(f.get<uint64_t>("a.u64"), uint64_t(1) << 40);
    EXPECT_EQ(f.get<float>("a.f32"), 0.25f);
    EXPECT_EQ(f.get<bool>("a.bool"), true);
    EXPECT_EQ(f.get_array<std::string>("a.strings"), (std::vector<std::string>{"x", "", "Ġthe"}));
    EXPECT_EQ(f.get_array<int32_t>("a.i32s"), (std::vector<int32_t>{1, -2, 3}));
    EXPECT_EQ(f.get_array<float>("a.f32s"), (std::vector<float>{0.5f, -1.5f}));
    ASSERT_EQ(f.tensors().size(), 3u);
    EXPECT_EQ(f.tensor("t.q8_0").shape(), (std::vector<int64_t>{3, 64}));
    EXPECT_EQ(f.tensor("t.q8_0").ne[0], 64);
    EXPECT_EQ(f.tensor("t.q8_0").offset, 32u);
    EXPECT_EQ(f.tensor("t.f16").shape(), (std::vector<int64_t>{1, 3, 64}));
    EXPECT_EQ(f.data_offset() % 32, 0u);
    EXPECT_EQ(f.dequantize("t.f32"), std::vector<float>(v.begin(), v.begin() + 5));
    std::vector<float> q8 = f.dequantize("t.q8_0"), h = f.dequantize("t.f16");
    for (size_t i = 0; i < v.size(); ++i) {
        EXPECT_NEAR(q8[i], v[i], 1.0 / 127) << i;  // |x| <= 1: half a step of d <= 1 / 127
        EXPECT_NEAR(h[i], v[i], 1e-3) << i;
    }
    std::filesystem::remove(path);
}

TEST(GgufWrite, MisuseFailsClearly) {
    GgufWriter w;
    w.add_u32("k", 1);
    EXPECT_NE(error_of([&] { w.add_u32("k", 2); }).find("metadata key 'k' added twice"), std::string::npos);
    std::vector<float> v(48, 1.0f);
    EXPECT_NE(error_of([&] { w.add_tensor_f32("t", GgmlType::q8_0, {48}, v.data()); })
                  .find("tensor 't': rows of 48 values are not whole Q8_0 blocks of 32"),
              std::string::npos);
    EXPECT_NE(error_of([&] { w.add_tensor("t", GgmlType::f32, {2, 3}, std::string(20, '\0')); })
                  .find("tensor 't' of type F32 needs 24 bytes, got 20"),
              std::string::npos);
    w.add_tensor("t", GgmlType::f32, {2, 3}, std::string(24, '\0'));
    EXPECT_NE(error_of([&] { w.add_tensor("t", GgmlType::f32, {1}, std::string(4, '\0')); }).find("tensor 't' added twice"),
              std::string::npos);
    EXPECT_NE(error_of([&] { w.write("/nonexistent/dir/x.gguf"); }).find("cannot create /nonexistent/dir/x.gguf.tmp"),
              std::string::npos);
}
