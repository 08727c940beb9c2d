// A model on disk as a Hugging Face directory: config.json (the Mixtral format, with the fields
// of the routers and layouts Mixtral lacks) and model.safetensors (one matrix per expert), so a
// Mixtral-style model trained here loads in transformers' MixtralForCausalLM, and a Mixtral
// saved by transformers loads here. docs/model_spec.md, "Files", lists every field.
#pragma once
#include <cstdint>
#include <string>

#include "moe/model.h"

namespace moe {

// The fields of config.json beyond the model itself.
struct ModelFileInfo {
    int64_t max_position_embeddings = 0;
    double router_aux_loss_coef = 0;
    double router_z_loss_coef = 0;
};

// True when transformers' MixtralForCausalLM computes exactly this model: softmax top-k router
// with renormalised weights, every layer MoE, no shared experts, no capacity, head_dim = D / H.
// config.json says "MixtralForCausalLM" only then; otherwise our own "MoeForCausalLM", which
// transformers refuses instead of loading it with the wrong semantics.
bool model_is_mixtral(const ModelConfig& c);

// The config.json text (Hugging Face field names).
std::string model_config_json(const ModelConfig& c, const ModelFileInfo& info);
// Parses a config.json written by model_config_json or by transformers (model_type "mixtral";
// Qwen2-MoE-style fields decoder_sparse_step / mlp_only_layers are read too). Throws naming
// the file and the field when one is missing, of the wrong type, or unsupported.
ModelConfig model_config_read(const std::string& path, ModelFileInfo* info = nullptr);

// Writes <dir>/config.json and <dir>/model.safetensors (model_hf_tensors), atomically.
void model_save_hf(const std::string& dir, const ModelConfig& c, const ModelParams& p, const ModelFileInfo& info);
// Fills p from <dir>/model.safetensors (Hugging Face names, one matrix per expert) or, when the
// directory has none, from <dir>/checkpoint.safetensors of `moe train` (stacked experts). Throws
// naming the file and the tensor when one is missing or has the wrong shape or dtype. `dir` may
// also be a .gguf file (gguf_model_load_weights; include/moe/gguf_model.h).
void model_load_weights(const std::string& dir, const ModelConfig& c, const ModelParams& p);

}  // namespace moe
