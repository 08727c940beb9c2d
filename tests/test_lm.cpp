// The whole MoE language model against an independent PyTorch implementation built from the
// same references as the layers (tools/gen_lm_fixtures.py, float64): logits, the three losses
// and the gradient of every parameter.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "layer_fixture.h"
#include "moe/error.h"
#include "moe/model.h"
#include "moe/optim.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::scaled_max_error;

namespace {

// The tiny model of the fixtures: its config, the parameters loaded, gradients zeroed.
struct TinyLm {
    SafetensorsFile f;
    ModelConfig c;
    float aux_coef = 0, z_coef = 0;
    int64_t B = 0, T = 0;
    Arena pa, ga;
    ModelSlots ps, gs;
    ModelParams p, g;
    std::vector<int32_t> tokens, targets;
    TinyLm() : f(std::string(MOE_FIXTURE_DIR) + "/lm_tiny.safetensors") {
        auto i = [&](const char* k) { return std::stoll(f.meta(k)); };
        auto d = [&](const char* k) { return std::stod(f.meta(k)); };
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
        aux_coef = float(d("aux_coef"));
        z_coef = float(d("z_coef"));
        B = i("B");
        T = i("T");
        ps = model_params_reserve(pa, c);
        gs = model_params_reserve(ga, c);
        pa.allocate();
        ga.allocate();
        p = model_params_point(pa, ps, c);
        g = model_params_point(ga, gs, c);
        for (auto& [name, view] : model_param_names(p, c)) {
            std::vector<float> v = f.f32(name);
            if (int64_t(v.size()) != view.numel()) throw Error("[fixture] " + name + " has the wrong size");
            std::memcpy(view.data, v.data(), v.size() * sizeof(float));
        }
        tokens = f.i32("tokens");
        targets = f.i32("targets");
    }
};

}  // namespace

TEST(Lm, TinyModelMatchesPyTorch) {
    TinyLm m;
    SafetensorsFile& f = m.f;
    ModelCache cache;
    ModelLosses L = model_forward(cache, m.c, m.p, m.tokens.data(), m.targets.data(), m.B, m.T, m.aux_coef, m.z_coef);
    EXPECT_LT(scaled_max_error(cache.logits.f32(), f.f32("logits")), 2e-6);
    EXPECT_NEAR(L.ce, f.f32("ce_loss")[0], 1e-6 * std::fabs(f.f32("ce_loss")[0]));
    EXPECT_NEAR(L.aux, f.f32("aux_loss")[0], 1e-5 * std::fabs(f.f32("aux_loss")[0]));
    EXPECT_NEAR(L.z, f.f32("z_loss")[0], 1e-5 * std::fabs(f.f32("z_loss")[0]));
    EXPECT_NEAR(L.total, f.f32("loss")[0], 1e-6 * std::fabs(f.f32("loss")[0]));
    model_backward(m.g, cache, m.c, m.p, m.tokens.data(), m.aux_coef, m.z_coef);
    for (auto& [name, view] : model_param_names(m.g, m.c))
        EXPECT_LT(scaled_max_error(view.f32(), f.f32("grad." + name)), 2e-6) << name;
}

// llm.c's check: 10 AdamW steps on one batch give PyTorch's losses. torch trains in float32 too,
// so the runs round differently: measured at most 2.7e-7 relative on the losses and 2.6e-7 on
// the gradient norms over the 10 steps; the bounds are 1e-5 (37x).
TEST(Lm, TenAdamWStepsMatchPyTorch) {
    TinyLm m;
    SafetensorsFile t(std::string(MOE_FIXTURE_DIR) + "/lm_tiny_train.safetensors");
    const AdamWConfig oc = moe::test::adamw_config_from(t);
    Arena ma, va;
    model_params_reserve(ma, m.c);
    model_params_reserve(va, m.c);
    ma.allocate();
    va.allocate();
    ModelParams mp = model_params_point(ma, m.ps, m.c), vp = model_params_point(va, m.ps, m.c);
    auto pn = model_param_names(m.p, m.c), gn = model_param_names(m.g, m.c);
    auto mn = model_param_names(mp, m.c), vn = model_param_names(vp, m.c);
    std::vector<AdamWTensor> ts;
    for (size_t i = 0; i < pn.size(); ++i)  // decay the matrices, not the norms
        ts.push_back({pn[i].second.f32(), gn[i].second.f32(), mn[i].second.f32(), vn[i].second.f32(),
                      pn[i].second.numel(), pn[i].second.shape.ndim >= 2});
    ModelCache cache;
    const int steps = std::stoi(t.meta("steps"));
    double first = 0, last = 0;
    for (int s = 1; s <= steps; ++s) {
        const std::string k = std::to_string(s);
        std::memset(m.ga.base_f32(), 0, m.ga.bytes());
        ModelLosses L = model_forward(cache, m.c, m.p, m.tokens.data(), m.targets.data(), m.B, m.T, m.aux_coef, m.z_coef);
        const double want = t.f32("loss.step" + k)[0];
        EXPECT_NEAR(L.total, want, 1e-5 * std::fabs(want)) << "step " << s;
        model_backward(m.g, cache, m.c, m.p, m.tokens.data(), m.aux_coef, m.z_coef);
        const double norm = adamw_step(ts, oc, s);
        const double want_norm = t.f32("gnorm.step" + k)[0];
        EXPECT_NEAR(norm, want_norm, 1e-5 * want_norm) << "step " << s;
        if (s == 1) first = L.total;
    }
    last = model_forward(cache, m.c, m.p, m.tokens.data(), m.targets.data(), m.B, m.T, m.aux_coef, m.z_coef).total;
    const double want_final = t.f32("loss.final")[0];
    EXPECT_NEAR(last, want_final, 1e-5 * std::fabs(want_final));
    EXPECT_LT(last, first);
}
