// AVX2 + FMA + F16C twins of kernels/ref/qdot_ref.cpp. Integer block sums are exact and equal
// to the scalar definition's: 8-bit products through maddubs (unsigned x signed, the sign moved
// onto the activations: |w| . sign(y, w)), widened by madd; each block's integer vector is
// scaled and accumulated in f32 lanes, so only the order of the float additions differs.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

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
    return _cvtsh_ss(h);
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline __m256i loadu(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// The 8 int32 sums of 4 products of 32 signed int8 pairs a . b. |a| is read unsigned (so a = -128
// is right); b must lie in -127..127, as quantized activations do (sign(-128) overflows).
inline __m256i dot_i8(__m256i a, __m256i b) {
    const __m256i ua = _mm256_sign_epi8(a, a), sb = _mm256_sign_epi8(b, a);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ua, sb), _mm256_set1_epi16(1));
}

// Decode reads each weight row once from memory, and the hardware prefetcher alone leaves the
// loads waiting: the bytes kPrefetch ahead are requested early (measured on this Zen3 at 2
// threads: mixtral-mini Q4_0 tg 97 -> 137 tokens/s, Q8_0 67 -> 102; 512 bytes ahead helped
// little, 4096 to 16384 the same), and two blocks per step go to two accumulators.
constexpr int64_t kPrefetch = 4096;
inline void prefetch_lines(const uint8_t* p, int lines) {
    for (int i = 0; i < lines; ++i) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetch + 64 * i), _MM_HINT_T0);
}

// 8 weights as floats, and one for the tail, per wide type.
inline __m256 f32x8(const float* p) { return _mm256_loadu_ps(p); }
inline float f32x1(float v) { return v; }
inline __m256 f16x8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline float f16x1(uint16_t v) { return _cvtsh_ss(v); }
inline __m256 bf16x8(const uint16_t* p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
inline float bf16x1(uint16_t v) {
    const uint32_t u = uint32_t(v) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// F32 / F16 / BF16 weights . f32 activations: 16 per step on two accumulators, scalar tail.
template <class T, __m256 (*load8)(const T*), float (*load1)(T)>
float dot_wide(const void* w, const void* x, int64_t n) {
    const T* a = static_cast<const T*>(w);
    const float* b = static_cast<const float*>(x);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        prefetch_lines(reinterpret_cast<const uint8_t*>(a + i), 1);
        s0 = _mm256_fmadd_ps(load8(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(load8(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; ++i) s += load1(a[i]) * b[i];
    return s;
}

// The 32 int8 weights of a Q8_0 block, and of a Q4_0 block as signed q - 8 (values 0..15 the
// low nibbles, 16..31 the high).
inline __m256i q8_0_values(const uint8_t* qs) { return loadu(qs); }
inline __m256i q4_0_values(const uint8_t* qs) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m = _mm_set1_epi8(0x0f);
    const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
    return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
}

// Blocks of 32 with an f16 scale first (Q8_0: 34 bytes, Q4_0: 18) . Q8_0 activations.
template <int64_t kBytes, __m256i (*values)(const uint8_t*)>
float dot_32(const void* w, const void* x, int64_t n) {
    constexpr int kLines = (2 * kBytes + 63) / 64;  // lines per step of two blocks
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const int64_t nb = n / 32;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t* wb = bytes(w) + kBytes * b;
        const uint8_t* xb = bytes(x) + 34 * b;
        prefetch_lines(wb, kLines);
        const __m256i s0 = dot_i8(values(wb + 2), loadu(xb + 2));
        const __m256i s1 = dot_i8(values(wb + kBytes + 2), loadu(xb + 36));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_at(wb) * half_at(xb)), _mm256_cvtepi32_ps(s0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half_at(wb + kBytes) * half_at(xb + 34)), _mm256_cvtepi32_ps(s1), acc1);
    }
    for (; b < nb; ++b) {
        const uint8_t* wb = bytes(w) + kBytes * b;
        const uint8_t* xb = bytes(x) + 34 * b;
        const __m256i s = dot_i8(values(wb + 2), loadu(xb + 2));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_at(wb) * half_at(xb)), _mm256_cvtepi32_ps(s), acc0);
    }
    return hsum(_mm256_add_ps(acc0, acc1));
}

