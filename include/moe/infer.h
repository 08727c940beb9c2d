// Inference: a KV-cached decoder over the model of model.h (prompt tokens processed as one batch,
// then one token per step), and llama.cpp-style sampling. Training's model_forward recomputes
// the whole context; this computes each position once (docs/model_spec.md, "Inference").
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "moe/model.h"
#include "moe/qmatmul.h"
#include "moe/rng.h"

namespace moe {

// The decoder's weights: matrices in any type qmatmul takes (f32 views of a ModelParams, or
// the blocks of a memory-mapped GGUF, never copied), vectors in f32.
struct InferLayerWeights {
    const float* input_norm = nullptr;  // (D,)
    const float* post_norm = nullptr;   // (D,)
    QMatrix q, k, v, o;                 // (H hd, D), (Hkv hd, D) twice, (D, H hd)
    // The attention's extras (AttentionParams), nullptr when the config has none.
    const float *q_bias = nullptr, *k_bias = nullptr, *v_bias = nullptr, *q_norm = nullptr, *k_norm = nullptr;
    MlaWeights mla;                     // multi-head latent attention (config attn.mla), else empty
    MoeLayerParams ffn;                 // the router (f32 views) and experts (views or ffn.quant)
};
struct InferWeights {
    QMatrix embed;    // (V, D): one row dequantized per token
    QMatrix lm_head;  // (V, D)
    const float* final_norm = nullptr;
    std::vector<InferLayerWeights> layers;
    // q / k rows in ggml's order (a GGUF: each head's rows as interleaved pairs): RoPE rotates
    // adjacent pairs (2j, 2j+1), which gives the same scores as the Hugging Face order.
    bool rope_pairs = false;
    std::shared_ptr<const void> keep;  // what the pointers need alive (a mapped file, dequantized vectors)
};
// Views of p's f32 tensors, nothing copied.
InferWeights infer_weights(const ModelParams& p, const ModelConfig& c);
// A Hugging Face directory's weights where they lie (src/model/hf_infer.cpp): its safetensors
// mapped, every matrix (experts one per tensor) used in its stored F32 / F16 / BF16; vectors,
// routers and shared experts widened to f32 copies (kept in .keep). Throws naming the file and
// tensor when one is missing or misshapen, or the checkpoint has a layer tensor the config does
// not use.
InferWeights hf_infer_weights(const std::string& dir, const ModelConfig& c);
// Whether dir has Hugging Face weights (model.safetensors or the index of shards) and c a router
// hf_infer_weights maps (top-k softmax, DeepSeek-V3's sigmoid with bias, dense); else the
// weights go through model_load_weights into an f32 arena.
bool hf_can_map(const std::string& dir, const ModelConfig& c);
// Packs the Q4_0 / Q8_0 matrices the decoder multiplies (attention, stacked experts, LM head) by
// 8 rows (include/moe/qpack.h) into memory held by w.keep, and returns the bytes packed (0:
// none). Decode and prompts of up to kQPackedGemmMaxRows rows then take the 8-row kernels.
// release (when given) is called with each original matrix's bytes once copied: a mapped file's
// pages can be dropped so that the weights are not resident twice (GgufFile::release). Only
// matrices whose rows, and whose experts' rows, are multiples of 8 are packed.
int64_t infer_weights_pack8(InferWeights& w, const ModelConfig& c,
                            const std::function<void(const void*, uint64_t)>& release = {});
// Bytes of the weights one decode token reads (attention, norms, router, its K experts, the
// LM head, one embedding row), in the weights' own types.
double infer_active_bytes(const InferWeights& w, const ModelConfig& c);

// Prompt tokens processed together (llama.cpp's micro-batch): a longer feed() runs in batches.
// 512 by default; 128 when the routed experts are packed (qmatrix_pack8), whose integer kernel
// multiplies 128 rows as fast as 512 (include/moe/qmatmul.h), so that the prompt's buffers
// (activations, expert rows, attention scores: about 20 MB at mixtral-mini's shape) stay small
// against the weights. Dequantized or f32 products need the larger batch to run fast.
constexpr int64_t kInferMaxBatch = 512, kInferMaxBatchPacked = 128;
// The batch InferSession takes for w by default.
int64_t infer_default_batch(const InferWeights& w);

class InferSession {
public:
    // max_ctx: the most positions the session holds (the KV cache is sized for it); max_batch:
    // the most tokens one pass processes (0: infer_default_batch(w)).
    InferSession(const ModelConfig& c, const InferWeights& w, int64_t max_ctx, int64_t max_batch = 0);
    InferSession(const ModelConfig& c, const ModelParams& p, int64_t max_ctx)
        : InferSession(c, infer_weights(p, c), max_ctx) {}

    // Appends n tokens at positions pos() .. pos() + n - 1 (in batches of max_batch) and
    // returns their logits: (n, V) when all_logits, else the last token's (V). Throws when the
    // context would overflow max_ctx or a token is outside the vocabulary. The pointer stays
    // valid until the next call.
    const float* feed(const int32_t* tokens, int64_t n, bool all_logits = false);
    int64_t pos() const { return pos_; }
    int64_t max_ctx() const { return max_ctx_; }
    // Bytes of the K and V caches (f32, every layer, max_ctx positions); with multi-head latent
    // attention, of the latent caches ((kv_lora_rank + qk_rope_head_dim) floats a position).
    int64_t kv_cache_bytes() const;
    void reset() { pos_ = 0; }

private:
    const float* feed_batch(const int32_t* tokens, int64_t n, bool all_logits);  // n <= max_batch_
    void attention(int64_t l, const float* x, float* out, int64_t n);
    void qkv_extras(const InferLayerWeights& lw, int64_t n);  // biases, clip_qkv, QK-norm
    ModelConfig c_;
    InferWeights w_;  // views: the weights stay with the caller (or with w_.keep)
    int64_t max_ctx_ = 0, max_batch_ = 0, pos_ = 0;
    std::vector<std::vector<float>> k_, v_;  // per layer (Hkv, max_ctx, hd); empty with MLA
    std::vector<MlaAttention> mla_;          // per layer, with its latent cache (attn.mla only)
    std::vector<float> cos_, sin_;           // (max_ctx, hd / 2)
    std::vector<MoeLayerCache> moe_;         // one, shared by the layers (buffers reused)
    std::vector<float> h_, n_, q_, kn_, vn_, o_, sub_, scores_, logits_, rstd_;
    QMatmulScratch qmm_;
};

// llama.cpp's sampler chain, in its order: repetition penalty over the last repeat_last_n
// tokens, top-k, top-p, min-p, temperature, then a draw (temperature <= 0: greedy argmax).
struct SamplingParams {
    double temperature = 0.8;
    int64_t top_k = 40;              // 0 = off
    double top_p = 0.95;             // 1 = off
    double min_p = 0.05;             // 0 = off: drop tokens with p < min_p * p_max
    double repeat_penalty = 1.0;     // 1 = off (CTRL: divide positive logits, multiply negative)
    int64_t repeat_last_n = 64;
};

// Throws naming the field when a parameter is out of range.
void sampling_validate(const SamplingParams& s);
int32_t sample_token(const float* logits, int64_t V, const SamplingParams& s,
                     const std::vector<int32_t>& history, Rng& rng);

}  // namespace moe
