// The decoder on a mapped GGUF (gguf_infer_weights): weights used in their stored types, q / k
// in ggml's row order. Held to the same file dequantized to f32 (gguf_model_load_weights) and
// run through the training forward: the prompt (dequantize + GEMM) must give those logits to
// f32 rounding for F32 / F16 / BF16 files; with Q8_0 / Q4_0 weights the dot kernels see
// Q8_0-quantized activations, and the logits are within that rounding, measured here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "gguf_fixture.h"
#include "layer_fixture.h"
#include "model_fixture.h"
#include "moe/error.h"
#include "moe/gguf_model.h"
#include "moe/infer.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::scaled_max_error;
using moe::test::convert_hf_mixtral_tiny;
using moe::test::kHfMixtralTiny;
using moe::test::TestModel;

namespace {

// Per position t, max_v |got - want| over max_v |want| (layer_fixture's scaled error).
std::vector<double> position_errors(const float* got, const std::vector<float>& want, int64_t T, int64_t V) {
    std::vector<double> e;
    for (int64_t t = 0; t < T; ++t)
        e.push_back(scaled_max_error(got + t * V, std::vector<float>(want.begin() + t * V, want.begin() + (t + 1) * V)));
    return e;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

TEST(GgufInfer, MappedWeightsGiveTheDequantizedModelsLogits) {
    SafetensorsFile ref(kHfMixtralTiny + "/reference.safetensors");
    const std::vector<int32_t> tokens = ref.i32("tokens");
    const int64_t T = int64_t(tokens.size());
    for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0, GgmlType::q4_0}) {
        SCOPED_TRACE(ggml_type_name(type));
        const std::string path = convert_hf_mixtral_tiny(type);
        auto file = std::make_shared<const GgufFile>(path);
        TestModel deq(gguf_model_config(*file));
        gguf_model_load_weights(*file, deq.c, deq.p);
        const std::vector<float> want = deq.logits(tokens);
        const InferWeights w = gguf_infer_weights(file, deq.c);
        ASSERT_TRUE(w.rope_pairs);
        EXPECT_EQ(w.layers[0].ffn.quant.w1.type, type);  // the stored type, not a copy
        const int64_t V = deq.c.vocab_size;
        InferSession prompt(deq.c, w, T);
        const std::vector<double> pe = position_errors(prompt.feed(tokens.data(), T, true), want, T, V);
        InferSession step(deq.c, w, T);
        std::vector<float> got;
        for (int64_t t = 0; t < T; ++t) {
            const float* l = step.feed(&tokens[size_t(t)], 1);
            got.insert(got.end(), l, l + V);
        }
        const std::vector<double> de = position_errors(got.data(), want, T, V);
        const double dmax = *std::max_element(de.begin(), de.end());
        std::printf("  %-5s decode vs dequantized, scaled error per position: median %.3g max %.3g\n", ggml_type_name(type),
                    median(de), dmax);
        if (type == GgmlType::f32 || type == GgmlType::f16 || type == GgmlType::bf16) {
            // No activation rounding: the same function up to f32 summation order (measured 4e-7).
            EXPECT_LT(*std::max_element(pe.begin(), pe.end()), 1e-5);
            EXPECT_LT(dmax, 1e-5);
        } else {
            // Rows of x are rounded to Q8_0 (32-value blocks, step max|x| / 127) before the dot
            // products, in decode and in expert segments of <= 4 rows of the prompt. Measured
            // median 0.012 for both types (D = 32: one block per row); a routing decision that
            // flips under that rounding moves a position further (Q4_0: one of 12 at 0.23), so
            // the bound is on the median, 2x the measurement.
            EXPECT_LT(median(de), 0.025);
            EXPECT_LT(median(pe), 0.025);
            EXPECT_GT(median(de), 1e-4) << "the decode path must see quantized activations";
        }
        std::filesystem::remove(path);
    }
}

TEST(GgufInfer, F32FileGreedyTokensAreTransformers) {
    // The mapped F32 file decodes transformers' 32 greedy tokens (tools/gen_hf_fixtures.py).
    SafetensorsFile ref(kHfMixtralTiny + "/reference.safetensors");
    std::vector<int32_t> tokens = ref.i32("tokens");
    const std::string path = convert_hf_mixtral_tiny(GgmlType::f32);
    auto file = std::make_shared<const GgufFile>(path);
    const ModelConfig c = gguf_model_config(*file);
    InferSession s(c, gguf_infer_weights(file, c), 64);
    const float* l = s.feed(tokens.data(), int64_t(tokens.size()));
    std::vector<int32_t> greedy;
    for (int i = 0; i < 32; ++i) {
        greedy.push_back(int32_t(std::max_element(l, l + c.vocab_size) - l));
        l = s.feed(&greedy.back(), 1);
    }
    EXPECT_EQ(greedy, ref.i32("greedy"));
    std::filesystem::remove(path);
}

TEST(GgufInfer, MissingOrMisshapenTensorsAreNamed) {
    const std::string path = convert_hf_mixtral_tiny(GgmlType::q8_0);
    auto file = std::make_shared<const GgufFile>(path);
    ModelConfig c = gguf_model_config(*file);
    c.moe.d_ff += 32;  // the file's experts are smaller than this config says
    try {
        gguf_infer_weights(file, c);
        FAIL() << "the shapes disagree";
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("ffn_gate_exps"), std::string::npos) << m;
        EXPECT_NE(m.find(path), std::string::npos) << m;
    }
    std::filesystem::remove(path);
}
