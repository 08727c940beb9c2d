// Causal self-attention with RoPE (rotate_half layout) and grouped-query attention, forward
// and backward (docs/model_spec.md). Scores are materialised per (sequence, head): T x T, fine
// for training lengths; a flash-style tiled kernel can replace the per-head loop later.
#include <cmath>
#include <string>

#include "moe/attention.h"
#include "moe/error.h"
#include "moe/gemm.h"

namespace moe {
namespace {

// Rotates every head of a (B T, n_heads hd) matrix in place; `inverse` applies R^T (backward).
void rope_apply(float* m, int64_t B, int64_t T, int64_t n_heads, int64_t hd,
                const AttentionCache& cache, bool inverse) {
    const int64_t half = hd / 2;
    const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < B * T; ++row) {
        const int64_t p = row % T;
        const float* c = cache.cos.data() + p * half;
        const float* s = cache.sin.data() + p * half;
        for (int64_t h = 0; h < n_heads; ++h) rope_rotate(m + row * n_heads * hd + h * hd, c, s, hd, sign);
    }
}

}  // namespace

void rope_table(std::vector<float>& cos, std::vector<float>& sin, int64_t T, int64_t hd, double theta) {
    const int64_t half = hd / 2;
    cos.resize(size_t(T * half));
    sin.resize(size_t(T * half));
    for (int64_t p = 0; p < T; ++p)
        for (int64_t i = 0; i < half; ++i) {
            double angle = double(p) * std::pow(theta, -2.0 * double(i) / double(hd));
            cos[size_t(p * half + i)] = float(std::cos(angle));
            sin[size_t(p * half + i)] = float(std::sin(angle));
        }
}

void rope_rotate(float* u, const float* cos, const float* sin, int64_t hd, float sign) {
    const int64_t half = hd / 2;
    for (int64_t i = 0; i < half; ++i) {
        float a = u[i], b = u[i + half];
        u[i] = a * cos[i] - sign * b * sin[i];
        u[i + half] = b * cos[i] + sign * a * sin[i];
    }
}

void causal_softmax_row(float* row, int64_t last, int64_t width) {
    float m = row[0];
    for (int64_t j = 1; j <= last; ++j) m = std::max(m, row[j]);
    double sum = 0;  // one exp per entry (the decoder calls this once per head, layer and token)
    for (int64_t j = 0; j <= last; ++j) sum += (row[j] = std::exp(row[j] - m));
    const float inv = float(1.0 / sum);
    for (int64_t j = 0; j <= last; ++j) row[j] *= inv;
    for (int64_t j = last + 1; j < width; ++j) row[j] = 0.0f;
}

void attention_validate(const AttentionConfig& c) {
    const char* op = "attention";
    MOE_CHECK(c.d_model > 0 && c.n_heads > 0 && c.n_kv_heads > 0, op,
              "d_model, n_heads and n_kv_heads must be > 0, got " + std::to_string(c.d_model) + ", " +
                  std::to_string(c.n_heads) + ", " + std::to_string(c.n_kv_heads));
    MOE_CHECK(c.n_heads % c.n_kv_heads == 0, op,
              "n_kv_heads = " + std::to_string(c.n_kv_heads) + " must divide n_heads = " + std::to_string(c.n_heads));
    MOE_CHECK(c.head_dim > 0 || c.d_model % c.n_heads == 0, op,
              "d_model = " + std::to_string(c.d_model) + " is not a multiple of n_heads = " +
                  std::to_string(c.n_heads) + "; set head_dim");
    MOE_CHECK(c.hd() % 2 == 0, op, "head_dim must be even for RoPE, got " + std::to_string(c.hd()));
    MOE_CHECK(c.rope_theta > 1, op, "rope_theta must be > 1, got " + std::to_string(c.rope_theta));
    MOE_CHECK(c.clip_qkv >= 0, op, "clip_qkv must be >= 0 (0 = off), got " + std::to_string(c.clip_qkv));
}

