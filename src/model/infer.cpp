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
#include "moe/kernels.h"
#include "moe/lm_loss.h"
#include "moe/quant.h"

namespace moe {

namespace {

QMatrix f32_matrix(const TensorView& t) {
    return {GgmlType::f32, t.shape[0], t.shape[t.shape.ndim - 1], t.f32()};
}

// RoPE on adjacent pairs (ggml's order of q / k rows): (u[2j], u[2j+1]) turns by angle j.
void rope_rotate_pairs(float* u, const float* cos, const float* sin, int64_t hd) {
    for (int64_t j = 0; j < hd / 2; ++j) {
        const float a = u[2 * j], b = u[2 * j + 1];
        u[2 * j] = a * cos[j] - b * sin[j];
        u[2 * j + 1] = b * cos[j] + a * sin[j];
    }
}

double matrix_bytes(const QMatrix& m) { return double(m.rows) * double(m.row_bytes()); }

}  // namespace

InferWeights infer_weights(const ModelParams& p, const ModelConfig& c) {
    InferWeights w;
    w.embed = f32_matrix(p.embed);
    w.lm_head = f32_matrix(p.lm_head);
    w.final_norm = p.final_norm.f32();
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const ModelLayerParams& lp = p.layers[size_t(l)];
        InferLayerWeights L;
        L.input_norm = lp.input_norm.f32();
        L.post_norm = lp.post_norm.f32();
        L.q = f32_matrix(lp.attn.q_proj);
        L.k = f32_matrix(lp.attn.k_proj);
        L.v = f32_matrix(lp.attn.v_proj);
        L.o = f32_matrix(lp.attn.o_proj);
        auto opt = [](const TensorView& t) { return t.numel() > 0 ? t.f32() : nullptr; };
        L.q_bias = opt(lp.attn.q_bias);
        L.k_bias = opt(lp.attn.k_bias);
        L.v_bias = opt(lp.attn.v_bias);
        L.q_norm = opt(lp.attn.q_norm);
        L.k_norm = opt(lp.attn.k_norm);
        if (c.attn.mla) {
            const MlaParams& m = lp.mla;
            auto mat = [](const TensorView& t) { return t.numel() > 0 ? f32_matrix(t) : QMatrix{}; };
            L.mla = {mat(m.q_proj), mat(m.q_a_proj), mat(m.q_b_proj), mat(m.kv_a_proj), mat(m.kv_b_proj),
                     mat(m.o_proj), opt(m.q_a_norm), opt(m.kv_a_norm), QMatrix{}, QMatrix{}};
        }
        L.ffn = lp.moe;
        w.layers.push_back(L);
    }
    return w;
}

double infer_active_bytes(const InferWeights& w, const ModelConfig& c) {
    const double D = double(c.hidden());
    double b = matrix_bytes(w.lm_head) + double(w.embed.row_bytes()) + 4 * D;
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const InferLayerWeights& L = w.layers[size_t(l)];
        const MoeLayerConfig f = c.ffn(l);
        b += 8 * D + matrix_bytes(L.q) + matrix_bytes(L.k) + matrix_bytes(L.v) + matrix_bytes(L.o);
        if (c.attn.mla) {  // the latent attention's matrices and its two RMSNorms
            const MlaWeights& m = L.mla;
            for (const QMatrix* q :
                 {&m.q_proj, &m.q_a_proj, &m.q_b_proj, &m.kv_a_proj, &m.kv_b_proj, &m.o_proj, &m.k_b, &m.v_b})
                if (q->data) b += matrix_bytes(*q);
            b += 4 * double(c.mla.q_lora_rank + c.mla.kv_lora_rank);
        }
        b += 4 * double(L.ffn.router.numel());
        const double K = double(f.top_k), E = double(f.n_experts);
        if (L.ffn.quant.active())
            b += K / E * (matrix_bytes(L.ffn.quant.w1) + matrix_bytes(L.ffn.quant.w3) + matrix_bytes(L.ffn.quant.w2));
        else
            b += 4 * K * 3 * D * double(f.d_ff);
        b += 4 * double(f.n_shared) * 3 * D * double(f.d_ff_shared);
    }
    return b;
}

int64_t infer_default_batch(const InferWeights& w) {
    bool packed = !w.layers.empty();
    for (const InferLayerWeights& lw : w.layers) packed = packed && lw.ffn.quant.w1.packed8 && lw.ffn.quant.w3.packed8;
    return packed ? kInferMaxBatchPacked : kInferMaxBatch;
}

