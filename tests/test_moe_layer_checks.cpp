// Finite-difference gradients, determinism across thread counts, capacity semantics, and the
// errors bad input gets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <functional>
#include <string>

#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/moe_layer.h"
#include "moe/rng.h"
#include "layer_fixture.h"

using moe::test::error_of;

using namespace moe;

namespace {

struct SmallLayer {
    MoeLayerConfig cfg;
    int64_t T;
    Arena pa, ga;
    MoeLayerParams p, g;
    Buffer x, dy, y, dx;
    MoeLayerCache cache;
    MoeLayerLosses losses;
    float aux_coef = 0.05f, z_coef = 0.02f;

    SmallLayer(MoeLayerConfig c, int64_t tokens, uint64_t seed) : cfg(c), T(tokens) {
        auto ps = moe_layer_params_reserve(pa, cfg);
        auto gs = moe_layer_params_reserve(ga, cfg);
        pa.allocate();
        ga.allocate();
        p = moe_layer_params_point(pa, ps);
        g = moe_layer_params_point(ga, gs);
        moe_layer_params_init(p, seed);
        const int64_t D = cfg.d_model;
        x = Buffer(DType::f32, {T, D});
        dy = Buffer(DType::f32, {T, D});
        y = Buffer(DType::f32, {T, D});
        dx = Buffer(DType::f32, {T, D});
        Rng r(seed + 1);
        r.fill_normal(x.f32(), x.numel(), 0, 1);
        r.fill_normal(dy.f32(), dy.numel(), 0, 1);
    }
    // L = sum(y * dy) + aux_coef * aux + z_coef * z, accumulated in double.
    double loss() {
        moe_layer_forward(y.view(), losses, cache, cfg, p, x.view());
        double s = 0;
        for (int64_t i = 0; i < y.numel(); ++i) s += double(y.f32()[i]) * dy.f32()[i];
        return s + aux_coef * double(losses.aux) + z_coef * double(losses.z);
    }
    void backward() {
        moe_layer_forward(y.view(), losses, cache, cfg, p, x.view());
        moe_layer_backward(dx.view(), g, dy.view(), {aux_coef, z_coef}, cache, cfg, p, x.view());
    }
};

MoeLayerConfig small_config(double capacity_factor, bool renormalize) {
    MoeLayerConfig c;
    c.d_model = 8;
    c.d_ff = 10;
    c.n_experts = 4;
    c.top_k = 2;
    c.n_shared = 1;
    c.d_ff_shared = 6;
    c.renormalize = renormalize;
    c.capacity_factor = capacity_factor;
    return c;
}

void finite_difference_check(double capacity_factor, bool renormalize) {
    SmallLayer L(small_config(capacity_factor, renormalize), 12, 77);
    L.backward();
    const double eps = 1e-3;
    int checked = 0, skipped = 0;
    auto check = [&](const char* name, float* param, const float* grad, int64_t n) {
        for (int64_t i = 0; i < n; i += std::max<int64_t>(1, n / 12)) {
            float old = param[i];
            param[i] = old + float(eps);
            double lp = L.loss();
            auto idx_p = L.cache.plan.topk_idx;
            auto kept_p = L.cache.plan.assignment;
            param[i] = old - float(eps);
            double lm = L.loss();
            bool same_routing = idx_p == L.cache.plan.topk_idx && kept_p == L.cache.plan.assignment;
            param[i] = old;
            if (!same_routing) {  // the loss is not differentiable across a routing change
                ++skipped;
                continue;
            }
            double fd = (lp - lm) / (2 * eps);
            EXPECT_NEAR(grad[i], fd, 2e-3 + 1e-2 * std::fabs(fd)) << name << "[" << i << "]";
            ++checked;
        }
    };
    check("x", L.x.f32(), L.dx.f32(), L.x.numel());
    check("router", L.p.router.f32(), L.g.router.f32(), L.p.router.numel());
    check("w1", L.p.w1.f32(), L.g.w1.f32(), L.p.w1.numel());
    check("w3", L.p.w3.f32(), L.g.w3.f32(), L.p.w3.numel());
    check("w2", L.p.w2.f32(), L.g.w2.f32(), L.p.w2.numel());
    check("ws1", L.p.ws1.f32(), L.g.ws1.f32(), L.p.ws1.numel());
    check("ws3", L.p.ws3.f32(), L.g.ws3.f32(), L.p.ws3.numel());
    check("ws2", L.p.ws2.f32(), L.g.ws2.f32(), L.p.ws2.numel());
    EXPECT_GT(checked, 60);
    EXPECT_LT(skipped, checked / 4);
}

}  // namespace

