// The decoder-only MoE language model (Mixtral layout): embedding, L x [RMSNorm, attention,
// residual, RMSNorm, MoE layer, residual], final RMSNorm, LM head, cross-entropy; explicit
// forward and backward (docs/model_spec.md, "The model"). Parameters and gradients live in
// arenas with the same layout; names follow Hugging Face Mixtral (model_param_names).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "moe/arena.h"
#include "moe/attention.h"
#include "moe/moe_layer.h"

namespace moe {

struct ModelConfig {
    int64_t vocab_size = 0;    // V
    int64_t num_layers = 0;    // L
    AttentionConfig attn;      // hidden_size = attn.d_model, heads, head_dim, rope_theta
    MoeLayerConfig moe;        // d_model must equal attn.d_model
    double rms_norm_eps = 1e-5;
    bool tie_word_embeddings = false;
    int64_t hidden() const { return attn.d_model; }
};

// Throws "[model] ..." when the sizes are impossible or disagree.
void model_validate(const ModelConfig& c);

struct ModelLayerParams {
    TensorView input_norm, post_norm;  // (D,)
    AttentionParams attn;
    MoeLayerParams moe;
};

struct ModelParams {
    TensorView embed;       // (V, D)
    TensorView final_norm;  // (D,)
    TensorView lm_head;     // (V, D); the embedding when tied
    std::vector<ModelLayerParams> layers;
};

// Reserves every tensor in `arena`; after arena.allocate(), model_params_point gives the views.
struct ModelSlots {
    size_t embed, final_norm, lm_head;
    std::vector<std::vector<size_t>> layers;  // input_norm, post_norm, q, k, v, o
    std::vector<MoeLayerParamSlots> moe;
};
ModelSlots model_params_reserve(Arena& arena, const ModelConfig& c);
ModelParams model_params_point(const Arena& arena, const ModelSlots& s, const ModelConfig& c);
// Norms = 1, embedding N(0, 1), every matrix N(0, 1 / sqrt(fan_in)) (the MoE layer's init).
void model_params_init(const ModelParams& p, const ModelConfig& c, uint64_t seed);
// (Hugging Face name, tensor) for every parameter, in a fixed order (checkpoints, fixtures).
std::vector<std::pair<std::string, TensorView>> model_param_names(const ModelParams& p, const ModelConfig& c);

struct ModelLosses {
    double ce = 0;   // mean cross-entropy over the targets not ignored
    double aux = 0;  // sum over layers of the MoE balance loss
    double z = 0;    // sum over layers of the router z-loss
    double total = 0;  // ce + aux_coef * aux + z_coef * z
};

// What forward keeps for backward (buffers grow, never shrink).
struct ModelCache {
    int64_t B = 0, T = 0;
    struct Layer {
        Buffer h_in, n1, h_mid, n2;  // residual stream in / after attention, the normed inputs
        std::vector<float> rstd1, rstd2;
        AttentionCache attn;
        MoeLayerCache moe;
    };
    std::vector<Layer> layers;
    Buffer h_out, hf, logits, dlogits;  // final residual, normed, logits (N, V), d logits
    std::vector<float> rstd_f;
};

// Forward on tokens (B T,) with targets (B T,) (-100 = ignored). Returns the losses; the
// logits are in cache.logits.
ModelLosses model_forward(ModelCache& cache, const ModelConfig& c, const ModelParams& p,
                          const int32_t* tokens, const int32_t* targets, int64_t B, int64_t T,
                          float aux_coef, float z_coef);
// Gradients of losses.total: accumulate (+=) into `grads`.
void model_backward(const ModelParams& grads, ModelCache& cache, const ModelConfig& c,
                    const ModelParams& p, const int32_t* tokens, float aux_coef, float z_coef);

}  // namespace moe
