// Sparse upcycling (Komatsuzaki et al. 2022, "Sparse Upcycling: Training Mixture-of-Experts
// from Dense Checkpoints"): an MoE model initialised from a trained dense one. Every expert of
// an MoE layer starts as a copy of that layer's dense FFN, the router starts random, and every
// other tensor is copied. With a renormalised top-k router the upcycled model computes exactly
// the dense model's function at the start (the K weights sum to 1 over identical experts).
#pragma once
#include <cstdint>

#include "moe/model.h"

namespace moe {

// Fills dst (config dst_c) from src (config src_c). The two must agree on everything but the
// FFNs; a layer that is MoE in dst and dense in src needs dst_c.moe.d_ff equal to the dense FFN's
// size, a layer MoE in both needs the same MoE shape. Throws naming the layer and the mismatch.
void model_upcycle(const ModelConfig& src_c, const ModelParams& src, const ModelConfig& dst_c,
                   const ModelParams& dst, uint64_t seed);

}  // namespace moe