// Packed Q4_0 / Q8_0 (include/moe/qpack.h) . Q8_0, 8 rows at once. Chunk c of a block holds 4
// rows' quant bytes 8 (c / 2) .. + 7, broadcast activations meet them in each row's 8-byte lane.
// Q4_0: the low nibbles meet activations 8 (c / 2) .., the high ones 16 + 8 (c / 2) ..; nibbles
// stay unsigned (0..15) for maddubs and 8 sum(x) comes off every row, four products per row
// adding in int16 (|.| <= 4 2 15 127 = 15240, the 8 sum(x) term at most 4 2 8 127 = 8128).
// Q8_0: |q| . sign(x, q) (dot_i8), one madd per chunk. The two int32 vectors of rows 0-3 and
// 4-7 leave through one horizontal add, in kQx8ScaleRow's order, the order of the packed scales.
struct Q4x8 {
    static constexpr int64_t kBlock = 144;
    __m256i lo[4], hi[4];
    void load(const uint8_t* o) {
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        for (int c = 0; c < 4; ++c) {
            const __m256i v = loadu(o + 16 + 32 * c);
            lo[c] = _mm256_and_si256(v, m4);
            hi[c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
    }
    // The 8 rows' integer sums with activation block xb (32 int8), minus sum8 = 8 sum(x).
    __m256i sums(const uint8_t* xb, int32_t sum8) const {
        int64_t xq[4];
        std::memcpy(xq, xb, 32);
        const __m256i x0 = _mm256_set1_epi64x(xq[0]), x8 = _mm256_set1_epi64x(xq[1]);
        const __m256i x16 = _mm256_set1_epi64x(xq[2]), x24 = _mm256_set1_epi64x(xq[3]);
        const __m256i ones = _mm256_set1_epi16(1);
        const __m256i r03 = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo[0], x0), _mm256_maddubs_epi16(hi[0], x16)),
                                             _mm256_add_epi16(_mm256_maddubs_epi16(lo[2], x8), _mm256_maddubs_epi16(hi[2], x24)));
        const __m256i r47 = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo[1], x0), _mm256_maddubs_epi16(hi[1], x16)),
                                             _mm256_add_epi16(_mm256_maddubs_epi16(lo[3], x8), _mm256_maddubs_epi16(hi[3], x24)));
        return _mm256_sub_epi32(_mm256_hadd_epi32(_mm256_madd_epi16(r03, ones), _mm256_madd_epi16(r47, ones)), _mm256_set1_epi32(sum8));
    }
};
struct Q8x8 {
    static constexpr int64_t kBlock = 272;
    const uint8_t* o = nullptr;
    __m256i a[8];  // |q| of each chunk (-128 reads as 128 unsigned), for every activation row
    void load(const uint8_t* block) {
        o = block;
        for (int c = 0; c < 8; ++c) a[c] = _mm256_abs_epi8(loadu(o + 16 + 32 * c));
    }
    __m256i sums(const uint8_t* xb, int32_t) const {
        int64_t xq[4];
        std::memcpy(xq, xb, 32);
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i r[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int c = 0; c < 8; ++c) {
            const __m256i sx = _mm256_sign_epi8(_mm256_set1_epi64x(xq[c / 2]), loadu(o + 16 + 32 * c));
            r[c % 2] = _mm256_add_epi32(r[c % 2], _mm256_madd_epi16(_mm256_maddubs_epi16(a[c], sx), ones));
        }
        return _mm256_hadd_epi32(r[0], r[1]);
    }
};

int32_t sum8_of(const uint8_t* xb) {  // 8 x the sum of a Q8_0 block's 32 values
    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), loadu(xb)), _mm256_set1_epi16(1));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return _mm_cvtsi128_si32(h);
}

inline void store_lanes(__m256 acc, float* y, float beta) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    for (int l = 0; l < 8; ++l) {
        float& o = y[kQx8ScaleRow[l]];
        o = beta == 0.0f ? lanes[l] : beta * o + lanes[l];
    }
}

template <class P>
void dot_x8(const void* w, const void* x, int64_t n, float* y) {
    __m256 acc = _mm256_setzero_ps();
    P p;
    for (int64_t b = 0; b < n / 32; ++b) {
        const uint8_t* o = bytes(w) + P::kBlock * b;
        const uint8_t* xb = bytes(x) + 34 * b;
        prefetch_lines(o, int(P::kBlock + 63) / 64);
        p.load(o);
        const __m256i s = p.sums(xb + 2, std::is_same_v<P, Q4x8> ? sum8_of(xb + 2) : 0);
        const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(o))), _mm256_set1_ps(half_at(xb)));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
    }
    store_lanes(acc, y, 0.0f);
}

// Many rows of x (prompts): a block's weights are unpacked once for NX rows of activations,
// whose f32 scales and 8 sum(x) come precomputed (QxRows). The same integer sums, scale products
// and accumulation order as dot_x8 (bit for bit).
template <class P, int NX>
void gemm_rows(const uint8_t* w, const QxRows& x, int64_t i0, __m256* acc) {
    for (int i = 0; i < NX; ++i) acc[i] = _mm256_setzero_ps();
    P p;
    for (int64_t b = 0; b < x.nb; ++b) {
        const uint8_t* o = w + P::kBlock * b;
        p.load(o);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(o)));
        for (int i = 0; i < NX; ++i) {
            const int64_t row = i0 + i;
            const __m256i s = p.sums(x.q + row * x.stride + 34 * b + 2, x.sum8[row * x.nb + b]);
            acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(x.d[row * x.nb + b])), _mm256_cvtepi32_ps(s), acc[i]);
        }
    }
}

