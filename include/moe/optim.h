// AdamW with decoupled weight decay, global-norm gradient clipping and the warm-up + cosine
// learning-rate schedule (docs/model_spec.md; torch.optim.AdamW semantics).
#pragma once
#include <cstdint>
#include <vector>

namespace moe {

struct AdamWConfig {
    double lr = 3e-4, lr_min = 3e-5;  // peak and final learning rate
    int64_t warmup = 0, total = 1;    // warm-up steps and total steps of the schedule
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
    double weight_decay = 0.1;
    double max_norm = 1.0;            // gradient clipping (0 = off)
};

// Learning rate of step s (1-based): linear warm-up, then cosine to lr_min at `total`.
double lr_at(const AdamWConfig& c, int64_t step);

// One tensor the optimizer updates: parameters, their gradients and the two moments (same
// length), and whether weight decay applies (not to norms, biases or router biases).
struct AdamWTensor {
    float* param;
    const float* grad;
    float* m;
    float* v;
    int64_t n;
    bool decay;
};

// L2 norm of all gradients together (accumulated in double, fixed order).
double grad_norm(const std::vector<AdamWTensor>& tensors);

// Step `step` (1-based): clips the gradients by `max_norm` (scaling them, as
// clip_grad_norm_ does; grads are const here, so the scale is applied inside the update) and
// updates every tensor. Returns the gradient norm before clipping.
double adamw_step(const std::vector<AdamWTensor>& tensors, const AdamWConfig& c, int64_t step);
// The same with the gradient norm given: data parallelism computes it over every rank's
// tensors (the replicated ones counted once, the expert shards summed), not over this rank's.
double adamw_step(const std::vector<AdamWTensor>& tensors, const AdamWConfig& c, int64_t step, double norm);

}  // namespace moe
