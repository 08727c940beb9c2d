// `moe bench layer --ranks N` under mpirun: expert parallelism over N ranks (docs/distributed.md).
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>

#include "layer_timing.h"
#include "moe/dist.h"
#include "moe/mpi_exchange.h"

namespace moe::cli {

class DistBench {
public:
    // MPI_Init; throws unless this moe has MPI and was launched as exactly `ranks` processes,
    // and unless ranks divides n_experts.
    DistBench(int ranks, int64_t n_experts);
    int rank() const { return timing_.comm.rank(); }
    // What time_layer needs: this rank's communicator and exchange.
    const LayerTimingDist& timing() const { return timing_; }
    // Adds the exchange's numbers to j (collective: every rank must call it).
    void report(nlohmann::json& j, const LayerTiming& run, const MoeLayerConfig& cfg, int64_t T,
                bool backward) const;

private:
    dist::Session session_;  // first: MPI is up before the members below and down after them
    std::unique_ptr<MpiExchange> exchange_;
    LayerTimingDist timing_;
};

}  // namespace moe::cli
