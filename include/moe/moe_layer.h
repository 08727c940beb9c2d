// The MoE feed-forward layer: top-k softmax router (Mixtral), dropless grouped SwiGLU experts
// (MegaBlocks) or capacity-based dropping (GShard/Switch), optional shared experts (DeepSeekMoE),
// Switch load-balancing loss and ST-MoE router z-loss, with explicit forward and backward.
// docs/moe_layer_spec.md is the exact contract; tests compare it with an independent PyTorch
// implementation (tools/gen_layer_fixtures.py) and with finite differences.
#pragma once
#include <cstdint>
#include <vector>

#include "moe/arena.h"
#include "moe/expert_exchange.h"
#include "moe/qmatmul.h"
#include "moe/route_plan.h"
#include "moe/router.h"
#include "moe/tensor.h"

namespace moe {

struct MoeLayerConfig {
    int64_t d_model = 0;        // D
    int64_t d_ff = 0;           // F, hidden size of one routed expert
    int64_t n_experts = 0;      // E
    int64_t top_k = 0;          // K
    int64_t n_shared = 0;       // S, shared experts every token goes through
    int64_t d_ff_shared = 0;    // Fs
    bool renormalize = true;    // divide the K weights by their sum (HF norm_topk_prob)
    bool shared_gate = false;   // Qwen-MoE: shared expert s scaled by sigmoid(x . shared.gate[s])
    double capacity_factor = 0; // 0 = dropless; else C = ceil(cf * T * K / E)
    // Expert compute: f32, or bf16 (bf16 GEMM inputs, f32 accumulation, f32 master weights,
    // gradients and saved activations). The router always runs in f32 (Switch's selective
    // precision: its softmax is where bf16 rounding hurts).
    DType dtype = DType::f32;
    RouterConfig router;  // the routing family and its options (docs/routers.md)
};

// Throws "[moe_layer] ..." when the sizes are impossible (E = 0, K > E, ...).
void moe_layer_validate(const MoeLayerConfig& cfg);

// Routed experts kept as a GGUF stores them (inference only): expert e's gate is rows
// [e F, (e + 1) F) of w1 (E F, D), its up rows of w3 (E F, D), its down rows [e D, (e + 1) D) of
// w2 (E D, F). Any type qmatmul takes; w1 / w3 / w2 may differ (llama.cpp's Q4_K_M mixes types).
// Or one matrix per expert, where they lie (a Hugging Face checkpoint mapped in place: one
// tensor per expert): expert e's gate is w1_e[e] (F, D), its up w3_e[e], its down w2_e[e]
// (D, F); w1 / w3 / w2 then give the type and the stacked sizes, with data null.
struct MoeQuantExperts {
    QMatrix w1, w3, w2;
    std::vector<const uint8_t*> w1_e, w3_e, w2_e;
    bool active() const { return w1.data != nullptr || !w1_e.empty(); }
    QMatrix gate(int64_t e, int64_t F) const { return pick(w1, w1_e, e, F); }
    QMatrix up(int64_t e, int64_t F) const { return pick(w3, w3_e, e, F); }
    QMatrix down(int64_t e, int64_t D) const { return pick(w2, w2_e, e, D); }

private:
    static QMatrix pick(const QMatrix& m, const std::vector<const uint8_t*>& per, int64_t e, int64_t rows) {
        return per.empty() ? m.slice(e * rows, rows) : QMatrix{m.type, rows, m.cols, per[size_t(e)]};
    }
};

// Views of the layer's tensors, parameters or their gradients (same layout).
struct MoeLayerParams {
    TensorView router;        // (E, D); xmoe: (E, router_dim); dselect: (K (log2 E + 1), D); hash: unused
    TensorView router_noise;  // (E, D) noisy_topk's noise weights, else (0, D)
    TensorView router_bias;   // (E,) sigmoid_bias's selection bias (no gradient), else (0,)
    TensorView router_proj;   // (router_dim, D) xmoe's projection, else (0, D)
    TensorView router_temp;   // (1,) xmoe's temperature, else (0,)
    // The routed experts: all E, or with expert parallelism only this rank's n_local = E / N
    // (the exchange's [expert_begin, expert_end)), leading dimension n_local instead of E.
    TensorView w1;      // (E, F, D) gate
    TensorView w3;      // (E, F, D) up
    TensorView w2;      // (E, D, F) down
    TensorView ws1;     // (S, Fs, D) shared gate
    TensorView ws3;     // (S, Fs, D) shared up
    TensorView ws2;     // (S, D, Fs) shared down
    TensorView ws_gate; // (S, D) shared experts' sigmoid gate (shared_gate), else (0, D)
    // When active, the routed experts come from here and w1 / w3 / w2 are not read (forward
    // only: backward and bf16 compute refuse it).
    MoeQuantExperts quant;
};

// Throws "[op] expected <prefix>w1 of shape (E, F, D), got ..." unless every tensor fits cfg.
// n_local_experts > 0: w1 / w3 / w2 may also hold only that many experts (expert parallelism).
void moe_layer_check_params(const char* op, const char* prefix, const MoeLayerConfig& cfg,
                            const MoeLayerParams& p, int64_t n_local_experts = 0);

// Reserves the tensors in `arena`; after arena.allocate(), moe_layer_params_point gives views.
struct MoeLayerParamSlots {
    size_t router, router_noise, router_bias, router_proj, router_temp, w1, w3, w2, ws1, ws3, ws2,
        ws_gate;
};
// n_local_experts > 0: room for that many routed experts only (this rank's, expert parallelism).
MoeLayerParamSlots moe_layer_params_reserve(Arena& arena, const MoeLayerConfig& cfg,
                                            int64_t n_local_experts = 0);
MoeLayerParams moe_layer_params_point(const Arena& arena, const MoeLayerParamSlots& slots);
// Mixtral-style init: N(0, 1/sqrt(fan_in)) for every matrix; router_bias = 0, router_temp = 0.07.
void moe_layer_params_init(const MoeLayerParams& p, uint64_t seed);

struct MoeLayerLosses {
    float aux = 0;      // the router's balance loss (topk: E * sum_e f_e * P_e, = K when balanced)
    float z = 0;        // mean_t logsumexp(logits_t)^2 (ST-MoE)
    float entropy = 0;  // mean_t entropy of the router's softmax (top-p's dynamic loss)
};

// The coefficients of the losses in L = sum(y * dy) + aux * aux + z * z + entropy * entropy.
struct MoeLossCoefs {
    float aux = 0, z = 0, entropy = 0;
};

// Wall-clock seconds of each phase of the last forward and backward (for benchmarks and logs).
struct MoePhaseTimes {
    double router = 0;    // logits, softmax, top-k, losses, route plan
    double dispatch = 0;  // gather rows in plan order + exchange to the experts' owners
    double experts = 0;   // grouped expert compute
    double combine = 0;   // exchange back + weighted sum per token
    double shared = 0;    // shared experts
    double bwd_combine = 0, bwd_experts = 0, bwd_scatter = 0, bwd_router = 0, bwd_shared = 0;
};

// What forward saves for backward, reused across calls (buffers grow, never shrink, so any
// batch shape works). Backward consumes it: one backward per forward.
struct MoeLayerCache {
    int64_t T = 0;
    RoutePlan plan;
    RouterCache router;
    Buffer rows;                     // (A, D) inputs gathered in plan order
    Buffer h1, h3;                   // (A, F) gate / up pre-activations
    Buffer out;                      // (A, D) expert outputs in plan order
    Buffer sh1, sh3;                 // (S, T, Fs) shared experts' pre-activations
    Buffer sh_out, sh_sig;           // shared_gate: (S, T, D) shared outputs, (S, T) their gates
    Buffer rows_local, out_local;    // (A_local, D) only when the exchange is not in place
    Buffer scratch;                  // per-expert temporaries
    // bf16 compute only: bf16 copies of the local experts' and the shared experts' weights
    // (refreshed every forward, as the masters may have changed), the rows and x in bf16.
    Buffer weights_b, rows_b, x_b, scratch_b;
    std::vector<int64_t> local_offsets;
    QMatmulScratch qmm;              // quantized experts: quantized rows, dequantized panels
    MoePhaseTimes times;
};

// Expert-load statistics of the last forward, for logs and metrics.
struct MoeLoadStats {
    std::vector<int64_t> counts;  // (E,) kept assignments per expert
    double max_over_mean = 0;     // max_e count / mean_e count
    double dropped_fraction = 0;  // dropped / (T * K)
    double unrouted_fraction = 0; // tokens with no expert at all (capacity, expert choice, mod)
    double entropy = 0;           // of the count distribution, in nats (log E when uniform)
};
MoeLoadStats moe_layer_load_stats(const MoeLayerCache& cache);

// y (T, D) = layer(x (T, D)). `exchange` moves rows to the experts' owners; nullptr = local.
// token_ids (T,): the tokens' vocabulary ids, needed by the hash router only.
void moe_layer_forward(TensorView y, MoeLayerLosses& losses, MoeLayerCache& cache,
                       const MoeLayerConfig& cfg, const MoeLayerParams& params, TensorView x,
                       ExpertExchange* exchange = nullptr, const int32_t* token_ids = nullptr);

// Gradients of L = sum(y * dy) + coefs.aux * aux + coefs.z * z + coefs.entropy * entropy.
// Accumulates (+=) into dx (T, D) and into every tensor of `grads`, llm.c style.
void moe_layer_backward(TensorView dx, const MoeLayerParams& grads, TensorView dy,
                        const MoeLossCoefs& coefs, MoeLayerCache& cache,
                        const MoeLayerConfig& cfg, const MoeLayerParams& params, TensorView x,
                        ExpertExchange* exchange = nullptr);

// sigmoid_bias's auxiliary-loss-free balancing (DeepSeek-V3): after a step,
// bias_e += bias_update_rate * sign(mean load - load_e), load from the last forward's plan.
void moe_layer_update_bias(const MoeLayerParams& params, const MoeLayerCache& cache,
                           const MoeLayerConfig& cfg);
// Its two halves, for data parallelism (the load summed over every rank's tokens before the
// update, so that the replicated bias stays the same everywhere): the load (E,) of the last
// forward (every token's K picks, dropped or not), and the update from a load.
std::vector<double> moe_layer_bias_load(const MoeLayerCache& cache, const MoeLayerConfig& cfg);
void moe_layer_update_bias(const MoeLayerParams& params, const std::vector<double>& load,
                           const MoeLayerConfig& cfg);

}  // namespace moe