template <class P>
void gemm_x8(const void* w, const QxRows& x, int64_t i0, int64_t nx, float* y, int64_t ldy, float beta) {
    __m256 acc[4];
    for (int64_t i = i0; i < i0 + nx;) {
        const int64_t k = std::min<int64_t>(4, i0 + nx - i);
        switch (k) {
            case 4: gemm_rows<P, 4>(bytes(w), x, i, acc); break;
            case 3: gemm_rows<P, 3>(bytes(w), x, i, acc); break;
            case 2: gemm_rows<P, 2>(bytes(w), x, i, acc); break;
            default: gemm_rows<P, 1>(bytes(w), x, i, acc); break;
        }
        for (int64_t j = 0; j < k; ++j, ++i) store_lanes(acc[j], y + i * ldy, beta);
    }
}

// Q4_K . Q8_K, and Q5_K (kHigh: bit j of every qh byte is the fifth bit of sub-block j).
template <bool kHigh>
float dot_k4(const void* w, const void* x, int64_t n) {
    constexpr int64_t kBlock = kHigh ? 176 : 144;
    const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    float s = 0.0f;
    for (int64_t b = 0; b < n / 256; ++b) {
        const uint8_t* wb = bytes(w) + kBlock * b;
        const uint8_t* xb = bytes(x) + kQ8KBytes * b;
        prefetch_lines(wb, 3);  // 176 / 144 bytes per block
        const __m256i hbits = kHigh ? loadu(wb + 16) : _mm256_setzero_si256();
        const uint8_t* q = wb + (kHigh ? 48 : 16);
        const uint8_t* y = xb + 4;
        __m256i sum = _mm256_setzero_si256();
        int32_t mins = 0;
        for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
            int sc1, m1, sc2, m2;
            kq::scale_min_k4(j, wb + 4, &sc1, &m1);
            kq::scale_min_k4(j + 1, wb + 4, &sc2, &m2);
            const __m256i v = loadu(q);
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (kHigh) {  // a 16-bit shift then a byte mask keeps each byte's own bit j (j + 1)
                const __m128i sj = _mm_cvtsi32_si128(j), sj1 = _mm_cvtsi32_si128(j + 1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hbits, sj), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hbits, sj1), one), 4));
            }
            // q (0..15, or 0..31) is unsigned: maddubs takes it as is (pairs < 2 31 127, no saturation).
            const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu(y)), _mm256_set1_epi16(int16_t(sc1)));
            const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, loadu(y + 32)), _mm256_set1_epi16(int16_t(sc2)));
            sum = _mm256_add_epi32(sum, _mm256_add_epi32(p1, p2));
            mins += kq::k4_mins_pair(xb, j, m1, m2);
        }
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_hadd_epi32(s4, s4);
        s4 = _mm_hadd_epi32(s4, s4);
        const float dx = f32_at(xb);
        s += dx * half_at(wb) * float(_mm_cvtsi128_si32(s4)) - dx * half_at(wb + 2) * float(mins);
    }
    return s;
}

float dot_q6_k(const void* w, const void* x, int64_t n) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; ++b) {
        const uint8_t* wb = bytes(w) + 210 * b;
        const uint8_t* xb = bytes(x) + kQ8KBytes * b;
        prefetch_lines(wb, 3);
        const uint8_t* ql = wb;
        const uint8_t* qh = wb + 128;
        const int8_t* sc = reinterpret_cast<const int8_t*>(wb + 192);
        const uint8_t* y = xb + 4;
        __m256i sum = _mm256_setzero_si256();
        for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
            const __m256i l0 = loadu(ql), l1 = loadu(ql + 32), h = loadu(qh);
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4)),
            };
            for (int k = 0; k < 4; ++k) {
                const __m256i yk = loadu(y + 32 * k);
                // (q - 32) . y = q . y - 32 . y, both from maddubs (|pair| <= 2 63 127).
                const __m256i d16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], yk), _mm256_maddubs_epi16(k32, yk));
                // int16 lanes 0..7 hold values 0..15 of the group (sub-block 2k), 8..15 values 16..31.
                const __m256i scales = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(d16, scales));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f32_at(xb) * half_at(wb + 208)), _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum(acc);
}

}  // namespace

const QDotTable kQDotAvx2 = {CpuPath::avx2, dot_wide<float, f32x8, f32x1>, dot_wide<uint16_t, f16x8, f16x1>,
                             dot_wide<uint16_t, bf16x8, bf16x1>, dot_32<34, q8_0_values>, dot_32<18, q4_0_values>, dot_k4<false>, dot_k4<true>, dot_q6_k, dot_x8<Q4x8>, dot_x8<Q8x8>, gemm_x8<Q4x8>, gemm_x8<Q8x8>};

}  // namespace moe
