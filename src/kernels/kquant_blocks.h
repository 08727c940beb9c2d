// Reading ggml's blocks, shared by the dequantizers and the dot kernels (scalar and SIMD):
// unaligned little-endian loads, and the packed 6-bit scales of Q4_K / Q5_K.
#pragma once
#include <cstdint>
#include <cstring>

namespace moe::kq {

inline const uint8_t* bytes(const void* p) { return static_cast<const uint8_t*>(p); }
inline float f32_at(const uint8_t* p) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
}
inline int16_t i16_at(const uint8_t* p) {
    int16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block
// from its 12 bytes of packed scales q.
inline void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// The Q8_K activation block (292 bytes): f32 d, 256 int8, 16 int16 sums of 16.
constexpr int kQ8KBytes = 4 + 256 + 32;

// sum_j m_j (sums of the activations over sub-blocks j and j + 1) of a Q4_K / Q5_K block pair
// j, j + 1 (the mins' term), from the Q8_K block's 16 sums.
inline int32_t k4_mins_pair(const uint8_t* q8k, int j, int m1, int m2) {
    const uint8_t* bs = q8k + 4 + 256 + 4 * j;
    return m1 * (i16_at(bs) + i16_at(bs + 2)) + m2 * (i16_at(bs + 4) + i16_at(bs + 6));
}

}  // namespace moe::kq
