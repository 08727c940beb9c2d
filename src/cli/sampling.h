// Text from a model: the prompt (after BOS when the tokenizer asks for it), then up to n tokens
// (stopping at EOS) drawn one at a time from the softmax of the last
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

// The prompt's ids followed by the drawn ids: n of them, or fewer when `eos` is drawn.
std::vector<int32_t> sample_ids(ModelConfig cfg, const InferWeights& w, std::vector<int32_t> ids, int64_t n,
                                double temperature, int64_t ctx, Rng& rng, int32_t eos = -1);
// Text: BOS first when the tokenizer adds one (Llama family), sampling stops at EOS; the
// returned text is the prompt and the continuation, without BOS.
std::string sample_text(ModelConfig cfg, const InferWeights& w, const BpeTokenizer& tok,
                        const std::string& prompt, int64_t n, double temperature, int64_t ctx, Rng& rng);

}  // namespace moe::cli
