// Mixtral (transformers' MixtralConfig) and moe's own models (model_type "moe": Mixtral's
// layout with the fields of the routers, shared experts and dense layers Mixtral lacks).
#include "arch_internal.h"
#include "moe/router.h"

namespace moe::arch {

void read_mixtral(const ConfigFields& f, ModelConfig& c) {
    const int64_t window = f.get("sliding_window", int64_t(0));
    const int64_t max_pos = f.get("max_position_embeddings", int64_t(4096));
    if (window != 0 && window < max_pos)
        f.fail("sliding_window " + std::to_string(window) +
               " is shorter than max_position_embeddings; sliding-window attention is not implemented");
    MoeLayerConfig& m = c.moe;
    m.d_ff = f.get("intermediate_size", int64_t(0), true);
    m.n_experts = f.get("num_local_experts", int64_t(0), true);
    m.top_k = f.get("num_experts_per_tok", int64_t(0), true);
    m.renormalize = f.get("norm_topk_prob", true);
    m.capacity_factor = f.get("capacity_factor", 0.0);
    m.n_shared = f.get("n_shared_experts", int64_t(0));
    m.d_ff_shared = f.get("shared_expert_intermediate_size", int64_t(0));
    m.shared_gate = f.get("shared_expert_gate", false);
    RouterConfig& r = m.router;
    try {
        r.kind = parse_router_kind(f.get("moe_router", std::string("topk")));
    } catch (const Error& e) {
        f.fail(std::string("moe_router: ") + e.what());
    }
    r.router_jitter_noise = f.get("router_jitter_noise", 0.0);
    r.norm_p = f.get("moe_normalize_expert_weights", 1.0);
    r.routed_scaling_factor = f.get("routed_scaling_factor", 1.0);
    r.n_group = f.get("n_group", int64_t(1));
    r.topk_group = f.get("topk_group", int64_t(1));
    r.top_p = f.get("top_p", 0.5);
    r.sinkhorn_iters = f.get("sinkhorn_iters", int64_t(8));
    r.router_dim = f.get("router_dim", int64_t(16));
    r.dselect_gamma = f.get("dselect_gamma", 1.0);
    r.slots_per_expert = f.get("slots_per_expert", int64_t(1));
    c.decoder_sparse_step = f.get("decoder_sparse_step", int64_t(1));
    c.mlp_only_layers = f.get("mlp_only_layers", std::vector<int64_t>{});
    c.dense_intermediate_size = f.get("dense_intermediate_size", int64_t(0));
}

}  // namespace moe::arch