TEST(MoeLayerGrad, FiniteDifferencesDropless) { finite_difference_check(0.0, true); }
TEST(MoeLayerGrad, FiniteDifferencesCapacityNoRenorm) { finite_difference_check(1.0, false); }

// The layer's own loops (router, dispatch, combine, scatter) have a fixed reduction order, so
// a run is bit-identical to the previous one at the same thread count. Across thread counts
// OpenBLAS's threaded SGEMM reorders its sums (docs/gemm.md), so there the guarantee is a
// stated tolerance: 1e-5 of each tensor's scale.
TEST(MoeLayerDeterminism, RunToRunBitIdenticalAndAcrossThreadsWithinTolerance) {
    MoeLayerConfig c;
    c.d_model = 64, c.d_ff = 96, c.n_experts = 8, c.top_k = 2, c.n_shared = 1, c.d_ff_shared = 32;
    c.capacity_factor = 1.25;
    using Result = std::vector<std::vector<float>>;
    auto run = [&](int threads) {
        set_num_threads(threads);
        SmallLayer L(c, 200, 5);
        L.backward();
        Result r;
        for (const Buffer* b : {&L.y, &L.dx}) r.emplace_back(b->f32(), b->f32() + b->numel());
        for (const TensorView* t : {&L.g.w1, &L.g.w2, &L.g.router, &L.g.ws1})
            r.emplace_back(t->f32(), t->f32() + t->numel());
        return r;
    };
    const char* names[] = {"y", "dx", "dw1", "dw2", "drouter", "dws1"};
    int saved = get_num_threads();
    Result one = run(1), one_again = run(1), two = run(2), two_again = run(2), three = run(3);
    set_num_threads(saved);
    for (size_t i = 0; i < one.size(); ++i) {
        EXPECT_EQ(one[i], one_again[i]) << names[i] << " differs between two 1-thread runs";
        EXPECT_EQ(two[i], two_again[i]) << names[i] << " differs between two 2-thread runs";
        double err2 = 0, err3 = 0, scale = 1e-30;
        for (size_t k = 0; k < one[i].size(); ++k) {
            err2 = std::max(err2, double(std::fabs(one[i][k] - two[i][k])));
            err3 = std::max(err3, double(std::fabs(one[i][k] - three[i][k])));
            scale = std::max(scale, double(std::fabs(one[i][k])));
        }
        EXPECT_LT(err2 / scale, 1e-5) << names[i] << ": 1 vs 2 threads";
        EXPECT_LT(err3 / scale, 1e-5) << names[i] << ": 1 vs 3 threads";
    }
}

