// OLMoE (transformers' OlmoeConfig): softmax top-k router (norm_topk_prob off in OLMoE-1B-7B),
// every layer MoE with experts of intermediate_size, no shared expert, and an RMSNorm of the
// whole q and k projections (q_norm (H hd,), k_norm (Hkv hd,)) before RoPE; clip_qkv clamps
// q, k and v when set.
#include "arch_internal.h"

namespace moe::arch {

void read_olmoe(const ConfigFields& f, ModelConfig& c) {
    MoeLayerConfig& m = c.moe;
    m.d_ff = f.get("intermediate_size", int64_t(0), true);
    m.n_experts = f.get("num_experts", int64_t(0), true);
    m.top_k = f.get("num_experts_per_tok", int64_t(0), true);
    m.renormalize = f.get("norm_topk_prob", false);
    m.router.kind = RouterKind::topk;
    // attention_bias also puts a bias on o_proj; the released models have none.
    if (f.get("attention_bias", false)) f.fail("attention_bias = true (biases on q/k/v/o_proj) is not supported");
    c.attn.qk_norm = QkNorm::full;
    c.attn.clip_qkv = f.get("clip_qkv", 0.0);
    if (c.attn.clip_qkv < 0) f.fail("clip_qkv must be > 0 or null, got " + std::to_string(c.attn.clip_qkv));
}

}  // namespace moe::arch
