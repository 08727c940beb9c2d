// Loads a layer fixture written by tools/gen_layer_fixtures.py or tools/gen_router_fixtures.py
// (PyTorch, float64 reference)
// into a config, parameters and inputs the C++ layer takes.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "moe/arena.h"
#include "moe/moe_layer.h"
#include "moe/optim.h"
#include "moe/safetensors.h"

namespace moe::test {

struct LayerFixture {
    SafetensorsFile file;
    MoeLayerConfig cfg;
    int64_t T = 0;
    float aux_coef = 0, z_coef = 0, entropy_coef = 0;
    RouterNoise noise;               // the reference's random draws (router fixtures)
    std::vector<int32_t> token_ids;  // (T,) when the fixture has them (hash router)
    Arena param_arena, grad_arena;
    MoeLayerParams params, grads;
    Buffer x, dy;

    // tests/fixtures/<prefix><name>.safetensors: layer_ (gen_layer_fixtures.py) or router_
    // (gen_router_fixtures.py, whose metadata also sets the router's options).
    explicit LayerFixture(const std::string& name, const std::string& prefix = "layer_");
};

// The AdamW settings and schedule written into a fixture's metadata by the training generators.
AdamWConfig adamw_config_from(const SafetensorsFile& f);

// The message of the moe::Error fn throws, or "" when it throws none.
std::string error_of(const std::function<void()>& fn);

// Max |got - want| over max(|want|): the error relative to the tensor's scale.
double scaled_max_error(const float* got, const std::vector<float>& want);

}  // namespace moe::test
