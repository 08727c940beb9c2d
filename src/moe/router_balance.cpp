// The balance-by-construction routers' solvers: Sinkhorn balancing (S-BASE) and the balanced
// linear assignment of BASE layers by the auction algorithm (Bertsekas 1988), docs/routers.md.
#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "moe/router_internal.h"

namespace moe {

void sinkhorn_balance(float* pi, const float* logits, int64_t T, int64_t E, int64_t iters) {
    std::vector<double> m(static_cast<size_t>(T * E));
    for (int64_t t = 0; t < T; ++t) {
        const float* l = logits + t * E;
        float mx = *std::max_element(l, l + E);
        for (int64_t e = 0; e < E; ++e) m[size_t(t * E + e)] = std::exp(double(l[e] - mx));
    }
    const double col_target = double(T) / double(E);
    std::vector<double> col(static_cast<size_t>(E));
    for (int64_t it = 0; it < iters; ++it) {
        for (int64_t t = 0; t < T; ++t) {
            double s = 0;
            for (int64_t e = 0; e < E; ++e) s += m[size_t(t * E + e)];
            for (int64_t e = 0; e < E; ++e) m[size_t(t * E + e)] /= s;
        }
        std::fill(col.begin(), col.end(), 0.0);
        for (int64_t t = 0; t < T; ++t)
            for (int64_t e = 0; e < E; ++e) col[size_t(e)] += m[size_t(t * E + e)];
        for (int64_t t = 0; t < T; ++t)
            for (int64_t e = 0; e < E; ++e) m[size_t(t * E + e)] *= col_target / col[size_t(e)];
    }
    for (int64_t i = 0; i < T * E; ++i) pi[i] = float(m[size_t(i)]);
}

namespace {

// Each expert owns C slots (objects of the auction), each with its price; a min-heap per expert
// gives its cheapest and second-cheapest slot.
struct Slots {
    int64_t C;
    std::vector<double> price;                            // (E * C)
    std::vector<std::vector<std::pair<double, int64_t>>> heap;  // per expert: (price, slot)

    void rebuild(int64_t E) {
        heap.assign(size_t(E), {});
        for (int64_t e = 0; e < E; ++e) {
            for (int64_t j = 0; j < C; ++j) heap[size_t(e)].push_back({price[size_t(e * C + j)], e * C + j});
            std::make_heap(heap[size_t(e)].begin(), heap[size_t(e)].end(), std::greater<>());
        }
    }
    double cheapest(int64_t e) const { return heap[size_t(e)].front().first; }
    double second_cheapest(int64_t e) const {
        const auto& h = heap[size_t(e)];
        if (h.size() < 2) return std::numeric_limits<double>::infinity();
        return h.size() == 2 ? h[1].first : std::min(h[1].first, h[2].first);
    }
    // Raises the cheapest slot of e to `to`; returns that slot.
    int64_t raise_cheapest(int64_t e, double to) {
        auto& h = heap[size_t(e)];
        std::pop_heap(h.begin(), h.end(), std::greater<>());
        int64_t s = h.back().second;
        h.back().first = to;
        price[size_t(s)] = to;
        std::push_heap(h.begin(), h.end(), std::greater<>());
        return s;
    }
};

// One forward auction at a fixed epsilon from the current prices (assignments start empty).
void auction_round(int32_t* expert, const float* a, int64_t T, int64_t E, Slots& slots, double eps) {
    slots.rebuild(E);
    std::vector<int64_t> owner(static_cast<size_t>(E * slots.C), -1);
    std::deque<int64_t> queue;
    for (int64_t t = 0; t < T; ++t) queue.push_back(t);
    while (!queue.empty()) {
        int64_t t = queue.front();
        queue.pop_front();
        const float* row = a + t * E;
        int64_t best = 0;
        double v1 = -std::numeric_limits<double>::infinity(), v2 = v1;
        for (int64_t e = 0; e < E; ++e) {
            double v = double(row[e]) - slots.cheapest(e);
            if (v > v1) {
                v2 = v1;
                v1 = v;
                best = e;
            } else if (v > v2) {
                v2 = v;
            }
        }
        v2 = std::max(v2, double(row[best]) - slots.second_cheapest(best));
        double raise = std::isfinite(v2) ? v1 - v2 + eps : eps;  // no alternative at all: eps
        int64_t s = slots.raise_cheapest(best, slots.cheapest(best) + raise);
        if (owner[size_t(s)] >= 0) queue.push_back(owner[size_t(s)]);
        owner[size_t(s)] = t;
        expert[t] = int32_t(best);
    }
}

}  // namespace

void balanced_assignment(int32_t* expert, const float* a, int64_t T, int64_t E) {
    Slots slots;
    slots.C = (T + E - 1) / E;
    slots.price.assign(size_t(E * slots.C), 0.0);
    auto [lo, hi] = std::minmax_element(a, a + T * E);
    const double range = *hi > *lo ? double(*hi) - double(*lo) : 1.0;
    const double eps_final = 1e-6 * range / double(T);
    // Epsilon scaling keeps the prices between rounds. With more slots than tokens (E does not
    // divide T) a slot left empty must keep the lowest price for the result to be optimal, which
    // kept prices do not guarantee: then one round from zero prices.
    double eps = T % E == 0 ? range / 4 : eps_final;
    for (;;) {
        eps = std::max(eps, eps_final);
        auction_round(expert, a, T, E, slots, eps);
        if (eps <= eps_final) break;
        eps /= 8;
    }
}

}  // namespace moe
