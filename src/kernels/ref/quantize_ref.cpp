// The definition of quantization f32 -> F16 / BF16 / Q8_0 / Q4_0, written from ggml's reference
// quantizers (quantize_row_q8_0_ref, quantize_row_q4_0_ref, GGML_FP32_TO_BF16) as gguf-py's
// numpy twins (gguf.quants) spell them: the same f32 operations in the same order, so the bytes
// are identical (tests/fixtures/quant_ref.safetensors, tools/gen_quant_fixtures.py). Contraction
// is off: x * id + 8.5f must round twice, as numpy does.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "moe/bf16.h"
#include "moe/error.h"
#include "moe/quant.h"

namespace moe {

uint16_t fp32_to_fp16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) {  // NaN: keep the top of the payload, never turn it into infinity
        uint32_t h = 0x7c00u | ((ax & 0x7fffffu) >> 13);
        return uint16_t(sign | (h == 0x7c00u ? 0x7c01u : h));
    }
    if (ax >= 0x47800000u) return uint16_t(sign | 0x7c00u);  // >= 65536 (and inf): infinity
    const uint32_t e = ax >> 23, m = ax & 0x7fffffu;
    if (e < 113) {  // below 2^-14: a half subnormal, in units of 2^-24
        if (e < 102) return uint16_t(sign);  // below 2^-25: rounds to zero
        const uint32_t mm = m | 0x800000u, s = 126 - e;
        uint32_t h = mm >> s;
        const uint32_t rem = mm & ((1u << s) - 1), half = 1u << (s - 1);
        if (rem > half || (rem == half && (h & 1u))) ++h;  // may carry into the smallest normal
        return uint16_t(sign | h);
    }
    uint32_t h = ((e - 112) << 10) | (m >> 13);
    const uint32_t rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry may reach infinity: right
    return uint16_t(sign | h);
}

namespace {

uint8_t* bytes(void* p) { return static_cast<uint8_t*>(p); }
void put_half(uint8_t* p, float v) {
    const uint16_t h = fp32_to_fp16(v);
    std::memcpy(p, &h, 2);
}

void quant_f32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, size_t(n) * 4); }

void quant_f16(const float* x, void* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) put_half(bytes(dst) + 2 * i, x[i]);
}

void quant_bf16(const float* x, void* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t b = float_to_bf16(x[i]).bits;
        std::memcpy(bytes(dst) + 2 * i, &b, 2);
    }
}

// Block: f16 d, 32 x int8 q; x = d q with d = max |x| / 127, q = round-half-away(x / d).
void quant_q8_0(const float* x, void* dst, int64_t n) {
    for (int64_t b = 0; b < n / 32; ++b, x += 32) {
        uint8_t* y = bytes(dst) + 34 * b;
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_half(y, d);
        for (int j = 0; j < 32; ++j) y[2 + j] = uint8_t(int8_t(std::round(x[j] * id)));
    }
}

// Block: f16 d, 16 bytes of 4-bit q (value j in the low nibble of byte j, value 16 + j in the
// high nibble); x = d (q - 8) with d = -max / 8 for the value of largest magnitude (the first).
void quant_q4_0(const float* x, void* dst, int64_t n) {
    for (int64_t b = 0; b < n / 32; ++b, x += 32) {
        uint8_t* y = bytes(dst) + 18 * b;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; ++j)
            if (amax < std::fabs(x[j])) amax = std::fabs(x[j]), max = x[j];
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_half(y, d);
        for (int j = 0; j < 16; ++j) {
            const float x0 = x[j] * id, x1 = x[16 + j] * id;
            const int q0 = std::min(15, int(int8_t(x0 + 8.5f))), q1 = std::min(15, int(int8_t(x1 + 8.5f)));
            y[2 + j] = uint8_t(q0 | (q1 << 4));
        }
    }
}

using QuantFn = void (*)(const float*, void*, int64_t);

QuantFn quant_fn(GgmlType type) {
    switch (type) {
        case GgmlType::f32: return quant_f32;
        case GgmlType::f16: return quant_f16;
        case GgmlType::bf16: return quant_bf16;
        case GgmlType::q8_0: return quant_q8_0;
        case GgmlType::q4_0: return quant_q4_0;
        default: return nullptr;
    }
}

}  // namespace

bool can_quantize(GgmlType type) { return quant_fn(type) != nullptr; }

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
    const GgmlTypeInfo& t = ggml_type_info(type);
    QuantFn fn = quant_fn(type);
    MOE_CHECK(fn, "quantize", std::string("quantizing to ") + t.name + " is not supported; supported: F32 F16 BF16 Q8_0 Q4_0");
    MOE_CHECK(n >= 0 && n % t.block_size == 0, "quantize",
              std::string(t.name) + " rows hold a multiple of " + std::to_string(t.block_size) + " values, got " +
                  std::to_string(n));
    fn(src, dst, n);
}

}  // namespace moe
