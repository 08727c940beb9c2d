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
#include <memory>
#include <string>

#include "gguf_fixture.h"
#include "layer_fixture.h"
#include "model_fixture.h"
#include "moe/error.h"
#include "moe/gguf_model.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::error_of;
using moe::test::scaled_max_error;
using moe::test::convert_hf_mixtral_tiny;
using moe::test::kHfMixtralTiny;
using moe::test::rewrite;
using moe::test::TestModel;

namespace {

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("moe_test_gguf_" + name)).string();
}

// The logits of the reference prompt from a converted GGUF.
std::vector<float> gguf_logits(const std::string& path, const std::vector<int32_t>& tokens) {
    GgufFile f(path);
    TestModel m(gguf_model_config(f));
    gguf_model_load_weights(f, m.c, m.p);
    return m.logits(tokens);
}

}  // namespace

TEST(GgufModel, ConvertedF32GivesTransformersLogitsAndGreedyTokens) {
    const std::string path = convert_hf_mixtral_tiny(GgmlType::f32);
    GgufFile f(path);
    ModelFileInfo info;
    TestModel m(gguf_model_config(f, &info));
    const ModelConfig want = model_config_read(kHfMixtralTiny + "/config.json");
    EXPECT_TRUE(model_is_mixtral(m.c));
    EXPECT_EQ(info.max_position_embeddings, 64);
    EXPECT_EQ(m.c.vocab_size, want.vocab_size);
    EXPECT_EQ(m.c.num_layers, want.num_layers);
    EXPECT_EQ(m.c.attn.n_kv_heads, want.attn.n_kv_heads);
    EXPECT_EQ(m.c.moe.d_ff, want.moe.d_ff);
    EXPECT_EQ(m.c.moe.top_k, want.moe.top_k);
    gguf_model_load_weights(f, m.c, m.p);
    SafetensorsFile ref(kHfMixtralTiny + "/reference.safetensors");
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
    TestModel m2(m.c);
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
    SafetensorsFile ref(kHfMixtralTiny + "/reference.safetensors");
    const std::vector<int32_t> tokens = ref.i32("tokens");
    const std::pair<GgmlType, double> cases[] = {
        {GgmlType::f16, 1e-3}, {GgmlType::bf16, 7.5e-3}, {GgmlType::q8_0, 2.7e-2}, {GgmlType::q4_0, 0.5}};
    for (const auto& [type, tol] : cases) {
        const std::string path = convert_hf_mixtral_tiny(type);
        const std::vector<float> got = gguf_logits(path, tokens);
        const double err = scaled_max_error(got.data(), ref.f32("logits"));
        std::printf("  %-5s logits: scaled max error %.3g (bound %.3g)\n", ggml_type_name(type), err, tol);
        EXPECT_LT(err, tol) << ggml_type_name(type);
        EXPECT_GT(err, 1e-5) << ggml_type_name(type) << " must not be exact: was it quantized at all?";
        TestModel e(model_config_read(kHfMixtralTiny + "/config.json"));
        model_load_weights(kHfMixtralTiny, e.c, e.p);
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

TEST(GgufModel, MetadataNamesDimsAndTypesAreLlamaCpps) {
    const std::string path = convert_hf_mixtral_tiny(GgmlType::q8_0);
    GgufFile f(path);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.get<std::string>("general.architecture"), "llama");
    EXPECT_EQ(f.get<std::string>("general.name"), "hf_mixtral_tiny");
    EXPECT_EQ(f.get<uint32_t>("general.file_type"), 7u);  // LLAMA_FTYPE_MOSTLY_Q8_0
    EXPECT_EQ(f.get<uint32_t>("general.quantization_version"), 2u);
    const std::pair<const char*, uint32_t> u32s[] = {
        {"llama.context_length", 64}, {"llama.embedding_length", 32}, {"llama.block_count", 2},
        {"llama.feed_forward_length", 24}, {"llama.attention.head_count", 4}, {"llama.attention.head_count_kv", 2},
        {"llama.expert_count", 4}, {"llama.expert_used_count", 2}, {"llama.rope.dimension_count", 8},
        {"llama.vocab_size", 96}};
    for (const auto& [key, v] : u32s) EXPECT_EQ(f.get<uint32_t>(key), v) << key;
    EXPECT_EQ(f.get<float>("llama.rope.freq_base"), 10000.0f);
    EXPECT_EQ(f.get<float>("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
    // The fixture has no tokenizer.json: llama.cpp's "no vocabulary" type, which it loads.
    EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), "no_vocab");
    EXPECT_FALSE(f.has("tokenizer.ggml.tokens"));
    EXPECT_FALSE(gguf_has_tokenizer(f));
    // (name, ggml dims ne[0..], type): ne[0] is the contiguous dim, PyTorch's last.
    struct Want {
        std::string name;
        std::vector<int64_t> ne;
        GgmlType type;
    };
    std::vector<Want> want = {{"token_embd.weight", {32, 96}, GgmlType::q8_0}};
    for (int l = 0; l < 2; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        std::vector<Want> layer = {{b + "attn_norm.weight", {32}, GgmlType::f32},
                                   {b + "attn_q.weight", {32, 32}, GgmlType::q8_0},
                                   {b + "attn_k.weight", {32, 16}, GgmlType::q8_0},
                                   {b + "attn_v.weight", {32, 16}, GgmlType::q8_0},
                                   {b + "attn_output.weight", {32, 32}, GgmlType::q8_0},
                                   {b + "ffn_norm.weight", {32}, GgmlType::f32},
                                   {b + "ffn_gate_inp.weight", {32, 4}, GgmlType::f32},
                                   {b + "ffn_gate_exps.weight", {32, 24, 4}, GgmlType::q8_0},
                                   {b + "ffn_up_exps.weight", {32, 24, 4}, GgmlType::q8_0},
                                   {b + "ffn_down_exps.weight", {24, 32, 4}, GgmlType::f16}};  // 24: not whole blocks
        want.insert(want.end(), layer.begin(), layer.end());
    }
    want.push_back({"output_norm.weight", {32}, GgmlType::f32});
    want.push_back({"output.weight", {32, 96}, GgmlType::q8_0});
    ASSERT_EQ(f.tensors().size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        const GgufTensor& t = f.tensors()[i];
        EXPECT_EQ(t.name, want[i].name);
        EXPECT_EQ(std::vector<int64_t>(t.ne, t.ne + t.n_dims), want[i].ne) << t.name;
        EXPECT_EQ(t.type, want[i].type) << t.name;
        EXPECT_EQ(t.offset % 32, 0u) << t.name;
    }
    std::filesystem::remove(path);
}

TEST(GgufModel, QueryAndKeyRowsArePermutedForGgmlRope) {
    // LlamaModel.permute: rows (heads, 2, hd/2) -> (heads, hd/2, 2). With hd = 8, GGUF row 1 of a
    // head is HF row 4 (the first of the second half), GGUF row 2 is HF row 1.
    const std::string path = convert_hf_mixtral_tiny(GgmlType::f32);
    GgufFile f(path);
    SafetensorsFile hf(kHfMixtralTiny + "/model.safetensors");
    const int64_t D = 32, hd = 8;
    for (const char* which : {"q", "k"}) {
        const std::vector<float> g = f.dequantize(std::string("blk.1.attn_") + which + ".weight");
        const std::vector<float> h = hf.f32(std::string("model.layers.1.self_attn.") + which + "_proj.weight");
        const int64_t heads = int64_t(h.size()) / (hd * D);
        for (int64_t head = 0; head < heads; ++head)
            for (int64_t r = 0; r < hd; ++r) {
                const int64_t src = head * hd + (r % 2) * (hd / 2) + r / 2;  // HF row of GGUF row head*hd + r
                EXPECT_TRUE(std::equal(g.begin() + (head * hd + r) * D, g.begin() + (head * hd + r + 1) * D,
                                       h.begin() + src * D))
                    << which << " head " << head << " row " << r;
            }
        EXPECT_FALSE(std::equal(g.begin(), g.end(), h.begin())) << which << ": not permuted at all";
    }
    // v and the output projection are not permuted.
    EXPECT_EQ(f.dequantize("blk.1.attn_v.weight"), hf.f32("model.layers.1.self_attn.v_proj.weight"));
    // Experts stacked: ffn_down_exps[e] is expert e's w2.
    const std::vector<float> down = f.dequantize("blk.0.ffn_down_exps.weight");
    const std::vector<float> w2 = hf.f32("model.layers.0.block_sparse_moe.experts.3.w2.weight");
    EXPECT_TRUE(std::equal(w2.begin(), w2.end(), down.begin() + 3 * 32 * 24));
    std::filesystem::remove(path);
}

TEST(GgufModel, TokenizerTravelsInTokenizerGgml) {
    // A Mixtral-style model of V = 300 with a byte-level BPE tokenizer of 290 tokens (the rest
    // padded, as convert_hf_to_gguf.py pads): ids, merges and logits survive the trip.
    const std::string text = "In the beginning God created the heaven and the earth. And the earth was without form.";
    BpeTokenizer tok = BpeTokenizer::train(text + text + text, 290, 2);
    ModelConfig c;
    c.vocab_size = 300;
    c.num_layers = 2;
    c.attn = {32, 4, 2, 0, 10000};
    c.moe.d_model = 32;
    c.moe.d_ff = 64;
    c.moe.n_experts = 4;
    c.moe.top_k = 2;
    c.moe.router.training = false;
    TestModel a(c);
    model_params_init(a.p, c, 7);
    const std::string dir = temp_path("tok_dir");
    std::filesystem::remove_all(dir);
    model_save_hf(dir, c, a.p, {128, 0, 0});
    tok.save(dir + "/tokenizer.json");
    const std::string path = temp_path("tok.gguf");
    EXPECT_TRUE(gguf_convert_model_dir(dir, path, {}).empty());  // no notes: F32, tokenizer present
    GgufFile f(path);
    EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(f.get<std::string>("tokenizer.ggml.pre"), "gpt-2");
    const std::vector<std::string> tokens = f.get_array<std::string>("tokenizer.ggml.tokens");
    ASSERT_EQ(tokens.size(), 300u);
    EXPECT_EQ(tokens[int64_t('A')], "A");
    EXPECT_EQ(tokens[int64_t(' ')], "\xC4\xA0");  // byte 0x20 in GPT-2's alphabet: "Ġ"
    EXPECT_EQ(tokens[299], "[PAD299]");
    const std::vector<int32_t> types = f.get_array<int32_t>("tokenizer.ggml.token_type");
    EXPECT_EQ(types[0], 1);
    EXPECT_EQ(types[299], 4);
    EXPECT_EQ(int64_t(f.get_array<std::string>("tokenizer.ggml.merges").size()), 290 - 256);
    ASSERT_TRUE(gguf_has_tokenizer(f));
    BpeTokenizer back = gguf_tokenizer(f);
    EXPECT_EQ(back.vocab_size(), 300);
    EXPECT_EQ(back.encode(text), tok.encode(text));
    EXPECT_EQ(back.decode(tok.encode(text)), text);
    TestModel b(gguf_model_config(f));
    gguf_model_load_weights(f, b.c, b.p);
    const std::vector<int32_t> ids = tok.encode(text);
    EXPECT_EQ(b.logits(ids), a.logits(ids));  // F32 and an exact permutation round trip: bit-equal
    std::filesystem::remove_all(dir);
    std::filesystem::remove(path);
}

TEST(GgufModel, BadFilesAndModelsFailClearly) {
    const std::string path = convert_hf_mixtral_tiny(GgmlType::f32), bad = temp_path("BadFiles_bad.gguf");
    GgufFile f(path);
    auto none = [](GgufWriter&, const std::string&) { return false; };
    auto all = [](const std::string&) { return true; };
    auto load = [&] {
        GgufFile g(bad);
        TestModel m(gguf_model_config(g));
        gguf_model_load_weights(g, m.c, m.p);
    };
    rewrite(f, bad, [](GgufWriter& w, const std::string& k) {
        if (k != "general.architecture") return false;
        w.add_string(k, "gpt2");
        return true;
    }, all);
    EXPECT_NE(error_of(load).find("general.architecture is \"gpt2\"; supported: \"llama\" with experts"), std::string::npos);
    rewrite(f, bad, [](GgufWriter&, const std::string& k) { return k == "llama.expert_count"; }, all);
    EXPECT_NE(error_of(load).find("a dense model (llama.expert_count absent or 0)"), std::string::npos);
    rewrite(f, bad, none, [](const std::string& n) { return n != "blk.1.ffn_up_exps.weight"; });
    EXPECT_NE(error_of(load).find("has no tensor 'blk.1.ffn_up_exps.weight'; the file is incomplete"), std::string::npos);
    rewrite(f, bad, [](GgufWriter& w, const std::string& k) {
        if (k != "llama.feed_forward_length") return false;
        w.add_u32(k, 32);
        return true;
    }, all);
    EXPECT_NE(error_of(load).find("tensor 'blk.0.ffn_gate_exps.weight' has shape (4, 24, 32) (PyTorch order), the "
                                  "metadata implies (4, 32, 32)"),
              std::string::npos);
    // A type the dequantizer reads but the decoder has no product for: the mapped weights are
    // refused naming the tensor and the type (the f32 load still works).
    const std::string gate = "blk.0.ffn_gate_exps.weight";
    rewrite(f, bad, none, [&](const std::string& n) { return n != gate; }, [&](GgufWriter& w) {
        w.add_tensor(gate, GgmlType::q5_1, {4, 24, 32}, std::string(size_t(ggml_row_bytes(GgmlType::q5_1, 32) * 4 * 24), '\0'));
    });
    {
        auto g = std::make_shared<const GgufFile>(bad);
        const ModelConfig gc = gguf_model_config(*g);
        EXPECT_NE(error_of([&] { gguf_infer_weights(g, gc); })
                      .find("tensor '" + gate + "' is Q5_1, which has no quantized product here"),
                  std::string::npos);
        EXPECT_EQ(error_of(load), "");
    }
    // A model llama.cpp's llama architecture cannot express: shared experts.
    ModelConfig c = model_config_read(kHfMixtralTiny + "/config.json");
    c.moe.n_shared = 1;
    c.moe.d_ff_shared = 8;
    TestModel m(c);
    const std::string dir = temp_path("shared_dir");
    model_save_hf(dir, c, m.p, {64, 0, 0});
    EXPECT_NE(error_of([&] { gguf_convert_model_dir(dir, bad, {}); }).find("has no GGUF form llama.cpp runs: llama's architecture with experts needs"),
              std::string::npos);
    GgufConvertOptions q2;
    q2.outtype = GgmlType::q2_k;
    EXPECT_NE(error_of([&] { gguf_convert_model_dir(kHfMixtralTiny, bad, q2); }).find("outtype Q2_K is not supported"),
              std::string::npos);
    std::filesystem::remove_all(dir);
    std::filesystem::remove(path);
    std::filesystem::remove(bad);
}
