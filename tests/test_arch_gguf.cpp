// Qwen2-MoE, Qwen3-MoE and OLMoE as GGUF (llama.cpp's "qwen2moe", "qwen3moe", "olmoe"): the
// transformers fixtures converted by moe convert, mapped by the decoder (gguf_infer_weights),
// give transformers' logits and greedy tokens from an F32 file; a Q8_0 file's mapped weights give
// the logits of the same file dequantized to f32 (nothing is lost in the mapping of the extra
// tensors: biases, QK-norms, the shared expert); what llama.cpp cannot run is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>

#include "layer_fixture.h"
#include "moe/gguf_model.h"
#include "moe/infer.h"
#include "moe/model_io.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::error_of;
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

// Logits (all positions) and greedy continuation of the mapped GGUF.
struct Run {
    std::vector<float> logits;
    std::vector<int32_t> greedy;
};
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
