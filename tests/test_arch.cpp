// The architectures beyond Mixtral (include/moe/arch.h): tiny random Qwen2-MoE, Qwen3-MoE and
// OLMoE models saved by transformers itself (tools/gen_hf_fixtures.py) load and give
// transformers' logits and its 32 greedy tokens through the KV-cached decoder; a bf16 checkpoint
// in shards with its index loads too; configs and checkpoints that disagree fail clearly.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "layer_fixture.h"
#include "moe/error.h"
#include "moe/infer.h"
#include "moe/model_io.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::error_of;
using moe::test::scaled_max_error;

namespace {

const std::string kFix = std::string(MOE_FIXTURE_DIR);

struct Loaded {
    ModelConfig c;
    Arena arena;
    ModelParams p;
    explicit Loaded(const std::string& dir) : c(model_config_read(dir + "/config.json")), p(model_params_allocate(arena, c)) {
        model_load_weights(dir, c, p);
    }
};

// (T, V) logits of the whole sequence fed at once (the prompt path of the decoder).
std::vector<float> all_logits(const Loaded& m, const std::vector<int32_t>& tokens) {
    InferSession s(m.c, m.p, int64_t(tokens.size()));
    const float* l = s.feed(tokens.data(), int64_t(tokens.size()), true);
    return {l, l + int64_t(tokens.size()) * m.c.vocab_size};
}

// The prompt at once, then 32 greedy tokens one at a time through the KV cache.
std::vector<int32_t> greedy(const Loaded& m, const std::vector<int32_t>& prompt, int n) {
    InferSession s(m.c, m.p, int64_t(prompt.size()) + n);
    const float* l = s.feed(prompt.data(), int64_t(prompt.size()));
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
        const int32_t next = int32_t(std::max_element(l, l + m.c.vocab_size) - l);
        out.push_back(next);
        if (i + 1 < n) l = s.feed(&next, 1);
    }
    return out;
}

// The directory used where it lies (hf_infer_weights: mapped safetensors, per-expert matrices
// as stored) gives the same logits, in a batch and one token at a time.
void check_mapped(const std::string& dir, const ModelConfig& c, const std::vector<int32_t>& tokens,
                  const std::vector<float>& want, const std::string& name) {
    ASSERT_TRUE(hf_can_map(dir, c));
    const InferWeights w = hf_infer_weights(dir, c);
    EXPECT_FALSE(w.layers.back().ffn.quant.w1_e.empty());  // the experts are views, not copies
    InferSession batch(c, w, int64_t(tokens.size())), step(c, w, int64_t(tokens.size()));
    const float* l = batch.feed(tokens.data(), int64_t(tokens.size()), true);
    EXPECT_LT(scaled_max_error(l, want), 1e-5) << name << " mapped";
    std::vector<float> stepped;
    for (int32_t t : tokens) {
        const float* s = step.feed(&t, 1);
        stepped.insert(stepped.end(), s, s + c.vocab_size);
    }
    EXPECT_LT(scaled_max_error(stepped.data(), want), 1e-5) << name << " mapped, one token at a time";
}

void check_against_transformers(const std::string& name, ModelArch arch) {
    const std::string dir = kFix + "/hf_" + name;
    Loaded m(dir);
    EXPECT_EQ(m.c.arch, arch);
    SafetensorsFile ref(dir + "/reference.safetensors");
    const std::vector<int32_t> tokens = ref.i32("tokens");
    // transformers computes in float32 too: the difference is summation order.
    const double err = scaled_max_error(all_logits(m, tokens).data(), ref.f32("logits"));
    EXPECT_LT(err, 1e-5) << name;
    std::printf("%s: max |logit - transformers'| / max |logit| = %.2e\n", name.c_str(), err);
    EXPECT_EQ(greedy(m, tokens, 32), ref.i32("greedy")) << name;
    // One token per call from the start (a fresh session's first call with one row: the
    // decode path allocates its buffers then).
    InferSession s(m.c, m.p, int64_t(tokens.size()));
    std::vector<float> stepped;
    for (int32_t t : tokens) {
        const float* l = s.feed(&t, 1);
        stepped.insert(stepped.end(), l, l + m.c.vocab_size);
    }
    EXPECT_LT(scaled_max_error(stepped.data(), ref.f32("logits")), 1e-5) << name << " one token at a time";
    check_mapped(dir, m.c, tokens, ref.f32("logits"), name);
}

std::string copy_fixture(const std::string& name, const std::string& tag) {
    const std::string d = (std::filesystem::temp_directory_path() / ("moe_test_arch_" + tag)).string();
    std::filesystem::remove_all(d);
    std::filesystem::copy(kFix + "/" + name, d);
    return d;
}

