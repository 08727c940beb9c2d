// The definition of the quantized dot products (include/moe/qmatmul.h) and of activation
// quantization, block by block from the ggml layouts (docs/formats.md). Integer sums are
// exact; each block adds float(integer sum) times its scales to one f32 accumulator, in block
// order. The SIMD twins compute the same integers and may add the block terms in another order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "moe/bf16.h"
#include "moe/error.h"
#include "moe/qmatmul.h"
#include "moe/qpack.h"
#include "../kquant_blocks.h"

namespace moe {
namespace {

using kq::bytes;
using kq::f32_at;
using kq::kQ8KBytes;
float half_at(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return fp16_to_fp32(h);
}
const int8_t* i8(const uint8_t* p) { return reinterpret_cast<const int8_t*>(p); }

float dot_f32(const void* w, const void* x, int64_t n) {
    const float* a = static_cast<const float*>(w);
    const float* b = static_cast<const float*>(x);
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

float dot_f16(const void* w, const void* x, int64_t n) {
    const float* b = static_cast<const float*>(x);
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += half_at(bytes(w) + 2 * i) * b[i];
    return s;
}

float dot_bf16(const void* w, const void* x, int64_t n) {
    const float* b = static_cast<const float*>(x);
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes(w) + 2 * i, 2);
        s += bf16_to_float(bf16{h}) * b[i];
    }
    return s;
}

// Value j (0..31) of a block's quants: Q8_0 (32 int8), Q4_0 (16 bytes of nibbles, value j in
// the low nibble of byte j, value 16 + j in the high one, stored as q + 8).
int q8_0_value(const uint8_t* qs, int j) { return int8_t(qs[j]); }
int q4_0_value(const uint8_t* qs, int j) { return (j < 16 ? qs[j] & 0xf : qs[j - 16] >> 4) - 8; }

// Blocks of 32 with an f16 scale first (Q8_0: 34 bytes, Q4_0: 18) . Q8_0 activations.
template <int64_t kBytes, int (*value)(const uint8_t*, int)>
float dot_32(const void* w, const void* x, int64_t n) {
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; ++b) {
        const uint8_t* wb = bytes(w) + kBytes * b;
        const uint8_t* xb = bytes(x) + 34 * b;
        int32_t sum = 0;
        for (int j = 0; j < 32; ++j) sum += value(wb + 2, j) * int32_t(i8(xb + 2)[j]);
        s += float(sum) * (half_at(wb) * half_at(xb));
    }
    return s;
}

// Packed Q4_0 / Q8_0 (include/moe/qpack.h) . Q8_0: each row's block sum as dot_32 computes it.
// Value k of row r lies in byte k % 8 of the chunk 2 (k / 8) + r / 4 (Q4_0: k < 16, value
// k + 16 the high nibble of value k's byte).
template <int64_t kBytes, int (*value)(const uint8_t*, int)>
void dot_x8(const void* w, const void* x, int64_t n, float* y) {
    constexpr int64_t kQuant = kBytes - 2;
    float s[8] = {};
    uint8_t quants[kQuant];  // one row's quant bytes, in the file's order
    for (int64_t b = 0; b < n / 32; ++b) {
        const uint8_t* o = bytes(w) + 8 * kBytes * b;
        const uint8_t* xb = bytes(x) + 34 * b;
        for (int i = 0; i < 8; ++i) {
            const int r = kQx8ScaleRow[i];
            for (int64_t k = 0; k < kQuant; ++k) quants[k] = o[16 + 32 * (2 * (k / 8) + r / 4) + 8 * (r % 4) + k % 8];
            int32_t sum = 0;
            for (int j = 0; j < 32; ++j) sum += value(quants, j) * int32_t(i8(xb + 2)[j]);
            s[r] += float(sum) * (half_at(o + 2 * i) * half_at(xb));
        }
    }
    for (int r = 0; r < 8; ++r) y[r] = s[r];
}

// Many rows of x: dot_x8 for each.
template <int64_t kBytes, int (*value)(const uint8_t*, int)>
void gemm_x8(const void* w, const QxRows& x, int64_t i0, int64_t nx, float* y, int64_t ldy, float beta) {
    for (int64_t i = i0; i < i0 + nx; ++i) {
        float v[8];
        dot_x8<kBytes, value>(w, x.q + i * x.stride, 32 * x.nb, v);
        for (int r = 0; r < 8; ++r) y[i * ldy + r] = beta == 0.0f ? v[r] : beta * y[i * ldy + r] + v[r];
    }
}

