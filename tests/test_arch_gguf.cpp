// Qwen2-MoE, Qwen3-MoE, OLMoE and DeepSeek-V2 / V3 as GGUF (llama.cpp's "qwen2moe", "qwen3moe",
// "olmoe", "deepseek2"): the transformers fixtures converted by moe convert, mapped by the decoder
// (gguf_infer_weights), give the directory's logits and greedy tokens from an F32 file; a Q8_0
// file's mapped weights give the logits of the same file dequantized to f32 (nothing is lost in
// the mapping of the extra tensors: biases, QK-norms, the shared expert, MLA's k_b / v_b); what
// llama.cpp cannot run is refused, and a deepseek2 file missing a key or tensor fails naming it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>

#include "gguf_fixture.h"
#include "layer_fixture.h"
#include "moe/gguf_model.h"
#include "moe/infer.h"
#include "moe/model_io.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::error_of;
using moe::test::rewrite;
using moe::test::scaled_max_error;

namespace {

const std::string kFix = std::string(MOE_FIXTURE_DIR);

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("moe_test_arch_gguf_" + name)).string();
}

std::string convert(const std::string& dir, GgmlType type, const std::string& tag) {
    const std::string out = temp_path(tag + "_" + ggml_type_name(type) + ".gguf");
    GgufConvertOptions o;
    o.outtype = type;
    gguf_convert_model_dir(dir, out, o);
    return out;
}

// Logits (all positions) and greedy continuation (the prompt at once, then one token at a time).
struct Run {
    std::vector<float> logits;
    std::vector<int32_t> greedy;
};
Run run_weights(const ModelConfig& c, const InferWeights& w, const std::vector<int32_t>& tokens, int n_greedy) {
    InferSession s(c, w, int64_t(tokens.size()) + n_greedy);
    Run r;
    const float* l = s.feed(tokens.data(), int64_t(tokens.size()), true);
    r.logits.assign(l, l + int64_t(tokens.size()) * c.vocab_size);
    l += (int64_t(tokens.size()) - 1) * c.vocab_size;
    for (int i = 0; i < n_greedy; ++i) {
        const int32_t next = int32_t(std::max_element(l, l + c.vocab_size) - l);
        r.greedy.push_back(next);
        if (i + 1 < n_greedy) l = s.feed(&next, 1);
    }
    return r;
}

// ... of a GGUF, mapped or dequantized into a ModelParams.
Run run_gguf(const std::string& path, const std::vector<int32_t>& tokens, bool mapped, int n_greedy) {
    auto file = std::make_shared<const GgufFile>(path);
    const ModelConfig c = gguf_model_config(*file);
    Arena arena;
    InferWeights w;
    if (mapped) {
        w = gguf_infer_weights(file, c);
    } else {
        const ModelParams p = model_params_allocate(arena, c);
        gguf_model_load_weights(*file, c, p);
        w = infer_weights(p, c);
    }
    return run_weights(c, w, tokens, n_greedy);
}

