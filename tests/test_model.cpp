// The transformer pieces around the MoE layer (attention with RoPE and GQA, RMSNorm) against an
// independent PyTorch implementation (tools/gen_model_fixtures.py, float64), finite
// differences, causality, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "layer_fixture.h"
#include "moe/attention.h"
#include "moe/error.h"
#include "moe/rng.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::error_of;
using moe::test::scaled_max_error;

namespace {

// f32 against float64, relative to each tensor's largest value (as the layer's fixtures).
constexpr double kTol = 2e-6;

Buffer load(const SafetensorsFile& f, const std::string& name) {
    std::vector<int64_t> shape = f.shape(name);
    Shape s;
    s.ndim = int(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) s.dims[i] = shape[i];
    Buffer b(DType::f32, s);
    std::vector<float> v = f.f32(name);
    std::memcpy(b.f32(), v.data(), v.size() * 4);
    return b;
}

Buffer zeros_like(const Buffer& b) {
    Buffer z(DType::f32, b.view().shape);
    std::memset(z.f32(), 0, size_t(z.numel()) * 4);
    return z;
}

struct AttentionFixture {
    SafetensorsFile file;
    AttentionConfig cfg;
    int64_t B, T;
    Buffer x, dy, q, k, v, o, gq, gk, gv, go;
    AttentionParams p, g;
    explicit AttentionFixture(const std::string& name)
        : file(std::string(MOE_FIXTURE_DIR) + "/model_attention_" + name + ".safetensors") {
        auto i = [&](const char* key) { return std::stoll(file.meta(key)); };
        B = i("B");
        T = i("T");
        cfg.d_model = i("D");
        cfg.n_heads = i("H");
        cfg.n_kv_heads = i("Hkv");
        cfg.head_dim = i("hd");
        cfg.rope_theta = std::stod(file.meta("rope_theta"));
        x = load(file, "x");
        dy = load(file, "dy");
        q = load(file, "q_proj");
        k = load(file, "k_proj");
        v = load(file, "v_proj");
        o = load(file, "o_proj");
        gq = zeros_like(q), gk = zeros_like(k), gv = zeros_like(v), go = zeros_like(o);
        p.q_proj = q.view(), p.k_proj = k.view(), p.v_proj = v.view(), p.o_proj = o.view();
        g.q_proj = gq.view(), g.k_proj = gk.view(), g.v_proj = gv.view(), g.o_proj = go.view();
    }
};

class AttentionTest : public ::testing::TestWithParam<const char*> {};

}  // namespace

TEST_P(AttentionTest, ForwardAndBackwardMatchPyTorch) {
    AttentionFixture f(GetParam());
    Buffer y(DType::f32, {f.B * f.T, f.cfg.d_model});
    Buffer dx = zeros_like(f.x);
    AttentionCache cache;
    attention_forward(y.view(), cache, f.cfg, f.p, f.x.view(), f.B, f.T);
    EXPECT_LT(scaled_max_error(y.f32(), f.file.f32("y")), kTol);
    attention_backward(dx.view(), f.g, f.dy.view(), cache, f.cfg, f.p, f.x.view());
    EXPECT_LT(scaled_max_error(dx.f32(), f.file.f32("grad.x")), kTol);
    EXPECT_LT(scaled_max_error(f.gq.f32(), f.file.f32("grad.q_proj")), kTol);
    EXPECT_LT(scaled_max_error(f.gk.f32(), f.file.f32("grad.k_proj")), kTol);
    EXPECT_LT(scaled_max_error(f.gv.f32(), f.file.f32("grad.v_proj")), kTol);
    EXPECT_LT(scaled_max_error(f.go.f32(), f.file.f32("grad.o_proj")), kTol);
}

