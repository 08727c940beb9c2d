// Multi-head latent attention (DeepSeek-V2 / V3, arXiv:2405.04434 section 2.1) for the KV-cached
// decoder: one layer's attention with a cache of the compressed latent (kv_lora_rank + the shared
// RoPE key per position) instead of per-head keys and values. The function is Hugging Face
// transformers' DeepseekV2Attention / DeepseekV3Attention (eager, causal); docs/model_spec.md,
// "Multi-head latent attention", has the equations, the cache layout and the two ways of
// computing it (naive: expand the latent to per-head K and V; absorbed: fold kv_b_proj into the
// query and the output, DeepSeek's / vLLM's / llama.cpp's decode path). Independent of ModelConfig:
// the model wires it in with one MlaAttention per layer.
#pragma once
#include <cstdint>
#include <vector>

#include "moe/qmatmul.h"

namespace moe {

// rope_scaling {"type": "yarn", ...} (transformers' _compute_yarn_parameters). factor == 1 (or no
// rope_scaling in config.json) is plain RoPE; a value of 0 below means "absent from config.json".
struct MlaYarn {
    double factor = 1;                           // factor
    int64_t original_max_position_embeddings = 0; // 0: max_position_embeddings of the config
    double beta_fast = 32, beta_slow = 1;        // beta_fast, beta_slow (0 / absent: 32, 1)
    double mscale = 0, mscale_all_dim = 0;       // mscale, mscale_all_dim
    double attention_factor = 0;                 // attention_factor; 0: derived from mscale(s)
    bool truncate = true;                        // truncate (floor / ceil of the correction range)
};

// Hugging Face DeepseekV2Config / DeepseekV3Config field names in the comments. Letters: D model,
// H heads, L kv_lora_rank, Nd qk_nope_head_dim, R qk_rope_head_dim, Vd v_head_dim, Qr q_lora_rank.
struct MlaConfig {
    int64_t d_model = 0;           // D  hidden_size
    int64_t n_heads = 0;           // H  num_attention_heads (num_key_value_heads must equal it)
    int64_t q_lora_rank = 0;       // Qr q_lora_rank; 0 = null (V2-Lite: q_proj directly)
    int64_t kv_lora_rank = 0;      // L  kv_lora_rank
    int64_t qk_nope_head_dim = 0;  // Nd qk_nope_head_dim
    int64_t qk_rope_head_dim = 0;  // R  qk_rope_head_dim (even)
    int64_t v_head_dim = 0;        // Vd v_head_dim
    double rope_theta = 10000;     // rope_theta
    int64_t max_position_embeddings = 0;  // max_position_embeddings (only yarn's default uses it)
    // q_a_layernorm / kv_a_layernorm: transformers builds them with the class default eps 1e-6,
    // not config.rms_norm_eps (DeepSeek's own code does the same).
    double lora_norm_eps = 1e-6;
    // RoPE pairs: true rotates adjacent pairs (2j, 2j+1) by frequency j (V2 always; V3's
    // rope_interleave, true by default); false rotates (j, j + R/2), Llama's rotate_half.
    bool rope_interleave = true;
    MlaYarn yarn;
    // Softmax scale 1/sqrt(Nd + R) times yarn_get_mscale(factor, mscale_all_dim)^2: DeepseekV3Attention
    // (and DeepSeek's own V2 code) do; transformers' DeepseekV2Attention (4.56) does not.
    bool softmax_mscale = true;
    // > 0: the softmax scale itself, replacing the two above (a deepseek2 GGUF: llama.cpp's
    // kq_scale, derived from its own yarn keys; src/model/gguf_deepseek2.cpp).
    double softmax_scale = 0;

