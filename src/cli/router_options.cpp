#include "router_options.h"

namespace moe::cli {

void add_router_options(CLI::App* cmd, RouterCliOptions& o) {
    cmd->add_option("--router", o.router, "routing family: " + router_kind_list() + ", or switch (preset)");
    cmd->add_option("--top-k", o.top_k, "experts per token (num_experts_per_tok); 0 = the default")
        ->check(CLI::Range(int64_t(0), int64_t(1024)));
    cmd->add_option("--capacity-factor", o.capacity_factor, "0 = dropless (expert_choice: tokens per expert = cf * T / E)");
    cmd->add_flag("--no-renormalize", o.no_renormalize, "keep the top-k probabilities as they are (norm_topk_prob = false)");
    cmd->add_flag("--shared-gate", o.shared_gate, "sigmoid gate on each shared expert (Qwen-MoE shared_expert_gate)");
    cmd->add_option("--norm-p", o.norm_p, "p of the p-norm the top-k weights are divided by (DBRX)");
    cmd->add_option("--routed-scaling-factor", o.routed_scaling_factor, "multiplies the routed weights (DeepSeek)");
    cmd->add_option("--n-group", o.n_group, "expert groups for group-limited routing (DeepSeek-V2/V3)");
    cmd->add_option("--topk-group", o.topk_group, "groups a token may choose from");
    cmd->add_option("--router-jitter-noise", o.router_jitter_noise, "Switch jitter eps (training)");
    cmd->add_option("--top-p", o.top_p, "top_p router: cumulative probability threshold");
    cmd->add_option("--sinkhorn-iters", o.sinkhorn_iters, "sinkhorn: normalisation rounds");
    cmd->add_option("--router-dim", o.router_dim, "xmoe: dimension of the routing space");
    cmd->add_option("--dselect-gamma", o.dselect_gamma, "dselect: width of the smooth step");
    cmd->add_option("--balance-seq-len", o.seq_len, "sigmoid_bias: sequence length of the balance loss (0 = all tokens)");
}

void apply_router_options(const RouterCliOptions& o, MoeLayerConfig& cfg) {
    RouterConfig& r = cfg.router;
    const bool is_switch = o.router == "switch";
    r.kind = is_switch ? RouterKind::topk : parse_router_kind(o.router);
    if (is_switch) {
        cfg.top_k = 1;
        cfg.renormalize = false;
        cfg.capacity_factor = 1.25;
        r.router_jitter_noise = 0.01;
    }
    if (r.kind == RouterKind::gshard) cfg.top_k = 2;
    if (r.kind == RouterKind::base) cfg.top_k = 1;
    if (r.kind == RouterKind::dense || r.kind == RouterKind::top_p) cfg.top_k = cfg.n_experts;
    if (o.top_k > 0) cfg.top_k = o.top_k;
    if (o.capacity_factor >= 0) cfg.capacity_factor = o.capacity_factor;
    if (o.router_jitter_noise >= 0) r.router_jitter_noise = o.router_jitter_noise;
    if (o.no_renormalize) cfg.renormalize = false;
    if (o.shared_gate) cfg.shared_gate = true;
    r.norm_p = o.norm_p;
    r.routed_scaling_factor = o.routed_scaling_factor;
    r.n_group = o.n_group;
    r.topk_group = o.topk_group;
    r.top_p = o.top_p;
    r.seq_len = o.seq_len;
    r.sinkhorn_iters = o.sinkhorn_iters;
    r.router_dim = o.router_dim;
    r.dselect_gamma = o.dselect_gamma;
    moe_layer_validate(cfg);
}

}  // namespace moe::cli
