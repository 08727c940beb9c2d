// ggml type layouts and dequantization: hand-checked blocks, and every SIMD path bit for bit
// against the scalar definition (kernels/ref/dequant_ref.cpp). The values against gguf-py are
// in test_gguf.cpp.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "moe/error.h"
#include "moe/quant.h"
#include "moe/rng.h"

using namespace moe;

namespace {

const GgmlType kSupported[] = {GgmlType::f32,  GgmlType::f16,  GgmlType::bf16, GgmlType::q4_0,
                               GgmlType::q4_1, GgmlType::q5_0, GgmlType::q5_1, GgmlType::q8_0,
                               GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k};

std::vector<const DequantTable*> simd_paths() {
    std::vector<const DequantTable*> out;
    for (CpuPath p : {CpuPath::avx2, CpuPath::avx512, CpuPath::avx512_bf16})
        if (const DequantTable* t = dequant_kernels_for(p)) out.push_back(t);
    return out;
}

void put_half(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }

// Random blocks whose f16 scales (and f32 / f16 / bf16 values) are finite, so NaN payloads do
// not enter a bit-for-bit comparison.
std::vector<uint8_t> random_blocks(GgmlType type, int64_t n_blocks, uint64_t seed) {
    const GgmlTypeInfo& t = ggml_type_info(type);
    std::vector<uint8_t> b(size_t(n_blocks * t.block_bytes));
    Rng rng(seed);
    for (auto& x : b) x = uint8_t(rng.next_u64());
    auto finite_half = [&](uint8_t* p) { put_half(p, uint16_t(rng.next_u64() & 0x7bff) | uint16_t(rng.next_u64() & 0x8000)); };
    for (int64_t i = 0; i < n_blocks; ++i) {
        uint8_t* blk = b.data() + i * t.block_bytes;
        switch (type) {
            case GgmlType::f32: {
                float f = float(rng.next_u64() % 2000001) / 1000.0f - 1000.0f;
                std::memcpy(blk, &f, 4);
                break;
            }
            case GgmlType::f16: finite_half(blk); break;
            case GgmlType::bf16: blk[1] &= 0xbf; break;  // exponent < 0xff
            case GgmlType::q4_0: case GgmlType::q5_0: case GgmlType::q8_0: finite_half(blk); break;
            case GgmlType::q4_1: case GgmlType::q5_1: case GgmlType::q4_k: case GgmlType::q5_k:
                finite_half(blk), finite_half(blk + 2);
                break;
            case GgmlType::q6_k: finite_half(blk + 208); break;
            default: break;
        }
    }
    return b;
}

}  // namespace

TEST(Quant, BlockLayoutsMatchGgml) {
    struct Row { GgmlType t; const char* name; int64_t bs, bytes; };
    for (Row r : {Row{GgmlType::f32, "F32", 1, 4}, Row{GgmlType::f16, "F16", 1, 2}, Row{GgmlType::bf16, "BF16", 1, 2},
                  Row{GgmlType::q4_0, "Q4_0", 32, 18}, Row{GgmlType::q4_1, "Q4_1", 32, 20},
                  Row{GgmlType::q5_0, "Q5_0", 32, 22}, Row{GgmlType::q5_1, "Q5_1", 32, 24},
                  Row{GgmlType::q8_0, "Q8_0", 32, 34}, Row{GgmlType::q4_k, "Q4_K", 256, 144},
                  Row{GgmlType::q5_k, "Q5_K", 256, 176}, Row{GgmlType::q6_k, "Q6_K", 256, 210},
                  Row{GgmlType::q8_k, "Q8_K", 256, 292}, Row{GgmlType::q2_k, "Q2_K", 256, 84}}) {
        EXPECT_STREQ(ggml_type_name(r.t), r.name);
        EXPECT_EQ(ggml_type_info(r.t).block_size, r.bs) << r.name;
        EXPECT_EQ(ggml_type_info(r.t).block_bytes, r.bytes) << r.name;
        EXPECT_EQ(ggml_row_bytes(r.t, 4 * r.bs), 4 * r.bytes) << r.name;
    }
    EXPECT_EQ(ggml_type_info(4u), nullptr);  // Q4_2, removed from ggml
    EXPECT_EQ(ggml_type_info(1000u), nullptr);
    try {
        ggml_row_bytes(GgmlType::q4_k, 100);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("a row of Q4_K holds a multiple of 256 values, got 100"), std::string::npos) << e.what();
    }
}

TEST(Quant, HalfToFloatIsExact) {
    EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
    EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
    EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
    EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
    EXPECT_EQ(fp16_to_fp32(0x03ff), std::ldexp(1023.0f, -24));
    EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
    EXPECT_EQ(fp16_to_fp32(0xfc00), -std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
    EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7c01)));
    // Every half through each path's F16 dequantizer, bit for bit (F16C converts in hardware).
    std::vector<uint16_t> all(65536);
    for (int i = 0; i < 65536; ++i) all[size_t(i)] = uint16_t(i);
    std::vector<float> want(65536), got(65536);
    dequantize_row(kDequantScalar, GgmlType::f16, all.data(), want.data(), 65536);
    for (int i = 0; i < 65536; ++i) {
        uint32_t u;
        std::memcpy(&u, &want[size_t(i)], 4);
        ASSERT_EQ(u, std::bit_cast<uint32_t>(fp16_to_fp32(uint16_t(i)))) << i;
    }
    for (const DequantTable* t : simd_paths()) {
        dequantize_row(*t, GgmlType::f16, all.data(), got.data(), 65536);
        ASSERT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0) << cpu_path_name(t->path);
    }
}

