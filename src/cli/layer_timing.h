// Times the MoE layer on random inputs: shared by `moe bench layer` and `moe bench router`.
#pragma once
#include <cstdint>
#include <vector>

#include "moe/moe_layer.h"

namespace moe::cli {

struct LayerTiming {
    std::vector<double> seconds;        // per timed repetition (forward, + backward if asked)
    std::vector<MoePhaseTimes> phases;  // per timed repetition
    MoeLayerLosses losses;              // of the last forward
    MoeLoadStats load;                  // of the last forward
    int64_t assignments = 0;            // kept (token, expert) pairs of the last forward
    double param_bytes = 0, grad_bytes = 0;

    double median() const;
    const MoePhaseTimes& median_phases() const;  // the phases of the run closest to the median
};

// Random x ~ N(0, 1), dy ~ N(0, 1), token ids uniform in [0, 32000); Mixtral-style init.
LayerTiming time_layer(const MoeLayerConfig& cfg, int64_t T, bool backward, int reps, int warmup);

double peak_rss_mb();

}  // namespace moe::cli
