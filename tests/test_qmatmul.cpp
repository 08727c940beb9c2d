// Quantized products (include/moe/qmatmul.h). The reference is a double-precision sum over the
// dequantized weights (the dequantizers are checked against gguf-py in test_gguf.cpp) and the
// dequantized activations: the dot kernels must compute exactly that sum up to f32 rounding.
// Every SIMD path is compared with the scalar twin, and the GEMM path with the decode path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "moe/error.h"
#include "moe/qmatmul.h"
#include "moe/rng.h"

using namespace moe;

namespace {

const GgmlType kTypes[] = {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0,
                           GgmlType::q4_0, GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k};

void put_half(uint8_t* p, float f) {
    const uint16_t h = fp32_to_fp16(f);
    std::memcpy(p, &h, 2);
}

// A rows x cols matrix in `type`: quantized from N(0, 1) values where a quantizer exists, else
// (Q4_K, Q5_K, Q6_K) random blocks with random scales, mins and quants of realistic size.
std::vector<uint8_t> random_matrix(GgmlType type, int64_t rows, int64_t cols, uint64_t seed) {
    Rng rng(seed);
    std::vector<uint8_t> m(size_t(rows * ggml_row_bytes(type, cols)));
    if (can_quantize(type)) {
        std::vector<float> v(size_t(rows * cols));
        rng.fill_normal(v.data(), int64_t(v.size()), 0.0f, 1.0f);
        for (int64_t r = 0; r < rows; ++r)
            quantize_row(type, v.data() + r * cols, m.data() + r * ggml_row_bytes(type, cols), cols);
        return m;
    }
    for (auto& b : m) b = uint8_t(rng.next_u64());
    const int64_t bb = ggml_type_info(type).block_bytes;
    for (size_t off = 0; off < m.size(); off += size_t(bb)) {
        if (type == GgmlType::q4_k || type == GgmlType::q5_k) {
            put_half(&m[off], 0.01f + 0.02f * rng.uniform());
            put_half(&m[off + 2], 0.01f + 0.02f * rng.uniform());
        } else {
            put_half(&m[off + 208], 0.001f + 0.004f * rng.uniform());
        }
    }
    return m;
}

std::vector<float> dequantized(GgmlType type, const void* p, int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    if (type == GgmlType::q8_k) {  // f32 d, 256 int8, 16 int16 sums
        for (int64_t b = 0; b < n / 256; ++b) {
            const uint8_t* blk = static_cast<const uint8_t*>(p) + 292 * b;
            float d;
            std::memcpy(&d, blk, 4);
            for (int j = 0; j < 256; ++j) v[size_t(256 * b + j)] = d * float(int8_t(blk[4 + j]));
        }
        return v;
    }
    dequantize_row(type, p, v.data(), n);
    return v;
}

std::vector<const QDotTable*> simd_paths() {
    std::vector<const QDotTable*> out;
    for (CpuPath p : {CpuPath::avx2, CpuPath::avx512, CpuPath::avx512_bf16})
        if (const QDotTable* t = qdot_kernels_for(p)) out.push_back(t);
    return out;
}

}  // namespace

TEST(QMatmul, DotKernelsComputeTheDequantizedSum) {
    const int64_t cols = 1024;
    Rng rng(3);
    std::vector<float> x(static_cast<size_t>(cols));
    rng.fill_normal(x.data(), cols, 0.0f, 1.0f);
    std::vector<const QDotTable*> tables = simd_paths();
    tables.insert(tables.begin(), &kQDotScalar);
    for (GgmlType type : kTypes) {
        SCOPED_TRACE(ggml_type_name(type));
        const std::vector<uint8_t> w = random_matrix(type, 8, cols, 11);
        const GgmlType act = qdot_activation_type(type);
        std::vector<uint8_t> xq(size_t(ggml_row_bytes(act, cols)));
        quantize_activations(act, x.data(), xq.data(), cols);
        const std::vector<float> xd = dequantized(act, xq.data(), cols);
        for (int64_t r = 0; r < 8; ++r) {
            const uint8_t* row = w.data() + r * ggml_row_bytes(type, cols);
            const std::vector<float> wd = dequantized(type, row, cols);
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < cols; ++i) ref += double(wd[size_t(i)]) * xd[size_t(i)], mag += std::fabs(double(wd[size_t(i)]) * xd[size_t(i)]);
            ASSERT_GT(mag, 0.0);
            for (const QDotTable* t : tables) {
                SCOPED_TRACE(cpu_path_name(t->path));
                const float got = t->get(type)(row, xq.data(), cols);
                // f32 accumulation of 1024 terms (or 4 / 32 block terms): well inside 1e-5 of sum |terms|.
                EXPECT_NEAR(got, ref, 1e-5 * mag) << "row " << r;
            }
        }
    }
}

