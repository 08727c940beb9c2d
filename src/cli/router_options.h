// The router's command-line options, shared by every subcommand that builds an MoE layer
// (bench layer, bench router; train later). Hugging Face config names, dashed.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "moe/moe_layer.h"

namespace moe::cli {

struct RouterCliOptions {
    std::string router = "topk";  // a RouterKind name, or the preset "switch"
    int64_t top_k = 0;            // 0 = the shape's K (dense: E, top_p: E)
    double capacity_factor = -1;  // < 0 = the kind's default
    double norm_p = 1, routed_scaling_factor = 1, router_jitter_noise = -1, top_p = 0.5;
    int64_t n_group = 1, topk_group = 1, seq_len = 0, sinkhorn_iters = 8, router_dim = 16;
    double dselect_gamma = 1;
    bool no_renormalize = false;
    bool shared_gate = false;
};

void add_router_options(CLI::App* cmd, RouterCliOptions& o);

// Sets cfg.router and the routing fields of cfg (top_k, renormalize, capacity_factor) from the
// options; `switch` = topk, K = 1, no renormalisation, capacity 1.25, jitter 0.01 (Switch).
// cfg.n_experts and cfg.top_k must already hold the shape's values. Throws on bad options.
void apply_router_options(const RouterCliOptions& o, MoeLayerConfig& cfg);

}  // namespace moe::cli