namespace {
void check_trainable(const char* op, const AttentionConfig& c) {
    MOE_CHECK(!c.mla, op,
              "multi-head latent attention (DeepSeek-V2 / V3) is implemented for inference (moe run / generate) "
              "only; training takes Mixtral-style attention");
    MOE_CHECK(c.plain(), op,
              "q/k/v biases, QK-norm and clip_qkv (Qwen2-MoE, Qwen3-MoE, OLMoE) are implemented for inference "
              "(moe run / generate) only; training takes Mixtral-style attention");
}
}  // namespace

void attention_forward(TensorView y, AttentionCache& cache, const AttentionConfig& c,
                       const AttentionParams& p, TensorView x, int64_t B, int64_t T) {
    const char* op = "attention_forward";
    check_trainable(op, c);
    attention_validate(c);
    const int64_t D = c.d_model, H = c.n_heads, Hkv = c.n_kv_heads, hd = c.hd(), N = B * T;
    MOE_CHECK(B > 0 && T > 0, op, "need B, T > 0, got B = " + std::to_string(B) + ", T = " + std::to_string(T));
    check_tensor(op, "x", x, {N, D});
    check_tensor(op, "y", y, {N, D});
    check_tensor(op, "q_proj", p.q_proj, {H * hd, D});
    check_tensor(op, "k_proj", p.k_proj, {Hkv * hd, D});
    check_tensor(op, "v_proj", p.v_proj, {Hkv * hd, D});
    check_tensor(op, "o_proj", p.o_proj, {D, H * hd});
    cache.B = B;
    cache.T = T;
    const int64_t qw = H * hd, kw = Hkv * hd;
    cache.q.resize(size_t(N * qw));
    cache.k.resize(size_t(N * kw));
    cache.v.resize(size_t(N * kw));
    cache.o.resize(size_t(N * qw));
    cache.probs.resize(size_t(B * H * T * T));
    gemm_f32(false, true, N, qw, D, 1.0f, x.f32(), D, p.q_proj.f32(), D, 0.0f, cache.q.data(), qw);
    gemm_f32(false, true, N, kw, D, 1.0f, x.f32(), D, p.k_proj.f32(), D, 0.0f, cache.k.data(), kw);
    gemm_f32(false, true, N, kw, D, 1.0f, x.f32(), D, p.v_proj.f32(), D, 0.0f, cache.v.data(), kw);
    rope_table(cache.cos, cache.sin, T, hd, c.rope_theta);
    rope_apply(cache.q.data(), B, T, H, hd, cache, false);
    rope_apply(cache.k.data(), B, T, Hkv, hd, cache, false);

    const float scale = float(1.0 / std::sqrt(double(hd)));
    const int64_t group = H / Hkv;
    // One (sequence, head) per iteration; OpenBLAS runs single-threaded inside the region.
#pragma omp parallel for schedule(static) collapse(2)
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
            const float* q = cache.q.data() + b * T * qw + h * hd;
            const float* k = cache.k.data() + b * T * kw + (h / group) * hd;
            const float* v = cache.v.data() + b * T * kw + (h / group) * hd;
            float* P = cache.probs.data() + (b * H + h) * T * T;
            gemm_f32(false, true, T, T, hd, scale, q, qw, k, kw, 0.0f, P, T);
            for (int64_t i = 0; i < T; ++i) causal_softmax_row(P + i * T, i, T);
            gemm_f32(false, false, T, hd, T, 1.0f, P, T, v, kw, 0.0f, cache.o.data() + b * T * qw + h * hd, qw);
        }
    gemm_f32(false, true, N, D, qw, 1.0f, cache.o.data(), qw, p.o_proj.f32(), qw, 0.0f, y.f32(), D);
}

