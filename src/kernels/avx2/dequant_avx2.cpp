// AVX2 + F16C twins of kernels/ref/dequant_ref.cpp (this file is compiled with -mavx2 -mfma
// -mf16c). Integers are unpacked 32 at a time with byte shuffles and masks, widened 8 at a time
// to f32, and scaled with the same multiplies and subtractions, in the same order, as the scalar
// definition: separate mul and sub, never an FMA, so the results are bit-identical.
// Types without a twin here (Q4_1, Q5_0, Q5_1, Q5_K) call the scalar definition.
// GCC fuses a multiply and an add into an FMA, even across intrinsics, unless told not to. The
// products d * q of these formats happen to be exact in f32 (an f16 scale times a few-bit integer),
// so an FMA would round the same; contraction is off so that bit-equality does not rest on it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <immintrin.h>

#include <cstring>

#include "moe/quant.h"
#include "../kquant_blocks.h"

namespace moe {
namespace {

const uint8_t* bytes(const void* p) { return static_cast<const uint8_t*>(p); }
float half_at(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// The k-th group of 8 int8 (k = 0..3) of a 32-byte vector, as 8 floats.
template <int k>
inline __m256 i8_group_to_ps(__m256i v) {
    __m128i half = k < 2 ? _mm256_castsi256_si128(v) : _mm256_extracti128_si256(v, 1);
    if (k % 2) half = _mm_srli_si128(half, 8);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(half));
}

// dst[0..32) = float(v[i]) * d (int8 lanes).
inline void store_scaled_i8x32(float* dst, __m256i v, __m256 d) {
    _mm256_storeu_ps(dst + 0, _mm256_mul_ps(i8_group_to_ps<0>(v), d));
    _mm256_storeu_ps(dst + 8, _mm256_mul_ps(i8_group_to_ps<1>(v), d));
    _mm256_storeu_ps(dst + 16, _mm256_mul_ps(i8_group_to_ps<2>(v), d));
    _mm256_storeu_ps(dst + 24, _mm256_mul_ps(i8_group_to_ps<3>(v), d));
}

void deq_f32(const void* src, float* dst, int64_t nb) { std::memcpy(dst, src, size_t(nb) * 4); }

void deq_f16(const void* src, float* dst, int64_t nb) {
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes(src) + 2 * i))));
    kDequantScalar.f16(bytes(src) + 2 * i, dst + i, nb - i);
}

void deq_bf16(const void* src, float* dst, int64_t nb) {
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes(src) + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
    }
    kDequantScalar.bf16(bytes(src) + 2 * i, dst + i, nb - i);
}

void deq_q8_0(const void* src, float* dst, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const uint8_t* b = bytes(src) + 34 * i;
        __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
        store_scaled_i8x32(dst, q, _mm256_set1_ps(half_at(b)));
    }
}

void deq_q4_0(const void* src, float* dst, int64_t nb) {
    const __m128i low4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const uint8_t* b = bytes(src) + 18 * i;
        __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
        __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, low4), eight);
        __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), low4), eight);
        store_scaled_i8x32(dst, _mm256_set_m128i(hi, lo), _mm256_set1_ps(half_at(b)));
    }
}

// Unsigned bytes 0..63 as int8 lanes: dst[0..32) = d * float(v[i]) - m.
inline void store_affine_u8x32(float* dst, __m256i v, __m256 d, __m256 m) {
    _mm256_storeu_ps(dst + 0, _mm256_sub_ps(_mm256_mul_ps(d, i8_group_to_ps<0>(v)), m));
    _mm256_storeu_ps(dst + 8, _mm256_sub_ps(_mm256_mul_ps(d, i8_group_to_ps<1>(v)), m));
    _mm256_storeu_ps(dst + 16, _mm256_sub_ps(_mm256_mul_ps(d, i8_group_to_ps<2>(v)), m));
    _mm256_storeu_ps(dst + 24, _mm256_sub_ps(_mm256_mul_ps(d, i8_group_to_ps<3>(v)), m));
}

