// Model directories: a Mixtral saved by transformers itself (tools/gen_hf_fixtures.py) loads and
// gives transformers' logits and greedy tokens; config.json and model.safetensors round-trip;
// dense / MoE interleave; sparse upcycling keeps the dense model's function; bad files fail
// clearly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "layer_fixture.h"
#include "model_fixture.h"
#include "moe/error.h"
#include "moe/files.h"
#include "moe/model_io.h"
#include "moe/rng.h"
#include "moe/safetensors.h"
#include "moe/upcycle.h"

using namespace moe;
using moe::test::error_of;
using moe::test::scaled_max_error;
using moe::test::TestModel;

namespace {

const std::string kMixtral = std::string(MOE_FIXTURE_DIR) + "/hf_mixtral_tiny";

std::string temp_dir(const std::string& name) {
    std::string d = (std::filesystem::temp_directory_path() / ("moe_test_" + name)).string();
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}

ModelConfig small_config(int64_t experts) {
    ModelConfig c;
    c.vocab_size = 50;
    c.num_layers = 3;
    c.attn = {16, 4, 2, 0, 10000};
    c.moe.d_model = 16;
    c.moe.d_ff = 12;
    c.moe.n_experts = experts;
    c.moe.top_k = 2;
    return c;
}

}  // namespace

TEST(ModelIo, TransformersMixtralLoadsAndMatchesItsLogits) {
    ModelFileInfo info;
    TestModel m(model_config_read(kMixtral + "/config.json", &info));
    EXPECT_TRUE(model_is_mixtral(m.c));
    EXPECT_EQ(info.max_position_embeddings, 64);
    model_load_weights(kMixtral, m.c, m.p);
    SafetensorsFile ref(kMixtral + "/reference.safetensors");
    std::vector<int32_t> tokens = ref.i32("tokens");
    // transformers computes in float32 too; the difference is summation order.
    EXPECT_LT(scaled_max_error(m.logits(tokens).data(), ref.f32("logits")), 1e-5);
    // 32 greedy tokens, each from the full sequence so far (no KV cache here).
    const int64_t V = m.c.vocab_size;
    std::vector<int32_t> greedy;
    for (int i = 0; i < 32; ++i) {
        std::vector<float> l = m.logits(tokens);
        const float* last = l.data() + (int64_t(tokens.size()) - 1) * V;
        int32_t next = int32_t(std::max_element(last, last + V) - last);
        greedy.push_back(next);
        tokens.push_back(next);
    }
    EXPECT_EQ(greedy, ref.i32("greedy"));
}

TEST(ModelIo, SavedDirectoryRoundTripsAndNamesEveryExpert) {
    ModelConfig c = small_config(4);
    c.decoder_sparse_step = 2;  // layers 1 MoE; 0 and 2 dense
    c.moe.n_shared = 1;
    c.moe.d_ff_shared = 8;
    c.moe.shared_gate = true;
    c.moe.router.kind = RouterKind::noisy_topk;
    TestModel a(c);
    model_params_init(a.p, c, 3);
    const std::string dir = temp_dir("roundtrip");
    model_save_hf(dir, c, a.p, {64, 0.01, 0.001});
    EXPECT_FALSE(model_is_mixtral(c));
    ModelFileInfo info;
    TestModel b(model_config_read(dir + "/config.json", &info));
    EXPECT_EQ(info.max_position_embeddings, 64);
    EXPECT_EQ(model_config_json(b.c, info), model_config_json(c, info));
    EXPECT_FALSE(b.c.is_moe_layer(0));
    EXPECT_TRUE(b.c.is_moe_layer(1));
    model_load_weights(dir, b.c, b.p);
    const std::vector<int32_t> tokens = {1, 5, 9, 2, 7, 3};
    b.c.moe.router.training = false;
    a.c.moe.router.training = false;
    EXPECT_EQ(a.logits(tokens), b.logits(tokens));
    SafetensorsFile f(dir + "/model.safetensors");
    EXPECT_TRUE(f.has("model.layers.1.block_sparse_moe.experts.3.w2.weight"));
    EXPECT_TRUE(f.has("model.layers.1.block_sparse_moe.gate.noise.weight"));
    EXPECT_TRUE(f.has("model.layers.1.block_sparse_moe.shared_experts.0.w1.weight"));
    EXPECT_TRUE(f.has("model.layers.0.mlp.gate_proj.weight"));
    EXPECT_EQ(f.shape("model.layers.0.mlp.down_proj.weight"), (std::vector<int64_t>{16, 24}));  // F = K * d_ff
    EXPECT_FALSE(f.has("model.layers.0.block_sparse_moe.gate.weight"));
    std::filesystem::remove_all(dir);
}