TEST(RoutePlan, CountingSortIsStableAndCapacityFollowsGShardPriority) {
    // T = 4, K = 2, E = 3; every token picks expert 0 first.
    RoutePlan plan;
    plan.topk_idx = {0, 1, 0, 2, 0, 1, 0, 1};
    plan.topk_weight = {.6f, .4f, .7f, .3f, .5f, .5f, .9f, .1f};
    route_plan_build(plan, 4, 2, 3, 0);
    EXPECT_EQ(plan.expert_offsets, (std::vector<int64_t>{0, 4, 7, 8}));
    EXPECT_EQ(plan.token_index, (std::vector<int32_t>{0, 1, 2, 3, 0, 2, 3, 1}));
    EXPECT_EQ(plan.n_dropped, 0);
    // Capacity 2: expert 0 keeps the first choices of tokens 0, 1; expert 1 keeps tokens 0, 2
    // (second choices, in token order), token 3's second choice to expert 1 is dropped.
    EXPECT_EQ(route_capacity(1.0, 4, 2, 3), 3);
    route_plan_build(plan, 4, 2, 3, 2);
    EXPECT_EQ(plan.expert_offsets, (std::vector<int64_t>{0, 2, 4, 5}));
    EXPECT_EQ(plan.token_index, (std::vector<int32_t>{0, 1, 0, 2, 1}));
    EXPECT_EQ(plan.n_dropped, 3);
    EXPECT_EQ(plan.assignment[4], -1);  // token 2, first choice (expert 0 full)
    EXPECT_EQ(plan.assignment[7], -1);  // token 3, second choice (expert 1 full)
    EXPECT_FLOAT_EQ(plan.weight[2], .4f);
}

TEST(MoeLayerStats, LoadStatisticsOfAPlan) {
    SmallLayer L(small_config(0.0, true), 40, 3);
    L.loss();
    MoeLoadStats st = moe_layer_load_stats(L.cache);
    int64_t total = 0;
    for (int64_t c : st.counts) total += c;
    EXPECT_EQ(total, 40 * 2);
    EXPECT_GE(st.max_over_mean, 1.0);
    EXPECT_LE(st.entropy, std::log(4.0) + 1e-9);
    EXPECT_EQ(st.dropped_fraction, 0.0);
}


TEST(MoeLayerErrors, ImpossibleConfigs) {
    MoeLayerConfig c = small_config(0.0, true);
    c.top_k = 5;
    EXPECT_EQ(error_of([&] { moe_layer_validate(c); }),
              "[moe_layer] top_k must be in [1, n_experts = 4], got 5");
    c = small_config(0.0, true);
    c.n_experts = 0;
    EXPECT_NE(error_of([&] { moe_layer_validate(c); }).find("n_experts must be > 0"), std::string::npos);
    c = small_config(-1.0, true);
    EXPECT_NE(error_of([&] { moe_layer_validate(c); }).find("capacity_factor"), std::string::npos);
    c = small_config(0.0, true);
    c.d_ff_shared = 0;
    EXPECT_NE(error_of([&] { moe_layer_validate(c); }).find("d_ff_shared"), std::string::npos);
}

TEST(MoeLayerErrors, BadInputsNameOpAndShapes) {
    SmallLayer L(small_config(0.0, true), 6, 1);
    Buffer wrong(DType::f32, {6, 7});
    EXPECT_EQ(error_of([&] { moe_layer_forward(L.y.view(), L.losses, L.cache, L.cfg, L.p, wrong.view()); }),
              "[moe_layer_forward] expected x of shape (T, 8), got (6, 7)");
    Buffer y_wrong(DType::f32, {5, 8});
    EXPECT_EQ(error_of([&] { moe_layer_forward(y_wrong.view(), L.losses, L.cache, L.cfg, L.p, L.x.view()); }),
              "[moe_layer_forward] expected y of shape (6, 8), got (5, 8)");
    MoeLayerParams bad = L.p;
    bad.w2.shape = Shape{4, 10, 8};
    EXPECT_EQ(error_of([&] { moe_layer_forward(L.y.view(), L.losses, L.cache, L.cfg, bad, L.x.view()); }),
              "[moe_layer_forward] expected w2 of shape (4, 8, 10), got (4, 10, 8)");
    L.x.f32()[13] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_NE(error_of([&] { moe_layer_forward(L.y.view(), L.losses, L.cache, L.cfg, L.p, L.x.view()); })
                  .find("contains NaN or Inf"),
              std::string::npos);
    L.x.f32()[13] = 0.5f;
    // Backward without (or twice after) a forward.
    MoeLayerCache fresh;
    EXPECT_NE(error_of([&] { moe_layer_backward(L.dx.view(), L.g, L.dy.view(), {}, fresh, L.cfg, L.p, L.x.view()); })
                  .find("without a forward"),
              std::string::npos);
    L.backward();
    EXPECT_NE(error_of([&] { moe_layer_backward(L.dx.view(), L.g, L.dy.view(), {}, L.cache, L.cfg, L.p, L.x.view()); })
                  .find("without a forward"),
              std::string::npos);
}

