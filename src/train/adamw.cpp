// AdamW (Loshchilov & Hutter 2019) as torch.optim.AdamW computes it, with clip_grad_norm_'s
// clipping folded into the update, and the learning-rate schedule.
#include <algorithm>
#include <cmath>

#include "moe/error.h"
#include "moe/optim.h"

namespace moe {

double lr_at(const AdamWConfig& c, int64_t step) {
    if (c.warmup > 0 && step <= c.warmup) return c.lr * double(step) / double(c.warmup);
    if (step >= c.total) return c.lr_min;
    const double progress = double(step - c.warmup) / double(c.total - c.warmup);
    return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1.0 + std::cos(M_PI * progress));
}

double grad_norm(const std::vector<AdamWTensor>& tensors) {
    double ss = 0;
    for (const AdamWTensor& t : tensors) {
        double s = 0;
#pragma omp parallel for schedule(static) reduction(+ : s)
        for (int64_t i = 0; i < t.n; ++i) s += double(t.grad[i]) * t.grad[i];
        ss += s;
    }
    return std::sqrt(ss);
}

double adamw_step(const std::vector<AdamWTensor>& tensors, const AdamWConfig& c, int64_t step) {
    return adamw_step(tensors, c, step, grad_norm(tensors));
}

double adamw_step(const std::vector<AdamWTensor>& tensors, const AdamWConfig& c, int64_t step, double norm) {
    MOE_CHECK(step >= 1, "adamw", "steps count from 1, got " + std::to_string(step));
    MOE_CHECK(std::isfinite(norm), "adamw",
              "the gradient norm is " + std::to_string(norm) + " at step " + std::to_string(step) +
                  "; lower the learning rate or check the data");
    const float clip = c.max_norm > 0 ? float(std::min(1.0, c.max_norm / (norm + 1e-6))) : 1.0f;
    // The scalars in double, rounded once to f32, as torch computes them in Python.
    const double lr = lr_at(c, step);
    const float b1 = float(c.beta1), b2 = float(c.beta2), eps = float(c.eps);
    const float step_size = float(lr / (1.0 - std::pow(c.beta1, double(step))));
    const float bc2_sqrt = float(std::sqrt(1.0 - std::pow(c.beta2, double(step))));
    for (const AdamWTensor& t : tensors) {
        const float decay = t.decay ? float(1.0 - lr * c.weight_decay) : 1.0f;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < t.n; ++i) {
            const float g = t.grad[i] * clip;
            float p = t.param[i] * decay;
            const float m = b1 * t.m[i] + (1.0f - b1) * g;
            const float v = b2 * t.v[i] + (1.0f - b2) * g * g;
            t.m[i] = m;
            t.v[i] = v;
            // torch: denom = sqrt(v) / sqrt(bias_correction2) + eps; p -= (lr / bc1) * m / denom
            p -= step_size * (m / (std::sqrt(v) / bc2_sqrt + eps));
            t.param[i] = p;
        }
    }
    return norm;
}

}  // namespace moe
