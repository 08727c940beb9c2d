#include "moe/rng.h"

#include <cmath>

namespace moe {

static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

Rng::Rng(uint64_t seed) {
    for (auto& s : state) s = splitmix64(seed);
}

uint64_t Rng::next_u64() {
    uint64_t* s = state;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float Rng::uniform() { return float(next_u64() >> 40) * (1.0f / 16777216.0f); }

float Rng::normal() {
    // Box-Muller on (0, 1]: never log(0).
    double u1 = (double(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = double(next_u64() >> 11) * (1.0 / 9007199254740992.0);
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

void Rng::fill_normal(float* out, int64_t n, float mean, float stddev) {
    for (int64_t i = 0; i < n; ++i) out[i] = mean + stddev * normal();
}

void Rng::fill_uniform(float* out, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; ++i) out[i] = lo + (hi - lo) * uniform();
}

}  // namespace moe
