// MoE layer forward: router -> RoutePlan -> dispatch -> grouped experts -> combine (+ shared).
#include "moe/moe_layer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/kernels.h"
#include "moe/rng.h"
#include "moe/moe_layer_internal.h"
#include "moe/router_internal.h"
#include "moe/swiglu_experts.h"

namespace moe {

void moe_layer_validate(const MoeLayerConfig& c) {
    const char* op = "moe_layer";
    MOE_CHECK(c.d_model > 0, op, "d_model must be > 0, got " + std::to_string(c.d_model));
    MOE_CHECK(c.d_ff > 0, op, "d_ff must be > 0, got " + std::to_string(c.d_ff));
    MOE_CHECK(c.n_experts > 0, op,
              "n_experts must be > 0, got " + std::to_string(c.n_experts) + " (E = 0 routes nothing)");
    MOE_CHECK(c.top_k > 0 && c.top_k <= c.n_experts, op,
              "top_k must be in [1, n_experts = " + std::to_string(c.n_experts) + "], got " +
                  std::to_string(c.top_k));
    MOE_CHECK(c.n_shared >= 0, op, "n_shared must be >= 0, got " + std::to_string(c.n_shared));
    MOE_CHECK(!c.shared_gate || c.n_shared > 0, op, "shared_gate needs shared experts (n_shared > 0)");
    MOE_CHECK(c.n_shared == 0 || c.d_ff_shared > 0, op,
              "d_ff_shared must be > 0 when n_shared = " + std::to_string(c.n_shared));
    MOE_CHECK(c.dtype == DType::f32 || c.dtype == DType::bf16, op,
              std::string("dtype must be f32 or bf16, got ") + dtype_name(c.dtype));
    MOE_CHECK(c.capacity_factor >= 0 && std::isfinite(c.capacity_factor), op,
              "capacity_factor must be >= 0 (0 = dropless), got " + std::to_string(c.capacity_factor));
    router_validate(c);
}

MoeLayerParamSlots moe_layer_params_reserve(Arena& arena, const MoeLayerConfig& c,
                                            int64_t n_local_experts) {
    moe_layer_validate(c);
    MOE_CHECK(n_local_experts >= 0 && n_local_experts <= c.n_experts, "moe_layer_params_reserve",
              "n_local_experts must be in [0, n_experts = " + std::to_string(c.n_experts) +
                  "] (0 = all), got " + std::to_string(n_local_experts));
    const int64_t D = c.d_model, F = c.d_ff, E = c.n_experts, S = c.n_shared, Fs = c.d_ff_shared;
    const int64_t Ew = n_local_experts > 0 ? n_local_experts : E;  // routed experts held here
    MoeLayerParamSlots s;
    const bool xmoe = c.router.kind == RouterKind::xmoe;
    s.router = arena.reserve(DType::f32, {router_rows(c), router_cols(c)});
    s.router_noise = arena.reserve(DType::f32, {c.router.kind == RouterKind::noisy_topk ? E : 0, D});
    s.router_bias = arena.reserve(DType::f32, {c.router.kind == RouterKind::sigmoid_bias ? E : 0});
    s.router_proj = arena.reserve(DType::f32, {xmoe ? c.router.router_dim : 0, D});
    s.router_temp = arena.reserve(DType::f32, {xmoe ? 1 : 0});
    s.w1 = arena.reserve(DType::f32, {Ew, F, D});
    s.w3 = arena.reserve(DType::f32, {Ew, F, D});
    s.w2 = arena.reserve(DType::f32, {Ew, D, F});
    s.ws1 = arena.reserve(DType::f32, {S, Fs, D});
    s.ws3 = arena.reserve(DType::f32, {S, Fs, D});
    s.ws2 = arena.reserve(DType::f32, {S, D, Fs});
    s.ws_gate = arena.reserve(DType::f32, {c.shared_gate ? S : 0, D});
    return s;
}

MoeLayerParams moe_layer_params_point(const Arena& a, const MoeLayerParamSlots& s) {
    return {a.view(s.router), a.view(s.router_noise), a.view(s.router_bias),
            a.view(s.router_proj), a.view(s.router_temp), a.view(s.w1), a.view(s.w3), a.view(s.w2),
            a.view(s.ws1), a.view(s.ws3), a.view(s.ws2), a.view(s.ws_gate), {}};
}

void moe_layer_params_init(const MoeLayerParams& p, uint64_t seed) {
    Rng rng(seed);
    if (p.router_bias.numel() > 0) std::fill_n(p.router_bias.f32(), p.router_bias.numel(), 0.0f);
    if (p.router_temp.numel() > 0) p.router_temp.f32()[0] = 0.07f;
    for (const TensorView* t : {&p.router, &p.router_noise, &p.router_proj, &p.ws_gate, &p.w1, &p.w3, &p.w2, &p.ws1, &p.ws3, &p.ws2}) {
        if (t->numel() == 0) continue;
        int64_t fan_in = t->shape[t->shape.ndim - 1];
        rng.fill_normal(t->f32(), t->numel(), 0.0f, 1.0f / std::sqrt(float(fan_in)));
    }
}

void moe_layer_check_params(const char* op, const char* prefix, const MoeLayerConfig& c,
                            const MoeLayerParams& p, int64_t n_local_experts) {
    const int64_t D = c.d_model, F = c.d_ff, E = c.n_experts, S = c.n_shared, Fs = c.d_ff_shared;
    std::string n = prefix;
    check_tensor(op, (n + "router").c_str(), p.router, {router_rows(c), router_cols(c)});
    if (c.router.kind == RouterKind::xmoe) {
        check_tensor(op, (n + "router_proj").c_str(), p.router_proj, {c.router.router_dim, D});
        check_tensor(op, (n + "router_temp").c_str(), p.router_temp, {1});
    }
    if (c.router.kind == RouterKind::noisy_topk)
        check_tensor(op, (n + "router_noise").c_str(), p.router_noise, {E, D});
    if (c.router.kind == RouterKind::sigmoid_bias)
        check_tensor(op, (n + "router_bias").c_str(), p.router_bias, {E});
    // All E experts, or (expert parallelism) only the local ones: the leading dimension says.
    int64_t Ew = E;
    if (n_local_experts > 0 && p.w1.shape.ndim == 3 && p.w1.shape[0] != E) {
        MOE_CHECK(p.w1.shape[0] == n_local_experts, op,
                  "expected " + n + "w1 to hold all E = " + std::to_string(E) + " experts or this rank's " +
                      std::to_string(n_local_experts) + " (expert parallelism), got shape " + p.w1.shape.str());
        Ew = n_local_experts;
    }
    if (p.quant.active()) {
        auto check_q = [&](const char* name, const QMatrix& m, const std::vector<const uint8_t*>& per, int64_t rows,
                           int64_t cols) {
            const bool stacked = per.empty() && m.data;
            const bool each = int64_t(per.size()) == E && !m.data &&
                              std::find(per.begin(), per.end(), nullptr) == per.end();
            MOE_CHECK((stacked || each) && m.rows == rows && m.cols == cols, op,
                      "expected quantized " + n + name + " of " + std::to_string(rows) + " x " + std::to_string(cols) +
                          " (E F, D: every expert's rows stacked, or E per-expert matrices), got " +
                          std::to_string(m.rows) + " x " + std::to_string(m.cols) + " with " +
                          std::to_string(per.size()) + " per-expert pointers");
            MOE_CHECK(qmatmul_supports(m.type), op,
                      n + name + " is " + ggml_type_name(m.type) + ", which has no quantized product here");
        };
        MOE_CHECK(c.dtype == DType::f32, op, "quantized experts compute in f32 (dequantized), not bf16");
        check_q("w1", p.quant.w1, p.quant.w1_e, E * F, D);
        check_q("w3", p.quant.w3, p.quant.w3_e, E * F, D);
        check_q("w2", p.quant.w2, p.quant.w2_e, E * D, F);
    } else {
        check_tensor(op, (n + "w1").c_str(), p.w1, {Ew, F, D});
        check_tensor(op, (n + "w3").c_str(), p.w3, {Ew, F, D});
        check_tensor(op, (n + "w2").c_str(), p.w2, {Ew, D, F});
    }
    if (S > 0) {
        check_tensor(op, (n + "ws1").c_str(), p.ws1, {S, Fs, D});
        check_tensor(op, (n + "ws3").c_str(), p.ws3, {S, Fs, D});
        check_tensor(op, (n + "ws2").c_str(), p.ws2, {S, D, Fs});
        if (c.shared_gate) check_tensor(op, (n + "ws_gate").c_str(), p.ws_gate, {S, D});
    }
}

// An empty Buffer has shape () and so numel() 1 but no data: it must be allocated too.
float* grow(Buffer& b, int64_t n) {
    if (b.numel() < n || !b.f32()) b = Buffer(DType::f32, {n});
    return b.f32();
}

bf16* grow_bf16(Buffer& b, int64_t n) {
    if (b.numel() < n || !b.bf()) b = Buffer(DType::bf16, {n});
    return b.bf();
}

void convert_to_bf16(bf16* out, const float* in, int64_t n) {
    const KernelTable& k = kernels();
    parallel_chunks(n, [&](int64_t i, int64_t len) { k.f32_to_bf16(out + i, in + i, len); });
}

LocalExperts moe_layer_local_experts(const ExpertExchange& ex, const MoeLayerConfig& c) {
    RoutePlan probe;
    probe.n_experts = c.n_experts;
    LocalExperts l;
    l.e0 = ex.expert_begin(probe);
    l.n_local = ex.expert_end(probe) - l.e0;
    MOE_CHECK(l.e0 >= 0 && l.n_local >= 0 && l.e0 + l.n_local <= c.n_experts, "moe_layer",
              "the exchange's experts [" + std::to_string(l.e0) + ", " + std::to_string(l.e0 + l.n_local) +
                  ") are not within the E = " + std::to_string(c.n_experts) + " experts");
    return l;
}

int64_t moe_layer_weight_index(const MoeLayerParams& p, const MoeLayerConfig& c, const LocalExperts& l) {
    return p.quant.active() || p.w1.shape[0] == c.n_experts ? l.e0 : 0;
}

MoeBf16Weights moe_layer_bf16_weights(MoeLayerCache& cache, const MoeLayerConfig& c,
                                      const MoeLayerParams& p, int64_t w0, int64_t n_local,
                                      bool refresh) {
    const int64_t D = c.d_model, F = c.d_ff, S = c.n_shared, Fs = c.d_ff_shared;
    const int64_t expert = F * D, shared = Fs * D;
    bf16* base = grow_bf16(cache.weights_b, 3 * n_local * expert + 3 * S * shared);
    MoeBf16Weights w;
    w.w1 = base;
    w.w3 = base + n_local * expert;
    w.w2 = base + 2 * n_local * expert;
    w.ws1 = base + 3 * n_local * expert;
    w.ws3 = w.ws1 + S * shared;
    w.ws2 = w.ws3 + S * shared;
    if (refresh) {
        convert_to_bf16(base, p.w1.f32() + w0 * expert, n_local * expert);
        convert_to_bf16(base + n_local * expert, p.w3.f32() + w0 * expert, n_local * expert);
        convert_to_bf16(base + 2 * n_local * expert, p.w2.f32() + w0 * expert, n_local * expert);
        if (S > 0) {
            convert_to_bf16(base + 3 * n_local * expert, p.ws1.f32(), S * shared);
            convert_to_bf16(base + 3 * n_local * expert + S * shared, p.ws3.f32(), S * shared);
            convert_to_bf16(base + 3 * n_local * expert + 2 * S * shared, p.ws2.f32(), S * shared);
        }
    }
    return w;
}

void moe_layer_forward(TensorView y, MoeLayerLosses& losses, MoeLayerCache& cache,
                       const MoeLayerConfig& c, const MoeLayerParams& params, TensorView x,
                       ExpertExchange* exchange, const int32_t* token_ids) {
    const char* op = "moe_layer_forward";
    moe_layer_validate(c);
    const int64_t D = c.d_model;
    MOE_CHECK(x.shape.ndim == 2 && x.shape[1] == D, op,
              "expected x of shape (T, " + std::to_string(D) + "), got " + x.shape.str());
    const int64_t T = x.shape[0];
    MOE_CHECK(T > 0, op, "x has no tokens: shape " + x.shape.str());
    check_tensor(op, "x", x, {T, D});
    check_tensor(op, "y", y, {T, D});
    LocalExchange local;
    ExpertExchange& ex = exchange ? *exchange : local;
    const LocalExperts mine = moe_layer_local_experts(ex, c);
    moe_layer_check_params(op, "", c, params, mine.n_local);
    const KernelTable& k = kernels();
    MOE_CHECK(k.all_finite(x.f32(), x.numel()), op,
              "x of shape " + x.shape.str() + " contains NaN or Inf; check the previous layer");

    cache.T = T;
    if (c.router.kind == RouterKind::soft_moe) {
        MOE_CHECK(!exchange || exchange->in_place(), op,
                  "soft_moe mixes every token into every slot and runs in one process; use the local exchange");
        MOE_CHECK(!params.quant.active(), op, "soft_moe needs f32 expert weights, not quantized ones");
        soft_moe_forward(y.f32(), losses, cache, c, params, x.f32(), T);
        return;
    }
    PhaseClock clock;
    router_forward(cache, losses, c, params, x.f32(), T, token_ids);
    RoutePlan& plan = cache.plan;
    const int64_t Kv = plan.top_k;  // per-token view width (E for expert choice)
    cache.times.router = clock.lap();

    // Dispatch: gather rows in plan order, then hand them to the experts' owners.
    const int64_t A = plan.n_assignments();
    float* rows = grow(cache.rows, A * D);
    const float* xp = x.f32();
#pragma omp parallel for schedule(static) if (A * D >= 32768)
    for (int64_t a = 0; a < A; ++a)
        std::copy_n(xp + int64_t(plan.token_index[size_t(a)]) * D, D, rows + a * D);
    float* local_rows = ex.to_experts(plan, rows, D, cache.local_offsets);
    const int64_t e0 = ex.expert_begin(plan), n_local = ex.expert_end(plan) - e0;
    MOE_CHECK(e0 == mine.e0 && n_local == mine.n_local, op,
              "the exchange placed the experts by load; the layer needs a placement fixed by E");
    const int64_t w0 = moe_layer_weight_index(params, c, mine);  // expert e0's index in params.w1
    const int64_t A_local = cache.local_offsets[size_t(n_local)];
    if (!ex.in_place()) {  // keep the received rows for backward: the exchange reuses its buffer
        local_rows = std::copy_n(local_rows, A_local * D, grow(cache.rows_local, A_local * D)) - A_local * D;
    }

    cache.times.dispatch = clock.lap();
    float* out = grow(cache.out, A * D);
    float* out_local = ex.in_place() ? out : grow(cache.out_local, A_local * D);
    experts_forward(out_local, cache, c, params, local_rows, w0, n_local);
    cache.times.experts = clock.lap();
    ex.from_experts(plan, out_local, D, out);

    // Combine: each token sums its kept assignments in k order (deterministic).
    float* yp = y.f32();
#pragma omp parallel for schedule(static) if (T * D >= 32768)
    for (int64_t t = 0; t < T; ++t) {
        float* yt = yp + t * D;
        std::fill_n(yt, D, 0.0f);
        for (int64_t kk = 0; kk < Kv; ++kk) {
            int32_t a = plan.assignment[size_t(t * Kv + kk)];
            if (a >= 0) k.axpy(yt, plan.weight[size_t(a)], out + int64_t(a) * D, D);
        }
    }

    cache.times.combine = clock.lap();
    // Shared experts: every token, weight 1, accumulated straight into y.
    shared_forward(yp, cache, c, params, xp, T, w0, n_local);
    cache.times.shared = clock.lap();
}

MoeLoadStats moe_layer_load_stats(const MoeLayerCache& cache) {
    MoeLoadStats st;
    const RoutePlan& plan = cache.plan;
    const int64_t E = plan.n_experts;
    st.counts.resize(size_t(E));
    int64_t total = 0, mx = 0;
    for (int64_t e = 0; e < E; ++e) {
        st.counts[size_t(e)] = plan.count(e);
        total += plan.count(e);
        mx = std::max(mx, plan.count(e));
    }
    if (total > 0) {
        st.max_over_mean = double(mx) * double(E) / double(total);
        for (int64_t e = 0; e < E; ++e) {
            double q = double(plan.count(e)) / double(total);
            if (q > 0) st.entropy -= q * std::log(q);
        }
    }
    int64_t slots = plan.n_tokens * plan.top_k;
    st.dropped_fraction = slots > 0 ? double(plan.n_dropped) / double(slots) : 0.0;
    if (slots > 0 && int64_t(plan.assignment.size()) == slots) {  // soft_moe has no per-token view
        int64_t unrouted = 0;
        for (int64_t t = 0; t < plan.n_tokens; ++t) {
            const int32_t* a = plan.assignment.data() + t * plan.top_k;
            unrouted += std::all_of(a, a + plan.top_k, [](int32_t v) { return v < 0; });
        }
        st.unrouted_fraction = double(unrouted) / double(plan.n_tokens);
    }
    return st;
}

}  // namespace moe
