// The whole-model shapes of issue 5 (random weights: `moe convert --random`, `moe bench run
// --shape`), as Mixtral-style ModelConfigs: one table, looked up by name.
#pragma once
#include <cstdint>
#include <string>

#include "moe/model.h"

namespace moe {

struct ModelShape {
    const char* name;
    const char* what;
    int64_t vocab, layers, d_model, heads, kv_heads, experts, top_k, d_ff;
    double rope_theta;
    int64_t context_length;  // llama.context_length of a GGUF of this shape
};

inline const ModelShape kModelShapes[] = {
    {"mixtral-mini", "Mixtral's layout at D = 1024: 8 layers, 16 / 4 heads, 8 experts of F = 2816, top-2 (0.64 G parameters)",
     32000, 8, 1024, 16, 4, 8, 2, 2816, 1e6, 32768},
    {"olmoe-shape", "OLMoE-1B-7B's sizes: D = 2048, 16 layers, 16 heads, 64 experts of F = 1024, top-8, untied LM head (6.84 G parameters, 27.4 GB in f32)",
     32000, 16, 2048, 16, 16, 64, 8, 1024, 1e4, 4096},
    {"tiny", "for tests: D = 64, 2 layers, 4 / 2 heads, 4 experts of F = 64, top-2, vocabulary 256",
     256, 2, 64, 4, 2, 4, 2, 64, 1e4, 256},
};

// nullptr when no shape has that name.
inline const ModelShape* find_model_shape(const std::string& name) {
    for (const ModelShape& s : kModelShapes)
        if (name == s.name) return &s;
    return nullptr;
}

// "mixtral-mini, olmoe-shape, tiny", for error messages and --help.
inline std::string model_shape_names() {
    std::string out;
    for (const ModelShape& s : kModelShapes) out += (out.empty() ? "" : ", ") + std::string(s.name);
    return out;
}

// The Mixtral-style config (softmax top-k, renormalised, every layer MoE, untied, inference).
inline ModelConfig model_shape_config(const ModelShape& s) {
    ModelConfig c;
    c.vocab_size = s.vocab;
    c.num_layers = s.layers;
    c.attn = {s.d_model, s.heads, s.kv_heads, 0, s.rope_theta};
    c.moe.d_model = s.d_model;
    c.moe.d_ff = s.d_ff;
    c.moe.n_experts = s.experts;
    c.moe.top_k = s.top_k;
    c.moe.router.training = false;
    return c;
}

}  // namespace moe