TEST(Quant, HandMadeBlocks) {
    // Q8_0: d = 0.5, q = -16 .. 15.
    uint8_t q8[34];
    put_half(q8, 0x3800);
    for (int j = 0; j < 32; ++j) q8[2 + j] = uint8_t(int8_t(j - 16));
    // Q4_0: d = -2, byte j = (hi j % 16, lo 15 - j).
    uint8_t q4[18];
    put_half(q4, 0xc000);
    for (int j = 0; j < 16; ++j) q4[2 + j] = uint8_t(((j & 15) << 4) | (15 - j));
    // Q4_K: d = 1, dmin = 0.5; sub-block s has scale s + 1 and min 2 s (packed as ggml packs
    // them: s < 4 in the low 6 bits of bytes s and s + 4; s >= 4 split over nibbles and top bits).
    uint8_t q4k[144] = {};
    put_half(q4k, 0x3c00);
    put_half(q4k + 2, 0x3800);
    int scale[8], mn[8];
    for (int s = 0; s < 8; ++s) scale[s] = s + 1, mn[s] = 2 * s + 33 * (s == 7);  // 47: uses the top bits
    for (int s = 0; s < 4; ++s) q4k[4 + s] = uint8_t(scale[s]), q4k[8 + s] = uint8_t(mn[s]);
    for (int s = 4; s < 8; ++s) {
        q4k[4 + s + 4] = uint8_t((scale[s] & 0xf) | ((mn[s] & 0xf) << 4));
        q4k[4 + s - 4] |= uint8_t((scale[s] >> 4) << 6);
        q4k[4 + s] |= uint8_t((mn[s] >> 4) << 6);
    }
    for (int j = 0; j < 128; ++j) q4k[16 + j] = uint8_t(j * 7);
    for (const DequantTable* t : [] { auto v = simd_paths(); v.insert(v.begin(), &kDequantScalar); return v; }()) {
        float y[256];
        dequantize_row(*t, GgmlType::q8_0, q8, y, 32);
        for (int j = 0; j < 32; ++j) ASSERT_EQ(y[j], 0.5f * float(j - 16)) << cpu_path_name(t->path) << " Q8_0 " << j;
        dequantize_row(*t, GgmlType::q4_0, q4, y, 32);
        for (int j = 0; j < 16; ++j) {
            ASSERT_EQ(y[j], -2.0f * float(15 - j - 8)) << cpu_path_name(t->path) << " Q4_0 " << j;
            ASSERT_EQ(y[j + 16], -2.0f * float(j - 8)) << cpu_path_name(t->path) << " Q4_0 " << j + 16;
        }
        dequantize_row(*t, GgmlType::q4_k, q4k, y, 256);
        for (int v = 0; v < 256; ++v) {
            const int s = v / 32, byte = (s / 2) * 32 + v % 32;
            const int q = s % 2 ? (q4k[16 + byte] >> 4) : (q4k[16 + byte] & 0xf);
            ASSERT_EQ(y[v], float(scale[s]) * float(q) - 0.5f * float(mn[s])) << cpu_path_name(t->path) << " Q4_K " << v;
        }
    }
}

TEST(Quant, EverySimdPathMatchesScalarBitForBit) {
    for (const DequantTable* t : simd_paths())
        for (GgmlType type : kSupported)
            for (int64_t n_blocks : {1, 2, 3, 9, 17}) {
                const GgmlTypeInfo& info = ggml_type_info(type);
                auto src = random_blocks(type, n_blocks, uint64_t(n_blocks) * 131 + uint64_t(type));
                const int64_t n = n_blocks * info.block_size;
                std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n), -1.0f);
                dequantize_row(kDequantScalar, type, src.data(), want.data(), n);
                dequantize_row(*t, type, src.data(), got.data(), n);
                for (int64_t i = 0; i < n; ++i) {
                    ASSERT_TRUE(std::isfinite(want[size_t(i)])) << info.name << " at " << i;
                    ASSERT_EQ(std::bit_cast<uint32_t>(got[size_t(i)]), std::bit_cast<uint32_t>(want[size_t(i)]))
                        << info.name << " [" << cpu_path_name(t->path) << "] " << n_blocks << " blocks, value " << i
                        << ": " << got[size_t(i)] << " vs " << want[size_t(i)];
                }
            }
}

TEST(Quant, NonFiniteScalesPropagateOnEveryPath) {
    for (const DequantTable* t : simd_paths())
        for (GgmlType type : {GgmlType::q8_0, GgmlType::q4_0, GgmlType::q6_k}) {
            auto src = random_blocks(type, 1, 7);
            put_half(src.data() + (type == GgmlType::q6_k ? 208 : 0), 0x7e00);  // NaN scale
            const int64_t n = ggml_type_info(type).block_size;
            std::vector<float> got(static_cast<size_t>(n));
            dequantize_row(*t, type, src.data(), got.data(), n);
            for (float v : got) ASSERT_TRUE(std::isnan(v)) << ggml_type_name(type) << " " << cpu_path_name(t->path);
        }
}

TEST(Quant, DequantizeRowRejectsUnsupportedTypesAndPartialBlocks) {
    float y[256];
    uint8_t src[256] = {};
    try {
        dequantize_row(GgmlType::q2_k, src, y, 256);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("dequantizing Q2_K is not supported yet"), std::string::npos) << e.what();
    }
    try {
        dequantize_row(GgmlType::q8_0, src, y, 33);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("Q8_0 rows hold a multiple of 32 values, got 33"), std::string::npos) << e.what();
    }
}