TEST(MoeLayerErrors, QuantizedExpertsAreForwardOnlyAndChecked) {
    // The experts as QMatrix views (here F32 ones over the layer's own weights): forward gives
    // the f32 layer's output; wrong sizes, bf16 compute and backward are refused by name.
    SmallLayer L(small_config(0.0, true), 6, 3);
    const int64_t E = L.cfg.n_experts, F = L.cfg.d_ff, D = L.cfg.d_model;
    L.loss();
    const std::vector<float> want(L.y.f32(), L.y.f32() + L.y.numel());
    MoeLayerParams q = L.p;
    q.quant = {{GgmlType::f32, E * F, D, L.p.w1.f32()}, {GgmlType::f32, E * F, D, L.p.w3.f32()},
               {GgmlType::f32, E * D, F, L.p.w2.f32()}};
    q.w1 = q.w3 = q.w2 = TensorView{};  // not read
    moe_layer_forward(L.y.view(), L.losses, L.cache, L.cfg, q, L.x.view());
    for (int64_t i = 0; i < L.y.numel(); ++i) EXPECT_NEAR(L.y.f32()[i], want[size_t(i)], 1e-5) << i;
    EXPECT_NE(error_of([&] { moe_layer_backward(L.dx.view(), L.g, L.dy.view(), {}, L.cache, L.cfg, q, L.x.view()); })
                  .find("the experts are quantized"),
              std::string::npos);
    MoeLayerParams short_w1 = q;
    short_w1.quant.w1.rows = E * F - 1;
    EXPECT_EQ(error_of([&] { moe_layer_forward(L.y.view(), L.losses, L.cache, L.cfg, short_w1, L.x.view()); }),
              "[moe_layer_forward] expected quantized w1 of 40 x 8 (E F, D: every expert's rows stacked, or E "
              "per-expert matrices), got 39 x 8 with 0 per-expert pointers");
    // One matrix per expert where it lies (a mapped Hugging Face checkpoint): the same function;
    // a missing expert is refused.
    MoeLayerParams per = q;
    for (int64_t e = 0; e < E; ++e) {
        per.quant.w1_e.push_back(reinterpret_cast<const uint8_t*>(L.p.w1.f32() + e * F * D));
        per.quant.w3_e.push_back(reinterpret_cast<const uint8_t*>(L.p.w3.f32() + e * F * D));
        per.quant.w2_e.push_back(reinterpret_cast<const uint8_t*>(L.p.w2.f32() + e * D * F));
    }
    per.quant.w1.data = per.quant.w3.data = per.quant.w2.data = nullptr;
    moe_layer_forward(L.y.view(), L.losses, L.cache, L.cfg, per, L.x.view());
    for (int64_t i = 0; i < L.y.numel(); ++i) EXPECT_NEAR(L.y.f32()[i], want[size_t(i)], 1e-5) << i;
    per.quant.w2_e.pop_back();
    EXPECT_NE(error_of([&] { moe_layer_forward(L.y.view(), L.losses, L.cache, L.cfg, per, L.x.view()); })
                  .find("expected quantized w2 of 32 x 10 (E F, D: every expert's rows stacked, or E per-expert "
                        "matrices), got 32 x 10 with 3 per-expert pointers"),
              std::string::npos);
    MoeLayerConfig bf = L.cfg;
    bf.dtype = DType::bf16;
    EXPECT_NE(error_of([&] { moe_layer_forward(L.y.view(), L.losses, L.cache, bf, q, L.x.view()); }).find("not bf16"),
              std::string::npos);
}
