// Dispatch / combine boundary. The layer gathers each token's rows in plan order (A, D); an
// ExpertExchange moves them to whoever owns the experts and brings the results back. In one
// process the experts are all local and both moves are the identity; expert parallelism over
// MPI implements the same two calls with MPI_Alltoallv, and the layer does not change.
#pragma once
#include <cstdint>
#include <vector>

#include "moe/route_plan.h"

namespace moe {

class ExpertExchange {
public:
    virtual ~ExpertExchange() = default;
    // The experts this process computes: [expert_begin, expert_end).
    virtual int64_t expert_begin(const RoutePlan& plan) const = 0;
    virtual int64_t expert_end(const RoutePlan& plan) const = 0;
    // True when the local rows are the plan-order rows themselves (one process): the layer
    // then computes in place and to_experts / from_experts move nothing.
    virtual bool in_place() const = 0;
    // Forward dispatch (and backward of combine): rows (A, D) in plan order -> rows for the
    // local experts, grouped by local expert; local_offsets (n_local + 1) delimit them, from 0.
    // Returns `rows` itself when in_place(). A returned buffer stays valid until the next call.
    virtual float* to_experts(const RoutePlan& plan, float* rows, int64_t D,
                              std::vector<int64_t>& local_offsets) = 0;
    // Forward combine (and backward of dispatch): local rows -> rows (A, D) in plan order.
    virtual void from_experts(const RoutePlan& plan, const float* local_rows, int64_t D,
                              float* rows) = 0;
    // Backward calls this before its to_experts: the plan is the forward's, so the rows go
    // where they went in the forward and an exchange may reuse the layout it negotiated then
    // (MPI: no second count exchange). Forward never calls it, so a forward without backward
    // (inference) leaves nothing pending that the next forward could misread.
    virtual void prepare_backward(const RoutePlan&) {}
};

// Every expert in this process: both moves are the identity.
class LocalExchange final : public ExpertExchange {
public:
    int64_t expert_begin(const RoutePlan&) const override { return 0; }
    int64_t expert_end(const RoutePlan& plan) const override { return plan.n_experts; }
    bool in_place() const override { return true; }
    float* to_experts(const RoutePlan& plan, float* rows, int64_t D,
                      std::vector<int64_t>& local_offsets) override;
    void from_experts(const RoutePlan& plan, const float* local_rows, int64_t D,
                      float* rows) override;
};

}  // namespace moe