void check_arch(const std::string& name, const std::string& gguf_arch) {
    const std::string dir = kFix + "/hf_" + name;
    SafetensorsFile ref(dir + "/reference.safetensors");
    const std::vector<int32_t> tokens = ref.i32("tokens");
    const std::string f32 = convert(dir, GgmlType::f32, name);
    {
        GgufFile f(f32);
        EXPECT_EQ(f.get<std::string>("general.architecture"), gguf_arch);
        EXPECT_EQ(gguf_model_config(f).arch, model_config_read(dir + "/config.json").arch);
    }
    const Run r = run_gguf(f32, tokens, true, 32);
    const double err = scaled_max_error(r.logits.data(), ref.f32("logits"));
    std::printf("%s F32 GGUF: max |logit - transformers'| / max |logit| = %.2e\n", name.c_str(), err);
    EXPECT_LT(err, 1e-5) << name;
    EXPECT_EQ(r.greedy, ref.i32("greedy")) << name;
    // BF16: the mapped matrices are used as stored, with no activation rounding, so the mapped
    // decoder equals the file dequantized to f32 up to summation order. Q8_0: rows of x are
    // rounded to Q8_0 before the dot products in expert segments of <= 4 rows (as in
    // test_gguf_infer.cpp, bound 0.025 there on the median position): measured 2.1e-3 to
    // 3.4e-3 on the whole logits here.
    for (const auto& [type, lo, hi] : {std::tuple{GgmlType::bf16, 0.0, 1e-5}, std::tuple{GgmlType::q8_0, 1e-4, 0.025}}) {
        const std::string q = convert(dir, type, name);
        const Run mapped = run_gguf(q, tokens, true, 0), deq = run_gguf(q, tokens, false, 0);
        const double qerr = scaled_max_error(mapped.logits.data(), deq.logits);
        std::printf("%s %s GGUF mapped vs dequantized: %.2e; vs transformers %.2e\n", name.c_str(), ggml_type_name(type),
                    qerr, scaled_max_error(mapped.logits.data(), ref.f32("logits")));
        EXPECT_LT(qerr, hi) << name << " " << ggml_type_name(type);
        EXPECT_GE(qerr, lo) << name << " " << ggml_type_name(type) << ": the activations must be rounded";
        EXPECT_GT(scaled_max_error(mapped.logits.data(), ref.f32("logits")), 1e-5) << name << ": was it quantized?";
        std::filesystem::remove(q);
    }
    std::filesystem::remove(f32);
}

}  // namespace

TEST(ArchGguf, Qwen2MoeRoundTripsThroughGguf) { check_arch("qwen2_moe_allmoe", "qwen2moe"); }

TEST(ArchGguf, Qwen3MoeRoundTripsThroughGguf) { check_arch("qwen3_moe_allmoe", "qwen3moe"); }

TEST(ArchGguf, OlmoeRoundTripsThroughGguf) { check_arch("olmoe_mha_noclip", "olmoe"); }

TEST(ArchGguf, UnconvertibleModelsAreRefused) {
    // Qwen3-MoE without renormalised top-k weights: llama.cpp's qwen3moe always renormalises.
    const std::string dir = temp_path("qwen3_norenorm");
    std::filesystem::remove_all(dir);
    std::filesystem::copy(kFix + "/hf_qwen3_moe_tiny", dir);
    nlohmann::json j;
    std::ifstream(dir + "/config.json") >> j;
    j["norm_topk_prob"] = false;
    j["decoder_sparse_step"] = 1;
    std::ofstream(dir + "/config.json") << j.dump(2);
    const std::string e = error_of([&] { convert(dir, GgmlType::f32, "qwen3_norenorm"); });
    EXPECT_NE(e.find("renormalises"), std::string::npos) << e;
    // Dense layers (mlp_only_layers = [1]): llama.cpp makes every layer MoE.
    const std::string e2 = error_of([&] { convert(kFix + "/hf_qwen2_moe_tiny", GgmlType::f32, "qwen2_dense"); });
    EXPECT_NE(e2.find("layer 1 is dense"), std::string::npos) << e2;
    // OLMoE with clip_qkv (llama.cpp's graph has none), and with fewer KV heads than heads.
    const std::string e3 = error_of([&] { convert(kFix + "/hf_olmoe_tiny", GgmlType::f32, "olmoe_clip"); });
    EXPECT_NE(e3.find("clip_qkv"), std::string::npos) << e3;
}

