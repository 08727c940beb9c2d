// Loads a layer fixture written by tools/gen_layer_fixtures.py (PyTorch, float64 reference)
// into a config, parameters and inputs the C++ layer takes.
#pragma once
#include <string>
#include <vector>

#include "moe/arena.h"
#include "moe/moe_layer.h"
#include "moe/safetensors.h"

namespace moe::test {

struct LayerFixture {
    SafetensorsFile file;
    MoeLayerConfig cfg;
    int64_t T = 0;
    float aux_coef = 0, z_coef = 0;
    Arena param_arena, grad_arena;
    MoeLayerParams params, grads;
    Buffer x, dy;

    explicit LayerFixture(const std::string& name);
};

// Max |got - want| over max(|want|): the error relative to the tensor's scale.
double scaled_max_error(const float* got, const std::vector<float>& want);

}  // namespace moe::test
