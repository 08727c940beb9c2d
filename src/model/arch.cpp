// The table of architectures (include/moe/arch.h) and the config.json fields every one shares.
#include "moe/arch.h"

#include "arch_internal.h"

namespace moe {
namespace {

constexpr ArchInfo kArchs[] = {
    {ModelArch::mixtral, "mixtral", "MixtralForCausalLM", "llama", "block_sparse_moe.", {"w1", "w3", "w2"},
     "shared_experts.", true, "shared_experts.gate.weight"},
    {ModelArch::qwen2_moe, "qwen2_moe", "Qwen2MoeForCausalLM", "qwen2moe", "mlp.",
     {"gate_proj", "up_proj", "down_proj"}, "shared_expert.", false, "shared_expert_gate.weight"},
    {ModelArch::qwen3_moe, "qwen3_moe", "Qwen3MoeForCausalLM", "qwen3moe", "mlp.",
     {"gate_proj", "up_proj", "down_proj"}, "shared_expert.", false, "shared_expert_gate.weight"},
    {ModelArch::olmoe, "olmoe", "OlmoeForCausalLM", "olmoe", "mlp.", {"gate_proj", "up_proj", "down_proj"},
     "shared_expert.", false, "shared_expert_gate.weight"},
    // DeepSeek: n_shared_experts merged into one MLP of n_shared_experts * moe_intermediate_size,
    // without a gate; V3's router adds "mlp.gate.e_score_correction_bias".
    {ModelArch::deepseek_v2, "deepseek_v2", "DeepseekV2ForCausalLM", "deepseek2", "mlp.",
     {"gate_proj", "up_proj", "down_proj"}, "shared_experts.", false, ""},
    {ModelArch::deepseek_v3, "deepseek_v3", "DeepseekV3ForCausalLM", "deepseek2", "mlp.",
     {"gate_proj", "up_proj", "down_proj"}, "shared_experts.", false, ""},
};

}  // namespace

const ArchInfo& arch_info(ModelArch a) {
    for (const ArchInfo& i : kArchs)
        if (i.id == a) return i;
    fail("arch", "unknown architecture id " + std::to_string(int(a)));
}

const ArchInfo* arch_find(const std::string& model_type) {
    if (model_type == "moe") return &kArchs[0];  // moe's own models: Mixtral's names
    for (const ArchInfo& i : kArchs)
        if (model_type == i.name) return &i;
    return nullptr;
}

bool arch_uses_mla(ModelArch a) { return a == ModelArch::deepseek_v2 || a == ModelArch::deepseek_v3; }

std::string arch_names() {
    std::string s = "moe";
    for (const ArchInfo& i : kArchs) s += std::string(", ") + i.name;
    return s;
}

namespace arch {

Reader reader(ModelArch a) {
    switch (a) {
    case ModelArch::mixtral: return read_mixtral;
    case ModelArch::qwen2_moe: return read_qwen2_moe;
    case ModelArch::qwen3_moe: return read_qwen3_moe;
    case ModelArch::olmoe: return read_olmoe;
    case ModelArch::deepseek_v2: return read_deepseek_v2;
    case ModelArch::deepseek_v3: return read_deepseek_v3;
    }
    fail("arch", "unknown architecture id " + std::to_string(int(a)));
}

void read_softmax_topk(const ConfigFields& f, ModelConfig& c, const char* d_ff_key) {
    MoeLayerConfig& m = c.moe;
    m.d_ff = f.get(d_ff_key, int64_t(0), true);
    m.n_experts = f.get("num_experts", int64_t(0), true);
    m.top_k = f.get("num_experts_per_tok", int64_t(0), true);
    m.renormalize = f.get("norm_topk_prob", false);
    m.router.kind = RouterKind::topk;
}

void refuse_attention_bias(const ConfigFields& f) {
    if (f.get("attention_bias", false)) f.fail("attention_bias = true (biases on q/k/v/o_proj) is not supported");
}

void refuse_sliding_window(const ConfigFields& f) {
    if (f.get("use_sliding_window", false))
        f.fail("use_sliding_window is true; sliding-window attention is not implemented (set it to false "
               "to attend to the whole context, as the released Qwen MoE models do)");
}

}  // namespace arch
}  // namespace moe
