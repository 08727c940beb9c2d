#include "moe/route_plan.h"

#include <cmath>

namespace moe {

int64_t route_capacity(double capacity_factor, int64_t T, int64_t K, int64_t E) {
    if (capacity_factor <= 0) return 0;
    int64_t c = int64_t(std::ceil(capacity_factor * double(T) * double(K) / double(E)));
    return c < 1 ? 1 : c;
}

void route_plan_build(RoutePlan& plan, int64_t T, int64_t K, int64_t E, int64_t capacity,
                      const uint8_t* skip) {
    plan.n_tokens = T;
    plan.n_experts = E;
    plan.top_k = K;
    plan.capacity = capacity;
    const int32_t* idx = plan.topk_idx.data();
    plan.assignment.assign(size_t(T * K), 0);
    if (skip)
        for (int64_t i = 0; i < T * K; ++i)
            if (skip[i]) plan.assignment[size_t(i)] = -1;

    // Which assignments survive capacity: walk in (k, t) priority order.
    std::vector<int64_t> fill(static_cast<size_t>(E), 0);
    plan.n_dropped = 0;
    if (capacity > 0) {
        for (int64_t k = 0; k < K; ++k)
            for (int64_t t = 0; t < T; ++t) {
                if (skip && skip[t * K + k]) continue;
                int32_t e = idx[t * K + k];
                if (fill[size_t(e)] < capacity) {
                    ++fill[size_t(e)];
                } else {
                    plan.assignment[size_t(t * K + k)] = -1;
                    ++plan.n_dropped;
                }
            }
    } else {
        for (int64_t i = 0; i < T * K; ++i)
            if (!(skip && skip[i])) ++fill[size_t(idx[i])];
    }

    // Stable counting sort by expert over the (t, k) order.
    plan.expert_offsets.assign(size_t(E + 1), 0);
    for (int64_t e = 0; e < E; ++e) plan.expert_offsets[size_t(e + 1)] = plan.expert_offsets[size_t(e)] + fill[size_t(e)];
    int64_t A = plan.expert_offsets[size_t(E)];
    plan.token_index.resize(size_t(A));
    plan.weight.resize(size_t(A));
    plan.slot.resize(size_t(A));
    std::vector<int64_t> cursor(plan.expert_offsets.begin(), plan.expert_offsets.end() - 1);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t k = 0; k < K; ++k) {
            int64_t s = t * K + k;
            if (plan.assignment[size_t(s)] < 0) continue;  // dropped or skipped
            int64_t a = cursor[size_t(idx[s])]++;
            plan.token_index[size_t(a)] = int32_t(t);
            plan.weight[size_t(a)] = plan.topk_weight[size_t(s)];
            plan.slot[size_t(a)] = int32_t(s);
            plan.assignment[size_t(s)] = int32_t(a);
        }
}

}  // namespace moe