TEST(QMatmul, SimdDotMatchesScalarOnOddLengths) {
    // f32 / f16 / bf16 rows of any length (the SIMD loop plus its scalar tail).
    Rng rng(5);
    for (int64_t n : {1, 7, 15, 16, 17, 33, 100}) {
        std::vector<float> x(static_cast<size_t>(n)), v(static_cast<size_t>(n));
        rng.fill_normal(x.data(), n, 0.0f, 1.0f);
        rng.fill_normal(v.data(), n, 0.0f, 1.0f);
        for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::bf16}) {
            std::vector<uint8_t> w(size_t(ggml_row_bytes(type, n)));
            quantize_row(type, v.data(), w.data(), n);
            const float ref = kQDotScalar.get(type)(w.data(), x.data(), n);
            double mag = 0;
            for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(v[size_t(i)]) * x[size_t(i)]);
            for (const QDotTable* t : simd_paths())
                EXPECT_NEAR(t->get(type)(w.data(), x.data(), n), ref, 1e-6 * mag) << ggml_type_name(type) << " n=" << n;
        }
    }
}

TEST(QMatmul, Q8KActivationsFollowGgml) {
    // ggml's quantize_row_q8_K_ref: the value of largest magnitude becomes -127 (d carries the
    // sign), every value is within d / 2 of its quantization, and the 16 sums are the sums.
    std::vector<float> x(512);
    Rng rng(9);
    rng.fill_normal(x.data(), 512, 0.0f, 2.0f);
    x[300] = 9.0f;  // the largest of block 1, positive: d < 0
    std::vector<uint8_t> q(size_t(ggml_row_bytes(GgmlType::q8_k, 512)));
    quantize_activations(GgmlType::q8_k, x.data(), q.data(), 512);
    const uint8_t* b1 = q.data() + 292;
    float d1;
    std::memcpy(&d1, b1, 4);
    EXPECT_FLOAT_EQ(d1, -9.0f / 127.0f);
    EXPECT_EQ(int8_t(b1[4 + 300 - 256]), -127);
    const std::vector<float> xd = dequantized(GgmlType::q8_k, q.data(), 512);
    for (int64_t b = 0; b < 2; ++b) {
        float d;
        std::memcpy(&d, q.data() + 292 * b, 4);
        for (int j = 0; j < 256; ++j) EXPECT_LE(std::fabs(xd[size_t(256 * b + j)] - x[size_t(256 * b + j)]), std::fabs(d) * 0.5001f);
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += int8_t(q[size_t(292 * b + 4 + 16 * g + l)]);
            int16_t stored;
            std::memcpy(&stored, q.data() + 292 * b + 4 + 256 + 2 * g, 2);
            EXPECT_EQ(stored, sum);
        }
    }
    // An all-zero block: d = 0, no division by zero.
    std::vector<float> z(256, 0.0f);
    quantize_activations(GgmlType::q8_k, z.data(), q.data(), 256);
    float d0;
    std::memcpy(&d0, q.data(), 4);
    EXPECT_EQ(d0, 0.0f);
}

TEST(QMatmul, Q8_0ActivationsRoundAsGgmlsX86Backend) {
    // max |x| = 127, so id = 127 / max = 1 and q = x rounded half to even (ggml's AVX2
    // quantize_row_q8_0; the file quantizer would round 2.5 to 3).
    std::vector<float> x(32, 0.0f);
    x[0] = 127.0f, x[1] = 2.5f, x[2] = 3.5f, x[3] = -2.5f, x[4] = 0.49f, x[5] = -126.5f;
    std::vector<uint8_t> q(34);
    quantize_activations(GgmlType::q8_0, x.data(), q.data(), 32);
    uint16_t d;
    std::memcpy(&d, q.data(), 2);
    EXPECT_EQ(fp16_to_fp32(d), fp16_to_fp32(fp32_to_fp16(1.0f)));
    const int8_t want[6] = {127, 2, 4, -2, 0, -126};
    for (int j = 0; j < 6; ++j) EXPECT_EQ(int8_t(q[size_t(2 + j)]), want[j]) << "value " << j;
}

