// Q4_0 and Q8_0 packed by 8 rows (include/moe/qpack.h): the layout round-trips, the 8-row kernels give
// the per-row kernels' products (the scalar twin bit for bit, SIMD to f32 rounding), qmatmul
// and the decoder give the same results packed or not.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "gguf_fixture.h"
#include "moe/error.h"
#include "moe/gguf_model.h"
#include "moe/infer.h"
#include "moe/qpack.h"
#include "moe/rng.h"

using namespace moe;

namespace {

const GgmlType kPackable[] = {GgmlType::q4_0, GgmlType::q8_0};

std::vector<uint8_t> quantized_matrix(GgmlType type, int64_t rows, int64_t cols, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(static_cast<size_t>(rows * cols));
    rng.fill_normal(v.data(), int64_t(v.size()), 0.0f, 1.0f);
    const int64_t rb = ggml_row_bytes(type, cols);
    std::vector<uint8_t> m(static_cast<size_t>(rows * rb));
    for (int64_t r = 0; r < rows; ++r) quantize_row(type, v.data() + r * cols, m.data() + r * rb, cols);
    return m;
}

// A random matrix of `type` and its packed copy.
struct PackedPair {
    std::vector<uint8_t> plain, packed;
    QMatrix m, p;
    PackedPair(GgmlType type, int64_t rows, int64_t cols, uint64_t seed)
        : plain(quantized_matrix(type, rows, cols, seed)), packed(plain.size()), m{type, rows, cols, plain.data()},
          p(qmatrix_pack8(m, packed.data())) {}
};

std::vector<const QDotTable*> all_paths() {
    std::vector<const QDotTable*> out;
    for (CpuPath p : {CpuPath::scalar, CpuPath::avx2, CpuPath::avx512, CpuPath::avx512_bf16})
        if (const QDotTable* t = qdot_kernels_for(p)) out.push_back(t);
    return out;
}

}  // namespace

TEST(QPack, PackThenUnpackGivesTheRowsBack) {
    for (GgmlType type : kPackable) {
        SCOPED_TRACE(ggml_type_name(type));
        const int64_t rows = 24, cols = 96, rb = ggml_row_bytes(type, cols);
        const PackedPair pair(type, rows, cols, 1);
        const std::vector<uint8_t>& plain = pair.plain;
        const QMatrix& p = pair.p;
        std::vector<uint8_t> back(static_cast<size_t>(8 * rb));
        EXPECT_TRUE(p.packed8);
        EXPECT_NE(pair.packed, plain);  // the layout moved bytes
        for (int64_t g = 0; g < rows / 8; ++g) {
            qmatrix_unpack_group(p, g, back.data());
            EXPECT_EQ(0, std::memcmp(back.data(), plain.data() + 8 * g * rb, size_t(8 * rb))) << "group " << g;
        }
        // Dequantized rows, packed or not, are the same floats (also from a group boundary on).
        std::vector<float> a(static_cast<size_t>(16 * cols)), b(a.size());
        qmatrix_dequantize_rows(p, 8, 16, a.data());
        qmatrix_dequantize_rows({type, rows, cols, plain.data()}, 8, 16, b.data());
        EXPECT_EQ(a, b);
    }
}

TEST(QPack, EightRowKernelsGiveThePerRowProducts) {
    for (GgmlType type : kPackable) {
        SCOPED_TRACE(ggml_type_name(type));
        const int64_t rows = 16, cols = 2048, rb = ggml_row_bytes(type, cols);
        const PackedPair pair(type, rows, cols, 2);
        const std::vector<uint8_t>& plain = pair.plain;
        const QMatrix& p = pair.p;
        Rng rng(4);
        std::vector<float> x(static_cast<size_t>(cols));
        rng.fill_normal(x.data(), cols, 0.0f, 2.0f);
        std::vector<uint8_t> xq(static_cast<size_t>(ggml_row_bytes(GgmlType::q8_0, cols)));
        quantize_activations(GgmlType::q8_0, x.data(), xq.data(), cols);
        for (const QDotTable* t : all_paths()) {
            SCOPED_TRACE(cpu_path_name(t->path));
            for (int64_t g = 0; g < rows / 8; ++g) {
                float y[8];
                t->get8(type)(static_cast<const uint8_t*>(p.data) + 8 * g * rb, xq.data(), cols, y);
                for (int i = 0; i < 8; ++i) {
                    const uint8_t* row = plain.data() + (8 * g + i) * rb;
                    const float want = kQDotScalar.get(type)(row, xq.data(), cols);
                    if (t->path == CpuPath::scalar) {
                        EXPECT_EQ(y[i], want) << "row " << 8 * g + i;  // the same operations in the same order
                    } else {
                        // 64 block terms added in another order: f32 rounding of sum |terms|.
                        double mag = 0;
                        std::vector<float> w(static_cast<size_t>(cols));
                        dequantize_row(type, row, w.data(), cols);
                        for (int64_t k = 0; k < cols; ++k) mag += std::fabs(double(w[size_t(k)]) * x[size_t(k)]);
                        EXPECT_NEAR(y[i], want, 1e-6 * mag) << "row " << 8 * g + i;
                    }
                }
            }
        }
    }
}

