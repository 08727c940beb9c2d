// The router's pieces the layer calls (not part of the public API). docs/routers.md.
#pragma once
#include <cstdint>
#include <vector>

#include "moe/moe_layer.h"

namespace moe {

// Throws "[moe_layer] ..." when the router options do not fit the layer's sizes.
void router_validate(const MoeLayerConfig& c);

// Shape of the router weight: (E, D), xmoe (E, router_dim), dselect (K (log2 E + 1), D).
int64_t router_rows(const MoeLayerConfig& c);
int64_t router_cols(const MoeLayerConfig& c);

// Width of the per-token view of the plan: K for token-choice kinds, E for expert_choice,
// dselect and mod.
int64_t router_view_width(const MoeLayerConfig& c);

// Logits, scores, selection, the RoutePlan (capacity applied) and the losses.
void router_forward(MoeLayerCache& cache, MoeLayerLosses& losses, const MoeLayerConfig& c,
                    const MoeLayerParams& p, const float* x, int64_t T, const int32_t* token_ids);

// From the combine-weight gradients dw (A,) (plan order) and the loss coefficients:
// grads.router (and router_noise) += , dx (T, D) += .
void router_backward(float* dx, const MoeLayerParams& grads, const std::vector<float>& dw,
                     const MoeLossCoefs& coefs, const MoeLayerCache& cache,
                     const MoeLayerConfig& c, const MoeLayerParams& p, const float* x);

// noisy_topk (router_noisy.cpp): selection + aux loss, and d clean / d raw logits.
void noisy_topk_forward(MoeLayerCache& cache, MoeLayerLosses& losses, const MoeLayerConfig& c,
                        const float* raw_noise_logits, int64_t T);
// dslot (T, K): d L / d gate of each slot. dclean, draw (T, E) are overwritten.
void noisy_topk_backward(float* dclean, float* draw, const std::vector<float>& dslot,
                         float aux_coef, const MoeLayerCache& cache, const MoeLayerConfig& c);

// router_balance.cpp. Sinkhorn balancing of exp(logits) (T, E) into pi: rows sum to 1,
// columns to T / E after `iters` rounds.
void sinkhorn_balance(float* pi, const float* logits, int64_t T, int64_t E, int64_t iters);
// BASE: expert[t] maximising sum_t score[t, expert[t]] with at most ceil(T / E) tokens per
// expert (auction algorithm with epsilon scaling; docs/routers.md says how exact).
void balanced_assignment(int32_t* expert, const float* score, int64_t T, int64_t E);

// router_xmoe.cpp: logits (T, E) = cos(x_r proj^T, emb) / tau, and the backward from d logits
// into grads.router (emb), router_proj, router_temp and dx_r (T, D) (+=).
void xmoe_logits(RouterCache& rc, const MoeLayerConfig& c, const MoeLayerParams& p,
                 const float* xr, int64_t T);
void xmoe_backward(float* dxr, const MoeLayerParams& grads, const float* dlogits,
                   const RouterCache& rc, const MoeLayerConfig& c, const MoeLayerParams& p,
                   const float* xr, int64_t T);

// router_dselect.cpp: gates from the selector logits (rc.logits), the per-token view (width E)
// and the entropy regulariser; backward: d selector logits (T, K (m + 1)) from dslot (T, E).
void dselect_forward(MoeLayerCache& cache, MoeLayerLosses& losses, const MoeLayerConfig& c, int64_t T);
void dselect_backward(float* dl, const std::vector<float>& dslot, float entropy_coef,
                      const MoeLayerCache& cache, const MoeLayerConfig& c);

// Top-k of score[0..n) among allowed (nullptr = all), descending, ties to the lower index.
void topk_row(const float* score, int64_t n, int64_t k, const uint8_t* allowed, int32_t* idx,
              float* val);

}  // namespace moe
