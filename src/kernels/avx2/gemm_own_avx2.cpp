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

#include "moe/gemm_own.h"

namespace moe {
namespace {

constexpr int kMr = 6, kNr = 16;

void tile_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
               float alpha, float beta) {
    // acc[i][h] holds C(i, 8h .. 8h+7). Fully unrolled by the compiler (constant trip counts),
    // so the array lives in 12 ymm registers; checked in the disassembly (no spills in the loop).
    __m256 acc[kMr][2];
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();

#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; ++p) {
        const __m256 b0 = _mm256_loadu_ps(b + p * kNr);
        const __m256 b1 = _mm256_loadu_ps(b + p * kNr + 8);
#pragma GCC unroll 6
        for (int i = 0; i < kMr; ++i) {
            const __m256 ai = _mm256_broadcast_ss(a + p * kMr + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
    }

    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (m == kMr && n == kNr) {
#pragma GCC unroll 6
        for (int i = 0; i < kMr; ++i) {
            float* ci = c + i * ldc;
            if (beta == 0.0f) {  // BLAS: beta == 0 means C is not read (NaN must not leak)
                _mm256_storeu_ps(ci, _mm256_mul_ps(va, acc[i][0]));
                _mm256_storeu_ps(ci + 8, _mm256_mul_ps(va, acc[i][1]));
            } else {
                _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, acc[i][0], _mm256_mul_ps(vb, _mm256_loadu_ps(ci))));
                _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(va, acc[i][1], _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8))));
            }
        }
        return;
    }
    // Edge tile (only at the bottom / right border of C): spill to memory, store the part
    // that exists. Rare, so plain scalar code.
    alignas(32) float t[kMr][kNr];
    for (int i = 0; i < kMr; ++i) {
        _mm256_store_ps(t[i], acc[i][0]);
        _mm256_store_ps(t[i] + 8, acc[i][1]);
    }
    for (int i = 0; i < m; ++i) {
        float* ci = c + i * ldc;
        for (int j = 0; j < n; ++j)
            ci[j] = beta == 0.0f ? alpha * t[i][j] : alpha * t[i][j] + beta * ci[j];
    }
}

}  // namespace

const GemmOwnKernel kGemmOwnAvx2 = {CpuPath::avx2, kMr, kNr, 144, 256, 4080, tile_6x16};

}  // namespace moe