void edit_json(const std::string& path, const std::function<void(nlohmann::json&)>& f) {
    nlohmann::json j;
    std::ifstream(path) >> j;
    f(j);
    std::ofstream(path) << j.dump(2);
}

}  // namespace

TEST(Arch, Qwen2MoeMatchesTransformers) {
    check_against_transformers("qwen2_moe_tiny", ModelArch::qwen2_moe);
    check_against_transformers("qwen2_moe_allmoe", ModelArch::qwen2_moe);
    const ModelConfig c = model_config_read(kFix + "/hf_qwen2_moe_tiny/config.json");
    EXPECT_TRUE(c.attn.qkv_bias);
    EXPECT_EQ(c.moe.n_shared, 1);
    EXPECT_TRUE(c.moe.shared_gate);
    EXPECT_FALSE(c.moe.renormalize);
    EXPECT_FALSE(c.is_moe_layer(1));  // mlp_only_layers = [1]: a dense FFN of intermediate_size
    EXPECT_EQ(c.ffn(1).d_ff, 40);
}

TEST(Arch, Qwen3MoeMatchesTransformers) {
    check_against_transformers("qwen3_moe_tiny", ModelArch::qwen3_moe);
    check_against_transformers("qwen3_moe_allmoe", ModelArch::qwen3_moe);
    const ModelConfig c = model_config_read(kFix + "/hf_qwen3_moe_tiny/config.json");
    EXPECT_EQ(c.attn.qk_norm, QkNorm::head);
    EXPECT_EQ(c.attn.hd(), 16);  // not hidden_size / heads
    EXPECT_FALSE(c.is_moe_layer(0));  // decoder_sparse_step 2
    EXPECT_TRUE(c.is_moe_layer(1));
}

TEST(Arch, OlmoeMatchesTransformers) {
    check_against_transformers("olmoe_tiny", ModelArch::olmoe);
    check_against_transformers("olmoe_mha_noclip", ModelArch::olmoe);
    const ModelConfig c = model_config_read(kFix + "/hf_olmoe_tiny/config.json");
    EXPECT_EQ(c.attn.qk_norm, QkNorm::full);
    EXPECT_DOUBLE_EQ(c.attn.clip_qkv, 1.5);
}

TEST(Arch, OlmoeClipQkvMatters) {
    // Without the clamp the logits leave transformers': the fixture's clip_qkv does clip.
    const std::string dir = copy_fixture("hf_olmoe_tiny", "noclip");
    edit_json(dir + "/config.json", [](nlohmann::json& j) { j["clip_qkv"] = nullptr; });
    Loaded m(dir);
    SafetensorsFile ref(dir + "/reference.safetensors");
    EXPECT_GT(scaled_max_error(all_logits(m, ref.i32("tokens")).data(), ref.f32("logits")), 1e-3);
}

TEST(Arch, Bf16ShardedCheckpointLoads) {
    // bfloat16 shards with model.safetensors.index.json, as transformers saves real models.
    const std::string dir = kFix + "/hf_qwen3_moe_tiny_bf16_sharded";
    Loaded m(dir);
    SafetensorsFile ref(dir + "/reference.safetensors");
    const double err = scaled_max_error(all_logits(m, ref.i32("tokens")).data(), ref.f32("logits"));
    EXPECT_LT(err, 1e-5);
    std::printf("bf16 shards: max |logit - transformers'| / max |logit| = %.2e\n", err);
    // Mapped: the bf16 matrices are used as stored (no f32 copy).
    const InferWeights w = hf_infer_weights(dir, m.c);
    EXPECT_EQ(w.layers[0].q.type, GgmlType::bf16);
    check_mapped(dir, m.c, ref.i32("tokens"), ref.f32("logits"), "bf16 shards");
}

