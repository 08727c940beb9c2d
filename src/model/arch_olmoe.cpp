// OLMoE (transformers' OlmoeConfig): softmax top-k router (norm_topk_prob off in OLMoE-1B-7B),
// every layer MoE with experts of intermediate_size, no shared expert, and an RMSNorm of the
// whole q and k projections (q_norm (H hd,), k_norm (Hkv hd,)) before RoPE; clip_qkv clamps
// q, k and v when set.
#include "arch_internal.h"

namespace moe::arch {

void read_olmoe(const ConfigFields& f, ModelConfig& c) {
    read_softmax_topk(f, c, "intermediate_size");
    refuse_attention_bias(f);
    c.attn.qk_norm = QkNorm::full;
    c.attn.clip_qkv = f.get("clip_qkv", 0.0);
    if (c.attn.clip_qkv < 0) f.fail("clip_qkv must be > 0 or null, got " + std::to_string(c.attn.clip_qkv));
}

}  // namespace moe::arch