namespace {

// A copy of a DeepSeek fixture with its config edited: rms_norm_eps 1e-6 always (llama.cpp's
// deepseek2 uses it for q_a / kv_a_layernorm too, transformers 1e-6 there: DeepSeek's released
// configs agree, the fixtures' 1e-5 is refused), plus `edit`; one per test (ctest runs them in
// parallel processes).
std::string deepseek_dir(const std::string& name, const std::function<void(nlohmann::json&)>& edit = nullptr) {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const std::string dir = temp_path("dir_" + test + "_" + name);
    std::filesystem::remove_all(dir);
    std::filesystem::copy(kFix + "/hf_" + name, dir);
    nlohmann::json j;
    std::ifstream(dir + "/config.json") >> j;
    j["rms_norm_eps"] = 1e-6;
    if (edit) edit(j);
    std::ofstream(dir + "/config.json") << j.dump(2);
    return dir;
}

// The directory's own logits (all positions) and greedy continuation: the path checked against
// transformers in test_arch.cpp.
Run run_dir(const std::string& dir, const std::vector<int32_t>& tokens, int n_greedy) {
    const ModelConfig c = model_config_read(dir + "/config.json");
    Arena arena;
    const ModelParams p = model_params_allocate(arena, c);
    model_load_weights(dir, c, p);
    return run_weights(c, infer_weights(p, c), tokens, n_greedy);
}

// F32: the mapped file (k_b / v_b, the absorbed path) and the file dequantized into a ModelParams
// (kv_b_proj put back together) give the directory's logits and 32 greedy tokens. Q8_0: the
// mapped file against itself dequantized, as check_arch. Returns the F32 file (the caller removes it).
std::string check_deepseek(const std::string& name, const std::string& dir) {
    SafetensorsFile ref(kFix + "/hf_" + name + "/reference.safetensors");
    const std::vector<int32_t> tokens = ref.i32("tokens");
    const Run want = run_dir(dir, tokens, 32);
    const std::string f32 = convert(dir, GgmlType::f32, name);
    {
        GgufFile f(f32);
        EXPECT_EQ(f.get<std::string>("general.architecture"), "deepseek2");
        const ModelConfig c = gguf_model_config(f), hf = model_config_read(dir + "/config.json");
        EXPECT_EQ(c.arch, hf.arch);
        EXPECT_EQ(c.mlp_only_layers, hf.mlp_only_layers);
        // The RoPE factor and softmax scale llama.cpp derives from the yarn keys are ours, up to
        // the keys' float32 rounding.
        EXPECT_NEAR(mla_rope_attention_factor(c.mla), mla_rope_attention_factor(hf.mla), 1e-7) << name;
        EXPECT_NEAR(mla_softmax_scale(c.mla), mla_softmax_scale(hf.mla), 1e-7 * mla_softmax_scale(hf.mla)) << name;
        EXPECT_EQ(f.get_int("deepseek2.attention.head_count_kv"), 1);
        EXPECT_FALSE(f.has_tensor("blk.1.attn_kv_b.weight"));
    }
    for (bool mapped : {true, false}) {
        const Run r = run_gguf(f32, tokens, mapped, 32);
        const double err = scaled_max_error(r.logits.data(), want.logits);
        std::printf("%s F32 GGUF (%s): max |logit - directory's| / max |logit| = %.2e\n", name.c_str(),
                    mapped ? "mapped" : "dequantized", err);
        EXPECT_LT(err, 1e-5) << name;
        EXPECT_EQ(r.greedy, want.greedy) << name;
    }
    const std::string q = convert(dir, GgmlType::q8_0, name);
    const Run mapped = run_gguf(q, tokens, true, 0), deq = run_gguf(q, tokens, false, 0);
    const double qerr = scaled_max_error(mapped.logits.data(), deq.logits);
    const double derr = scaled_max_error(mapped.logits.data(), want.logits);
    std::printf("%s Q8_0 GGUF mapped vs dequantized: %.2e; vs the directory %.2e\n", name.c_str(), qerr, derr);
    EXPECT_LT(qerr, 0.025) << name;
    EXPECT_GE(qerr, 1e-4) << name << ": the activations must be rounded";
    EXPECT_GT(derr, 1e-5) << name << ": was it quantized?";
    EXPECT_LT(derr, 0.05) << name;
    std::filesystem::remove(q);
    return f32;
}

}  // namespace

