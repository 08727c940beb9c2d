// Expert parallelism: the ExpertExchange of a group of ranks that split the E experts
// contiguously, E / N each (rank r owns [r E/N, (r+1) E/N)). Every rank routes its own tokens;
// to_experts sends each row to the rank owning its expert (the plan's rows are grouped by
// expert, so each destination's rows are one contiguous slice):
//   1. MPI_Alltoall of the per-expert row counts (n_local per destination),
//   2. MPI_Alltoallv of the rows (one MPI datatype = one row of D floats, so the counts are
//      rows, not floats, and fit an int up to 2^31 rows),
//   3. the received rows, ordered by source rank then expert, are regrouped by local expert
//      (for expert 0: source 0's rows, source 1's, ...; then expert 1, ...).
// from_experts undoes 3 and 2, so every source gets its rows back in its own plan order.
// Backward moves the output gradients with the layout of the forward (prepare_backward): no
// second count exchange. Built without MPI (src/dist/no_mpi.cpp) the group has one rank and
// this is the local exchange.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "moe/dist.h"
#include "moe/expert_exchange.h"

namespace moe {

// What one call moved and how long MPI took, per direction of the step.
enum class ExchangePhase : int { fwd_dispatch = 0, fwd_combine, bwd_dispatch, bwd_combine };
struct ExchangeTraffic {
    int64_t rows_remote[4] = {0, 0, 0, 0};  // rows this rank sent to other ranks, per phase
    int64_t rows_self[4] = {0, 0, 0, 0};    // rows whose expert is on this rank (no wire)
    int64_t count_bytes = 0;                // bytes sent by the count all-to-alls
    double seconds_alltoall[4] = {0, 0, 0, 0};  // in MPI (counts + rows), incl. waiting for peers
    double seconds_wait[4] = {0, 0, 0, 0};      // measure_wait: in the barrier before the above
    double seconds_regroup[4] = {0, 0, 0, 0};   // reordering received / returned rows
};

class MpiExchange final : public ExpertExchange {
public:
    // Throws "[mpi_exchange] ..." unless comm.size() divides n_experts.
    MpiExchange(const dist::Comm& comm, int64_t n_experts);
    ~MpiExchange() override;
    MpiExchange(const MpiExchange&) = delete;
    MpiExchange& operator=(const MpiExchange&) = delete;

    int64_t n_local_experts() const { return n_local_; }
    int64_t expert_begin(const RoutePlan& plan) const override;
    int64_t expert_end(const RoutePlan& plan) const override;
    bool in_place() const override;
    float* to_experts(const RoutePlan& plan, float* rows, int64_t D,
                      std::vector<int64_t>& local_offsets) override;
    void from_experts(const RoutePlan& plan, const float* local_rows, int64_t D,
                      float* rows) override;
    void prepare_backward(const RoutePlan& plan) override;

    // Benchmarks: a barrier before every exchange, timed apart (seconds_wait), so that
    // seconds_alltoall is the transfer alone and not the wait for a slower rank's compute.
    void set_measure_wait(bool on) { measure_wait_ = on; }
    // Cumulative since construction or the last reset (benchmarks reset it every step).
    const ExchangeTraffic& traffic() const { return traffic_; }
    void reset_traffic() { traffic_ = {}; }

private:
    struct Impl;  // MPI state (src/dist/mpi_exchange.cpp); empty without MPI
    dist::Comm comm_;
    int64_t n_experts_ = 0, n_local_ = 0, rank_ = 0, ranks_ = 1;
    ExchangeTraffic traffic_;
    bool measure_wait_ = false;
    std::unique_ptr<Impl> impl_;
};

}  // namespace moe
