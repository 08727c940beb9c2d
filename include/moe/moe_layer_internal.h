// Pieces the layer's forward and backward share (not part of the public API).
#pragma once
#include <chrono>

#include "moe/moe_layer.h"

namespace moe {

float* grow(Buffer& b, int64_t n);      // f32 buffer of at least n values (grows, never shrinks)
bf16* grow_bf16(Buffer& b, int64_t n);  // the same in bf16
void convert_to_bf16(bf16* out, const float* in, int64_t n);  // threaded

// The experts this process computes, [e0, e0 + n_local). ExpertExchange asks for the plan (a
// placement could follow the load); the layer needs the range before routing, to check the
// weights, so it asks with an empty plan of E experts and checks the answer after routing.
struct LocalExperts {
    int64_t e0 = 0, n_local = 0;
};
LocalExperts moe_layer_local_experts(const ExpertExchange& ex, const MoeLayerConfig& c);
// Where expert e0 sits in p.w1 / w3 / w2: e0 when they hold all E experts, 0 when they hold
// only the local ones (expert parallelism). Every function below takes this index as `w0`.
int64_t moe_layer_weight_index(const MoeLayerParams& p, const MoeLayerConfig& c, const LocalExperts& l);

// Pointers into cache.weights_b: the bf16 copies of the n_local experts from params.w1[w0]
// and of the shared experts. `refresh` converts the f32 masters (once per forward).
struct MoeBf16Weights {
    const bf16 *w1, *w3, *w2, *ws1, *ws3, *ws2;
};
MoeBf16Weights moe_layer_bf16_weights(MoeLayerCache& cache, const MoeLayerConfig& c,
                                      const MoeLayerParams& p, int64_t w0, int64_t n_local,
                                      bool refresh);

// moe_layer_experts.cpp. The routed experts [w0, w0 + n_local) over `rows`, grouped by
// cache.local_offsets: out = experts(rows), saving h1 / h3 (and the bf16 copies) in the cache.
void experts_forward(float* out, MoeLayerCache& cache, const MoeLayerConfig& c,
                     const MoeLayerParams& params, const float* rows, int64_t w0, int64_t n_local);
// dout (the gradient of out) is overwritten with d rows; weight gradients accumulate.
void experts_backward(float* dout, const MoeLayerParams& grads, MoeLayerCache& cache,
                      const MoeLayerConfig& c, const MoeLayerParams& params, const float* rows,
                      int64_t w0, int64_t n_local);
// The shared experts over every token: y += shared(x); backward: dx += , grads += .
void shared_forward(float* y, MoeLayerCache& cache, const MoeLayerConfig& c,
                    const MoeLayerParams& params, const float* x, int64_t T, int64_t w0, int64_t n_local);
void shared_backward(float* dx, const float* dy, const MoeLayerParams& grads, MoeLayerCache& cache,
                     const MoeLayerConfig& c, const MoeLayerParams& params, const float* x, int64_t T,
                     int64_t w0, int64_t n_local);

// Soft MoE (moe_layer_soft.cpp): the whole layer, which routes by dense mixing, not by a plan.
void soft_moe_forward(float* y, MoeLayerLosses& losses, MoeLayerCache& cache,
                      const MoeLayerConfig& c, const MoeLayerParams& params, const float* x, int64_t T);
void soft_moe_backward(float* dx, const MoeLayerParams& grads, const float* dy, const MoeLossCoefs& coefs,
                       MoeLayerCache& cache, const MoeLayerConfig& c, const MoeLayerParams& params,
                       const float* x, int64_t T);

// Seconds since the previous lap (or construction).
class PhaseClock {
public:
    double lap() {
        auto now = std::chrono::steady_clock::now();
        double s = std::chrono::duration<double>(now - last_).count();
        last_ = now;
        return s;
    }

private:
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace moe
