// Mixtral as GGUF: transformers' tiny Mixtral (tests/fixtures/hf_mixtral_tiny) converted as
// llama.cpp's convert_hf_to_gguf.py would write it, loaded back, gives transformers' logits (F32)
// or logits within a measured quantisation error (F16, BF16, Q8_0, Q4_0); the metadata, names,
// dims and types are llama.cpp's; the q/k rows are permuted as LlamaModel.permute does; a
// tokenizer travels in tokenizer.ggml.*; bad files fail clearly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include "layer_fixture.h"
#include "moe/error.h"
#include "moe/gguf_model.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::error_of;
using moe::test::scaled_max_error;

namespace {

const std::string kMixtral = std::string(MOE_FIXTURE_DIR) + "/hf_mixtral_tiny";

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("moe_test_gguf_" + name)).string();
}

struct Model {
    ModelConfig c;
    Arena arena;
    ModelParams p;
    explicit Model(const ModelConfig& cfg) : c(cfg) {
        ModelSlots s = model_params_reserve(arena, c);
        arena.allocate();
        p = model_params_point(arena, s, c);
    }
    std::vector<float> logits(const std::vector<int32_t>& tokens) {
        std::vector<int32_t> targets(tokens.size(), -100);
        ModelCache cache;
        model_forward(cache, c, p, tokens.data(), targets.data(), 1, int64_t(tokens.size()), 0, 0);
        return {cache.logits.f32(), cache.logits.f32() + cache.logits.numel()};
    }
};

std::string convert(GgmlType type) {
    const std::string out = temp_path(std::string(ggml_type_name(type)) + ".gguf");
    GgufConvertOptions o;
    o.outtype = type;
    gguf_convert_model_dir(kMixtral, out, o);
    return out;
}

// The logits of the reference prompt from a converted GGUF.
std::vector<float> gguf_logits(const std::string& path, const std::vector<int32_t>& tokens) {
    GgufFile f(path);
    Model m(gguf_model_config(f));
    gguf_model_load_weights(f, m.c, m.p);
    return m.logits(tokens);
}

// A copy of src (u32 / f32 / string metadata, tensors' bytes) with edits: `meta` may replace a
// u32 value (return true when it wrote the key itself), `keep` drops tensors.
void rewrite(const GgufFile& src, const std::string& out,
             const std::function<bool(GgufWriter&, const std::string&)>& meta,
             const std::function<bool(const std::string&)>& keep) {
    GgufWriter w;
    for (const auto& [key, v] : src.metadata()) {
        if (meta(w, key)) continue;
        if (v.type == GgufType::u32) w.add_u32(key, src.get<uint32_t>(key));
        else if (v.type == GgufType::f32) w.add_f32(key, src.get<float>(key));
        else if (v.type == GgufType::string) w.add_string(key, src.get<std::string>(key));
        else FAIL() << "unexpected metadata type of " << key;
    }
    for (const GgufTensor& t : src.tensors())
        if (keep(t.name))
            w.add_tensor(t.name, t.type, t.shape(), std::string(reinterpret_cast<const char*>(src.tensor_data(t)), t.nbytes));
    w.write(out);
}

}  // namespace