TEST(QMatmul, BothPathsMatchAReferenceProduct) {
    // y (n, rows) = beta y + x W^T through the decode path (quantized x) and the GEMM path (f32 x),
    // with row strides wider than the rows; large enough for the threaded loop.
    const int64_t rows = 72, cols = 512, n = 3, ldx = cols + 8, ldy = rows + 5;
    Rng rng(21);
    std::vector<float> x(size_t(n * ldx)), y0(size_t(n * ldy));
    rng.fill_normal(x.data(), int64_t(x.size()), 0.0f, 1.0f);
    rng.fill_normal(y0.data(), int64_t(y0.size()), 0.0f, 1.0f);
    QMatmulScratch s;
    for (GgmlType type : kTypes) {
        SCOPED_TRACE(ggml_type_name(type));
        const std::vector<uint8_t> wb = random_matrix(type, rows, cols, 31);
        const QMatrix w{type, rows, cols, wb.data()};
        const GgmlType act = qdot_activation_type(type);
        for (int gemv : {1, 0}) {
            SCOPED_TRACE(gemv ? "dot kernels" : "dequantize + GEMM");
            std::vector<float> y = y0;
            qmatmul(qdot_kernels(), y.data(), ldy, x.data(), ldx, n, w, 0.5f, s, gemv);
            for (int64_t i = 0; i < n; ++i) {
                std::vector<float> xi(x.begin() + i * ldx, x.begin() + i * ldx + cols);
                if (gemv) {  // the decode path sees x through its activation format
                    std::vector<uint8_t> xq(size_t(ggml_row_bytes(act, cols)));
                    quantize_activations(act, xi.data(), xq.data(), cols);
                    xi = dequantized(act, xq.data(), cols);
                }
                for (int64_t r = 0; r < rows; ++r) {
                    const std::vector<float> wd = dequantized(type, w.row(r), cols);
                    double ref = 0.5 * y0[size_t(i * ldy + r)], mag = std::fabs(ref);
                    for (int64_t k = 0; k < cols; ++k) ref += double(wd[size_t(k)]) * xi[size_t(k)], mag += std::fabs(double(wd[size_t(k)]) * xi[size_t(k)]);
                    EXPECT_NEAR(y[size_t(i * ldy + r)], ref, 1e-5 * mag) << "i " << i << " r " << r;
                }
                // Padding between rows stays untouched.
                for (int64_t r = rows; r < ldy; ++r) EXPECT_EQ(y[size_t(i * ldy + r)], y0[size_t(i * ldy + r)]);
            }
        }
    }
}

TEST(QMatmul, SharedXGivesEachProductsOwnResult) {
    // q / k / v style: one x, several matrices; in one loop (same activation format) or, for
    // mixed formats and F32, one qmatmul each. Either way each y equals its own qmatmul's.
    const int64_t cols = 512, n = 2;
    Rng rng(41);
    std::vector<float> x(size_t(n * cols));
    rng.fill_normal(x.data(), int64_t(x.size()), 0.0f, 1.0f);
    const std::vector<std::vector<GgmlType>> sets = {
        {GgmlType::q8_0, GgmlType::q4_0, GgmlType::q8_0}, {GgmlType::q8_0, GgmlType::q4_k}, {GgmlType::f32, GgmlType::q8_0}};
    QMatmulScratch s;
    for (const auto& types : sets) {
        std::vector<std::vector<uint8_t>> bytes;
        std::vector<QMatrix> ws;
        for (size_t j = 0; j < types.size(); ++j) bytes.push_back(random_matrix(types[j], 48 + 8 * int64_t(j), cols, 50 + j));
        for (size_t j = 0; j < types.size(); ++j) ws.push_back({types[j], 48 + 8 * int64_t(j), cols, bytes[j].data()});
        std::vector<std::vector<float>> got(types.size()), want(types.size());
        std::vector<QOutput> outs;
        for (size_t j = 0; j < types.size(); ++j) {
            got[j].assign(size_t(n * ws[j].rows), 0.0f);
            want[j].assign(size_t(n * ws[j].rows), 0.0f);
            outs.push_back({&ws[j], got[j].data(), ws[j].rows});
            qmatmul(want[j].data(), ws[j].rows, x.data(), cols, n, ws[j], 0.0f, s);
        }
        qmatmul_shared_x(outs.data(), int(outs.size()), x.data(), cols, n, s);
        for (size_t j = 0; j < types.size(); ++j) EXPECT_EQ(got[j], want[j]) << ggml_type_name(types[j]);
    }
}

TEST(QMatmul, UnsupportedTypesAreNamed) {
    std::vector<uint8_t> b(192);  // one Q5_1 row of 256
    const QMatrix w{GgmlType::q5_1, 1, 256, b.data()};
    QMatmulScratch s;
    float x[256] = {}, y[1];
    try {
        qmatmul(y, 1, x, 256, 1, w, 0.0f, s);
        FAIL() << "Q5_1 has no product";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("Q5_1"), std::string::npos) << e.what();
    }
}
