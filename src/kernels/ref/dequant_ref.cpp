// The definition of dequantization, block by block, written from the ggml block layouts
// (docs/formats.md). Each value is computed with the same f32 operations in the same order as
// ggml's dequantize_row_* and gguf-py's numpy dequantize_blocks (no FMA: this file is compiled
// for baseline x86-64, and contraction is off), so the results are bit-identical to both.
// GCC fuses a multiply and an add into an FMA, even across intrinsics, unless told not to. The
// products d * q of these formats happen to be exact in f32 (an f16 scale times a few-bit integer),
// so an FMA would round the same; contraction is off so that bit-equality does not rest on it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <cstring>

#include "moe/bf16.h"
#include "moe/quant.h"
#include "../kquant_blocks.h"

namespace moe {

float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0u);  // inf; NaN quieted
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {  // subnormal: normalise the mantissa
        exp = 113;
        while (!(mant & 0x400u)) mant <<= 1, --exp;
        bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

namespace {

const uint8_t* bytes(const void* p) { return static_cast<const uint8_t*>(p); }
float half_at(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return fp16_to_fp32(h);
}

void deq_f32(const void* src, float* dst, int64_t nb) { std::memcpy(dst, src, size_t(nb) * 4); }

void deq_f16(const void* src, float* dst, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) dst[i] = half_at(bytes(src) + 2 * i);
}

void deq_bf16(const void* src, float* dst, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        uint16_t b;
        std::memcpy(&b, bytes(src) + 2 * i, 2);
        dst[i] = bf16_to_float(bf16{b});
    }
}

// Q4_0 (18 bytes): f16 d, 16 bytes of nibbles; x[j] = d (lo(qs[j]) - 8), x[j+16] = d (hi(qs[j]) - 8).
void deq_q4_0(const void* src, float* dst, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const uint8_t* b = bytes(src) + 18 * i;
        const float d = half_at(b);
        for (int j = 0; j < 16; ++j) {
            dst[j] = d * float(int(b[2 + j] & 0xf) - 8);
            dst[j + 16] = d * float(int(b[2 + j] >> 4) - 8);
        }
    }
}

// Q4_1 (20 bytes): f16 d, f16 m, 16 bytes of nibbles; x = d q + m.
void deq_q4_1(const void* src, float* dst, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const uint8_t* b = bytes(src) + 20 * i;
        const float d = half_at(b), m = half_at(b + 2);
        for (int j = 0; j < 16; ++j) {
            dst[j] = d * float(b[4 + j] & 0xf) + m;
            dst[j + 16] = d * float(b[4 + j] >> 4) + m;
        }
    }
}

// Q5_0 (22 bytes): f16 d, u32 qh (bit j = fifth bit of value j), 16 bytes of nibbles;
// x = d (q - 16).
void deq_q5_0(const void* src, float* dst, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const uint8_t* b = bytes(src) + 22 * i;
        const float d = half_at(b);
        uint32_t qh;
        std::memcpy(&qh, b + 2, 4);
        for (int j = 0; j < 16; ++j) {
            const int lo = (b[6 + j] & 0xf) | int(((qh >> j) & 1u) << 4);
            const int hi = (b[6 + j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
            dst[j] = d * float(lo - 16);
            dst[j + 16] = d * float(hi - 16);
        }
    }
}

// Q5_1 (24 bytes): f16 d, f16 m, u32 qh, 16 bytes of nibbles; x = d q + m.
void deq_q5_1(const void* src, float* dst, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const uint8_t* b = bytes(src) + 24 * i;
        const float d = half_at(b), m = half_at(b + 2);
        uint32_t qh;
        std::memcpy(&qh, b + 4, 4);
        for (int j = 0; j < 16; ++j) {
            const int lo = (b[8 + j] & 0xf) | int(((qh >> j) & 1u) << 4);
            const int hi = (b[8 + j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
            dst[j] = d * float(lo) + m;
            dst[j + 16] = d * float(hi) + m;
        }
    }
}

// Q8_0 (34 bytes): f16 d, 32 int8; x = q d.
void deq_q8_0(const void* src, float* dst, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const uint8_t* b = bytes(src) + 34 * i;
        const float d = half_at(b);
        for (int j = 0; j < 32; ++j) dst[j] = float(int8_t(b[2 + j])) * d;
    }
}

using kq::scale_min_k4;

// Q4_K (144 bytes): f16 d, f16 dmin, 12 bytes of packed 6-bit scales and mins, 128 bytes of
// nibbles. 8 sub-blocks of 32: x = (d sc) q - (dmin m); each 32 bytes of qs hold two sub-blocks
// (low nibbles, then high nibbles).
// Q5_K (kHigh, 176 bytes): as Q4_K plus 32 bytes qh between the scales and qs: bit 2k of qh[l]
// is the fifth bit of value l of sub-block 2k, bit 2k+1 that of sub-block 2k+1.
template <bool kHigh>
void deq_k4(const void* src, float* dst, int64_t nb) {
    constexpr int64_t kBlock = kHigh ? 176 : 144;
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = bytes(src) + kBlock * i;
        const float d = half_at(b), dmin = half_at(b + 2);
        const uint8_t* scales = b + 4;
        const uint8_t* qh = b + 16;
        const uint8_t* q = b + (kHigh ? 48 : 16);
        for (int j = 0; j < 8; j += 2, q += 32) {
            int sc, m;
            scale_min_k4(j, scales, &sc, &m);
            const float d1 = d * float(sc), m1 = dmin * float(m);
            scale_min_k4(j + 1, scales, &sc, &m);
            const float d2 = d * float(sc), m2 = dmin * float(m);
            for (int l = 0; l < 32; ++l)
                *dst++ = d1 * float((q[l] & 0xf) | (kHigh ? ((qh[l] >> j) & 1) << 4 : 0)) - m1;
            for (int l = 0; l < 32; ++l)
                *dst++ = d2 * float((q[l] >> 4) | (kHigh ? ((qh[l] >> (j + 1)) & 1) << 4 : 0)) - m2;
        }
    }
}

// Q6_K (210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales,
// f16 d. 16 sub-blocks of 16: x = (d sc) (q - 32). Each half of 128 values uses 64 bytes of ql
// and 32 of qh: value l + 32 k (k = 0..3) takes nibble k / 2 of ql[l + 32 (k % 2)] and bits
// 2k..2k+1 of qh[l].
void deq_q6_k(const void* src, float* dst, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = bytes(src) + 210 * i;
        const float d = half_at(b + 208);
        const uint8_t* ql = b;
        const uint8_t* qh = b + 128;
        const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
        for (int half = 0; half < 2; ++half, dst += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                dst[l] = (d * float(sc[is])) * float(q1);
                dst[l + 32] = (d * float(sc[is + 2])) * float(q2);
                dst[l + 64] = (d * float(sc[is + 4])) * float(q3);
                dst[l + 96] = (d * float(sc[is + 6])) * float(q4);
            }
        }
    }
}

}  // namespace

const DequantTable kDequantScalar = {CpuPath::scalar, deq_f32,  deq_f16,  deq_bf16, deq_q4_0, deq_q4_1,
                                     deq_q5_0,        deq_q5_1, deq_q8_0, deq_k4<false>, deq_k4<true>, deq_q6_k};

}  // namespace moe