TEST(ArchGguf, DeepseekV2LiteRoundTripsThroughGguf) {
    const std::string dir = deepseek_dir("deepseek_v2_lite_tiny");
    const std::string f32 = check_deepseek("deepseek_v2_lite_tiny", dir);
    GgufFile f(f32);
    EXPECT_EQ(f.get_int("deepseek2.attention.q_lora_rank"), 0);  // null: q_proj, attn_q
    EXPECT_TRUE(f.has_tensor("blk.0.attn_q.weight"));
    EXPECT_EQ(f.get_int("deepseek2.expert_shared_count"), 2);
    EXPECT_EQ(f.get_int("deepseek2.expert_gating_func"), 1);
    EXPECT_FALSE(f.has("deepseek2.rope.scaling.type"));
    std::filesystem::remove(f32);
    std::filesystem::remove_all(dir);
}

TEST(ArchGguf, DeepseekV2YarnRoundTripsThroughGguf) {
    // hf_deepseek_v2_group_tiny routes group-limited (refused below), so it is converted with
    // plain top-k: its yarn, q_lora_rank and transformers' V2 softmax scale (no mscale) remain.
    const std::string dir = deepseek_dir("deepseek_v2_group_tiny", [](nlohmann::json& j) {
        j["topk_method"] = "greedy";
        j["n_group"] = 1;
        j["topk_group"] = 1;
    });
    const std::string f32 = check_deepseek("deepseek_v2_group_tiny", dir);
    GgufFile f(f32);
    // llama.cpp: no yarn_log_multiplier -> RoPE x r m(4, 1) and softmax x (r m(4, 1))^2: r = 1 / m.
    EXPECT_FALSE(f.has("deepseek2.rope.scaling.yarn_log_multiplier"));
    EXPECT_FLOAT_EQ(f.get<float>("deepseek2.rope.scaling.attn_factor"), float(1 / (1 + 0.1 * std::log(4.0))));
    EXPECT_EQ(f.get_int("deepseek2.rope.scaling.original_context_length"), 16);
    std::filesystem::remove(f32);
    std::filesystem::remove_all(dir);
}

