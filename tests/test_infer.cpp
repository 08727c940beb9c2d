// The KV-cached decoder against transformers (the tiny Mixtral it saved) and against our own
// full-context forward, fed whole, in chunks and token by token; the sampler chain's filters
// and its distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "layer_fixture.h"
#include "model_fixture.h"
#include "moe/infer.h"
#include "moe/model_io.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::error_of;
using moe::test::scaled_max_error;
using moe::test::TestModel;

namespace {

std::vector<float> row(const float* p, int64_t i, int64_t V) { return {p + i * V, p + (i + 1) * V}; }

// A small model: vocabulary 40, D 16, 4 heads / 2 KV heads, 4 experts of F 8, top-2, inference.
ModelConfig small_config(int64_t layers) {
    ModelConfig c;
    c.vocab_size = 40;
    c.num_layers = layers;
    c.attn = {16, 4, 2, 0, 10000};
    c.moe.d_model = 16;
    c.moe.d_ff = 8;
    c.moe.n_experts = 4;
    c.moe.top_k = 2;
    c.moe.router.training = false;
    return c;
}

}  // namespace

TEST(Infer, MatchesTransformersWholeChunkedAndGreedy) {
    const std::string dir = std::string(MOE_FIXTURE_DIR) + "/hf_mixtral_tiny";
    TestModel m(model_config_read(dir + "/config.json"));
    model_load_weights(dir, m.c, m.p);
    SafetensorsFile ref(dir + "/reference.safetensors");
    const std::vector<int32_t> tokens = ref.i32("tokens");
    const std::vector<float> want = ref.f32("logits");
    const int64_t V = m.c.vocab_size, T = int64_t(tokens.size());
    InferSession whole(m.c, m.p, 64);
    EXPECT_LT(scaled_max_error(whole.feed(tokens.data(), T, true), want), 1e-5);
    // 5 tokens, then one at a time: each step's logits are that position's.
    InferSession chunked(m.c, m.p, 64);
    const float* l = chunked.feed(tokens.data(), 5);
    EXPECT_LT(scaled_max_error(l, row(want.data(), 4, V)), 1e-5);
    for (int64_t i = 5; i < T; ++i) {
        l = chunked.feed(&tokens[size_t(i)], 1);
        EXPECT_LT(scaled_max_error(l, row(want.data(), i, V)), 1e-5) << "position " << i;
    }
    // transformers' greedy continuation, token for token.
    std::vector<int32_t> history = tokens, greedy;
    SamplingParams s;
    s.temperature = 0;
    Rng rng(1);
    for (int i = 0; i < 32; ++i) {
        const int32_t next = sample_token(l, V, s, history, rng);
        greedy.push_back(next);
        history.push_back(next);
        l = chunked.feed(&next, 1);
    }
    EXPECT_EQ(greedy, ref.i32("greedy"));
    EXPECT_EQ(chunked.pos(), T + 32);
}

TEST(Infer, EqualsTheFullForwardWithDenseLayersSharedExpertsAndOtherRouters) {
    // Per-token routers only: expert choice picks tokens per expert among those fed together, so a
    // lone decode token is routed differently from the full batch (by design, as in the paper).
    for (RouterKind kind : {RouterKind::topk, RouterKind::sigmoid_bias, RouterKind::noisy_topk, RouterKind::hash}) {
        ModelConfig c = small_config(3);
        c.moe.n_shared = 1;
        c.moe.d_ff_shared = 8;
        c.moe.router.kind = kind;
        c.decoder_sparse_step = 2;
        TestModel m(c);
        model_params_init(m.p, c, 21);
        const std::vector<int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
        const int64_t T = int64_t(tokens.size()), V = c.vocab_size;
        const std::vector<float> want = m.logits(tokens);
        InferSession s(c, m.p, 16);
        s.feed(tokens.data(), 4);
        for (int64_t i = 4; i < T; ++i) {
            const float* l = s.feed(&tokens[size_t(i)], 1);
            EXPECT_LT(scaled_max_error(l, row(want.data(), i, V)), 1e-5) << router_kind_name(kind) << " position " << i;
        }
    }
}

