// The model architectures moe loads: one file per architecture (src/model/arch_<name>.cpp: its
// config.json fields and what they mean here) and one entry in the table of src/model/arch.cpp
// (its names: config.json's model_type, transformers' class, llama.cpp's architecture, and how
// its checkpoints name the FFN tensors). docs/model_spec.md, "Architectures", has the table.
#pragma once
#include <string>

namespace moe {

enum class ModelArch {
    mixtral,    // Mixtral, and moe's own models (model_type "moe": any router, shared experts)
    qwen2_moe,  // Qwen1.5-MoE / Qwen2-MoE: q/k/v biases, one shared expert with a sigmoid gate
    qwen3_moe,  // Qwen3-MoE: RMSNorm of each q / k head before RoPE, no shared expert
    olmoe,      // OLMoE: RMSNorm of the whole q / k projection before RoPE, optional clip_qkv
    deepseek_v2,  // DeepSeek-V2 / V2-Lite: multi-head latent attention, softmax (group-limited) router
    deepseek_v3,  // DeepSeek-V3: multi-head latent attention, sigmoid router with selection bias
};

struct ArchInfo {
    ModelArch id;
    const char* name;        // config.json's model_type
    const char* hf_class;    // config.json's architectures[0] (transformers' class)
    const char* gguf_arch;   // llama.cpp's general.architecture
    // Tensor names of a MoE layer, after "model.layers.<l>.": the block, its router ("gate."),
    // each routed expert's gate / up / down matrices ("experts.<e>.<name>.weight").
    const char* moe_block;         // "block_sparse_moe." or "mlp."
    const char* expert_names[3];   // w1 (gate), w3 (up), w2 (down)
    // Shared experts: "<moe_block><shared_block><s>.<expert name>.weight" when shared_indexed,
    // else one merged expert "<moe_block><shared_block><expert name>.weight"; their sigmoid
    // gate "<moe_block><shared_gate>" ("" when the architecture has none).
    const char* shared_block;
    bool shared_indexed;
    const char* shared_gate;
};

const ArchInfo& arch_info(ModelArch a);
// The architecture of a config.json model_type ("moe" is moe's own: Mixtral's layout), or
// nullptr when there is none.
const ArchInfo* arch_find(const std::string& model_type);
// Whether the architecture's attention is multi-head latent attention (include/moe/mla.h).
bool arch_uses_mla(ModelArch a);
// "mixtral, moe, qwen2_moe, ..." for error messages.
std::string arch_names();

}  // namespace moe
