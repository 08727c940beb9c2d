// AVX2 + FMA microkernel of the own GEMM (driver: src/kernels/gemm_own.cpp). Compiled with
// -mavx2 -mfma; no std:: templates here, so no AVX2 instantiation can leak into baseline code
// through the linker's choice among identical weak symbols.
//
// Register tile 6 x 16 (BLIS's haswell/zen sgemm shape):
// - Throughput: Zen3 (and Haswell..Ice Lake) issue 2 x 256-bit FMA per cycle with a 4-cycle
//   (Zen3) to 5-cycle (Haswell) latency, so >= 2 x 5 = 10 independent accumulator chains are
//   needed to keep both ports busy. 6 rows x 2 vectors of 8 = 12 accumulators.
// - Registers: 12 accumulators + 2 B vectors + 1 broadcast A = 15 of the 16 ymm registers.
// - Loads: per depth step 2 B loads + 6 broadcasts (vbroadcastss from memory is a pure load,
//   no shuffle port) feed 12 FMAs = 6 cycles at 2 FMA/cycle; 8 loads fit in 6 cycles on the
//   2-3 load ports, so the kernel is FMA-bound, the ideal. (8 x 12 would be 24 accumulators:
//   no registers left.)
// Cache blocking, for Zen3's 32 KiB L1d / 512 KiB L2 per core / 32 MiB shared L3:
// - KC = 256: the B micro-panel (256 x 16 floats = 16 KiB) stays in L1 while the A micro-panels
//   stream past it, with half of L1 left for those A panels and the C tile.
// - MC = 144 (24 x 6): the A block (144 x 256 floats = 144 KiB) sits in L2 with room to spare
//   for the B panel being replaced; larger MC measured no faster at 2 threads.
// - NC = 4080 (255 x 16): the B block (256 x 4080 floats = 4 MiB) per thread in L3.
#include <immintrin.h>

#include <cmath>

#include "moe/gemm_own.h"

namespace moe {
namespace {

constexpr int kMr = 6, kNr = 16;

// One row of the tile: C(i, 0..15) += a(i) * b(0..15).
inline __attribute__((always_inline)) void fma_row(const float* ai, __m256 b0, __m256 b1,
                                                   __m256& c0, __m256& c1) {
    const __m256 a = _mm256_broadcast_ss(ai);
    c0 = _mm256_fmadd_ps(a, b0, c0);
    c1 = _mm256_fmadd_ps(a, b1, c1);
}

// C(i, 0..15) = alpha * acc + beta * C; beta == 0: C is not read (BLAS: NaN must not leak).
inline __attribute__((always_inline)) void store_row(float* ci, __m256 c0, __m256 c1,
                                                     __m256 va, __m256 vb, bool read_c) {
    if (read_c) {
        c0 = _mm256_fmadd_ps(va, c0, _mm256_mul_ps(vb, _mm256_loadu_ps(ci)));
        c1 = _mm256_fmadd_ps(va, c1, _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8)));
    } else {
        c0 = _mm256_mul_ps(va, c0);
        c1 = _mm256_mul_ps(va, c1);
    }
    _mm256_storeu_ps(ci, c0);
    _mm256_storeu_ps(ci + 8, c1);
}

void tile_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
               float alpha, float beta) {
    // Twelve named accumulators, cRH = C(row R, columns 8H .. 8H+7). Named scalars, not an
    // array: GCC 12 kept a __m256[6][2] array on the stack and stored it back every iteration.
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    // Start fetching the C tile now: it is read only after the kc-long loop, whose ~kc * 6
    // cycles hide the L2/L3 latency of the 6 rows (each 64 bytes, possibly two lines).
    for (int i = 0; i < kMr; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNr - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; ++p) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        fma_row(a + 0, b0, b1, c00, c01);
        fma_row(a + 1, b0, b1, c10, c11);
        fma_row(a + 2, b0, b1, c20, c21);
        fma_row(a + 3, b0, b1, c30, c31);
        fma_row(a + 4, b0, b1, c40, c41);
        fma_row(a + 5, b0, b1, c50, c51);
        a += kMr;
        b += kNr;
    }

    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const bool read_c = beta != 0.0f;
    if (m == kMr && n == kNr) {
        store_row(c + 0 * ldc, c00, c01, va, vb, read_c);
        store_row(c + 1 * ldc, c10, c11, va, vb, read_c);
        store_row(c + 2 * ldc, c20, c21, va, vb, read_c);
        store_row(c + 3 * ldc, c30, c31, va, vb, read_c);
        store_row(c + 4 * ldc, c40, c41, va, vb, read_c);
        store_row(c + 5 * ldc, c50, c51, va, vb, read_c);
        return;
    }
    // Edge tile (only at the bottom / right border of C): spill the accumulators, store the
    // part that exists. Rare, so plain scalar code.
    alignas(32) float t[kMr][kNr];
    _mm256_store_ps(t[0], c00), _mm256_store_ps(t[0] + 8, c01);
    _mm256_store_ps(t[1], c10), _mm256_store_ps(t[1] + 8, c11);
    _mm256_store_ps(t[2], c20), _mm256_store_ps(t[2] + 8, c21);
    _mm256_store_ps(t[3], c30), _mm256_store_ps(t[3] + 8, c31);
    _mm256_store_ps(t[4], c40), _mm256_store_ps(t[4] + 8, c41);
    _mm256_store_ps(t[5], c50), _mm256_store_ps(t[5] + 8, c51);
    for (int i = 0; i < m; ++i) {
        float* ci = c + i * ldc;
        for (int j = 0; j < n; ++j)
            // Explicit fma, as the full-tile store: the same rounding at any optimisation level
            // (GCC contracts a * b + c for C++ only when optimising).
            ci[j] = read_c ? std::fma(alpha, t[i][j], beta * ci[j]) : alpha * t[i][j];
    }
}

}  // namespace

const GemmOwnKernel kGemmOwnAvx2 = {CpuPath::avx2, kMr, kNr, 144, 256, 4080, tile_6x16};

}  // namespace moe