TEST(GgufModel, ConvertedF32GivesTransformersLogitsAndGreedyTokens) {
    const std::string path = convert(GgmlType::f32);
    GgufFile f(path);
    ModelFileInfo info;
    Model m(gguf_model_config(f, &info));
    const ModelConfig want = model_config_read(kMixtral + "/config.json");
    EXPECT_TRUE(model_is_mixtral(m.c));
    EXPECT_EQ(info.max_position_embeddings, 64);
    EXPECT_EQ(m.c.vocab_size, want.vocab_size);
    EXPECT_EQ(m.c.num_layers, want.num_layers);
    EXPECT_EQ(m.c.attn.n_kv_heads, want.attn.n_kv_heads);
    EXPECT_EQ(m.c.moe.d_ff, want.moe.d_ff);
    EXPECT_EQ(m.c.moe.top_k, want.moe.top_k);
    gguf_model_load_weights(f, m.c, m.p);
    SafetensorsFile ref(kMixtral + "/reference.safetensors");
    std::vector<int32_t> tokens = ref.i32("tokens");
    // The same bound as the safetensors path (test_model_io.cpp): f32 weights are copied exactly.
    EXPECT_LT(scaled_max_error(m.logits(tokens).data(), ref.f32("logits")), 1e-5);
    const int64_t V = m.c.vocab_size;
    std::vector<int32_t> greedy;
    for (int i = 0; i < 32; ++i) {
        std::vector<float> l = m.logits(tokens);
        const float* last = l.data() + (int64_t(tokens.size()) - 1) * V;
        greedy.push_back(int32_t(std::max_element(last, last + V) - last));
        tokens.push_back(greedy.back());
    }
    EXPECT_EQ(greedy, ref.i32("greedy"));
    // model_load_weights takes the .gguf too.
    Model m2(m.c);
    model_load_weights(path, m2.c, m2.p);
    EXPECT_EQ(std::memcmp(m2.arena.base_f32(), m.arena.base_f32(), m.arena.bytes()), 0);
    std::filesystem::remove(path);
}

TEST(GgufModel, QuantizedLogitsWithinMeasuredError) {
    // Max |logit - transformers'| over max |logit| (test_model_io's scaled error), measured on
    // this model (2 layers, D = 32, init std 0.02): F16 6.9e-4, BF16 4.9e-3, Q8_0 1.8e-2,
    // Q4_0 0.34. The ratios follow the per-weight rounding steps: BF16 / F16 = 2^3 (7 vs 10
    // mantissa bits; measured 7.1), Q8_0 (step max|x| / 127 per block of 32) about 4x BF16
    // (measured 3.7), Q4_0 (step max|x| / 8) 16x Q8_0 (measured 18). Bounds are about 1.5x the
    // measurement. The second check is exact: the GGUF's logits equal those of the original
    // model with every matrix quantized and dequantized in place (same types, F16 for the rows
    // of F = 24 that are not whole blocks), so nothing but the rounding separates the two.
    SafetensorsFile ref(kMixtral + "/reference.safetensors");
    const std::vector<int32_t> tokens = ref.i32("tokens");
    const std::pair<GgmlType, double> cases[] = {
        {GgmlType::f16, 1e-3}, {GgmlType::bf16, 7.5e-3}, {GgmlType::q8_0, 2.7e-2}, {GgmlType::q4_0, 0.5}};
    for (const auto& [type, tol] : cases) {
        const std::string path = convert(type);
        const std::vector<float> got = gguf_logits(path, tokens);
        const double err = scaled_max_error(got.data(), ref.f32("logits"));
        std::printf("  %-5s logits: scaled max error %.3g (bound %.3g)\n", ggml_type_name(type), err, tol);
        EXPECT_LT(err, tol) << ggml_type_name(type);
        EXPECT_GT(err, 1e-5) << ggml_type_name(type) << " must not be exact: was it quantized at all?";
        Model e(model_config_read(kMixtral + "/config.json"));
        model_load_weights(kMixtral, e.c, e.p);
        for (const GgufModelTensor& t : gguf_model_tensors(e.p, e.c)) {
            if (t.keep_f32 || t.view.shape.ndim < 2) continue;
            const int64_t row = t.view.shape.dims[t.view.shape.ndim - 1];
            const GgmlType rt = row % ggml_type_info(type).block_size == 0 ? type : GgmlType::f16;
            std::vector<uint8_t> q(static_cast<size_t>(ggml_row_bytes(rt, row)));
            for (int64_t r = 0; r < t.view.numel() / row; ++r) {
                quantize_row(rt, t.view.f32() + r * row, q.data(), row);
                dequantize_row(rt, q.data(), t.view.f32() + r * row, row);
            }
        }
        EXPECT_EQ(e.logits(tokens), got) << ggml_type_name(type);
        std::filesystem::remove(path);
    }
}
