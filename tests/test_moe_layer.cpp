// The MoE layer against an independent PyTorch implementation (float64 reference, fixtures from
// tools/gen_layer_fixtures.py), against finite differences, across thread counts, and on bad input.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "layer_fixture.h"
#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/moe_layer.h"
#include "moe/rng.h"

using namespace moe;
using moe::test::LayerFixture;
using moe::test::scaled_max_error;

namespace {

// f32 compute against a float64 reference: errors relative to each tensor's largest value.
// Measured: at most 5.5e-7 (router gradient); 2e-6 is 4x that, ~16 f32 epsilons.
constexpr double kTol = 2e-6;

const char* kCases[] = {"basic", "shared_norenorm", "capacity_top2", "switch_top1", "wide_k"};

class LayerFixtureTest : public ::testing::TestWithParam<const char*> {};

}  // namespace

TEST_P(LayerFixtureTest, ForwardMatchesPyTorch) {
    LayerFixture f(GetParam());
    Buffer y(DType::f32, {f.T, f.cfg.d_model});
    MoeLayerCache cache;
    MoeLayerLosses losses;
    moe_layer_forward(y.view(), losses, cache, f.cfg, f.params, f.x.view());

    // The routing decisions must be identical, not just close.
    std::vector<int32_t> idx = f.file.i32("topk_idx"), kept = f.file.i32("kept");
    ASSERT_EQ(cache.plan.topk_idx, idx);
    int64_t n_dropped = 0;
    for (size_t i = 0; i < kept.size(); ++i) {
        EXPECT_EQ(cache.plan.assignment[i] >= 0, kept[i] == 1) << "slot " << i;
        n_dropped += kept[i] == 0;
    }
    EXPECT_EQ(cache.plan.n_dropped, n_dropped);
    EXPECT_LT(scaled_max_error(cache.router.probs.data(), f.file.f32("probs")), kTol);
    EXPECT_LT(scaled_max_error(cache.plan.topk_weight.data(), f.file.f32("topk_weight")), kTol);
    EXPECT_LT(scaled_max_error(y.f32(), f.file.f32("y")), kTol);
    EXPECT_NEAR(losses.aux, f.file.f32("aux_loss")[0], 1e-5 * std::fabs(f.file.f32("aux_loss")[0]));
    EXPECT_NEAR(losses.z, f.file.f32("z_loss")[0], 1e-5 * std::fabs(f.file.f32("z_loss")[0]));
}

TEST_P(LayerFixtureTest, BackwardMatchesPyTorch) {
    LayerFixture f(GetParam());
    Buffer y(DType::f32, {f.T, f.cfg.d_model}), dx(DType::f32, {f.T, f.cfg.d_model});
    MoeLayerCache cache;
    MoeLayerLosses losses;
    moe_layer_forward(y.view(), losses, cache, f.cfg, f.params, f.x.view());
    moe_layer_backward(dx.view(), f.grads, f.dy.view(), {f.aux_coef, f.z_coef}, cache, f.cfg, f.params, f.x.view());
    EXPECT_LT(scaled_max_error(dx.f32(), f.file.f32("grad.x")), kTol);
    EXPECT_LT(scaled_max_error(f.grads.router.f32(), f.file.f32("grad.router.weight")), kTol);
    EXPECT_LT(scaled_max_error(f.grads.w1.f32(), f.file.f32("grad.experts.w1")), kTol);
    EXPECT_LT(scaled_max_error(f.grads.w3.f32(), f.file.f32("grad.experts.w3")), kTol);
    EXPECT_LT(scaled_max_error(f.grads.w2.f32(), f.file.f32("grad.experts.w2")), kTol);
    if (f.cfg.n_shared > 0) {
        EXPECT_LT(scaled_max_error(f.grads.ws1.f32(), f.file.f32("grad.shared.w1")), kTol);
        EXPECT_LT(scaled_max_error(f.grads.ws3.f32(), f.file.f32("grad.shared.w3")), kTol);
        EXPECT_LT(scaled_max_error(f.grads.ws2.f32(), f.file.f32("grad.shared.w2")), kTol);
    }
}

TEST_P(LayerFixtureTest, GradientsAccumulate) {
    // Two backward passes without zeroing give twice the gradient (llm.c's += convention).
    LayerFixture f(GetParam());
    Buffer y(DType::f32, {f.T, f.cfg.d_model}), dx(DType::f32, {f.T, f.cfg.d_model});
    MoeLayerCache cache;
    MoeLayerLosses losses;
    for (int rep = 0; rep < 2; ++rep) {
        moe_layer_forward(y.view(), losses, cache, f.cfg, f.params, f.x.view());
        moe_layer_backward(dx.view(), f.grads, f.dy.view(), {f.aux_coef, f.z_coef}, cache, f.cfg, f.params, f.x.view());
    }
    std::vector<float> want = f.file.f32("grad.experts.w1"), wantx = f.file.f32("grad.x");
    for (float& v : want) v *= 2;
    for (float& v : wantx) v *= 2;
    EXPECT_LT(scaled_max_error(f.grads.w1.f32(), want), kTol);
    EXPECT_LT(scaled_max_error(dx.f32(), wantx), kTol);
}

// bf16 compute against the same float64 reference. bf16 keeps 8 significant bits, so every
// GEMM input is off by up to 2^-9 (0.2%) relative; through three chained GEMMs and the SwiGLU
// the measured error is at most 0.86% of a tensor's scale (grad of w2, widening path). 2e-2
// is 2.3x that; a wiring mistake (a wrong weight, transpose or missing term) is of order 1.
TEST_P(LayerFixtureTest, Bf16ForwardAndBackwardMatchPyTorch) {
    LayerFixture f(GetParam());
    f.cfg.dtype = DType::bf16;
    Buffer y(DType::f32, {f.T, f.cfg.d_model}), dx(DType::f32, {f.T, f.cfg.d_model});
    MoeLayerCache cache;
    MoeLayerLosses losses;
    moe_layer_forward(y.view(), losses, cache, f.cfg, f.params, f.x.view());
    ASSERT_EQ(cache.plan.topk_idx, f.file.i32("topk_idx"));  // the router stays in f32
    moe_layer_backward(dx.view(), f.grads, f.dy.view(), {f.aux_coef, f.z_coef}, cache, f.cfg, f.params, f.x.view());
    const double tol = 2e-2;
    EXPECT_LT(scaled_max_error(y.f32(), f.file.f32("y")), tol);
    EXPECT_LT(scaled_max_error(dx.f32(), f.file.f32("grad.x")), tol);
    EXPECT_LT(scaled_max_error(f.grads.router.f32(), f.file.f32("grad.router.weight")), tol);
    EXPECT_LT(scaled_max_error(f.grads.w1.f32(), f.file.f32("grad.experts.w1")), tol);
    EXPECT_LT(scaled_max_error(f.grads.w3.f32(), f.file.f32("grad.experts.w3")), tol);
    EXPECT_LT(scaled_max_error(f.grads.w2.f32(), f.file.f32("grad.experts.w2")), tol);
    if (f.cfg.n_shared > 0) {
        EXPECT_LT(scaled_max_error(f.grads.ws1.f32(), f.file.f32("grad.shared.w1")), tol);
        EXPECT_LT(scaled_max_error(f.grads.ws2.f32(), f.file.f32("grad.shared.w2")), tol);
    }
    // ... and it is not f32 in disguise: the error is above f32 rounding.
    EXPECT_GT(scaled_max_error(y.f32(), f.file.f32("y")), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LayerFixtureTest, ::testing::ValuesIn(kCases));