    int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
    bool yarn_active() const { return yarn.factor != 1.0; }
};

// Throws "[mla] ..." naming the field when a size or rope_scaling value is impossible.
void mla_validate(const MlaConfig& c);

// The rotation: inv_freq (R/2) as transformers computes it (yarn's ramp between interpolated and
// extrapolated frequencies when active), the factor cos and sin are multiplied by
// (attention_factor), and the softmax scale.
std::vector<float> mla_rope_inv_freq(const MlaConfig& c);
double mla_rope_attention_factor(const MlaConfig& c);
double mla_softmax_scale(const MlaConfig& c);

// The weights of one layer's self_attn, as views (matrices in any type qmatmul takes; norms f32).
// Row-major (out, in), nn.Linear's weight.
struct MlaWeights {
    QMatrix q_proj;     // (H (Nd + R), D)   when q_lora_rank == 0
    QMatrix q_a_proj;   // (Qr, D)           when q_lora_rank > 0
    QMatrix q_b_proj;   // (H (Nd + R), Qr)  when q_lora_rank > 0
    QMatrix kv_a_proj;  // (L + R, D)        kv_a_proj_with_mqa
    QMatrix kv_b_proj;  // (H (Nd + Vd), L)  per head [k_nope rows | value rows]; may be absent
                        //                   when k_b and v_b are given (then only the absorbed path)
    QMatrix o_proj;     // (D, H Vd)
    const float* q_a_norm = nullptr;   // (Qr,) q_a_layernorm, when q_lora_rank > 0
    const float* kv_a_norm = nullptr;  // (L,)  kv_a_layernorm
    // Optional: the key half of kv_b_proj transposed per head, (H L, Nd) (llama.cpp's attn_k_b,
    // or mla_k_b_from_kv_b). The absorbed path then folds it into the query with qmatmul;
    // without it, it reads kv_b_proj's key rows (dequantized per head when not f32).
    QMatrix k_b;
    // Optional: the value half of kv_b_proj, (H Vd, L) (llama.cpp's attn_v_b): the absorbed
    // path's W_UV_h is then rows h Vd .. (h + 1) Vd of it.
    QMatrix v_b;
};

// k_b (H L, Nd) in f32 from kv_b_proj (any type dequantize_row takes): row h L + l, column j is
// kv_b_proj[h (Nd + Vd) + j, l].
std::vector<float> mla_k_b_from_kv_b(const MlaConfig& c, const QMatrix& kv_b_proj);
// The inverse for f32: kv_b_proj's key rows (H (Nd + Vd), L) written from k_b (H L, Nd); its
// value rows are left as they are.
void mla_kv_b_set_keys(const MlaConfig& c, const float* k_b, float* kv_b_proj);

// Which computation of the attention: both give the same function, from the same latent cache.
enum class MlaPath {
    automatic,  // the one with fewer multiply-adds for this n and context (absorbed for decode)
    naive,      // expand every cached latent to per-head K_nope, V with kv_b_proj (prefill; needs it)
    absorbed,   // attend over the latents: kv_b_proj folded into q and the output (decode)
};

// One layer's latent cache and scratch. Cache row t (t < max_ctx) is
// [ kv_a_layernorm(compressed_kv_t) (L) | rope(k_pe_t) (R) ], f32: (L + R) * 4 bytes a position.
class MlaAttention {
public:
    MlaAttention(const MlaConfig& c, int64_t max_ctx);

    // out (n, D) = attention of positions pos .. pos + n - 1 given x (n, D) (the RMS-normed hidden
    // states, input_layernorm's output), attending to cached positions 0 .. pos - 1 and to each
    // other causally; their latents are written to the cache (rows pos .. pos + n - 1). pos may
    // rewind (positions from pos on are overwritten) but not skip: pos <= positions(). Throws
    // "[mla] ..." on an overflow of max_ctx, a skipped position, or weights of the wrong shape.
    void forward(const MlaWeights& w, const float* x, float* out, int64_t n, int64_t pos, QMatmulScratch& scratch,
                 MlaPath path = MlaPath::automatic);

    // Positions held (pos + n of the last forward).
    int64_t positions() const { return filled_; }
    int64_t max_ctx() const { return max_ctx_; }
    const MlaConfig& config() const { return c_; }
    // Bytes of the latent cache: max_ctx * (L + R) * 4 (per-head K and V would be
    // max_ctx * H * (Nd + R + Vd) * 4).
    int64_t cache_bytes() const { return int64_t(cache_.size()) * 4; }
    // Cache row t, (L + R) values (tests, dumps).
    const float* cache_row(int64_t t) const { return cache_.data() + t * row_; }
    // The path automatic picks for n new positions after pos cached ones (with kv_b_proj;
    // without it, forward always takes the absorbed path).
    MlaPath choose_path(int64_t n, int64_t pos) const;

private:
    void project(const MlaWeights& w, const float* x, int64_t n, int64_t pos, QMatmulScratch& s);
    void attend_naive(const MlaWeights& w, int64_t n, int64_t pos, QMatmulScratch& s);
    void attend_absorbed(const MlaWeights& w, int64_t n, int64_t pos, QMatmulScratch& s);
    void rope(float* u, int64_t t) const;

    MlaConfig c_;
    int64_t max_ctx_ = 0, filled_ = 0, row_ = 0;  // row_ = L + R
    float scale_ = 0;
    std::vector<float> cache_;     // (max_ctx, L + R)
    std::vector<float> cos_, sin_; // (max_ctx, R / 2), times attention_factor
    // Scratch (grows, never shrinks): q (n, H (Nd + R)), q_a (n, Qr), kv_a (n, L + R),
    // o (n, H Vd) the heads' outputs, kv (ctx, H (Nd + Vd)) naive's expanded K / V,
    // qa (rows, H (L + R)) absorbed queries, o_lat (n, H L), scores, panel (Nd, L) of W_UK.
    std::vector<float> q_, q_lat_, kv_a_, o_, kv_, qabs_, o_lat_, scores_, panel_, rstd_;
};

}  // namespace moe
