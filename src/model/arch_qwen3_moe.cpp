// Qwen3-MoE (transformers' Qwen3MoeConfig): Qwen2-MoE's routed experts and layer layout without
// the shared expert, head_dim independent of hidden_size, and an RMSNorm of each q and k head
// (q_norm / k_norm, weights of shape (head_dim,)) before RoPE; attention_bias off by default.
#include "arch_internal.h"

namespace moe::arch {

void read_qwen_moe_common(const ConfigFields& f, ModelConfig& c);  // arch_qwen2_moe.cpp

void read_qwen3_moe(const ConfigFields& f, ModelConfig& c) {
    read_qwen_moe_common(f, c);
    refuse_attention_bias(f);
    c.attn.qk_norm = QkNorm::head;
}

}  // namespace moe::arch
