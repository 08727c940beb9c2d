// bf16 GEMM on VDPBF16PS (AVX512-BF16): each 32-bit lane of the accumulator gets
// a[2p] * b[2p] + a[2p+1] * b[2p+1], so both operands are packed in k-pairs.
//
// Register tile 12 x 32: 24 zmm accumulators (12 rows x 2 vectors of 16 columns), 2 zmm of B,
// A broadcast from memory (a k-pair is one 32-bit value). 24 independent chains cover the
// ~5-cycle latency at 2 instructions per cycle with room to spare; 26 of 32 zmm are live.
//
// Blocking: K in blocks of KC = 256 (128 pairs): a packed B panel (128 pairs x 32 columns x
// 2 = 16 KiB) stays in L1 while the 8 A panels of a 96-row block (8 x 6 KiB) stream from L2.
// Work is split into (96-row block, 128-column group) tasks whose partition does not depend on
// the thread count, and every C element sums its k blocks in the same order: results are
// bit-identical for any number of threads.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "moe/gemm_bf16.h"

namespace moe {
namespace {

constexpr int64_t kMR = 12, kNR = 32, kKC = 256, kMB = 8 * kMR, kNG = 4 * kNR;

inline uint16_t at(const bf16* X, bool trans, int64_t ld, int64_t r, int64_t c) {
    return trans ? X[c * ld + r].bits : X[r * ld + c].bits;  // element (r, c) of op(X)
}

// A panel: rows [m0, m0 + 12) x k [k0, k0 + kc) of op(A) -> [pair][row] of u32, zero padded.
void pack_a(uint32_t* out, const bf16* A, bool ta, int64_t lda, int64_t m0, int64_t m,
            int64_t k0, int64_t kc) {
    const int64_t kp = (kc + 1) / 2;
    for (int64_t p = 0; p < kp; ++p)
        for (int64_t i = 0; i < kMR; ++i) {
            uint32_t lo = 0, hi = 0;
            if (i < m) {
                lo = at(A, ta, lda, m0 + i, k0 + 2 * p);
                if (2 * p + 1 < kc) hi = at(A, ta, lda, m0 + i, k0 + 2 * p + 1);
            }
            out[p * kMR + i] = lo | (hi << 16);
        }
}

// B panel: k [k0, k0 + kc) x columns [n0, n0 + 32) of op(B) -> [pair][column][2] bf16.
void pack_b(uint16_t* out, const bf16* B, bool tb, int64_t ldb, int64_t k0, int64_t kc,
            int64_t n0, int64_t n) {
    const int64_t kp = (kc + 1) / 2;
    for (int64_t p = 0; p < kp; ++p)
        for (int64_t j = 0; j < kNR; ++j) {
            uint16_t lo = 0, hi = 0;
            if (j < n) {
                lo = at(B, tb, ldb, k0 + 2 * p, n0 + j);
                if (2 * p + 1 < kc) hi = at(B, tb, ldb, k0 + 2 * p + 1, n0 + j);
            }
            out[(p * kNR + j) * 2] = lo;
            out[(p * kNR + j) * 2 + 1] = hi;
        }
}

// C tile (m <= 12 rows, n <= 32 columns) = alpha * acc + beta * C (beta == 0: C not read).
void tile(int64_t kp, const uint32_t* a, const uint16_t* b, float* C, int64_t ldc, int64_t m,
          int64_t n, float alpha, float beta) {
    __m512 acc[kMR][2];
    for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kp; ++p) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * 64);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * 64 + 32);
        const uint32_t* ap = a + p * kMR;
#pragma GCC unroll 12
        for (int i = 0; i < kMR; ++i) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32(int(ap[i]));
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    const __mmask16 m0 = n >= 16 ? 0xffff : __mmask16((1u << n) - 1);
    const __mmask16 m1 = n >= 32 ? 0xffff : n > 16 ? __mmask16((1u << (n - 16)) - 1) : 0;
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int64_t i = 0; i < m; ++i) {
        float* c = C + i * ldc;
        __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), r1);
        }
        _mm512_mask_storeu_ps(c, m0, r0);
        _mm512_mask_storeu_ps(c + 16, m1, r1);
    }
}

}  // namespace

void gemm_bf16_avx512bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                          const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta,
                          float* C, int64_t ldc) {
    if (K == 0 || alpha == 0.0f) {  // C = beta * C
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    const int64_t m_panels = (M + kMR - 1) / kMR, n_panels = (N + kNR - 1) / kNR;
    const int64_t m_blocks = (M + kMB - 1) / kMB, n_groups = (N + kNG - 1) / kNG;
    thread_local std::vector<uint32_t> ap;
    thread_local std::vector<uint16_t> bp;
    ap.resize(size_t(m_panels * kMR * (kKC / 2)));
    bp.resize(size_t(n_panels * kNR * kKC));
    uint32_t* a_packed = ap.data();
    uint16_t* b_packed = bp.data();
    for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int64_t kc = std::min(kKC, K - k0), kp = (kc + 1) / 2;
        const float b_eff = k0 == 0 ? beta : 1.0f;
#pragma omp parallel
        {
#pragma omp for schedule(static) nowait
            for (int64_t i = 0; i < m_panels; ++i)
                pack_a(a_packed + i * kMR * (kKC / 2), A, ta, lda, i * kMR,
                       std::min(kMR, M - i * kMR), k0, kc);
#pragma omp for schedule(static)
            for (int64_t j = 0; j < n_panels; ++j)
                pack_b(b_packed + j * kNR * kKC, B, tb, ldb, k0, kc, j * kNR,
                       std::min(kNR, N - j * kNR));
#pragma omp for schedule(dynamic, 1) collapse(2)
            for (int64_t mb = 0; mb < m_blocks; ++mb)
                for (int64_t ng = 0; ng < n_groups; ++ng)
                    for (int64_t j = ng * 4; j < std::min(n_panels, ng * 4 + 4); ++j)
                        for (int64_t i = mb * 8; i < std::min(m_panels, mb * 8 + 8); ++i)
                            tile(kp, a_packed + i * kMR * (kKC / 2), b_packed + j * kNR * kKC,
                                 C + i * kMR * ldc + j * kNR, ldc, std::min(kMR, M - i * kMR),
                                 std::min(kNR, N - j * kNR), alpha, b_eff);
        }
    }
}

}  // namespace moe
