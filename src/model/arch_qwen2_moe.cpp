// Qwen1.5-MoE / Qwen2-MoE (transformers' Qwen2MoeConfig): softmax top-k router (norm_topk_prob,
// off in the released models), one shared expert of shared_expert_intermediate_size scaled by
// sigmoid(shared_expert_gate . x), q / k / v projections with biases, dense SwiGLU layers of
// intermediate_size where decoder_sparse_step / mlp_only_layers say.
#include "arch_internal.h"

namespace moe::arch {

// The fields Qwen2-MoE and Qwen3-MoE share.
void read_qwen_moe_common(const ConfigFields& f, ModelConfig& c) {
    refuse_sliding_window(f);
    read_softmax_topk(f, c, "moe_intermediate_size");
    c.decoder_sparse_step = f.get("decoder_sparse_step", int64_t(1));
    c.mlp_only_layers = f.get("mlp_only_layers", std::vector<int64_t>{});
    c.dense_intermediate_size = f.get("intermediate_size", int64_t(0), true);
}

void read_qwen2_moe(const ConfigFields& f, ModelConfig& c) {
    read_qwen_moe_common(f, c);
    c.attn.qkv_bias = f.get("qkv_bias", true);  // always on in Qwen2-MoE; newer configs name it
    MoeLayerConfig& m = c.moe;
    m.d_ff_shared = f.get("shared_expert_intermediate_size", int64_t(0));
    m.n_shared = m.d_ff_shared > 0 ? 1 : 0;
    m.shared_gate = m.n_shared > 0;
}

}  // namespace moe::arch