TEST(QPack, QmatmulGivesThePlainMatrixResults) {
    for (GgmlType type : kPackable) {
        SCOPED_TRACE(ggml_type_name(type));
        const int64_t rows = 40, cols = 256;
        const PackedPair pair(type, rows, cols, 3);
        const QMatrix& m = pair.m;
        const QMatrix& p = pair.p;
        Rng rng(5);
        for (int64_t n : {1, 3, 9}) {
            std::vector<float> x(static_cast<size_t>(n * cols));
            rng.fill_normal(x.data(), n * cols, 0.0f, 1.0f);
            for (const QDotTable* t : all_paths()) {
                for (int gemv : {1, 0}) {
                    SCOPED_TRACE(std::string(cpu_path_name(t->path)) + " n=" + std::to_string(n) +
                                 " gemv=" + std::to_string(gemv));
                    std::vector<float> a(static_cast<size_t>(n * rows), 1.0f), b(a);
                    QMatmulScratch s;
                    qmatmul(*t, a.data(), rows, x.data(), cols, n, m, 0.5f, s, gemv);
                    qmatmul(*t, b.data(), rows, x.data(), cols, n, p, 0.5f, s, gemv);
                    for (size_t i = 0; i < a.size(); ++i) {
                        if (gemv == 0 || t->path == CpuPath::scalar)
                            EXPECT_EQ(a[i], b[i]) << i;  // the same floats through the same GEMM / operations
                        else
                            EXPECT_NEAR(a[i], b[i], 2e-5 * (1.0 + std::fabs(a[i]))) << i;
                    }
                }
            }
        }
    }
}

TEST(QPack, ManyRowKernelsGiveTheOneRowKernelsSums) {
    // Prompts (more than kQGemvMaxRows rows, gemv = -1) take the many-rows kernel: the same
    // integer sums and float operations as the one-row kernel, so bit for bit; 70 rows cross a
    // tile of 64 and end on a partial group of 4.
    for (GgmlType type : kPackable) {
        SCOPED_TRACE(ggml_type_name(type));
        const int64_t rows = 32, cols = 320;
        const PackedPair pair(type, rows, cols, 6);
        const QMatrix& p = pair.p;
        Rng rng(7);
        // Above kQPackedGemmMaxRows rows, -1 dequantizes for the f32 GEMM (gemv = 0).
        for (int64_t n : {int64_t(5), int64_t(70), kQPackedGemmMaxRows + 1}) {
            std::vector<float> x(static_cast<size_t>(n * cols));
            rng.fill_normal(x.data(), n * cols, 0.0f, 1.0f);
            for (const QDotTable* t : all_paths()) {
                for (float beta : {0.0f, 0.5f}) {
                    SCOPED_TRACE(std::string(cpu_path_name(t->path)) + " n=" + std::to_string(n) +
                                 " beta=" + std::to_string(beta));
                    std::vector<float> a(static_cast<size_t>(n * (rows + 3)), 1.0f), b(a);
                    QMatmulScratch s;
                    qmatmul(*t, a.data(), rows + 3, x.data(), cols, n, p, beta, s, n <= kQPackedGemmMaxRows ? 1 : 0);
                    qmatmul(*t, b.data(), rows + 3, x.data(), cols, n, p, beta, s, -1);
                    EXPECT_EQ(a, b);  // padding columns (ldy = rows + 3) untouched in both
                }
            }
        }
    }
}

