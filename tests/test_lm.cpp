// The whole MoE language model against an independent PyTorch implementation built from the
// same references as the layers (tools/gen_lm_fixtures.py, float64): logits, the three losses
// and the gradient of every parameter.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "layer_fixture.h"
#include "moe/model.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::scaled_max_error;

TEST(Lm, TinyModelMatchesPyTorch) {
    SafetensorsFile f(std::string(MOE_FIXTURE_DIR) + "/lm_tiny.safetensors");
    auto i = [&](const char* k) { return std::stoll(f.meta(k)); };
    auto d = [&](const char* k) { return std::stod(f.meta(k)); };
    ModelConfig c;
    c.vocab_size = i("V");
    c.num_layers = i("L");
    c.attn = {i("D"), i("H"), i("Hkv"), i("hd"), d("rope_theta")};
    c.rms_norm_eps = d("rms_norm_eps");
    c.tie_word_embeddings = i("tie_word_embeddings") == 1;
    c.moe.d_model = i("D");
    c.moe.d_ff = i("F");
    c.moe.n_experts = i("E");
    c.moe.top_k = i("K");
    c.moe.renormalize = i("renormalize") == 1;
    c.moe.capacity_factor = d("capacity_factor");
    const float aux_coef = float(d("aux_coef")), z_coef = float(d("z_coef"));
    const int64_t B = i("B"), T = i("T");

    Arena pa, ga;
    ModelSlots ps = model_params_reserve(pa, c), gs = model_params_reserve(ga, c);
    pa.allocate();
    ga.allocate();
    ModelParams p = model_params_point(pa, ps, c), g = model_params_point(ga, gs, c);
    for (auto& [name, view] : model_param_names(p, c)) {
        std::vector<float> v = f.f32(name);
        ASSERT_EQ(int64_t(v.size()), view.numel()) << name;
        std::memcpy(view.data, v.data(), v.size() * sizeof(float));
    }
    std::vector<int32_t> tokens = f.i32("tokens"), targets = f.i32("targets");
    ModelCache cache;
    ModelLosses L = model_forward(cache, c, p, tokens.data(), targets.data(), B, T, aux_coef, z_coef);
    EXPECT_LT(scaled_max_error(cache.logits.f32(), f.f32("logits")), 2e-6);
    EXPECT_NEAR(L.ce, f.f32("ce_loss")[0], 1e-6 * std::fabs(f.f32("ce_loss")[0]));
    EXPECT_NEAR(L.aux, f.f32("aux_loss")[0], 1e-5 * std::fabs(f.f32("aux_loss")[0]));
    EXPECT_NEAR(L.z, f.f32("z_loss")[0], 1e-5 * std::fabs(f.f32("z_loss")[0]));
    EXPECT_NEAR(L.total, f.f32("loss")[0], 1e-6 * std::fabs(f.f32("loss")[0]));
    model_backward(g, cache, c, p, tokens.data(), aux_coef, z_coef);
    for (auto& [name, view] : model_param_names(g, c))
        EXPECT_LT(scaled_max_error(view.f32(), f.f32("grad." + name)), 2e-6) << name;
}
