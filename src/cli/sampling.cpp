#include "sampling.h"

#include <algorithm>
#include <vector>

#include "moe/error.h"
#include "moe/infer.h"

namespace moe::cli {

std::vector<int32_t> sample_ids(ModelConfig cfg, const InferWeights& w, std::vector<int32_t> ids, int64_t n,
                                double temperature, int64_t ctx, Rng& rng, int32_t eos) {
    MOE_CHECK(!ids.empty(), "sample", "the prompt is empty; give at least one character");
    MOE_CHECK(ctx >= 2, "sample", "the context must hold at least 2 tokens, got " + std::to_string(ctx));
    SamplingParams s;  // temperature only, no filters
    s.temperature = temperature;
    s.top_k = 0, s.top_p = 1, s.min_p = 0;
    InferSession session(cfg, w, ctx);
    // When the context is full, start again from its last half (the window slides by ctx / 2).
    auto refill = [&] {
        session.reset();
        const int64_t keep = std::min<int64_t>(int64_t(ids.size()), ctx / 2);
        return session.feed(ids.data() + ids.size() - size_t(keep), keep);
    };
    const float* logits = int64_t(ids.size()) <= ctx ? session.feed(ids.data(), int64_t(ids.size())) : refill();
    for (int64_t k = 0; k < n; ++k) {
        const int32_t next = sample_token(logits, cfg.vocab_size, s, ids, rng);
        ids.push_back(next);
        if (k + 1 == n || next == eos) break;
        logits = session.pos() < ctx ? session.feed(&next, 1) : refill();
    }
    return ids;
}

std::string sample_text(ModelConfig cfg, const InferWeights& w, const BpeTokenizer& tok,
                        const std::string& prompt, int64_t n, double temperature, int64_t ctx, Rng& rng) {
    std::vector<int32_t> ids = tok.encode(prompt);
    MOE_CHECK(!ids.empty(), "sample", "the prompt is empty; give at least one character");
    const bool bos = tok.prepend_bos(ids);  // Llama family: BOS first, as llama.cpp
    ids = sample_ids(cfg, w, ids, n, temperature, ctx, rng, tok.eos_id());
    return tok.decode(std::vector<int32_t>(ids.begin() + (bos ? 1 : 0), ids.end()));
}

}  // namespace moe::cli
