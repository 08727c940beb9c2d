#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "moe/error.h"

namespace moe::cli {

std::string sample_text(ModelConfig cfg, const ModelParams& p, const BpeTokenizer& tok,
                        const std::string& prompt, int64_t n, double temperature, int64_t ctx, Rng& rng) {
    cfg.moe.router.training = false;  // no router noise, jitter or random routing
    std::vector<int32_t> ids = tok.encode(prompt);
    MOE_CHECK(!ids.empty(), "sample", "the prompt is empty; give at least one character");
    const int64_t V = cfg.vocab_size;
    std::vector<double> w(static_cast<size_t>(V));
    for (int64_t k = 0; k < n; ++k) {
        const int64_t T = std::min<int64_t>(int64_t(ids.size()), ctx);
        std::vector<int32_t> in(ids.end() - T, ids.end()), none(size_t(T), -100);
        ModelCache c;
        model_forward(c, cfg, p, in.data(), none.data(), 1, T, 0.0f, 0.0f);
        const float* l = c.logits.f32() + (T - 1) * V;
        int32_t next = int32_t(std::max_element(l, l + V) - l);
        if (temperature > 0) {
            const double mx = double(l[next]) / temperature;
            double sum = 0;
            for (int64_t i = 0; i < V; ++i) sum += w[size_t(i)] = std::exp(double(l[i]) / temperature - mx);
            double u = double(rng.uniform()) * sum;
            for (int64_t i = 0; i < V; ++i)
                if ((u -= w[size_t(i)]) <= 0) {
                    next = int32_t(i);
                    break;
                }
        }
        ids.push_back(next);
    }
    return tok.decode(ids);
}

}  // namespace moe::cli