TEST(Arch, BadConfigsAndCheckpointsFailClearly) {
    const std::string q3 = kFix + "/hf_qwen3_moe_tiny";
    {
        const std::string d = copy_fixture("hf_qwen3_moe_tiny", "type");
        edit_json(d + "/config.json", [](nlohmann::json& j) { j["model_type"] = "llama4"; });
        const std::string e = error_of([&] { model_config_read(d + "/config.json"); });
        EXPECT_NE(e.find("model_type \"llama4\" is not supported"), std::string::npos) << e;
        EXPECT_NE(e.find("qwen3_moe"), std::string::npos) << e;  // lists what is supported
    }
    {
        const std::string d = copy_fixture("hf_qwen3_moe_tiny", "bias");
        edit_json(d + "/config.json", [](nlohmann::json& j) { j["attention_bias"] = true; });
        const std::string e = error_of([&] { model_config_read(d + "/config.json"); });
        EXPECT_NE(e.find("attention_bias"), std::string::npos) << e;
    }
    {
        const std::string d = copy_fixture("hf_qwen3_moe_tiny", "yarn");
        edit_json(d + "/config.json", [](nlohmann::json& j) {
            j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
        });
        const std::string e = error_of([&] { model_config_read(d + "/config.json"); });
        EXPECT_NE(e.find("rope_scaling"), std::string::npos) << e;
    }
    {
        const std::string d = copy_fixture("hf_qwen2_moe_tiny", "swa");
        edit_json(d + "/config.json", [](nlohmann::json& j) { j["use_sliding_window"] = true; });
        const std::string e = error_of([&] { model_config_read(d + "/config.json"); });
        EXPECT_NE(e.find("use_sliding_window"), std::string::npos) << e;
    }
    {
        // The checkpoint has q/k/v biases the config turns off: refused, not silently dropped.
        const std::string d = copy_fixture("hf_qwen2_moe_tiny", "nobias");
        edit_json(d + "/config.json", [](nlohmann::json& j) { j["qkv_bias"] = false; });
        const std::string e = error_of([&] { Loaded m(d); });
        EXPECT_NE(e.find("self_attn.k_proj.bias"), std::string::npos) << e;
        EXPECT_NE(e.find("does not use"), std::string::npos) << e;
    }
    {
        // A model_type that names the wrong layout: the tensors it implies are absent.
        const std::string d = copy_fixture("hf_olmoe_tiny", "mixtral");
        edit_json(d + "/config.json", [](nlohmann::json& j) {
            j["model_type"] = "mixtral";
            j["num_local_experts"] = j["num_experts"];
        });
        const std::string e = error_of([&] { Loaded m(d); });
        EXPECT_NE(e.find("block_sparse_moe"), std::string::npos) << e;
    }
    {
        // An index naming a shard that is not there, and one that misses a tensor.
        const std::string d = copy_fixture("hf_qwen3_moe_tiny_bf16_sharded", "shards");
        std::filesystem::remove(d + "/model-00002-of-00002.safetensors");
        std::string e = error_of([&] { Loaded m(d); });
        EXPECT_NE(e.find("model-00002-of-00002.safetensors, which is missing"), std::string::npos) << e;
        std::filesystem::copy(kFix + "/hf_qwen3_moe_tiny_bf16_sharded/model-00002-of-00002.safetensors", d);
        edit_json(d + "/model.safetensors.index.json", [](nlohmann::json& j) { j["weight_map"].erase("lm_head.weight"); });
        e = error_of([&] { Loaded m(d); });
        EXPECT_NE(e.find("names no shard for lm_head.weight"), std::string::npos) << e;
    }
    {
        // The mapped path (hf_infer_weights): a tensor of a type the products lack, and one expert
        // of another dtype than the rest of its layer, are named.
        const std::string d = copy_fixture("hf_qwen3_moe_tiny", "i32");
        const std::string bad = "model.layers.1.mlp.experts.0.gate_proj.weight";
        SafetensorsFile f(d + "/model.safetensors");
        std::vector<std::vector<float>> vals;
        std::vector<std::vector<int32_t>> ints;
        std::vector<std::pair<std::string, TensorView>> all;
        for (const auto& [name, e] : f.entries()) {
            Shape shape;
            for (int64_t x : e.shape) shape.dims[shape.ndim++] = x;
            if (name == bad) {
                ints.push_back(std::vector<int32_t>(size_t(shape.numel()), 1));
                all.push_back({name, TensorView{ints.back().data(), DType::i32, shape}});
            } else {
                vals.push_back(f.f32(name));
                all.push_back({name, TensorView{vals.back().data(), DType::f32, shape}});
            }
        }
        safetensors_write(d + "/model.safetensors", all, {});
        const ModelConfig c = model_config_read(d + "/config.json");
        std::string e = error_of([&] { hf_infer_weights(d, c); });
        EXPECT_NE(e.find(bad + " is I32; weights must be F32, F16 or BF16"), std::string::npos) << e;
        // The bf16 shards with one expert's gate taken from the f32 copy of the same model.
        const std::string m = copy_fixture("hf_qwen3_moe_tiny_bf16_sharded", "mixed");
        SafetensorsFile f32(kFix + "/hf_qwen3_moe_tiny/model.safetensors");
        std::vector<float> v = f32.f32(bad);
        safetensors_write(m + "/extra.safetensors", {{bad, TensorView{v.data(), DType::f32, Shape{24, 32}}}}, {});
        edit_json(m + "/model.safetensors.index.json", [&](nlohmann::json& j) { j["weight_map"][bad] = "extra.safetensors"; });
        e = error_of([&] { hf_infer_weights(m, c); });
        EXPECT_NE(e.find("one dtype per layer is expected"), std::string::npos) << e;
    }
    {
        // Decoder weights without the extras the config asks for: refused when the session starts.
        Loaded m(kFix + "/hf_qwen2_moe_tiny");
        InferWeights w = infer_weights(m.p, m.c);
        w.layers[1].k_bias = nullptr;
        EXPECT_NE(error_of([&] { InferSession s(m.c, w, 4); }).find("qkv_bias is set but the weights have no q/k/v biases"),
                  std::string::npos);
        Loaded q3m(q3);
        InferWeights w3 = infer_weights(q3m.p, q3m.c);
        w3.layers[0].q_norm = nullptr;
        EXPECT_NE(error_of([&] { InferSession s(q3m.c, w3, 4); }).find("qk_norm is set but the weights have no q_norm"),
                  std::string::npos);
    }
    {
        // Training's attention takes Mixtral's only, and says so.
        Loaded m(q3);
        std::vector<int32_t> t = {1, 2, 3}, y = {-100, -100, -100};
        ModelCache cache;
        const std::string e = error_of([&] { model_forward(cache, m.c, m.p, t.data(), y.data(), 1, 3, 0, 0); });
        EXPECT_NE(e.find("inference"), std::string::npos) << e;
    }
}

