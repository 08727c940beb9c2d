// RoutePlan: the one data structure every router feeds (docs/architecture.md). A set of
// (token, expert, weight) assignments grouped by expert in CSR form. Token-choice routers build
// it from their per-token top-k with a stable counting sort, so within an expert the
// assignments are in token order and the plan is identical for any thread count.
#pragma once
#include <cstdint>
#include <vector>

namespace moe {

struct RoutePlan {
    int64_t n_tokens = 0;   // T
    int64_t n_experts = 0;  // E
    int64_t top_k = 0;      // K (per-token view width)

    std::vector<int64_t> expert_offsets;  // (E + 1,) assignments of e are [offsets[e], offsets[e+1])
    std::vector<int32_t> token_index;     // (A,) the token each assignment reads
    std::vector<float> weight;            // (A,) its combine weight
    std::vector<int32_t> slot;            // (A,) t * K + k: the top-k slot it came from

    // Per-token view (token-choice routers).
    std::vector<int32_t> topk_idx;     // (T, K) chosen experts, best first
    std::vector<float> topk_weight;    // (T, K) combine weights (after renormalisation)
    std::vector<int32_t> assignment;   // (T, K) position in the plan, -1 when dropped

    int64_t capacity = 0;  // per-expert capacity used, 0 = dropless
    int64_t n_dropped = 0;

    int64_t n_assignments() const { return int64_t(token_index.size()); }
    int64_t count(int64_t e) const { return expert_offsets[e + 1] - expert_offsets[e]; }
};

// Capacity of GShard / Switch: C = max(1, ceil(capacity_factor * T * K / E)); 0 when
// capacity_factor <= 0 (dropless).
int64_t route_capacity(double capacity_factor, int64_t T, int64_t K, int64_t E);

// Builds the plan from the per-token view already stored in plan.topk_idx / topk_weight
// (T, K). Slots with skip[t * K + k] != 0 (skip may be nullptr) are left empty: no assignment,
// no capacity taken, not counted as dropped; their topk_idx may be -1. With capacity > 0,
// assignment (t, k) is kept iff fewer than `capacity` assignments to the same expert precede
// it in (k, t) order (first choices of all tokens first, GShard).
void route_plan_build(RoutePlan& plan, int64_t T, int64_t K, int64_t E, int64_t capacity,
                      const uint8_t* skip = nullptr);

}  // namespace moe
