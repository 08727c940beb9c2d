#include "layer_timing.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "moe/rng.h"

namespace moe::cli {

double peak_rss_mb() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_maxrss) / 1024.0;
}

double LayerTiming::median() const {
    std::vector<double> v = seconds;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

size_t LayerTiming::median_index() const {
    const double med = median();
    auto closest = std::min_element(seconds.begin(), seconds.end(), [&](double a, double b) {
        return std::fabs(a - med) < std::fabs(b - med);
    });
    return size_t(closest - seconds.begin());
}

LayerTiming time_layer(const MoeLayerConfig& cfg, int64_t T, bool backward, int reps, int warmup,
                       const LayerTimingDist* dist) {
    MpiExchange* ex = dist ? dist->exchange : nullptr;
    const int rank = dist ? dist->comm.rank() : 0;
    const int64_t n_local = ex ? ex->n_local_experts() : 0;  // 0: all experts here
    Arena param_arena, grad_arena;
    MoeLayerParamSlots ps = moe_layer_params_reserve(param_arena, cfg, n_local);
    MoeLayerParamSlots gs = moe_layer_params_reserve(grad_arena, cfg, n_local);
    param_arena.allocate();
    if (backward) grad_arena.allocate();
    MoeLayerParams params = moe_layer_params_point(param_arena, ps);
    MoeLayerParams grads = moe_layer_params_point(grad_arena, gs);
    moe_layer_params_init(params, 1234);

    const int64_t D = cfg.d_model;
    Buffer x(DType::f32, {T, D}), y(DType::f32, {T, D}), dy, dx;
    Rng rng(42 + uint64_t(rank));
    rng.fill_normal(x.f32(), x.numel(), 0.0f, 1.0f);
    if (backward) {
        dy = Buffer(DType::f32, {T, D});
        dx = Buffer(DType::f32, {T, D});
        rng.fill_normal(dy.f32(), dy.numel(), 0.0f, 1.0f);
    }
    std::vector<int32_t> ids(static_cast<size_t>(T));
    for (int32_t& id : ids) id = int32_t(rng.next_u64() % 32000);

    LayerTiming out;
    out.param_bytes = double(param_arena.bytes());
    out.grad_bytes = backward ? double(grad_arena.bytes()) : 0.0;
    MoeLayerCache cache;
    for (int r = 0; r < warmup + reps; ++r) {
        if (dist) dist->comm.barrier();
        if (ex) ex->reset_traffic();
        auto t0 = std::chrono::steady_clock::now();
        moe_layer_forward(y.view(), out.losses, cache, cfg, params, x.view(), ex, ids.data());
        out.assignments = cache.plan.n_assignments();
        out.load = moe_layer_load_stats(cache);
        if (backward)
            moe_layer_backward(dx.view(), grads, dy.view(), {0.01f, 0.001f}, cache, cfg, params, x.view(), ex);
        auto t1 = std::chrono::steady_clock::now();
        if (r >= warmup) {
            out.seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
            out.phases.push_back(cache.times);
            if (ex) out.traffic.push_back(ex->traffic());
        }
    }
    if (ex) {
        const int64_t e0 = ex->expert_begin(cache.plan), e1 = ex->expert_end(cache.plan);
        out.local_assignments = cache.plan.expert_offsets[size_t(e1)] - cache.plan.expert_offsets[size_t(e0)];
    }
    return out;
}

}  // namespace moe::cli