void attention_backward(TensorView dx, const AttentionParams& grads, TensorView dy,
                        const AttentionCache& cache, const AttentionConfig& c,
                        const AttentionParams& p, TensorView x) {
    const char* op = "attention_backward";
    check_trainable(op, c);
    const int64_t D = c.d_model, H = c.n_heads, Hkv = c.n_kv_heads, hd = c.hd();
    const int64_t B = cache.B, T = cache.T, N = B * T, qw = H * hd, kw = Hkv * hd;
    MOE_CHECK(N > 0 && int64_t(cache.o.size()) == N * qw, op, "backward called without a forward");
    check_tensor(op, "x", x, {N, D});
    check_tensor(op, "dy", dy, {N, D});
    check_tensor(op, "dx", dx, {N, D});
    std::vector<float> dO(static_cast<size_t>(N * qw)), dq(static_cast<size_t>(N * qw));
    std::vector<float> dk(static_cast<size_t>(N * kw), 0.0f), dv(static_cast<size_t>(N * kw), 0.0f);
    gemm_f32(false, false, N, qw, D, 1.0f, dy.f32(), D, p.o_proj.f32(), qw, 0.0f, dO.data(), qw);
    gemm_f32(true, false, D, qw, N, 1.0f, dy.f32(), D, cache.o.data(), qw, 1.0f, grads.o_proj.f32(), qw);

    const float scale = float(1.0 / std::sqrt(double(hd)));
    const int64_t group = H / Hkv;
    // One (sequence, kv head) per iteration: its query heads add into the same dk / dv.
#pragma omp parallel for schedule(static) collapse(2)
    for (int64_t b = 0; b < B; ++b)
        for (int64_t g = 0; g < Hkv; ++g) {
            std::vector<float> dP(static_cast<size_t>(T * T));
            const float* k = cache.k.data() + b * T * kw + g * hd;
            const float* v = cache.v.data() + b * T * kw + g * hd;
            float* dkb = dk.data() + b * T * kw + g * hd;
            float* dvb = dv.data() + b * T * kw + g * hd;
            for (int64_t h = g * group; h < (g + 1) * group; ++h) {
                const float* q = cache.q.data() + b * T * qw + h * hd;
                const float* P = cache.probs.data() + (b * H + h) * T * T;
                const float* dOb = dO.data() + b * T * qw + h * hd;
                gemm_f32(true, false, T, hd, T, 1.0f, P, T, dOb, qw, 1.0f, dvb, kw);      // dv += P^T dO
                gemm_f32(false, true, T, T, hd, 1.0f, dOb, qw, v, kw, 0.0f, dP.data(), T);  // dP = dO v^T
                for (int64_t i = 0; i < T; ++i) {  // dS = P (dP - sum_j P dP), causal part only
                    const float* pr = P + i * T;
                    float* dr = dP.data() + i * T;
                    double dot = 0;
                    for (int64_t j = 0; j <= i; ++j) dot += double(pr[j]) * dr[j];
                    for (int64_t j = 0; j <= i; ++j) dr[j] = pr[j] * (dr[j] - float(dot));
                    for (int64_t j = i + 1; j < T; ++j) dr[j] = 0.0f;
                }
                gemm_f32(false, false, T, hd, T, scale, dP.data(), T, k, kw, 0.0f, dq.data() + b * T * qw + h * hd, qw);
                gemm_f32(true, false, T, hd, T, scale, dP.data(), T, q, qw, 1.0f, dkb, kw);
            }
        }
    rope_apply(dq.data(), B, T, H, hd, cache, true);
    rope_apply(dk.data(), B, T, Hkv, hd, cache, true);
    const float* xp = x.f32();
    gemm_f32(true, false, qw, D, N, 1.0f, dq.data(), qw, xp, D, 1.0f, grads.q_proj.f32(), D);
    gemm_f32(true, false, kw, D, N, 1.0f, dk.data(), kw, xp, D, 1.0f, grads.k_proj.f32(), D);
    gemm_f32(true, false, kw, D, N, 1.0f, dv.data(), kw, xp, D, 1.0f, grads.v_proj.f32(), D);
    gemm_f32(false, false, N, D, qw, 1.0f, dq.data(), qw, p.q_proj.f32(), D, 1.0f, dx.f32(), D);
    gemm_f32(false, false, N, D, kw, 1.0f, dk.data(), kw, p.k_proj.f32(), D, 1.0f, dx.f32(), D);
    gemm_f32(false, false, N, D, kw, 1.0f, dv.data(), kw, p.v_proj.f32(), D, 1.0f, dx.f32(), D);
}

}  // namespace moe
