// Routers: every routing family of the MoE literature behind one API (docs/routers.md is the
// exact contract). A router turns the tokens into a RoutePlan (token, expert, weight) and its
// losses; its backward turns the gradients of the combine weights into the router's gradients.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "moe/rng.h"

namespace moe {

enum class RouterKind {
    topk,           // softmax, top-k, optional p-norm renormalisation, group-limited (Mixtral, Qwen, OLMoE, DBRX, DeepSeek-V2)
    gshard,         // top-2, random routing of the second expert (GShard)
    noisy_topk,     // learned Gaussian noise, importance + load losses (Shazeer et al. 2017)
    sigmoid_bias,   // sigmoid scores, selection bias, sequence-wise loss (DeepSeek-V3)
    expert_choice,  // experts pick their top-C tokens (Zhou et al. 2022)
    hash,           // fixed hash of the token id, no learned router (Roller et al. 2021)
    dense,          // every expert, softmax weights (the degenerate reference)
    top_p,          // per-token number of experts by cumulative probability (Huang et al. 2024)
    sinkhorn,       // top-k of the Sinkhorn-balanced scores, softmax weights (S-BASE, Clark et al. 2022)
    base,           // balanced linear assignment by auction, sigmoid gate (BASE, Lewis et al. 2021)
    xmoe,           // cosine routing in a low-dimensional space, learnable temperature (X-MoE, Chi et al. 2022)
    dselect,        // differentiable smooth-step selection (DSelect-k, Hazimeh et al. 2021)
    soft_moe,       // slots as softmax mixtures of all tokens, per-slot experts (Soft MoE, Puigcerver et al. 2023)
    mod,            // tokens through or around the block by a scalar score (Mixture-of-Depths, Raposo et al. 2024)
};

const char* router_kind_name(RouterKind k);
// Throws "[router] unknown router 'x'; expected one of: ..." for an unknown name.
RouterKind parse_router_kind(const std::string& name);
std::string router_kind_list();  // "topk, gshard, ..."

// The router's options beyond top_k / renormalize / capacity_factor (which live in the layer's
// config). Names follow the Hugging Face config fields where one exists.
struct RouterConfig {
    RouterKind kind = RouterKind::topk;
    double norm_p = 1;                 // DBRX moe_normalize_expert_weights (1 = divide by the sum)
    double routed_scaling_factor = 1;  // DeepSeek: multiplies the routed weights
    int64_t n_group = 1;               // DeepSeek group-limited routing: groups of experts
    int64_t topk_group = 1;            // ... of which the best topk_group may be chosen
    double router_jitter_noise = 0;    // Switch: router input * U[1 - eps, 1 + eps) in training
    double top_p = 0.5;                // top_p: cumulative probability threshold
    int64_t seq_len = 0;               // sigmoid_bias: sequence length of the balance loss (0 = T)
    int64_t sinkhorn_iters = 8;        // sinkhorn: row / column normalisation rounds
    int64_t router_dim = 16;           // xmoe: dimension of the routing space
    double dselect_gamma = 1;          // dselect: width of the smooth step
    int64_t slots_per_expert = 1;      // soft_moe: slots each expert processes
    double bias_update_rate = 1e-3;    // sigmoid_bias: gamma of the aux-loss-free bias update
    uint64_t seed = 0;                 // noise / jitter / random routing stream; hash seed
    bool training = true;              // noise, jitter and random routing only in training
};

// Random draws of one forward: the noise of noisy_topk (T, E), gshard's uniforms (T,), the
// jitter multipliers (T, D). `given` = use these (a test replaying a reference), else drawn.
struct RouterNoise {
    std::vector<float> normal, uniform, jitter;
    bool given = false;
};

// What a router's forward keeps for its backward.
struct RouterCache {
    std::vector<float> logits;    // (T, E) (noisy_topk: the clean logits; dselect: (T, K (m + 1)))
    std::vector<float> probs;     // (T, E) softmax (sigmoid for sigmoid_bias)
    std::vector<float> lse;       // (T,) logsumexp of the logits (z-loss)
    std::vector<float> load;      // (E,) f_e of the balance loss (a count: no gradient)
    std::vector<float> noise_sd;  // noisy_topk (T, E): softplus(raw) + 1e-2
    std::vector<float> noisy;     // noisy_topk (T, E): clean + n * sd
    std::vector<float> x_router;  // (T, D) the jittered router input (jitter only)
    std::vector<float> bias;      // (E,) sigmoid_bias: the selection bias this forward used
    std::vector<float> choice;    // (T, E) sinkhorn: the balanced matrix the selection reads;
                                  // soft_moe: the combine weights (T, E P) (probs: dispatch)
    std::vector<float> proj_unit, proj_norm;  // xmoe: h / |h| (T, R) and |h| (T,)
    std::vector<float> emb_unit, emb_norm;    // xmoe: e / |e| (E, R) and |e| (E,)
    std::vector<uint8_t> skip;    // (T, Kv) slot left empty (gshard's random drop, top_p)
    RouterNoise noise;
    int64_t step = 0;             // training forwards so far: the RNG stream position
};

}  // namespace moe
