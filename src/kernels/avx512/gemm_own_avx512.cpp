// AVX-512F microkernel of the own GEMM (driver: src/kernels/gemm_own.cpp). Compiled with the
// avx512 flags; no std:: templates here (see gemm_own_avx2.cpp for why).
//
// Register tile 12 x 32: 12 rows x 2 zmm of 16 floats = 24 accumulators.
// - Skylake-SP / Ice Lake / Sapphire Rapids (2 x 512-bit FMA ports, 4-cycle latency) need
//   >= 8 independent chains; 24 leaves ample slack, and Zen4 (512-bit ops double-pumped on
//   256-bit units) needs fewer.
// - Registers: 24 accumulators + 2 B vectors + 1 broadcast = 27 of the 32 zmm registers.
// - Loads: 2 B loads + 12 broadcasts per 24 FMAs (12 cycles at 2/cycle) fit the 2-3 load ports.
// Not tuned (the development machine has no AVX-512); tested on a Sapphire Rapids-class Xeon.
// Cache blocking, chosen from cache sizes:
// - KC = 192: the B micro-panel (192 x 32 floats = 24 KiB) fits a 32 KiB (Zen4) or 48 KiB
//   (Ice Lake, Sapphire Rapids) L1d alongside the streaming A panels.
// - MC = 144 (12 x 12): A block of 108 KiB, well inside a 1-2 MiB L2.
// - NC = 4096 (128 x 32): B block of 3 MiB per thread, in L3.
// The edge tile goes through a buffer, as in the AVX2 kernel: simple, and rare.
#include <immintrin.h>

#include <cmath>

#include "moe/gemm_own.h"

namespace moe {
namespace {

constexpr int kMr = 12, kNr = 32;

// One row of the tile: C(i, 0..31) += a(i) * b(0..31).
inline __attribute__((always_inline)) void fma_row(const float* ai, __m512 b0, __m512 b1,
                                                   __m512& c0, __m512& c1) {
    const __m512 a = _mm512_set1_ps(*ai);
    c0 = _mm512_fmadd_ps(a, b0, c0);
    c1 = _mm512_fmadd_ps(a, b1, c1);
}

// C(i, 0..31) = alpha * acc + beta * C; beta == 0: C is not read (BLAS: NaN must not leak).
inline __attribute__((always_inline)) void store_row(float* ci, __m512 c0, __m512 c1,
                                                     __m512 va, __m512 vb, bool read_c) {
    if (read_c) {
        c0 = _mm512_fmadd_ps(va, c0, _mm512_mul_ps(vb, _mm512_loadu_ps(ci)));
        c1 = _mm512_fmadd_ps(va, c1, _mm512_mul_ps(vb, _mm512_loadu_ps(ci + 16)));
    } else {
        c0 = _mm512_mul_ps(va, c0);
        c1 = _mm512_mul_ps(va, c1);
    }
    _mm512_storeu_ps(ci, c0);
    _mm512_storeu_ps(ci + 16, c1);
}

void tile_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                float alpha, float beta) {
    // 24 named accumulators, cRH = C(row R, columns 16H .. 16H+15): named scalars rather than
    // an array, which GCC 12 keeps on the stack (seen on the AVX2 kernel).
    const __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    __m512 c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
    __m512 c80 = z, c81 = z, c90 = z, c91 = z, c100 = z, c101 = z, c110 = z, c111 = z;
    for (int i = 0; i < kMr; ++i) {  // C is read after the loop: fetch it meanwhile
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNr - 1), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; ++p) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        fma_row(a + 0, b0, b1, c00, c01);
        fma_row(a + 1, b0, b1, c10, c11);
        fma_row(a + 2, b0, b1, c20, c21);
        fma_row(a + 3, b0, b1, c30, c31);
        fma_row(a + 4, b0, b1, c40, c41);
        fma_row(a + 5, b0, b1, c50, c51);
        fma_row(a + 6, b0, b1, c60, c61);
        fma_row(a + 7, b0, b1, c70, c71);
        fma_row(a + 8, b0, b1, c80, c81);
        fma_row(a + 9, b0, b1, c90, c91);
        fma_row(a + 10, b0, b1, c100, c101);
        fma_row(a + 11, b0, b1, c110, c111);
        a += kMr;
        b += kNr;
    }

    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const bool read_c = beta != 0.0f;
    if (m == kMr && n == kNr) {
        store_row(c + 0 * ldc, c00, c01, va, vb, read_c);
        store_row(c + 1 * ldc, c10, c11, va, vb, read_c);
        store_row(c + 2 * ldc, c20, c21, va, vb, read_c);
        store_row(c + 3 * ldc, c30, c31, va, vb, read_c);
        store_row(c + 4 * ldc, c40, c41, va, vb, read_c);
        store_row(c + 5 * ldc, c50, c51, va, vb, read_c);
        store_row(c + 6 * ldc, c60, c61, va, vb, read_c);
        store_row(c + 7 * ldc, c70, c71, va, vb, read_c);
        store_row(c + 8 * ldc, c80, c81, va, vb, read_c);
        store_row(c + 9 * ldc, c90, c91, va, vb, read_c);
        store_row(c + 10 * ldc, c100, c101, va, vb, read_c);
        store_row(c + 11 * ldc, c110, c111, va, vb, read_c);
        return;
    }
    // Edge tile: spill the accumulators, store the part that exists.
    alignas(64) float t[kMr][kNr];
    _mm512_store_ps(t[0], c00), _mm512_store_ps(t[0] + 16, c01);
    _mm512_store_ps(t[1], c10), _mm512_store_ps(t[1] + 16, c11);
    _mm512_store_ps(t[2], c20), _mm512_store_ps(t[2] + 16, c21);
    _mm512_store_ps(t[3], c30), _mm512_store_ps(t[3] + 16, c31);
    _mm512_store_ps(t[4], c40), _mm512_store_ps(t[4] + 16, c41);
    _mm512_store_ps(t[5], c50), _mm512_store_ps(t[5] + 16, c51);
    _mm512_store_ps(t[6], c60), _mm512_store_ps(t[6] + 16, c61);
    _mm512_store_ps(t[7], c70), _mm512_store_ps(t[7] + 16, c71);
    _mm512_store_ps(t[8], c80), _mm512_store_ps(t[8] + 16, c81);
    _mm512_store_ps(t[9], c90), _mm512_store_ps(t[9] + 16, c91);
    _mm512_store_ps(t[10], c100), _mm512_store_ps(t[10] + 16, c101);
    _mm512_store_ps(t[11], c110), _mm512_store_ps(t[11] + 16, c111);
    for (int i = 0; i < m; ++i) {
        float* ci = c + i * ldc;
        for (int j = 0; j < n; ++j)
            // Explicit fma, as the full-tile store: the same rounding at any optimisation level
            // (GCC contracts a * b + c for C++ only when optimising).
            ci[j] = read_c ? std::fma(alpha, t[i][j], beta * ci[j]) : alpha * t[i][j];
    }
}

}  // namespace

const GemmOwnKernel kGemmOwnAvx512 = {CpuPath::avx512, kMr, kNr, 144, 192, 4096, tile_12x32};

}  // namespace moe