TEST(Infer, LongPromptsRunInBatchesWithTheSameLogits) {
    // 300 tokens in one feed run as batches of 128 (128, 128, 44; the default for packed
    // experts): every position's logits (all_logits) and the last one's alone equal the
    // full-context forward's.
    const ModelConfig c = small_config(2);
    TestModel m(c);
    model_params_init(m.p, c, 5);
    const int64_t T = 300, V = c.vocab_size;
    std::vector<int32_t> tokens(static_cast<size_t>(T));
    for (int64_t i = 0; i < T; ++i) tokens[size_t(i)] = int32_t((i * 17 + 3) % V);
    const std::vector<float> want = m.logits(tokens);
    EXPECT_EQ(infer_default_batch(infer_weights(m.p, c)), kInferMaxBatch);  // f32 experts
    InferSession all(c, infer_weights(m.p, c), T, kInferMaxBatchPacked);
    const float* l = all.feed(tokens.data(), T, true);
    for (int64_t i = 0; i < T; ++i) ASSERT_LT(scaled_max_error(l + i * V, row(want.data(), i, V)), 1e-5) << "position " << i;
    InferSession last(c, infer_weights(m.p, c), T, kInferMaxBatchPacked);
    EXPECT_LT(scaled_max_error(last.feed(tokens.data(), T), row(want.data(), T - 1, V)), 1e-5);
    EXPECT_EQ(last.pos(), T);
}

TEST(Infer, ClearErrorsOnOverflowAndBadTokens) {
    const std::string dir = std::string(MOE_FIXTURE_DIR) + "/hf_mixtral_tiny";
    TestModel m(model_config_read(dir + "/config.json"));
    model_load_weights(dir, m.c, m.p);
    InferSession s(m.c, m.p, 4);
    const std::vector<int32_t> five = {1, 2, 3, 4, 5};
    EXPECT_NE(error_of([&] { s.feed(five.data(), 5); }).find("the context is full: 0 + 5 tokens > 4; pass a larger -c"),
              std::string::npos);
    const int32_t bad = 96;
    EXPECT_NE(error_of([&] { s.feed(&bad, 1); }).find("token 96 is outside the vocabulary of 96"), std::string::npos);
}

TEST(Sampler, FiltersPenaltiesAndDistribution) {
    const std::vector<float> l = {2.0f, 1.9f, 0.5f, -1.0f};
    Rng rng(5);
    SamplingParams s;
    s.temperature = 0;
    EXPECT_EQ(sample_token(l.data(), 4, s, {}, rng), 0);
    s.repeat_penalty = 1.2;  // 2.0 / 1.2 = 1.67 < 1.9
    EXPECT_EQ(sample_token(l.data(), 4, s, {0}, rng), 1);
    s.repeat_last_n = 1;  // token 0 is outside the window
    EXPECT_EQ(sample_token(l.data(), 4, s, {0, 2}, rng), 0);
    const std::vector<float> neg = {-1.0f, -1.1f};  // a negative logit is multiplied: -1.2 < -1.1
    s.repeat_last_n = 64;
    EXPECT_EQ(sample_token(neg.data(), 2, s, {0}, rng), 1);
    // Filters that leave one candidate draw it whatever the temperature.
    SamplingParams one;
    one.temperature = 5;
    one.top_k = 1;
    for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(l.data(), 4, one, {}, rng), 0);
    one.top_k = 0;
    one.top_p = 0.01;
    for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(l.data(), 4, one, {}, rng), 0);
    // Frequencies follow softmax(l / T) over the kept candidates (top-k 2 renormalises over two).
    auto freq = [&](SamplingParams p) {
        std::vector<double> f(4, 0.0);
        const int n = 40000;
        for (int i = 0; i < n; ++i) f[size_t(sample_token(l.data(), 4, p, {}, rng))] += 1.0 / n;
        return f;
    };
    SamplingParams full;
    full.temperature = 0.7, full.top_k = 0, full.top_p = 1, full.min_p = 0;
    std::vector<double> want(4);
    double z = 0;
    for (int i = 0; i < 4; ++i) z += want[size_t(i)] = std::exp(l[size_t(i)] / 0.7);
    std::vector<double> got = freq(full);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(got[size_t(i)], want[size_t(i)] / z, 0.01) << i;  // 5 sigma at n = 40000
    SamplingParams top2 = full;
    top2.top_k = 2;
    got = freq(top2);
    const double p0 = 1.0 / (1.0 + std::exp((1.9 - 2.0) / 0.7));
    EXPECT_NEAR(got[0], p0, 0.01);
    EXPECT_EQ(got[2] + got[3], 0.0);
    SamplingParams minp = full;
    minp.min_p = 0.5;  // exp(0.5 - 2) = 0.22 < 0.5: tokens 2 and 3 are dropped
    got = freq(minp);
    EXPECT_EQ(got[2] + got[3], 0.0);
    SamplingParams bad;
    bad.top_p = 0;
    EXPECT_NE(error_of([&] { sampling_validate(bad); }).find("--top-p must be in (0, 1]"), std::string::npos);
}
