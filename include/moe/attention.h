// Causal self-attention with RoPE and grouped-query attention (Llama / Mixtral), explicit
// forward and backward; and RMSNorm. docs/model_spec.md is the exact contract; tests compare
// with an independent PyTorch implementation (tools/gen_model_fixtures.py).
#pragma once
#include <cstdint>
#include <vector>

#include "moe/tensor.h"

namespace moe {

// RMSNorm of q and k before RoPE: per head over hd (Qwen3-MoE: q_norm / k_norm of shape (hd,)),
// or over the whole projection (OLMoE: (H hd,) and (Hkv hd,)).
enum class QkNorm { none, head, full };

struct AttentionConfig {
    int64_t d_model = 0;     // D
    int64_t n_heads = 0;     // H (num_attention_heads)
    int64_t n_kv_heads = 0;  // Hkv (num_key_value_heads), divides H
    int64_t head_dim = 0;    // hd (head_dim); 0 = D / H
    double rope_theta = 10000;
    // Beyond Mixtral (inference only: training's attention_forward refuses them):
    bool qkv_bias = false;   // q / k / v projections with a bias (Qwen2-MoE)
    QkNorm qk_norm = QkNorm::none;
    double clip_qkv = 0;     // > 0: q, k, v clamped to [-clip, clip] (OLMoE's clip_qkv)
    // Multi-head latent attention instead of this one (DeepSeek-V2 / V3): ModelConfig::mla has
    // its sizes, ModelLayerParams::mla its weights; q / k / v / o_proj here are then empty.
    bool mla = false;
    int64_t hd() const { return head_dim > 0 ? head_dim : d_model / n_heads; }
    bool plain() const { return !qkv_bias && qk_norm == QkNorm::none && clip_qkv == 0 && !mla; }
    // Length of the q_norm / k_norm weights: 0 without QK-norm, hd per head, else the whole
    // projection (H hd, Hkv hd).
    int64_t q_norm_len() const { return qk_norm == QkNorm::none ? 0 : qk_norm == QkNorm::head ? hd() : n_heads * hd(); }
    int64_t k_norm_len() const { return qk_norm == QkNorm::none ? 0 : qk_norm == QkNorm::head ? hd() : n_kv_heads * hd(); }
};

// RoPE in Hugging Face's rotate_half layout: the cos / sin tables (T, hd / 2) of positions
// 0 .. T - 1, and the rotation of one head's vector u (hd,) by one position's row of them
// (sign -1: the inverse, for backward). Training's attention and the decoder share them.
void rope_table(std::vector<float>& cos, std::vector<float>& sin, int64_t T, int64_t hd, double theta);
void rope_rotate(float* u, const float* cos, const float* sin, int64_t hd, float sign = 1.0f);

// Softmax of row[0 .. last] in place, zeros in row[last + 1 .. width): one causal attention row
// (training's attention and the KV-cached decoder share it).
void causal_softmax_row(float* row, int64_t last, int64_t width);

// Throws "[attention] ..." when the sizes are impossible.
void attention_validate(const AttentionConfig& c);

struct AttentionParams {
    TensorView q_proj;  // (H hd, D)
    TensorView k_proj;  // (Hkv hd, D)
    TensorView v_proj;  // (Hkv hd, D)
    TensorView o_proj;  // (D, H hd)
    // Present only when the config asks for them, else empty: qkv_bias: (H hd,), (Hkv hd,),
    // (Hkv hd,); qk_norm head: (hd,) twice; full: (H hd,), (Hkv hd,).
    TensorView q_bias, k_bias, v_bias, q_norm, k_norm;
};

// What forward keeps for backward (buffers grow, never shrink).
struct AttentionCache {
    int64_t B = 0, T = 0;
    std::vector<float> q, k, v;     // after RoPE: (B T, H hd), (B T, Hkv hd), (B T, Hkv hd)
    std::vector<float> probs;       // (B, H, T, T) attention weights (0 above the diagonal)
    std::vector<float> o;           // (B T, H hd) the heads' outputs, before o_proj
    std::vector<float> cos, sin;    // (T, hd / 2) RoPE tables
};

// y (B T, D) = attention(x (B T, D)) for B sequences of T positions.
void attention_forward(TensorView y, AttentionCache& cache, const AttentionConfig& c,
                       const AttentionParams& p, TensorView x, int64_t B, int64_t T);
// Gradients of sum(y * dy): dx and every tensor of `grads` accumulate (+=).
void attention_backward(TensorView dx, const AttentionParams& grads, TensorView dy,
                        const AttentionCache& cache, const AttentionConfig& c,
                        const AttentionParams& p, TensorView x);

// RMSNorm over the last axis of x (R, D): y = x / sqrt(mean(x^2) + eps) * weight; rstd (R,)
// is saved for backward, which accumulates (+=) into dx and dweight.
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* weight, int64_t R,
                     int64_t D, float eps);
void rmsnorm_backward(float* dx, float* dweight, const float* dy, const float* x,
                      const float* weight, const float* rstd, int64_t R, int64_t D);

}  // namespace moe