InferSession::InferSession(const ModelConfig& c, const InferWeights& w, int64_t max_ctx, int64_t max_batch)
    : c_(c), w_(w), max_ctx_(max_ctx), max_batch_(max_batch > 0 ? max_batch : infer_default_batch(w)) {
    model_validate(c_);
    MOE_CHECK(max_ctx > 0, "infer", "the context size must be > 0, got " + std::to_string(max_ctx));
    MOE_CHECK(int64_t(w_.layers.size()) == c_.num_layers, "infer",
              "the weights have " + std::to_string(w_.layers.size()) + " layers, the config " + std::to_string(c_.num_layers));
    c_.moe.router.training = false;  // no noise, jitter or random routing at inference
    for (const InferLayerWeights& lw : w_.layers) {  // the attention's extras, checked once here
        MOE_CHECK(!c_.attn.qkv_bias || (lw.q_bias && lw.k_bias && lw.v_bias), "infer",
                  "qkv_bias is set but the weights have no q/k/v biases");
        MOE_CHECK(c_.attn.qk_norm == QkNorm::none || (lw.q_norm && lw.k_norm), "infer",
                  "qk_norm is set but the weights have no q_norm / k_norm");
    }
    moe_.resize(1);  // one for every layer: inference keeps nothing for a backward
    if (c_.attn.mla) {  // each layer caches its latents; no per-head K / V, no RoPE table here
        mla_.reserve(size_t(c_.num_layers));
        for (int64_t l = 0; l < c_.num_layers; ++l) mla_.emplace_back(c_.mla, max_ctx);
        return;
    }
    const int64_t hd = c_.attn.hd(), Hkv = c_.attn.n_kv_heads;
    k_.assign(size_t(c_.num_layers), std::vector<float>(size_t(Hkv * max_ctx * hd)));
    v_.assign(size_t(c_.num_layers), std::vector<float>(size_t(Hkv * max_ctx * hd)));
    rope_table(cos_, sin_, max_ctx, hd, c_.attn.rope_theta);
}

int64_t InferSession::kv_cache_bytes() const {
    if (c_.attn.mla) {
        int64_t b = 0;
        for (const MlaAttention& m : mla_) b += m.cache_bytes();
        return b;
    }
    return 2 * c_.num_layers * c_.attn.n_kv_heads * max_ctx_ * c_.attn.hd() * 4;
}

void InferSession::qkv_extras(const InferLayerWeights& lw, int64_t n) {
    const AttentionConfig& a = c_.attn;
    if (a.plain()) return;
    const int64_t hd = a.hd(), qw = a.n_heads * hd, kw = a.n_kv_heads * hd;
    struct Part {
        float* m;
        int64_t w;
        const float *bias, *norm;
    };
    const Part parts[3] = {{q_.data(), qw, lw.q_bias, lw.q_norm}, {kn_.data(), kw, lw.k_bias, lw.k_norm}, {vn_.data(), kw, lw.v_bias, nullptr}};
    const float clip = float(a.clip_qkv), eps = float(c_.rms_norm_eps);
    for (const Part& p : parts) {
        if (p.bias)
            for (int64_t i = 0; i < n; ++i)
                for (int64_t j = 0; j < p.w; ++j) p.m[i * p.w + j] += p.bias[j];
        if (p.norm && a.qk_norm != QkNorm::none) {
            // In place: each row (full) or each head of each row (head) normalised by its own RMS.
            const int64_t len = a.qk_norm == QkNorm::head ? hd : p.w;
            rstd_.resize(size_t(std::max<int64_t>(int64_t(rstd_.size()), n * p.w / len)));
            rmsnorm_forward(p.m, rstd_.data(), p.m, p.norm, n * p.w / len, len, eps);
        }
        if (clip > 0)  // after the norm, as OLMoE does
            for (int64_t j = 0; j < n * p.w; ++j) p.m[j] = std::clamp(p.m[j], -clip, clip);
    }
}