TEST(ArchGguf, DeepseekV3RoundTripsThroughGguf) {
    const std::string dir = deepseek_dir("deepseek_v3_tiny");
    const std::string f32 = check_deepseek("deepseek_v3_tiny", dir);
    GgufFile f(f32);
    EXPECT_EQ(f.get_int("deepseek2.expert_gating_func"), 2);
    EXPECT_TRUE(f.get<bool>("deepseek2.expert_weights_norm"));
    EXPECT_FLOAT_EQ(f.get<float>("deepseek2.expert_weights_scale"), 2.5f);
    EXPECT_EQ(f.get_int("deepseek2.expert_group_count"), 2);
    EXPECT_EQ(f.get_int("deepseek2.leading_dense_block_count"), 1);
    EXPECT_TRUE(f.has_tensor("blk.0.ffn_gate.weight"));
    EXPECT_TRUE(f.has_tensor("blk.1.exp_probs_b.bias"));
    // As convert_hf_to_gguf.py writes V3's yarn: 0.1 mscale_all_dim, no attn_factor.
    EXPECT_FLOAT_EQ(f.get<float>("deepseek2.rope.scaling.yarn_log_multiplier"), 0.1f);
    EXPECT_FALSE(f.has("deepseek2.rope.scaling.attn_factor"));
    EXPECT_EQ(f.get_int("deepseek2.attention.key_length_mla"), 16);
    EXPECT_EQ(f.get_int("deepseek2.attention.key_length"), 24);  // kv_lora_rank + qk_rope_head_dim

    // A file missing a key or a tensor fails naming it, mapped and dequantized alike.
    const std::string bad = temp_path("deepseek_bad.gguf");
    auto load = [&](bool mapped) {
        auto g = std::make_shared<const GgufFile>(bad);
        const ModelConfig c = gguf_model_config(*g);
        if (mapped) {
            gguf_infer_weights(g, c);
        } else {
            Arena arena;
            gguf_model_load_weights(*g, c, model_params_allocate(arena, c));
        }
    };
    auto all = [](const std::string&) { return true; };
    auto drop_key = [](const std::string& key) {
        return [key](GgufWriter&, const std::string& k) { return k == key; };
    };
    auto none = [](GgufWriter&, const std::string&) { return false; };
    for (const char* key : {"deepseek2.attention.kv_lora_rank", "deepseek2.expert_shared_count",
                            "deepseek2.expert_feed_forward_length", "deepseek2.rope.dimension_count"}) {
        rewrite(f, bad, drop_key(key), all);
        const std::string e = error_of([&] { load(true); });
        EXPECT_NE(e.find(std::string("has no ") + key + "; it is required for a deepseek2 GGUF"), std::string::npos) << e;
    }
    rewrite(f, bad, drop_key("deepseek2.attention.key_length_mla"), all);
    EXPECT_NE(error_of([&] { load(true); }).find("from before llama.cpp split attn_kv_b"), std::string::npos);
    for (const char* tensor : {"blk.1.attn_k_b.weight", "blk.2.attn_v_b.weight", "blk.1.exp_probs_b.bias",
                               "blk.0.ffn_down.weight", "blk.2.ffn_up_shexp.weight", "blk.0.attn_q_a_norm.weight"}) {
        rewrite(f, bad, none, [&](const std::string& n) { return n != tensor; });
        for (bool mapped : {true, false}) {
            const std::string e = error_of([&] { load(mapped); });
            EXPECT_NE(e.find(std::string("has no tensor '") + tensor + "'"), std::string::npos) << e;
        }
    }
    // Softmax gating with groups: llama.cpp's group score (sum of the two best) is not our topk's.
    rewrite(f, bad, [](GgufWriter& w, const std::string& k) {
        if (k != "deepseek2.expert_gating_func") return false;
        w.add_u32(k, 1);
        return true;
    }, all);
    EXPECT_NE(error_of([&] { load(true); }).find("expert_group_count is 2 with softmax gating"), std::string::npos);
    std::filesystem::remove(bad);
    std::filesystem::remove(f32);
    std::filesystem::remove_all(dir);
}

TEST(ArchGguf, DeepseekModelsLlamaCppComputesOtherwiseAreRefused) {
    auto refusal = [](const std::string& dir) { return error_of([&] { convert(dir, GgmlType::f32, "refused"); }); };
    // The fixtures as saved: rms_norm_eps 1e-5, but q_a / kv_a_layernorm use 1e-6 in transformers.
    const std::string e1 = refusal(kFix + "/hf_deepseek_v3_tiny");
    EXPECT_NE(e1.find("llama.cpp's deepseek2 uses rms_norm_eps for every RMSNorm"), std::string::npos) << e1;
    // DeepSeek-V2's group_limited_greedy (a group's best expert) is not llama.cpp's group score.
    const std::string group = deepseek_dir("deepseek_v2_group_tiny");
    const std::string e2 = refusal(group);
    EXPECT_NE(e2.find("group_limited_greedy with n_group > 1"), std::string::npos) << e2;
    // V3 with rotate_half RoPE pairs: llama.cpp's deepseek2 rotates adjacent pairs.
    const std::string half = deepseek_dir("deepseek_v3_tiny", [](nlohmann::json& j) { j["rope_interleave"] = false; });
    const std::string e3 = refusal(half);
    EXPECT_NE(e3.find("rope_interleave = false"), std::string::npos) << e3;
    EXPECT_FALSE(std::filesystem::exists(temp_path("refused_F32.gguf")));
    std::filesystem::remove_all(group);
    std::filesystem::remove_all(half);
}