using kq::scale_min_k4;

void deq_q4_k(const void* src, float* dst, int64_t nb) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = bytes(src) + 144 * i;
        const float d = half_at(b), dmin = half_at(b + 2);
        const uint8_t* q = b + 16;
        for (int j = 0; j < 8; j += 2, q += 32, dst += 64) {
            int sc, m;
            __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
            scale_min_k4(j, b + 4, &sc, &m);
            store_affine_u8x32(dst, _mm256_and_si256(qs, low4), _mm256_set1_ps(d * float(sc)),
                               _mm256_set1_ps(dmin * float(m)));
            scale_min_k4(j + 1, b + 4, &sc, &m);
            store_affine_u8x32(dst + 32, _mm256_and_si256(_mm256_srli_epi16(qs, 4), low4),
                               _mm256_set1_ps(d * float(sc)), _mm256_set1_ps(dmin * float(m)));
        }
    }
}

// 16 values with scale s1, then 16 with scale s2: dst = s * float(v) (int8 lanes).
inline void store_q6_group(float* dst, __m256i v, float s1, float s2) {
    const __m256 a = _mm256_set1_ps(s1), c = _mm256_set1_ps(s2);
    _mm256_storeu_ps(dst + 0, _mm256_mul_ps(a, i8_group_to_ps<0>(v)));
    _mm256_storeu_ps(dst + 8, _mm256_mul_ps(a, i8_group_to_ps<1>(v)));
    _mm256_storeu_ps(dst + 16, _mm256_mul_ps(c, i8_group_to_ps<2>(v)));
    _mm256_storeu_ps(dst + 24, _mm256_mul_ps(c, i8_group_to_ps<3>(v)));
}

void deq_q6_k(const void* src, float* dst, int64_t nb) {
    const __m256i low4 = _mm256_set1_epi8(0x0f), low2 = _mm256_set1_epi8(0x03), off = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = bytes(src) + 210 * i;
        const float d = half_at(b + 208);
        const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
        for (int half = 0; half < 2; ++half, dst += 128, sc += 8) {
            const uint8_t* ql = b + 64 * half;
            __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
            __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
            __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * half));
            auto high = [&](int shift) {  // bits shift..shift+1 of qh, moved to bits 4..5
                return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, shift), low2), 4);
            };
            __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, low4), high(0));
            __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, low4), high(2));
            __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), high(4));
            __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4), high(6));
            store_q6_group(dst + 0, _mm256_sub_epi8(q1, off), d * float(sc[0]), d * float(sc[1]));
            store_q6_group(dst + 32, _mm256_sub_epi8(q2, off), d * float(sc[2]), d * float(sc[3]));
            store_q6_group(dst + 64, _mm256_sub_epi8(q3, off), d * float(sc[4]), d * float(sc[5]));
            store_q6_group(dst + 96, _mm256_sub_epi8(q4, off), d * float(sc[6]), d * float(sc[7]));
        }
    }
}

void deq_q4_1(const void* s, float* d, int64_t nb) { kDequantScalar.q4_1(s, d, nb); }
void deq_q5_0(const void* s, float* d, int64_t nb) { kDequantScalar.q5_0(s, d, nb); }
void deq_q5_1(const void* s, float* d, int64_t nb) { kDequantScalar.q5_1(s, d, nb); }
void deq_q5_k(const void* s, float* d, int64_t nb) { kDequantScalar.q5_k(s, d, nb); }

}  // namespace

const DequantTable kDequantAvx2 = {CpuPath::avx2, deq_f32,  deq_f16,  deq_bf16, deq_q4_0, deq_q4_1,
                                   deq_q5_0,      deq_q5_1, deq_q8_0, deq_q4_k, deq_q5_k, deq_q6_k};

}  // namespace moe