void InferSession::attention(int64_t l, const float* x, float* out, int64_t n) {
    const InferLayerWeights& lw = w_.layers[size_t(l)];
    if (c_.attn.mla) {
        mla_[size_t(l)].forward(lw.mla, x, out, n, pos_, qmm_);
        return;
    }
    const int64_t D = c_.hidden(), H = c_.attn.n_heads, Hkv = c_.attn.n_kv_heads, hd = c_.attn.hd();
    const int64_t qw = H * hd, kw = Hkv * hd, half = hd / 2, group = H / Hkv, end = pos_ + n;
    q_.resize(size_t(n * qw));
    kn_.resize(size_t(n * kw));
    vn_.resize(size_t(n * kw));
    const QOutput qkv[3] = {{&lw.q, q_.data(), qw}, {&lw.k, kn_.data(), kw}, {&lw.v, vn_.data(), kw}};
    qmatmul_shared_x(qkv, 3, x, D, n, qmm_);
    qkv_extras(lw, n);
    auto rope = [&](float* u, int64_t t) {
        if (w_.rope_pairs)
            rope_rotate_pairs(u, cos_.data() + t * half, sin_.data() + t * half, hd);
        else
            rope_rotate(u, cos_.data() + t * half, sin_.data() + t * half, hd);
    };
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
    const KernelTable& kt = kernels();
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < H; ++h) {
        const float* Kh = K + (h / group) * max_ctx_ * hd;
        const float* Vh = V + (h / group) * max_ctx_ * hd;
        float* S = scores_.data() + h * n * end;
        if (n <= kQGemvMaxRows) {  // decode: dot products and axpys, no GEMM set-up per head
            for (int64_t i = 0; i < n; ++i) {
                const float* q = q_.data() + i * qw + h * hd;
                float* s = S + i * end;
                float* o = o_.data() + i * qw + h * hd;
                const int64_t last = pos_ + i;  // query i sees 0 .. pos + i
                for (int64_t t = 0; t <= last; ++t) s[t] = scale * kt.dot(q, Kh + t * hd, hd);
                causal_softmax_row(s, last, end);
                std::fill_n(o, hd, 0.0f);
                for (int64_t t = 0; t <= last; ++t) kt.axpy(o, s[t], Vh + t * hd, hd);
            }
            continue;
        }
        gemm_f32(false, true, n, end, hd, scale, q_.data() + h * hd, qw, Kh, hd, 0.0f, S, end);
        for (int64_t i = 0; i < n; ++i) causal_softmax_row(S + i * end, pos_ + i, end);  // query i sees 0 .. pos + i
        gemm_f32(false, false, n, hd, end, 1.0f, S, end, Vh, hd, 0.0f, o_.data() + h * hd, qw);
    }
    qmatmul(out, D, o_.data(), qw, n, lw.o, 0.0f, qmm_);
}

const float* InferSession::feed(const int32_t* tokens, int64_t n, bool all_logits) {
    const char* op = "infer";
    MOE_CHECK(n > 0, op, "no tokens to feed");
    MOE_CHECK(pos_ + n <= max_ctx_, op,
              "the context is full: " + std::to_string(pos_) + " + " + std::to_string(n) + " tokens > " +
                  std::to_string(max_ctx_) + "; pass a larger -c / --ctx-size");
    const int64_t V = c_.vocab_size;
    for (int64_t i = 0; i < n; ++i)
        MOE_CHECK(tokens[i] >= 0 && tokens[i] < V, op,
                  "token " + std::to_string(tokens[i]) + " is outside the vocabulary of " + std::to_string(V));
    if (n <= max_batch_) return feed_batch(tokens, n, all_logits);
    // Longer prompts in batches of max_batch_ tokens (llama.cpp's micro-batches): the buffers,
    // sized by the batch, stay small against the weights.
    std::vector<float> all;
    if (all_logits) all.reserve(size_t(n * V));
    for (int64_t i0 = 0; i0 < n; i0 += max_batch_) {
        const int64_t m = std::min(max_batch_, n - i0);
        const float* l = feed_batch(tokens + i0, m, all_logits);
        if (all_logits) all.insert(all.end(), l, l + m * V);
    }
    if (all_logits) logits_ = std::move(all);
    return logits_.data();
}

const float* InferSession::feed_batch(const int32_t* tokens, int64_t n, bool all_logits) {
    const int64_t D = c_.hidden(), V = c_.vocab_size;
    const float eps = float(c_.rms_norm_eps);
    h_.resize(size_t(n * D));
    n_.resize(size_t(n * D));
    sub_.resize(size_t(n * D));
    rstd_.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) dequantize_row(w_.embed.type, w_.embed.row(tokens[i]), h_.data() + i * D, D);
    for (int64_t l = 0; l < c_.num_layers; ++l) {
        const InferLayerWeights& lw = w_.layers[size_t(l)];
        rmsnorm_forward(n_.data(), rstd_.data(), h_.data(), lw.input_norm, n, D, eps);
        attention(l, n_.data(), sub_.data(), n);
        for (int64_t i = 0; i < n * D; ++i) h_[size_t(i)] += sub_[size_t(i)];
        rmsnorm_forward(n_.data(), rstd_.data(), h_.data(), lw.post_norm, n, D, eps);
        MoeLayerLosses losses;
        moe_layer_forward(TensorView{sub_.data(), DType::f32, Shape{n, D}}, losses, moe_[0], c_.ffn(l), lw.ffn,
                          TensorView{n_.data(), DType::f32, Shape{n, D}}, nullptr, tokens);
        for (int64_t i = 0; i < n * D; ++i) h_[size_t(i)] += sub_[size_t(i)];
    }
    pos_ += n;
    const int64_t rows = all_logits ? n : 1;
    const float* hr = h_.data() + (n - rows) * D;
    rmsnorm_forward(n_.data(), rstd_.data(), hr, w_.final_norm, rows, D, eps);
    logits_.resize(size_t(rows * V));
    qmatmul(logits_.data(), V, n_.data(), D, rows, w_.lm_head, 0.0f, qmm_);
    return logits_.data();
}

}  // namespace moe
