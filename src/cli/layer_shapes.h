// The layer shapes of the benchmarks (issue 2): S1 mixtral-mini, S2 olmoe-layer, S3 deepseek-style.
#pragma once
#include <cstdint>
#include <string>

namespace moe::cli {

struct LayerShape {
    const char* name;
    const char* what;
    int64_t T, D, F, E, K, S, Fs;
};

inline const LayerShape kLayerShapes[] = {
    {"S1", "mixtral-mini", 4096, 1024, 2816, 8, 2, 0, 0},
    {"S2", "olmoe-layer", 2048, 2048, 1024, 64, 8, 0, 0},
    {"S3", "deepseek-style", 2048, 2048, 1408, 64, 6, 2, 1408},
};

inline const LayerShape& layer_shape(const std::string& name) {
    for (const LayerShape& s : kLayerShapes)
        if (name == s.name) return s;
    return kLayerShapes[0];  // names are validated by the CLI before they get here
}

}  // namespace moe::cli
