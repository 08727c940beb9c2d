// The KV-cached decoder (include/moe/infer.h): the same function as model_forward, each
// position computed once. Attention keeps K and V per layer as (Hkv, max_ctx, hd), so a head's
// keys are one contiguous matrix for the score product.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/infer.h"
#include "moe/lm_loss.h"

namespace moe {

InferSession::InferSession(const ModelConfig& c, const ModelParams& p, int64_t max_ctx)
    : c_(c), p_(p), max_ctx_(max_ctx) {
    model_validate(c_);
    MOE_CHECK(max_ctx > 0, "infer", "the context size must be > 0, got " + std::to_string(max_ctx));
    c_.moe.router.training = false;  // no noise, jitter or random routing at inference
    const int64_t hd = c_.attn.hd(), Hkv = c_.attn.n_kv_heads;
    k_.assign(size_t(c_.num_layers), std::vector<float>(size_t(Hkv * max_ctx * hd)));
    v_.assign(size_t(c_.num_layers), std::vector<float>(size_t(Hkv * max_ctx * hd)));
    moe_.resize(size_t(c_.num_layers));
    rope_table(cos_, sin_, max_ctx, hd, c_.attn.rope_theta);
}

void InferSession::attention(int64_t l, const float* x, float* out, int64_t n) {
    const ModelLayerParams& lp = p_.layers[size_t(l)];
    const int64_t D = c_.hidden(), H = c_.attn.n_heads, Hkv = c_.attn.n_kv_heads, hd = c_.attn.hd();
    const int64_t qw = H * hd, kw = Hkv * hd, half = hd / 2, group = H / Hkv, end = pos_ + n;
    q_.resize(size_t(n * qw));
    kn_.resize(size_t(n * kw));
    vn_.resize(size_t(n * kw));
    gemm_f32(false, true, n, qw, D, 1.0f, x, D, lp.attn.q_proj.f32(), D, 0.0f, q_.data(), qw);
    gemm_f32(false, true, n, kw, D, 1.0f, x, D, lp.attn.k_proj.f32(), D, 0.0f, kn_.data(), kw);
    gemm_f32(false, true, n, kw, D, 1.0f, x, D, lp.attn.v_proj.f32(), D, 0.0f, vn_.data(), kw);
    auto rope = [&](float* u, int64_t t) { rope_rotate(u, cos_.data() + t * half, sin_.data() + t * half, hd); };
    float *K = k_[size_t(l)].data(), *V = v_[size_t(l)].data();
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t h = 0; h < H; ++h) rope(q_.data() + i * qw + h * hd, pos_ + i);
        for (int64_t g = 0; g < Hkv; ++g) {
            float* k = K + (g * max_ctx_ + pos_ + i) * hd;
            std::copy_n(kn_.data() + i * kw + g * hd, hd, k);
            rope(k, pos_ + i);
            std::copy_n(vn_.data() + i * kw + g * hd, hd, V + (g * max_ctx_ + pos_ + i) * hd);
        }
    }
    const float scale = float(1.0 / std::sqrt(double(hd)));
    o_.resize(size_t(n * qw));
    scores_.resize(size_t(H * n * end));
    // One head per iteration; OpenBLAS runs single-threaded inside the region.
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < H; ++h) {
        const float* Kh = K + (h / group) * max_ctx_ * hd;
        const float* Vh = V + (h / group) * max_ctx_ * hd;
        float* S = scores_.data() + h * n * end;
        gemm_f32(false, true, n, end, hd, scale, q_.data() + h * hd, qw, Kh, hd, 0.0f, S, end);
        for (int64_t i = 0; i < n; ++i) causal_softmax_row(S + i * end, pos_ + i, end);  // query i sees 0 .. pos + i
        gemm_f32(false, false, n, hd, end, 1.0f, S, end, Vh, hd, 0.0f, o_.data() + h * hd, qw);
    }
    gemm_f32(false, true, n, D, qw, 1.0f, o_.data(), qw, lp.attn.o_proj.f32(), qw, 0.0f, out, D);
}

const float* InferSession::feed(const int32_t* tokens, int64_t n, bool all_logits) {
    const char* op = "infer";
    MOE_CHECK(n > 0, op, "no tokens to feed");
    MOE_CHECK(pos_ + n <= max_ctx_, op,
              "the context is full: " + std::to_string(pos_) + " + " + std::to_string(n) + " tokens > " +
                  std::to_string(max_ctx_) + "; pass a larger -c / --ctx-size");
    const int64_t D = c_.hidden(), V = c_.vocab_size;
    for (int64_t i = 0; i < n; ++i)
        MOE_CHECK(tokens[i] >= 0 && tokens[i] < V, op,
                  "token " + std::to_string(tokens[i]) + " is outside the vocabulary of " + std::to_string(V));
    const float eps = float(c_.rms_norm_eps);
    h_.resize(size_t(n * D));
    n_.resize(size_t(n * D));
    sub_.resize(size_t(n * D));
    rstd_.resize(size_t(n));
    embedding_forward(h_.data(), p_.embed.f32(), tokens, n, V, D);
    for (int64_t l = 0; l < c_.num_layers; ++l) {
        const ModelLayerParams& lp = p_.layers[size_t(l)];
        rmsnorm_forward(n_.data(), rstd_.data(), h_.data(), lp.input_norm.f32(), n, D, eps);
        attention(l, n_.data(), sub_.data(), n);
        for (int64_t i = 0; i < n * D; ++i) h_[size_t(i)] += sub_[size_t(i)];
        rmsnorm_forward(n_.data(), rstd_.data(), h_.data(), lp.post_norm.f32(), n, D, eps);
        MoeLayerLosses losses;
        moe_layer_forward(TensorView{sub_.data(), DType::f32, Shape{n, D}}, losses, moe_[size_t(l)], c_.ffn(l), lp.moe,
                          TensorView{n_.data(), DType::f32, Shape{n, D}}, nullptr, tokens);
        for (int64_t i = 0; i < n * D; ++i) h_[size_t(i)] += sub_[size_t(i)];
    }
    pos_ += n;
    const int64_t rows = all_logits ? n : 1;
    const float* hr = h_.data() + (n - rows) * D;
    rmsnorm_forward(n_.data(), rstd_.data(), hr, p_.final_norm.f32(), rows, D, eps);
    logits_.resize(size_t(rows * V));
    gemm_f32(false, true, rows, V, D, 1.0f, n_.data(), D, p_.lm_head.f32(), D, 0.0f, logits_.data(), V);
    return logits_.data();
}

}  // namespace moe
