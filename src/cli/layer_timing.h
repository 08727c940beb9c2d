// Times the MoE layer on random inputs: shared by `moe bench layer` and `moe bench router`.
#pragma once
#include <cstdint>
#include <vector>

#include "moe/dist.h"
#include "moe/moe_layer.h"
#include "moe/mpi_exchange.h"

namespace moe::cli {

struct LayerTiming {
    std::vector<double> seconds;        // per timed repetition (forward, + backward if asked)
    std::vector<MoePhaseTimes> phases;  // per timed repetition
    MoeLayerLosses losses;              // of the last forward
    MoeLoadStats load;                  // of the last forward
    int64_t assignments = 0;            // kept (token, expert) pairs of the last forward
    int64_t local_assignments = 0;      // of which to this rank's own experts (expert parallel)
    std::vector<ExchangeTraffic> traffic;  // expert parallel: per timed repetition
    double param_bytes = 0, grad_bytes = 0;

    double median() const;
    size_t median_index() const;  // the timed repetition closest to the median
    const MoePhaseTimes& median_phases() const { return phases[median_index()]; }
};

// Expert parallelism: every rank holds only its exchange's experts, draws its own tokens
// (seed 42 + rank) and waits for the others before each repetition (barrier), so that a
// repetition times one step of the whole group.
struct LayerTimingDist {
    dist::Comm comm;
    MpiExchange* exchange = nullptr;
};

// Random x ~ N(0, 1), dy ~ N(0, 1), token ids uniform in [0, 32000); Mixtral-style init.
LayerTiming time_layer(const MoeLayerConfig& cfg, int64_t T, bool backward, int reps, int warmup,
                       const LayerTimingDist* dist = nullptr);

double peak_rss_mb();

}  // namespace moe::cli
