// Text from a model: the prompt, then n tokens drawn one at a time from the softmax of the last
// logits at `temperature` (0 = greedy), with the KV-cached decoder (moe/infer.h); when the
// context of ctx tokens is full, decoding restarts from its last ctx / 2 tokens.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "moe/infer.h"
#include "moe/model.h"
#include "moe/rng.h"
#include "moe/tokenizer.h"

namespace moe::cli {

// The prompt's ids followed by the n drawn ids.
std::vector<int32_t> sample_ids(ModelConfig cfg, const InferWeights& w, std::vector<int32_t> ids, int64_t n,
                                double temperature, int64_t ctx, Rng& rng);
std::string sample_text(ModelConfig cfg, const InferWeights& w, const BpeTokenizer& tok,
                        const std::string& prompt, int64_t n, double temperature, int64_t ctx, Rng& rng);

}  // namespace moe::cli
