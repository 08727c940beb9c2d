// The router's pieces the layer calls (not part of the public API). docs/routers.md.
#pragma once
#include <cstdint>
#include <vector>

#include "moe/moe_layer.h"

namespace moe {

// Throws "[moe_layer] ..." when the router options do not fit the layer's sizes.
void router_validate(const MoeLayerConfig& c);

// Width of the per-token view of the plan: K for token-choice kinds, E for expert_choice.
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

// Top-k of score[0..n) among allowed (nullptr = all), descending, ties to the lower index.
void topk_row(const float* score, int64_t n, int64_t k, const uint8_t* allowed, int32_t* idx,
              float* val);

}  // namespace moe