TEST(QPack, RefusesWhatItCannotPack) {
    std::vector<uint8_t> buf(4096);
    const QMatrix q4k{GgmlType::q4_k, 8, 256, buf.data()}, twelve{GgmlType::q4_0, 12, 32, buf.data()};
    EXPECT_FALSE(qmatrix_packable(q4k));
    EXPECT_FALSE(qmatrix_packable(twelve));
    EXPECT_TRUE(qmatrix_packable({GgmlType::q4_0, 16, 32, buf.data()}));
    std::vector<uint8_t> dst(4096);
    try {
        qmatrix_pack8(twelve, dst.data());
        FAIL() << "12 rows packed";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("Q4_0 / Q8_0 matrices of a multiple of 8 rows, got Q4_0 (12, 32)"),
                  std::string::npos)
            << e.what();
    }
    const QMatrix p = qmatrix_pack8({GgmlType::q4_0, 16, 32, buf.data()}, dst.data());
    EXPECT_FALSE(qmatrix_packable(p));
    std::vector<float> out(static_cast<size_t>(8 * 32));
    EXPECT_THROW(qmatrix_dequantize_rows(p, 4, 8, out.data()), Error);  // not on a group boundary
    // A group outside the matrix, or a matrix that is not packed, names the group and the matrix.
    std::vector<uint8_t> rows8(static_cast<size_t>(8 * p.row_bytes()));
    try {
        qmatrix_unpack_group(p, 2, rows8.data());
        FAIL() << "group 2 of 16 rows unpacked";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("group 2 of a packed matrix of 16 rows"), std::string::npos) << e.what();
    }
    EXPECT_THROW(qmatrix_unpack_group({GgmlType::q4_0, 16, 32, buf.data()}, 0, rows8.data()), Error);
}

TEST(QPack, DecoderGivesTheSameTokensPackedOrNot) {
    for (GgmlType type : kPackable) {
        SCOPED_TRACE(ggml_type_name(type));
        // The tiny Mixtral (D 32, F 24, 4 experts, vocabulary 96) in Q4_0 / Q8_0: every matrix packs
        // but the experts' down projections, which moe convert writes in F16 (24 columns: no blocks).
        const std::string path = moe::test::convert_hf_mixtral_tiny(type);
        auto file = std::make_shared<const GgufFile>(path);
        const ModelConfig c = gguf_model_config(*file);
        const InferWeights plain = gguf_infer_weights(file, c);
        InferWeights packed = plain;
        int released = 0;
        // Released pages of the mapping read back from the file: `plain` still reads them below.
        const int64_t bytes = infer_weights_pack8(packed, c, [&](const void* p, uint64_t n) {
            ++released;
            file->release(p, n);
        });
        EXPECT_GT(bytes, 0);
        EXPECT_EQ(released, 1 + int(c.num_layers) * 6);  // LM head; q k v o, gate and up per layer
        ASSERT_TRUE(packed.layers[0].ffn.quant.w1.packed8 && packed.layers[1].q.packed8 && packed.lm_head.packed8);
    EXPECT_EQ(infer_default_batch(packed), kInferMaxBatchPacked);
    EXPECT_EQ(infer_default_batch(plain), kInferMaxBatch);
        EXPECT_FALSE(packed.layers[0].ffn.quant.w2.packed8);  // F16
        EXPECT_FALSE(plain.layers[0].ffn.quant.w1.packed8);
        const std::vector<int32_t> prompt = {1, 17, 42, 5, 88, 23, 61, 9};
        // Greedy decoding from the prompt, fed in one batch or one token at a time; the logits of the
        // prompt's last position and of every generated token.
        auto run = [&](const InferWeights& w, bool batch, std::vector<float>* logits) {
            InferSession s(c, w, 64);
            const float* l = nullptr;
            if (batch) {
                l = s.feed(prompt.data(), int64_t(prompt.size()));
            } else {
                for (const int32_t t : prompt) l = s.feed(&t, 1);
            }
            std::vector<int32_t> out;
            for (int i = 0; i < 24; ++i) {
                logits->insert(logits->end(), l, l + c.vocab_size);
                out.push_back(int32_t(std::max_element(l, l + c.vocab_size) - l));
                l = s.feed(&out.back(), 1);
            }
            return out;
        };
        auto max_error = [](const std::vector<float>& a, const std::vector<float>& b) {
            double err = 0, mag = 0;
            for (size_t i = 0; i < a.size(); ++i)
                err = std::max(err, double(std::fabs(a[i] - b[i]))), mag = std::max(mag, double(std::fabs(a[i])));
            return err / mag;
        };
        // Token by token both take the quantized-activation kernels, per row or 8 rows at once: the
        // same integer block sums, only the order of the f32 block terms differs.
        std::vector<float> la, lb, lc, ld;
        EXPECT_EQ(run(plain, false, &la), run(packed, false, &lb));
        EXPECT_LT(max_error(la, lb), 1e-5);
        // A packed prompt in one batch goes through the many-rows kernel (the one-row kernel's sums)
        // and batched attention: the same tokens, logits to f32 rounding.
        EXPECT_EQ(run(packed, true, &lc), run(packed, false, &ld));
        EXPECT_LT(max_error(lc, ld), 1e-5);
        std::filesystem::remove(path);
    }
}
