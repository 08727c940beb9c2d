// Training pieces against PyTorch itself (tools/gen_train_fixtures.py): AdamW over 10 steps
// with clipping and the schedule (torch.optim.AdamW + clip_grad_norm_, float32 like ours), the
// cross-entropy and the embedding gradient (float64 reference); and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "layer_fixture.h"
#include "moe/error.h"
#include "moe/lm_loss.h"
#include "moe/optim.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::scaled_max_error;

TEST(AdamW, TenStepsMatchTorchWithClippingAndSchedule) {
    SafetensorsFile f(std::string(MOE_FIXTURE_DIR) + "/train_adamw.safetensors");
    const AdamWConfig c = moe::test::adamw_config_from(f);
    std::vector<float> p0 = f.f32("p0.init"), p1 = f.f32("p1.init");
    std::vector<float> m0(p0.size()), v0(p0.size()), m1(p1.size()), v1(p1.size());
    int clipped = 0;
    for (int t = 1; t <= std::stoi(f.meta("steps")); ++t) {
        const std::string s = std::to_string(t);
        std::vector<float> g0 = f.f32("g0.step" + s), g1 = f.f32("g1.step" + s);
        std::vector<AdamWTensor> ts = {{p0.data(), g0.data(), m0.data(), v0.data(), int64_t(p0.size()), true},
                                       {p1.data(), g1.data(), m1.data(), v1.data(), int64_t(p1.size()), false}};
        EXPECT_NEAR(lr_at(c, t), f.f32("lr.step" + s)[0], 1e-7 * c.lr) << "step " << t;
        const double norm = adamw_step(ts, c, t);
        const double want_norm = f.f32("gnorm.step" + s)[0];
        EXPECT_NEAR(norm, want_norm, 1e-6 * want_norm) << "step " << t;
        clipped += norm > c.max_norm;
        // Both sides compute in float32 and may round differently (torch's norm is a float32
        // norm of norms, ours a double sum): measured at most 4.0e-8 of the tensor's scale
        // over the 10 steps; 1e-6 is 25x that.
        EXPECT_LT(scaled_max_error(p0.data(), f.f32("p0.step" + s)), 1e-6) << "step " << t;
        EXPECT_LT(scaled_max_error(p1.data(), f.f32("p1.step" + s)), 1e-6) << "step " << t;
    }
    EXPECT_GT(clipped, 0);  // the fixture exercises clipping
}

TEST(AdamW, NonFiniteGradientsStopWithAClearError) {
    std::vector<float> p(4, 1.0f), g = {0.0f, NAN, 1.0f, 2.0f}, m(4), v(4);
    std::vector<AdamWTensor> ts = {{p.data(), g.data(), m.data(), v.data(), 4, true}};
    try {
        adamw_step(ts, AdamWConfig{}, 1);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("the gradient norm is nan at step 1"), std::string::npos) << e.what();
    }
    EXPECT_EQ(p[0], 1.0f);  // nothing was updated
}

TEST(LmLoss, CrossEntropyAndEmbeddingMatchPyTorch) {
    SafetensorsFile f(std::string(MOE_FIXTURE_DIR) + "/train_cross_entropy.safetensors");
    const int64_t N = std::stoll(f.meta("N")), V = std::stoll(f.meta("V")), D = std::stoll(f.meta("D"));
    std::vector<float> logits = f.f32("logits"), dlogits(logits.size());
    std::vector<int32_t> target = f.i32("target");
    const double loss = cross_entropy(dlogits.data(), logits.data(), target.data(), N, V);
    const double want = f.f32("loss")[0];
    EXPECT_NEAR(loss, want, 1e-6 * std::fabs(want));
    EXPECT_LT(scaled_max_error(dlogits.data(), f.f32("grad.logits")), 2e-6);

    std::vector<float> embed = f.f32("embed"), dx = f.f32("dx"), x(size_t(N * D)), dembed(size_t(V * D), 0.0f);
    std::vector<int32_t> tokens = f.i32("tokens");
    embedding_forward(x.data(), embed.data(), tokens.data(), N, V, D);
    for (int64_t r = 0; r < N; ++r)
        for (int64_t j = 0; j < D; ++j) ASSERT_EQ(x[size_t(r * D + j)], embed[size_t(tokens[size_t(r)] * D + j)]);
    embedding_backward(dembed.data(), dx.data(), tokens.data(), N, D);
    EXPECT_LT(scaled_max_error(dembed.data(), f.f32("grad.embed")), 2e-6);
}

TEST(LmLoss, OutOfVocabularyIdsNameTheRow) {
    std::vector<float> logits(6), d(6), embed(6), x(2);
    std::vector<int32_t> bad = {1, 3};
    try {
        cross_entropy(d.data(), logits.data(), bad.data(), 2, 3);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("target 3 at row 1 is outside the vocabulary [0, 3)"), std::string::npos) << e.what();
    }
    try {
        embedding_forward(x.data(), embed.data(), bad.data(), 2, 3, 1);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("token 3 at row 1 is outside the vocabulary"), std::string::npos) << e.what();
    }
}
