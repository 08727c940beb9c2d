// llama.cpp-style sampling (include/moe/infer.h): penalties, top-k, top-p, min-p, temperature.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <unordered_set>

#include "moe/error.h"
#include "moe/infer.h"

namespace moe {

void sampling_validate(const SamplingParams& s) {
    const char* op = "sampling";
    MOE_CHECK(s.temperature >= 0 && std::isfinite(s.temperature), op, "--temp must be >= 0, got " + std::to_string(s.temperature));
    MOE_CHECK(s.top_k >= 0, op, "--top-k must be >= 0 (0 = off), got " + std::to_string(s.top_k));
    MOE_CHECK(s.top_p > 0 && s.top_p <= 1, op, "--top-p must be in (0, 1] (1 = off), got " + std::to_string(s.top_p));
    MOE_CHECK(s.min_p >= 0 && s.min_p <= 1, op, "--min-p must be in [0, 1] (0 = off), got " + std::to_string(s.min_p));
    MOE_CHECK(s.repeat_penalty > 0 && std::isfinite(s.repeat_penalty), op,
              "--repeat-penalty must be > 0 (1 = off), got " + std::to_string(s.repeat_penalty));
    MOE_CHECK(s.repeat_last_n >= 0, op, "--repeat-last-n must be >= 0, got " + std::to_string(s.repeat_last_n));
}

int32_t sample_token(const float* logits, int64_t V, const SamplingParams& s, const std::vector<int32_t>& history,
                     Rng& rng) {
    std::vector<float> l(logits, logits + V);
    if (s.repeat_penalty != 1.0 && s.repeat_last_n > 0) {
        const size_t from = history.size() > size_t(s.repeat_last_n) ? history.size() - size_t(s.repeat_last_n) : 0;
        std::unordered_set<int32_t> seen(history.begin() + int64_t(from), history.end());
        for (int32_t t : seen)
            if (t >= 0 && t < V) {
                float& x = l[size_t(t)];
                x = x > 0 ? float(x / s.repeat_penalty) : float(x * s.repeat_penalty);
            }
    }
    if (s.temperature <= 0) return int32_t(std::max_element(l.begin(), l.end()) - l.begin());
    // Candidates by descending logit (ties: lower id first, as a stable order).
    std::vector<int32_t> idx(static_cast<size_t>(V));
    std::iota(idx.begin(), idx.end(), 0);
    auto by_logit = [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)] || (l[size_t(a)] == l[size_t(b)] && a < b); };
    int64_t keep = V;
    if (s.top_k > 0 && s.top_k < V) {
        keep = s.top_k;
        std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(), by_logit);
    } else {
        std::sort(idx.begin(), idx.end(), by_logit);
    }
    // Probabilities at temperature 1 for the top-p and min-p filters (llama.cpp applies the
    // temperature last).
    std::vector<double> p(static_cast<size_t>(keep));
    const double mx = l[size_t(idx[0])];
    double sum = 0;
    for (int64_t i = 0; i < keep; ++i) sum += p[size_t(i)] = std::exp(double(l[size_t(idx[size_t(i)])]) - mx);
    if (s.top_p < 1) {
        double cum = 0;
        for (int64_t i = 0; i < keep; ++i) {
            cum += p[size_t(i)] / sum;
            if (cum >= s.top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    if (s.min_p > 0)
        for (int64_t i = 1; i < keep; ++i)
            if (p[size_t(i)] < s.min_p * p[0]) {  // p[0] is the largest
                keep = i;
                break;
            }
    double total = 0;
    for (int64_t i = 0; i < keep; ++i)
        total += p[size_t(i)] = std::exp((double(l[size_t(idx[size_t(i)])]) - mx) / s.temperature);
    double u = double(rng.uniform()) * total;
    for (int64_t i = 0; i < keep; ++i)
        if ((u -= p[size_t(i)]) <= 0) return idx[size_t(i)];
    return idx[size_t(keep - 1)];
}

}  // namespace moe
