// A whole language model for tests: its config, the parameters in their own arena, and the
// logits of one sequence from the full forward (the reference the other paths are held to).
#pragma once
#include <cstdint>
#include <vector>

#include "moe/model.h"

namespace moe::test {

struct TestModel {
    ModelConfig c;
    Arena arena;
    ModelParams p;
    explicit TestModel(const ModelConfig& cfg) : c(cfg), p(model_params_allocate(arena, c)) {}
    // (T, V) logits of `tokens` as one sequence.
    std::vector<float> logits(const std::vector<int32_t>& tokens) const {
        std::vector<int32_t> targets(tokens.size(), -100);
        ModelCache cache;
        model_forward(cache, c, p, tokens.data(), targets.data(), 1, int64_t(tokens.size()), 0, 0);
        return {cache.logits.f32(), cache.logits.f32() + cache.logits.numel()};
    }
};

}  // namespace moe::test
