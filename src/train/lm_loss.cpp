#include "moe/lm_loss.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "moe/error.h"

namespace moe {

void embedding_forward(float* x, const float* embed, const int32_t* tokens, int64_t N, int64_t V, int64_t D) {
    for (int64_t r = 0; r < N; ++r)
        MOE_CHECK(tokens[r] >= 0 && tokens[r] < V, "embedding",
                  "token " + std::to_string(tokens[r]) + " at row " + std::to_string(r) +
                      " is outside the vocabulary [0, " + std::to_string(V) + ")");
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; ++r) std::copy_n(embed + int64_t(tokens[r]) * D, D, x + r * D);
}

void embedding_backward(float* dembed, const float* dx, const int32_t* tokens, int64_t N, int64_t D) {
    // Columns split across threads; each column adds its rows in order (deterministic).
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < D; ++j)
        for (int64_t r = 0; r < N; ++r) dembed[int64_t(tokens[r]) * D + j] += dx[r * D + j];
}

double cross_entropy(float* dlogits, const float* logits, const int32_t* targets, int64_t N, int64_t V) {
    int64_t n = 0;
    for (int64_t r = 0; r < N; ++r) {
        if (targets[r] == kIgnoreIndex) continue;
        MOE_CHECK(targets[r] >= 0 && targets[r] < V, "cross_entropy",
                  "target " + std::to_string(targets[r]) + " at row " + std::to_string(r) +
                      " is outside the vocabulary [0, " + std::to_string(V) + ")");
        ++n;
    }
    const float inv_n = n > 0 ? 1.0f / float(n) : 0.0f;
    double loss = 0;
#pragma omp parallel for schedule(static) reduction(+ : loss)
    for (int64_t r = 0; r < N; ++r) {
        const float* l = logits + r * V;
        float* d = dlogits + r * V;
        if (targets[r] == kIgnoreIndex) {
            std::fill_n(d, V, 0.0f);
            continue;
        }
        const float m = *std::max_element(l, l + V);
        double sum = 0;
        for (int64_t j = 0; j < V; ++j) sum += std::exp(double(l[j] - m));
        const double lse = double(m) + std::log(sum);
        loss += lse - double(l[targets[r]]);
        for (int64_t j = 0; j < V; ++j) d[j] = float(std::exp(double(l[j]) - lse)) * inv_n;
        d[targets[r]] -= inv_n;
    }
    return n > 0 ? loss / double(n) : 0.0;
}

}  // namespace moe
