// AVX-512F microkernel of the own GEMM (driver: src/kernels/gemm_own.cpp). Compiled with the
// avx512 flags; no std:: templates here (see gemm_own_avx2.cpp for why).
//
// Register tile 12 x 32: 12 rows x 2 zmm of 16 floats = 24 accumulators.
// - Skylake-SP / Ice Lake / Sapphire Rapids (2 x 512-bit FMA ports, 4-cycle latency) need
//   >= 8 independent chains; 24 leaves ample slack, and Zen4 (512-bit ops double-pumped on
//   256-bit units) needs fewer.
// - Registers: 24 accumulators + 2 B vectors + 1 broadcast = 27 of the 32 zmm registers.
// - Loads: 2 B loads + 12 broadcasts per 24 FMAs (12 cycles at 2/cycle) fit the 2-3 load ports.
// Cache blocking (not tuned: the development machine has no AVX-512; chosen from cache sizes):
// - KC = 192: the B micro-panel (192 x 32 floats = 24 KiB) fits a 32 KiB (Zen4) or 48 KiB
//   (Ice Lake, Sapphire Rapids) L1d alongside the streaming A panels.
// - MC = 144 (12 x 12): A block of 108 KiB, well inside a 1-2 MiB L2.
// - NC = 4096 (128 x 32): B block of 3 MiB per thread, in L3.
// The edge tile goes through a buffer, as in the AVX2 kernel: simple, and rare.
#include <immintrin.h>

#include "moe/gemm_own.h"

namespace moe {
namespace {

constexpr int kMr = 12, kNr = 32;

void tile_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                float alpha, float beta) {
    // acc[i][h] holds C(i, 16h .. 16h+15); fully unrolled, so it lives in 24 zmm registers.
    __m512 acc[kMr][2];
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();

#pragma GCC unroll 2
    for (int64_t p = 0; p < kc; ++p) {
        const __m512 b0 = _mm512_loadu_ps(b + p * kNr);
        const __m512 b1 = _mm512_loadu_ps(b + p * kNr + 16);
#pragma GCC unroll 12
        for (int i = 0; i < kMr; ++i) {
            const __m512 ai = _mm512_set1_ps(a[p * kMr + i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }

    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (m == kMr && n == kNr) {
#pragma GCC unroll 12
        for (int i = 0; i < kMr; ++i) {
            float* ci = c + i * ldc;
            if (beta == 0.0f) {  // BLAS: beta == 0 means C is not read
                _mm512_storeu_ps(ci, _mm512_mul_ps(va, acc[i][0]));
                _mm512_storeu_ps(ci + 16, _mm512_mul_ps(va, acc[i][1]));
            } else {
                _mm512_storeu_ps(ci, _mm512_fmadd_ps(va, acc[i][0], _mm512_mul_ps(vb, _mm512_loadu_ps(ci))));
                _mm512_storeu_ps(ci + 16, _mm512_fmadd_ps(va, acc[i][1], _mm512_mul_ps(vb, _mm512_loadu_ps(ci + 16))));
            }
        }
        return;
    }
    alignas(64) float t[kMr][kNr];
    for (int i = 0; i < kMr; ++i) {
        _mm512_store_ps(t[i], acc[i][0]);
        _mm512_store_ps(t[i] + 16, acc[i][1]);
    }
    for (int i = 0; i < m; ++i) {
        float* ci = c + i * ldc;
        for (int j = 0; j < n; ++j)
            ci[j] = beta == 0.0f ? alpha * t[i][j] : alpha * t[i][j] + beta * ci[j];
    }
}

}  // namespace

const GemmOwnKernel kGemmOwnAvx512 = {CpuPath::avx512, kMr, kNr, 144, 192, 4096, tile_12x32};

}  // namespace moe