TEST_P(AttentionTest, FiniteDifferences) {
    AttentionFixture f(GetParam());
    const int64_t N = f.B * f.T, D = f.cfg.d_model;
    Buffer y(DType::f32, {N, D});
    Buffer dx = zeros_like(f.x);
    AttentionCache cache;
    attention_forward(y.view(), cache, f.cfg, f.p, f.x.view(), f.B, f.T);
    attention_backward(dx.view(), f.g, f.dy.view(), cache, f.cfg, f.p, f.x.view());
    auto loss = [&] {
        AttentionCache c2;
        attention_forward(y.view(), c2, f.cfg, f.p, f.x.view(), f.B, f.T);
        double s = 0;
        for (int64_t i = 0; i < N * D; ++i) s += double(y.f32()[i]) * f.dy.f32()[i];
        return s;
    };
    const double eps = 1e-3;
    int checked = 0;
    auto check = [&](const char* name, float* param, const float* grad, int64_t n) {
        for (int64_t i = 0; i < n; i += std::max<int64_t>(1, n / 10)) {
            const float old = param[i];
            param[i] = old + float(eps);
            const double lp = loss();
            param[i] = old - float(eps);
            const double lm = loss();
            param[i] = old;
            const double fd = (lp - lm) / (2 * eps);
            EXPECT_NEAR(grad[i], fd, 2e-3 + 1e-2 * std::fabs(fd)) << name << "[" << i << "]";
            ++checked;
        }
    };
    check("x", f.x.f32(), dx.f32(), f.x.numel());
    check("q_proj", f.q.f32(), f.gq.f32(), f.q.numel());
    check("k_proj", f.k.f32(), f.gk.f32(), f.k.numel());
    check("v_proj", f.v.f32(), f.gv.f32(), f.v.numel());
    check("o_proj", f.o.f32(), f.go.f32(), f.o.numel());
    EXPECT_GE(checked, 50);
}

TEST_P(AttentionTest, EarlierPositionsDoNotSeeLaterTokens) {
    AttentionFixture f(GetParam());
    const int64_t N = f.B * f.T, D = f.cfg.d_model;
    Buffer y0(DType::f32, {N, D}), y1(DType::f32, {N, D});
    AttentionCache cache;
    attention_forward(y0.view(), cache, f.cfg, f.p, f.x.view(), f.B, f.T);
    for (int64_t d = 0; d < D; ++d) f.x.f32()[(f.T - 1) * D + d] += 1.0f;  // last position of sequence 0
    attention_forward(y1.view(), cache, f.cfg, f.p, f.x.view(), f.B, f.T);
    for (int64_t i = 0; i < (f.T - 1) * D; ++i) ASSERT_EQ(y0.f32()[i], y1.f32()[i]) << "element " << i;
    bool last_changed = false;
    for (int64_t d = 0; d < D; ++d) last_changed |= y0.f32()[(f.T - 1) * D + d] != y1.f32()[(f.T - 1) * D + d];
    EXPECT_TRUE(last_changed);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, AttentionTest, ::testing::Values("gqa", "mha", "mqa_wide_head"));

TEST(RmsNorm, ForwardAndBackwardMatchPyTorch) {
    SafetensorsFile file(std::string(MOE_FIXTURE_DIR) + "/model_rmsnorm.safetensors");
    const int64_t R = std::stoll(file.meta("R")), D = std::stoll(file.meta("D"));
    const float eps = std::stof(file.meta("rms_norm_eps"));
    Buffer x = load(file, "x"), w = load(file, "weight"), dy = load(file, "dy");
    Buffer y(DType::f32, {R, D}), dx = zeros_like(x), dw = zeros_like(w);
    std::vector<float> rstd(static_cast<size_t>(R));
    rmsnorm_forward(y.f32(), rstd.data(), x.f32(), w.f32(), R, D, eps);
    EXPECT_LT(scaled_max_error(y.f32(), file.f32("y")), kTol);
    rmsnorm_backward(dx.f32(), dw.f32(), dy.f32(), x.f32(), w.f32(), rstd.data(), R, D);
    EXPECT_LT(scaled_max_error(dx.f32(), file.f32("grad.x")), kTol);
    EXPECT_LT(scaled_max_error(dw.f32(), file.f32("grad.weight")), kTol);
}

TEST(AttentionErrors, ImpossibleSizesGetAClearMessage) {
    AttentionConfig c{32, 4, 3, 0, 10000};
    EXPECT_NE(error_of([&] { attention_validate(c); }).find("n_kv_heads = 3 must divide n_heads = 4"), std::string::npos);
    c = {30, 4, 2, 0, 10000};
    EXPECT_NE(error_of([&] { attention_validate(c); }).find("not a multiple of n_heads = 4; set head_dim"), std::string::npos);
    c = {32, 4, 2, 7, 10000};
    EXPECT_NE(error_of([&] { attention_validate(c); }).find("head_dim must be even for RoPE"), std::string::npos);
}
