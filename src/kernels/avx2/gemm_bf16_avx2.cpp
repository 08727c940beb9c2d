// AVX2 + FMA microkernel of the bf16 GEMM (driver: src/kernels/gemm_bf16.cpp). Without BF16
// instructions the operands are widened to f32 while packing (exact), so this is an f32 tile
// (the avx512 path does the same with the own GEMM's AVX-512 tile). Compiled with -mavx2 -mfma; no std::
// templates here, so no AVX2 instantiation can leak into baseline code through the linker's
// choice among identical weak symbols.
//
// Register tile 6 x 16, as in gemm_own_avx2.cpp:
// - Throughput: Zen3 (and Haswell..Ice Lake) issue 2 x 256-bit FMA per cycle with a 4-cycle
//   (Zen3) to 5-cycle (Haswell) latency, so >= 2 x 5 = 10 independent accumulator chains keep
//   both ports busy; 6 rows x 2 vectors of 8 columns = 12 accumulators.
// - Registers: 12 accumulators + 2 B vectors + 1 broadcast A = 15 of the 16 ymm.
// - Loads: per depth step 2 B loads + 6 broadcasts (vbroadcastss from memory is a pure load, no
//   shuffle port) feed 12 FMAs = 6 cycles at 2 FMA/cycle; 8 loads fit in 6 cycles on the 2-3
//   load ports, so the kernel is FMA-bound.
// Why widen in the packing rather than in the kernel: converting bf16 -> f32 in the loop costs a
// shift (or vpmovzxwd + shift, port 5 / FP shuffle) per 8 values, i.e. 2 extra uops per 12 FMAs
// for B alone and a scalar shift per A broadcast; the packing widens each value once, and a
// packed B panel is reused by all MC rows of a task.
// Cache blocking, Zen3 (32 KiB L1d, 512 KiB L2 per core, 32 MiB L3):
// - KC = 192: the B micro-panel (192 x 16 f32 = 12 KiB) stays in L1 with room for the A
//   micro-panel streaming past and the C tile. KC is also the summation block: the scalar twin
//   and the avx512 path (the own GEMM's AVX-512 tile, tuned at 192) use the same value, so all
//   three are bit-identical. 256 measured the same on Zen3, within the VM's +-5% noise (the C
//   update per 192 depth steps is 12 loads and 12 stores against 1152 FMAs).
// - MC = 144 (24 x 6): the A block (144 x 192 f32 = 108 KiB) sits in L2.
// - NC = 3072: the shared B block (192 x 3072 f32 = 2.25 MiB) in L3; the MoE widths (2816, 1024)
//   fit in one block, so B is packed once per depth block.
#include <immintrin.h>

#include "moe/gemm_bf16.h"

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

// C(i, 0..15) = alpha * acc + beta * C, beta == 0: C is not read (BLAS: NaN must not leak).
// vfmadd(alpha, acc, beta * C) rounds as the scalar twin's std::fma(alpha, acc, beta * c).
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

// a: packed A micro-panel (kc, 6) f32; b: packed B micro-panel (kc, 16) f32; c: C tile with
// m <= 6 rows, n <= 16 columns existing.
void tile_6x16(int64_t kc, const void* a_panel, const void* b_panel, float* c, int64_t ldc,
               int m, int n, float alpha, float beta) {
    const float* a = static_cast<const float*>(a_panel);
    const float* b = static_cast<const float*>(b_panel);
    // Twelve named accumulators, cRH = C(row R, columns 8H .. 8H+7). Named scalars, not an
    // array: GCC 12 kept a __m256[6][2] array on the stack and stored it every iteration.
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    // Start fetching the C tile now: it is read only after the kc-long loop, whose ~6 kc cycles
    // hide the L2/L3 latency of its 6 rows (64 bytes each, possibly two lines).
    // (Also when beta == 0: the stores then find their lines in L1.)
    for (int i = 0; i < m; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNr - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; ++p) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);  // 64-byte aligned
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
    // Edge tile (bottom / right border of C only): spill the accumulators, finish the part that
    // exists through the same vector arithmetic on a staged copy of C, so edge elements round
    // exactly as interior ones do.
    alignas(32) float t[kMr][kNr];
    _mm256_store_ps(t[0], c00), _mm256_store_ps(t[0] + 8, c01);
    _mm256_store_ps(t[1], c10), _mm256_store_ps(t[1] + 8, c11);
    _mm256_store_ps(t[2], c20), _mm256_store_ps(t[2] + 8, c21);
    _mm256_store_ps(t[3], c30), _mm256_store_ps(t[3] + 8, c31);
    _mm256_store_ps(t[4], c40), _mm256_store_ps(t[4] + 8, c41);
    _mm256_store_ps(t[5], c50), _mm256_store_ps(t[5] + 8, c51);
    for (int i = 0; i < m; ++i) {
        float* ci = c + i * ldc;
        alignas(32) float row[kNr] = {};
        if (read_c)
            for (int j = 0; j < n; ++j) row[j] = ci[j];
        store_row(row, _mm256_load_ps(t[i]), _mm256_load_ps(t[i] + 8), va, vb, read_c);
        for (int j = 0; j < n; ++j) ci[j] = row[j];
    }
}

}  // namespace

const GemmBf16Kernel kGemmBf16Avx2 = {CpuPath::avx2, Bf16PanelLayout::f32, kMr, kNr, 144, 192,
                                      3072, tile_6x16};

}  // namespace moe
