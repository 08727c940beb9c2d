// The decoder-only MoE language model (Mixtral layout): embedding, L x [RMSNorm, attention,
// residual, RMSNorm, MoE layer, residual], final RMSNorm, LM head, cross-entropy; explicit
// forward and backward (docs/model_spec.md, "The model"). Parameters and gradients live in
// arenas with the same layout; names follow Hugging Face Mixtral (model_param_names).
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "moe/arch.h"
#include "moe/arena.h"
#include "moe/attention.h"
#include "moe/mla.h"
#include "moe/moe_layer.h"

namespace moe {

struct ModelConfig {
    ModelArch arch = ModelArch::mixtral;  // tensor names and the attention's extras (moe/arch.h)
    int64_t vocab_size = 0;    // V
    int64_t num_layers = 0;    // L
    AttentionConfig attn;      // hidden_size = attn.d_model, heads, head_dim, rope_theta
    MlaConfig mla;             // the latent attention's sizes when attn.mla (DeepSeek), else unused
    MoeLayerConfig moe;        // d_model must equal attn.d_model; n_experts = 0: no MoE layer
    double rms_norm_eps = 1e-5;
    bool tie_word_embeddings = false;
    // Which layers are MoE (Hugging Face Qwen2-MoE's fields): layer l is MoE when
    // n_experts > 0, l is not in mlp_only_layers and (l + 1) % decoder_sparse_step == 0; the
    // others have a dense SwiGLU FFN (Switch / ST-MoE interleave every other layer: step 2).
    int64_t decoder_sparse_step = 1;
    std::vector<int64_t> mlp_only_layers;
    int64_t dense_intermediate_size = 0;  // F of the dense FFN; 0 = top_k * d_ff (equal active size)
    int64_t hidden() const { return attn.d_model; }
    int64_t dense_ff() const { return dense_intermediate_size > 0 ? dense_intermediate_size : std::max<int64_t>(moe.top_k, 1) * moe.d_ff; }
    bool is_moe_layer(int64_t l) const;
    // The FFN of layer l: `moe`, or the dense FFN as a one-expert layer (weight 1, no losses).
    MoeLayerConfig ffn(int64_t l) const;
};

// Throws "[model] ..." when the sizes are impossible or disagree.
void model_validate(const ModelConfig& c);

// Multi-head latent attention's weights (Hugging Face self_attn.<name>.weight), empty unless
// attn.mla; letters as in moe/mla.h. q_proj when q_lora_rank is 0, else q_a_proj, q_a_layernorm
// and q_b_proj.
struct MlaParams {
    TensorView q_proj;     // (H (Nd + R), D)
    TensorView q_a_proj;   // (Qr, D)
    TensorView q_a_norm;   // (Qr,)  q_a_layernorm
    TensorView q_b_proj;   // (H (Nd + R), Qr)
    TensorView kv_a_proj;  // (L + R, D)  kv_a_proj_with_mqa
    TensorView kv_a_norm;  // (L,)  kv_a_layernorm
    TensorView kv_b_proj;  // (H (Nd + Vd), L)
    TensorView o_proj;     // (D, H Vd)
};

struct ModelLayerParams {
    TensorView input_norm, post_norm;  // (D,)
    AttentionParams attn;              // empty when attn.mla
    MlaParams mla;                     // empty unless attn.mla
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
    std::vector<std::vector<size_t>> layers;  // input_norm, post_norm, q, k, v, o, extras, MLA's
    std::vector<MoeLayerParamSlots> moe;
};
// n_local_experts > 0 (expert parallelism): the MoE layers get room for that many routed experts
// only, this rank's (moe_layer_params_reserve); dense FFNs and everything else stay whole.
ModelSlots model_params_reserve(Arena& arena, const ModelConfig& c, int64_t n_local_experts = 0);
ModelParams model_params_point(const Arena& arena, const ModelSlots& s, const ModelConfig& c);
// The three steps at once, for an arena that holds this model alone.
ModelParams model_params_allocate(Arena& arena, const ModelConfig& c);
// Norms = 1, embedding N(0, 1), every matrix N(0, 1 / sqrt(fan_in)) (the MoE layer's init).
void model_params_init(const ModelParams& p, const ModelConfig& c, uint64_t seed);
// (name, tensor) for every trained parameter, in a fixed order (checkpoints, the optimizer,
// fixtures): Hugging Face Mixtral names, with each layer's experts stacked
// (block_sparse_moe.experts.w1 (E, F, D)), the router's extra tensors and the shared experts;
// a dense layer's FFN as mlp.gate_proj / up_proj / down_proj.
std::vector<std::pair<std::string, TensorView>> model_param_names(const ModelParams& p, const ModelConfig& c);
// The same tensors as Hugging Face stores them: one matrix per expert
// (block_sparse_moe.experts.<e>.w1.weight (F, D)), so transformers' MixtralForCausalLM loads a
// Mixtral-style model. Views into p, nothing copied.
std::vector<std::pair<std::string, TensorView>> model_hf_tensors(const ModelParams& p, const ModelConfig& c);

struct ModelLosses {
    double ce = 0;   // mean cross-entropy over the targets not ignored
    double aux = 0;  // sum over the MoE layers of the balance loss
    double z = 0;    // sum over the MoE layers of the router z-loss
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
    // Expert parallelism: moves the MoE layers' rows to the ranks owning their experts (one
    // exchange shared by every layer; forward and backward must use the same). nullptr: every
    // expert is in this process.
    ExpertExchange* exchange = nullptr;
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