// DeepSeek-V2 / V3 (src/model/arch_deepseek.cpp): multi-head latent attention, dense first layer,
// merged shared experts, and the three routers of transformers 4.56 (greedy, group-limited greedy,
// noaux_tc with the selection bias).
TEST(Arch, DeepseekV2MatchesTransformers) {
    check_against_transformers("deepseek_v2_lite_tiny", ModelArch::deepseek_v2);
    check_against_transformers("deepseek_v2_group_tiny", ModelArch::deepseek_v2);
    const ModelConfig c = model_config_read(kFix + "/hf_deepseek_v2_lite_tiny/config.json");
    EXPECT_TRUE(c.attn.mla);
    EXPECT_EQ(c.mla.q_lora_rank, 0);  // null: q_proj
    EXPECT_FALSE(c.is_moe_layer(0));  // first_k_dense_replace 1
    EXPECT_TRUE(c.is_moe_layer(1));
    EXPECT_EQ(c.ffn(0).d_ff, 40);
    EXPECT_EQ(c.moe.n_shared, 1);     // n_shared_experts 2 merged into one MLP
    EXPECT_EQ(c.moe.d_ff_shared, 48);
    EXPECT_FALSE(c.moe.shared_gate);
    EXPECT_EQ(c.moe.router.kind, RouterKind::topk);
    EXPECT_FALSE(c.moe.renormalize);
    EXPECT_DOUBLE_EQ(c.moe.router.routed_scaling_factor, 1.5);
    const ModelConfig g = model_config_read(kFix + "/hf_deepseek_v2_group_tiny/config.json");
    EXPECT_EQ(g.moe.router.n_group, 4);
    EXPECT_EQ(g.moe.router.topk_group, 2);
    EXPECT_EQ(g.mla.q_lora_rank, 16);
    EXPECT_DOUBLE_EQ(g.mla.yarn.factor, 4.0);
    EXPECT_FALSE(g.mla.softmax_mscale);  // transformers' DeepseekV2Attention
    // The cache holds the latents: (kv_lora_rank + qk_rope_head_dim) floats a position and layer.
    Loaded m(kFix + "/hf_deepseek_v2_lite_tiny");
    EXPECT_EQ(InferSession(m.c, m.p, 20).kv_cache_bytes(), 3 * 20 * (16 + 8) * 4);
}

TEST(Arch, DeepseekV3MatchesTransformers) {
    check_against_transformers("deepseek_v3_tiny", ModelArch::deepseek_v3);
    const ModelConfig c = model_config_read(kFix + "/hf_deepseek_v3_tiny/config.json");
    EXPECT_EQ(c.moe.router.kind, RouterKind::sigmoid_bias);
    EXPECT_TRUE(c.moe.renormalize);
    EXPECT_EQ(c.moe.router.n_group, 2);
    EXPECT_EQ(c.moe.router.topk_group, 1);
    EXPECT_DOUBLE_EQ(c.moe.router.routed_scaling_factor, 2.5);
    EXPECT_TRUE(c.mla.softmax_mscale);
    EXPECT_TRUE(c.mla.rope_interleave);
}

