// Token embedding and the language-model cross-entropy, forward and backward
// (docs/model_spec.md; PyTorch's F.embedding and F.cross_entropy with ignore_index = -100).
#pragma once
#include <cstdint>

namespace moe {

constexpr int32_t kIgnoreIndex = -100;

// x (N, D) = embed (V, D)[tokens]; throws naming the row when a token is outside [0, V).
void embedding_forward(float* x, const float* embed, const int32_t* tokens, int64_t N, int64_t V, int64_t D);
// dembed (V, D) += scatter of dx (N, D) by token, rows in order.
void embedding_backward(float* dembed, const float* dx, const int32_t* tokens, int64_t N, int64_t D);

// Mean cross-entropy of logits (N, V) against targets (kIgnoreIndex rows skipped); writes
// dlogits (N, V) = d loss / d logits (may alias logits). Returns the loss (0 when every row is
// ignored).
double cross_entropy(float* dlogits, const float* logits, const int32_t* targets, int64_t N, int64_t V);

}  // namespace moe
