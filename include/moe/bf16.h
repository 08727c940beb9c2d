// bfloat16 storage type: the upper 16 bits of an IEEE f32. Conversion from f32 rounds to
// nearest even (as PyTorch and the AVX512-BF16 instructions do); NaN stays NaN.
#pragma once
#include <cstdint>
#include <cstring>

namespace moe {

struct bf16 {
    uint16_t bits;
};

inline float bf16_to_float(bf16 v) {
    uint32_t u = uint32_t(v.bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline bf16 float_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40)};  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return bf16{uint16_t(u >> 16)};
}

}  // namespace moe
