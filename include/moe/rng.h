// Seeded, reproducible random numbers: xoshiro256** seeded through splitmix64, the same
// stream on every platform (std::normal_distribution is not portable across libraries).
#pragma once
#include <cstdint>

namespace moe {

class Rng {
public:
    explicit Rng(uint64_t seed = 0);
    uint64_t next_u64();
    float uniform();   // [0, 1)
    float normal();    // N(0, 1), Box-Muller
    void fill_normal(float* out, int64_t n, float mean, float stddev);
    void fill_uniform(float* out, int64_t n, float lo, float hi);

    // The full state, for checkpoints.
    uint64_t state[4];
};

}  // namespace moe