TEST(ModelIo, RouterExtrasAndSharedExpertsAreNamedParameters) {
    // The optimizer and the checkpoint see only the named tensors: the router's extra tensors
    // and the shared experts must be among them.
    const std::pair<RouterKind, std::vector<std::string>> cases[] = {
        {RouterKind::noisy_topk, {"gate.noise.weight"}},
        {RouterKind::xmoe, {"gate.proj.weight", "gate.temperature"}},
        {RouterKind::sigmoid_bias, {"gate.e_score_correction_bias"}}};
    for (const auto& [kind, extras] : cases) {
        ModelConfig c = small_config(4);
        c.moe.router.kind = kind;
        c.moe.n_shared = 1;
        c.moe.d_ff_shared = 8;
        c.moe.shared_gate = true;
        TestModel m(c);
        std::vector<std::string> names;
        for (auto& [name, t] : model_param_names(m.p, c)) names.push_back(name);
        std::vector<std::string> want = extras;
        for (const char* s : {"shared_experts.w1", "shared_experts.w3", "shared_experts.w2", "shared_experts.gate.weight"})
            want.push_back(s);
        for (const std::string& w : want)
            EXPECT_NE(std::find(names.begin(), names.end(), "model.layers.2.block_sparse_moe." + w), names.end())
                << router_kind_name(kind) << ": " << w;
    }
}

TEST(ModelIo, DenseModelAndInterleaveTrainAndHaveNoRouterLosses) {
    ModelConfig c = small_config(0);  // num_local_experts = 0: every layer dense
    TestModel m(c);
    model_params_init(m.p, c, 5);
    std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7, 8}, targets = {2, 3, 4, 5, 6, 7, 8, 9};
    ModelCache cache;
    ModelLosses L = model_forward(cache, c, m.p, tokens.data(), targets.data(), 2, 4, 0.01f, 0.001f);
    EXPECT_EQ(L.aux, 0.0);
    EXPECT_EQ(L.z, 0.0);
    EXPECT_DOUBLE_EQ(L.total, L.ce);
    for (auto& [name, t] : model_param_names(m.p, c)) EXPECT_EQ(name.find("block_sparse_moe"), std::string::npos) << name;
}

TEST(ModelIo, UpcycledModelComputesTheDenseFunction) {
    ModelConfig dense = small_config(0);
    TestModel d(dense);
    model_params_init(d.p, dense, 9);
    for (int64_t step : {1, 2}) {
        ModelConfig up = small_config(4);
        up.moe.d_ff = dense.dense_ff();
        up.dense_intermediate_size = dense.dense_ff();
        up.decoder_sparse_step = step;
        up.moe.router.training = false;
        TestModel u(up);
        model_upcycle(dense, d.p, up, u.p, 11);
        const std::vector<int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6};
        EXPECT_LT(scaled_max_error(u.logits(tokens).data(), d.logits(tokens)), 1e-5) << "decoder_sparse_step " << step;
        // The router is fresh, the experts identical copies of the dense FFN.
        const MoeLayerParams& e = u.p.layers[step == 1 ? 0 : 1].moe;
        const int64_t n = e.w1.numel() / 4;
        EXPECT_TRUE(std::equal(e.w1.f32(), e.w1.f32() + n, e.w1.f32() + 3 * n));
    }
    ModelConfig wrong = small_config(4);  // experts of d_ff 12, the dense FFN has 24
    TestModel w(wrong);
    EXPECT_NE(error_of([&] { model_upcycle(dense, d.p, wrong, w.p, 1); }).find("pass --intermediate-size equal to the dense"),
              std::string::npos);
}

TEST(ModelIo, BadFilesGiveClearErrors) {
    const std::string dir = temp_dir("bad");
    auto write = [&](const std::string& text) {
        std::ofstream(dir + "/config.json") << text;
    };
    std::string cfg = read_file(kMixtral + "/config.json", "test");
    write("{\"model_type\": \"llama\"}");
    EXPECT_NE(error_of([&] { model_config_read(dir + "/config.json"); }).find("model_type \"llama\" is not supported"),
              std::string::npos);
    write(R"({"vocab_size": 10, "num_hidden_layers": 1, "hidden_size": 8, "num_attention_heads": 2})");
    EXPECT_NE(error_of([&] { model_config_read(dir + "/config.json"); }).find("has no \"intermediate_size\"; it is required"),
              std::string::npos);
    write(R"({"vocab_size": "ten", "hidden_size": 8})");
    EXPECT_NE(error_of([&] { model_config_read(dir + "/config.json"); }).find("\"vocab_size\" has the wrong type (string)"),
              std::string::npos);
    std::string impossible = cfg;
    impossible.replace(impossible.find("\"num_experts_per_tok\": 2"), 24, "\"num_experts_per_tok\": 9");
    write(impossible);
    EXPECT_NE(error_of([&] { model_config_read(dir + "/config.json"); }).find("describes an impossible model"),
              std::string::npos);
    // The weights of another configuration: transformers' tiny Mixtral with a wider expert.
    std::string other = cfg;
    other.replace(other.find("\"intermediate_size\": 24"), 23, "\"intermediate_size\": 32");
    write(other);
    std::filesystem::copy_file(kMixtral + "/model.safetensors", dir + "/model.safetensors");
    TestModel m(model_config_read(dir + "/config.json"));
    EXPECT_NE(error_of([&] { model_load_weights(dir, m.c, m.p); })
                  .find("model.layers.0.block_sparse_moe.experts.0.w1.weight has shape (24, 32), config.json implies (32, 32)"),
              std::string::npos);
    std::filesystem::remove(dir + "/model.safetensors");
    EXPECT_NE(error_of([&] { model_load_weights(dir, m.c, m.p); }).find("has none of model.safetensors, model.safetensors.index.json"),
              std::string::npos);
    std::filesystem::remove_all(dir);
}