// Q4_K . Q8_K: x_w = (d sc_j) q - (dmin m_j) per sub-block j of 32, so
// w . x = d d_x sum_j sc_j (q . y)_j - dmin d_x sum_j m_j (sum of y over j).
// Q5_K (kHigh): the same with a fifth bit per value, bit j of qh[l] for value l of sub-block j.
template <bool kHigh>
float dot_k4(const void* w, const void* x, int64_t n) {
    constexpr int64_t kBlock = kHigh ? 176 : 144;
    float s = 0.0f;
    for (int64_t b = 0; b < n / 256; ++b) {
        const uint8_t* wb = bytes(w) + kBlock * b;
        const uint8_t* xb = bytes(x) + kQ8KBytes * b;
        const int8_t* y = i8(xb + 4);
        const uint8_t* qh = wb + 16;
        const uint8_t* q = wb + (kHigh ? 48 : 16);
        int32_t sum = 0, mins = 0;
        for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
            int sc1, m1, sc2, m2;
            kq::scale_min_k4(j, wb + 4, &sc1, &m1);
            kq::scale_min_k4(j + 1, wb + 4, &sc2, &m2);
            int32_t s1 = 0, s2 = 0;
            for (int l = 0; l < 32; ++l) {
                const int h1 = kHigh ? ((qh[l] >> j) & 1) << 4 : 0, h2 = kHigh ? ((qh[l] >> (j + 1)) & 1) << 4 : 0;
                s1 += int32_t((q[l] & 0xf) | h1) * int32_t(y[l]);
                s2 += int32_t((q[l] >> 4) | h2) * int32_t(y[l + 32]);
            }
            sum += sc1 * s1 + sc2 * s2;
            mins += kq::k4_mins_pair(xb, j, m1, m2);
        }
        const float dx = f32_at(xb);
        s += dx * half_at(wb) * float(sum) - dx * half_at(wb + 2) * float(mins);
    }
    return s;
}

// Q6_K . Q8_K: x_w = (d sc_i) (q - 32) per sub-block i of 16.
float dot_q6_k(const void* w, const void* x, int64_t n) {
    float s = 0.0f;
    for (int64_t b = 0; b < n / 256; ++b) {
        const uint8_t* wb = bytes(w) + 210 * b;
        const uint8_t* xb = bytes(x) + kQ8KBytes * b;
        const uint8_t* ql = wb;
        const uint8_t* qh = wb + 128;
        const int8_t* sc = i8(wb + 192);
        const int8_t* y = i8(xb + 4);
        int32_t sum = 0;
        for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
            int32_t part[8] = {};  // per sub-block of 16: is + 2 k for value group k
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                part[is + 0] += (((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32) * y[l];
                part[is + 2] += (((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32) * y[l + 32];
                part[is + 4] += (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * y[l + 64];
                part[is + 6] += (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * y[l + 96];
            }
            for (int i = 0; i < 8; ++i) sum += int32_t(sc[i]) * part[i];
        }
        s += f32_at(xb) * half_at(wb + 208) * float(sum);
    }
    return s;
}

// Activations as ggml's x86 (AVX / AVX2 / AVX-512) quantize_row_q8_0 rounds them, which is
// what llama.cpp runs on these machines: d = max|x| / 127 stored as f16, q = x * (127 / max|x|)
// rounded half to even. (The file quantizer, quantize_row_q8_0_ref, divides by d and rounds
// half away from zero; the two differ in the last place now and then.)
void quantize_q8_0_act(const float* x, void* dst, int64_t n) {
    for (int64_t b = 0; b < n / 32; ++b, x += 32) {
        uint8_t* y = static_cast<uint8_t*>(dst) + 34 * b;
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const uint16_t d = fp32_to_fp16(amax / 127.0f);
        std::memcpy(y, &d, 2);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        for (int j = 0; j < 32; ++j) y[2 + j] = uint8_t(int8_t(std::nearbyint(x[j] * id)));
    }
}

// ggml's quantize_row_q8_K_ref: d = max / -127 for the value of largest magnitude (so that one
// maps to -127), q = min(127, nearest(x / d)), and the 16 sums of 16.
void quantize_q8_k(const float* x, void* dst, int64_t n) {
    for (int64_t b = 0; b < n / 256; ++b, x += 256) {
        uint8_t* y = static_cast<uint8_t*>(dst) + kQ8KBytes * b;
        int8_t* q = reinterpret_cast<int8_t*>(y + 4);
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 256; ++j)
            if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
        float d = 0.0f;
        if (amax == 0.0f) {
            std::memset(q, 0, 256);
        } else {
            const float iscale = -127.0f / max;
            for (int j = 0; j < 256; ++j) q[j] = int8_t(std::min(127, int(std::nearbyint(iscale * x[j]))));
            d = 1.0f / iscale;
        }
        std::memcpy(y, &d, 4);
        for (int j = 0; j < 16; ++j) {
            int16_t sum = 0;
            for (int l = 0; l < 16; ++l) sum = int16_t(sum + q[16 * j + l]);
            std::memcpy(y + 4 + 256 + 2 * j, &sum, 2);
        }
    }
}

}  // namespace

void quantize_activations(GgmlType act, const float* x, void* dst, int64_t n) {
    switch (act) {
        case GgmlType::f32: std::memcpy(dst, x, size_t(n) * 4); return;
        case GgmlType::q8_0:
            MOE_CHECK(n % 32 == 0, "quantize_activations", "Q8_0 rows hold a multiple of 32 values, got " + std::to_string(n));
            quantize_q8_0_act(x, dst, n);
            return;
        case GgmlType::q8_k:
            MOE_CHECK(n % 256 == 0, "quantize_activations", "Q8_K rows hold a multiple of 256 values, got " + std::to_string(n));
            quantize_q8_k(x, dst, n);
            return;
        default: fail("quantize_activations", std::string("no activation format ") + ggml_type_name(act));
    }
}

const QDotTable kQDotScalar = {CpuPath::scalar, dot_f32, dot_f16, dot_bf16, dot_32<34, q8_0_value>, dot_32<18, q4_0_value>, dot_k4<false>, dot_k4<true>, dot_q6_k,
                               dot_x8<18, q4_0_value>, dot_x8<34, q8_0_value>, gemm_x8<18, q4_0_value>, gemm_x8<34, q8_0_value>};

}  // namespace moe