TEST(Arch, DeepseekFixturesExerciseTheirOptions) {
    // Each option the fixtures set changes the logits: without it we would leave transformers'.
    auto err = [](const std::string& name, const std::function<void(Loaded&)>& edit) {
        Loaded m(kFix + "/hf_" + name);
        edit(m);
        SafetensorsFile ref(kFix + "/hf_" + name + "/reference.safetensors");
        return scaled_max_error(all_logits(m, ref.i32("tokens")).data(), ref.f32("logits"));
    };
    EXPECT_GT(err("deepseek_v3_tiny", [](Loaded& m) {
                  for (ModelLayerParams& l : m.p.layers)
                      if (l.moe.router_bias.numel() > 0) std::fill_n(l.moe.router_bias.f32(), l.moe.router_bias.numel(), 0.0f);
              }), 1e-3);  // e_score_correction_bias
    EXPECT_GT(err("deepseek_v3_tiny", [](Loaded& m) { m.c.moe.router.n_group = 1; }), 1e-3);
    EXPECT_GT(err("deepseek_v3_tiny", [](Loaded& m) { m.c.mla.softmax_mscale = false; }), 1e-3);
    EXPECT_GT(err("deepseek_v2_group_tiny", [](Loaded& m) { m.c.mla.softmax_mscale = true; }), 1e-3);
    EXPECT_GT(err("deepseek_v2_group_tiny", [](Loaded& m) { m.c.moe.router.n_group = m.c.moe.router.topk_group = 1; }), 1e-3);
    EXPECT_GT(err("deepseek_v2_lite_tiny", [](Loaded& m) { m.c.moe.router.routed_scaling_factor = 1; }), 1e-3);
}

TEST(Arch, DeepseekBadConfigsFailClearly) {
    struct Case {
        const char* fixture;
        std::function<void(nlohmann::json&)> edit;
        const char* expect;
    };
    const Case cases[] = {
        {"hf_deepseek_v3_tiny", [](nlohmann::json& j) { j["num_key_value_heads"] = 2; }, "num_key_value_heads = 2 must equal"},
        {"hf_deepseek_v2_lite_tiny", [](nlohmann::json& j) { j["topk_method"] = "random"; }, "topk_method \"random\""},
        {"hf_deepseek_v2_lite_tiny", [](nlohmann::json& j) { j["topk_method"] = "noaux_tc"; }, "deepseek_v3"},
        {"hf_deepseek_v3_tiny", [](nlohmann::json& j) { j["topk_method"] = "greedy"; }, "expected \"noaux_tc\""},
        {"hf_deepseek_v3_tiny", [](nlohmann::json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; },
         "rope_scaling type \"linear\""},
        {"hf_deepseek_v3_tiny", [](nlohmann::json& j) { j["rope_scaling"].erase("factor"); }, "no \"factor\""},
        {"hf_deepseek_v3_tiny", [](nlohmann::json& j) { j["scoring_func"] = "softmax"; }, "scoring_func \"softmax\""},
        {"hf_deepseek_v3_tiny", [](nlohmann::json& j) { j["moe_layer_freq"] = 2; }, "moe_layer_freq = 2"},
        {"hf_deepseek_v3_tiny", [](nlohmann::json& j) { j.erase("q_lora_rank"); }, "q_lora_rank"},
        {"hf_deepseek_v2_lite_tiny", [](nlohmann::json& j) { j["norm_topk_prob"] = true; }, "norm_topk_prob"},
        {"hf_deepseek_v2_lite_tiny", [](nlohmann::json& j) { j["kv_lora_rank"] = nullptr; }, "kv_lora_rank"},
    };
    int i = 0;
    for (const Case& k : cases) {
        const std::string d = copy_fixture(k.fixture, "deepseek" + std::to_string(i++));
        edit_json(d + "/config.json", k.edit);
        const std::string e = error_of([&] { model_config_read(d + "/config.json"); });
        EXPECT_NE(e.find(k.expect), std::string::npos) << e;
        EXPECT_NE(e.find("config.json"), std::string::npos) << e;  // names the file
    }
    // Training's attention is Mixtral's: multi-head latent attention is refused by name.
    Loaded m(kFix + "/hf_deepseek_v2_lite_tiny");
    std::vector<int32_t> t = {1, 2, 3}, y = {-100, -100, -100};
    ModelCache cache;
    const std::string e = error_of([&] { model_forward(cache, m.c, m.p, t.data(), y.data(), 1, 3, 0, 0); });
    EXPECT_NE(e.find("multi-head latent attention"), std::string::npos) << e;
}
