// AVX512-BF16 microkernel of the bf16 GEMM (driver: src/kernels/gemm_bf16.cpp), on VDPBF16PS:
// each 32-bit lane j of the accumulator gets a[2p] * b[2p][j] + a[2p+1] * b[2p+1][j] (f32
// products and sums, round to nearest even, denormals flushed, MXCSR ignored), so both operands
// are packed in k-pairs (Bf16PanelLayout::k_pairs): B micro-panel (kp, 32, 2) bf16, i.e. 2 zmm
// per pair; A micro-panel (kp, 12) u32, one 32-bit broadcast per row and pair. Compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16; no std:: templates here (see the
// AVX2 kernel for why).
//
// Register tile 12 x 32:
// - Throughput: measured on a Sapphire Rapids-class Xeon (AMX, AVX512-BF16), 24 independent
//   register-only chains run VDPBF16PS zmm at 1/4 the rate of VFMADD231PS zmm, i.e. 0.5 per
//   cycle: 32 multiply-adds per cycle, HALF the f32 FMA rate, not twice. This kernel reaches
//   ~90% of that cap in the full GEMM, so there the widened avx512 path (2 FMA/cycle) is faster;
//   AMX (TDPBF16PS) is the bf16 unit that pays. 24 accumulators (12 rows x 2 vectors of 16
//   columns) cover any latency up to 48 cycles at that rate, or ~12 at the 2/cycle once hoped.
// - Registers: 24 accumulators + 2 B vectors + 1 broadcast A = 27 of the 32 zmm.
// - Loads: per pair 2 B loads + 12 broadcasts (vpbroadcastd from memory is a pure load uop) feed
//   24 VDPBF16PS (>= 12 cycles); 14 loads fit the 2 zmm-capable load ports, so the kernel is
//   bound by the dot-product unit. (14 x 32 would use 31 registers for 17% more
//   work per B load; 12 leaves slack for the compiler.)
// Cache blocking, Sapphire Rapids (48 KiB L1d, 2 MiB L2 per core, ~1.9 MiB L3 per core):
// - KC = 384 (192 pairs): the B micro-panel (192 x 128 B = 24 KiB) stays in L1 with room for the
//   A micro-panel (192 x 48 B = 9 KiB) streaming past and the C tile. Even, as k_pairs needs.
// - MC = 192 (16 x 12): the A block (192 x 384 bf16 = 144 KiB) sits in L2.
// - NC = 3072: the shared B block (384 x 3072 bf16 = 2.25 MiB) in L3.
#include <immintrin.h>

#include "moe/gemm_bf16.h"

namespace moe {
namespace {

constexpr int kMr = 12, kNr = 32;

inline __attribute__((always_inline)) __m512bh as_bh(__m512i v) { return (__m512bh)v; }

// One row of the tile: C(i, 0..31) += a(i, 2p) b(2p, 0..31) + a(i, 2p+1) b(2p+1, 0..31).
inline __attribute__((always_inline)) void dp_row(const uint32_t* ai, __m512bh b0, __m512bh b1,
                                                  __m512& c0, __m512& c1) {
    const __m512bh a = as_bh(_mm512_set1_epi32(int(*ai)));
    c0 = _mm512_dpbf16_ps(c0, a, b0);
    c1 = _mm512_dpbf16_ps(c1, a, b1);
}

// C(i, 0..n) = alpha * acc + beta * C under the column masks; beta == 0: C is not read.
// Masked loads and stores, so edge tiles run the same arithmetic as interior ones.
inline __attribute__((always_inline)) void store_row(float* ci, __m512 c0, __m512 c1,
                                                     __mmask16 k0, __mmask16 k1, __m512 va,
                                                     __m512 vb, bool read_c) {
    if (read_c) {
        c0 = _mm512_fmadd_ps(va, c0, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(k0, ci)));
        c1 = _mm512_fmadd_ps(va, c1, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(k1, ci + 16)));
    } else {
        c0 = _mm512_mul_ps(va, c0);
        c1 = _mm512_mul_ps(va, c1);
    }
    _mm512_mask_storeu_ps(ci, k0, c0);
    _mm512_mask_storeu_ps(ci + 16, k1, c1);
}

// a: packed A micro-panel (kp, 12) u32; b: packed B micro-panel (kp, 32, 2) bf16, 64-byte
// aligned; kp = ceil(kc / 2), the odd tail zero-padded by the packing. c: C tile with m <= 12
// rows and n <= 32 columns existing.
void tile_12x32(int64_t kc, const void* a_panel, const void* b_panel, float* c, int64_t ldc,
                int m, int n, float alpha, float beta) {
    const uint32_t* a = static_cast<const uint32_t*>(a_panel);
    const __m512i* b = static_cast<const __m512i*>(b_panel);
    const int64_t kp = (kc + 1) / 2;
    // Named accumulators (cRH = C(row R, columns 16H .. 16H+15)), not an array: GCC keeps
    // vector arrays on the stack when their index is a loop variable.
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
    __m512 c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    // Fetch the C tile early: it is used only after the kp-long loop (~12 kp cycles).
    for (int i = 0; i < m; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNr - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 2
    for (int64_t p = 0; p < kp; ++p) {
        const __m512bh b0 = as_bh(_mm512_load_si512(b)), b1 = as_bh(_mm512_load_si512(b + 1));
        dp_row(a + 0, b0, b1, c00, c01);
        dp_row(a + 1, b0, b1, c10, c11);
        dp_row(a + 2, b0, b1, c20, c21);
        dp_row(a + 3, b0, b1, c30, c31);
        dp_row(a + 4, b0, b1, c40, c41);
        dp_row(a + 5, b0, b1, c50, c51);
        dp_row(a + 6, b0, b1, c60, c61);
        dp_row(a + 7, b0, b1, c70, c71);
        dp_row(a + 8, b0, b1, c80, c81);
        dp_row(a + 9, b0, b1, c90, c91);
        dp_row(a + 10, b0, b1, ca0, ca1);
        dp_row(a + 11, b0, b1, cb0, cb1);
        a += kMr;
        b += 2;
    }

    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const bool read_c = beta != 0.0f;
    const __mmask16 k0 = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
    const __mmask16 k1 = n >= 32 ? __mmask16(0xffff)
                         : n > 16 ? __mmask16((1u << (n - 16)) - 1)
                                  : __mmask16(0);
    // Rows past m do not exist in C: stop there (each row is independent).
    store_row(c + 0 * ldc, c00, c01, k0, k1, va, vb, read_c);
    if (m == 1) return;
    store_row(c + 1 * ldc, c10, c11, k0, k1, va, vb, read_c);
    if (m == 2) return;
    store_row(c + 2 * ldc, c20, c21, k0, k1, va, vb, read_c);
    if (m == 3) return;
    store_row(c + 3 * ldc, c30, c31, k0, k1, va, vb, read_c);
    if (m == 4) return;
    store_row(c + 4 * ldc, c40, c41, k0, k1, va, vb, read_c);
    if (m == 5) return;
    store_row(c + 5 * ldc, c50, c51, k0, k1, va, vb, read_c);
    if (m == 6) return;
    store_row(c + 6 * ldc, c60, c61, k0, k1, va, vb, read_c);
    if (m == 7) return;
    store_row(c + 7 * ldc, c70, c71, k0, k1, va, vb, read_c);
    if (m == 8) return;
    store_row(c + 8 * ldc, c80, c81, k0, k1, va, vb, read_c);
    if (m == 9) return;
    store_row(c + 9 * ldc, c90, c91, k0, k1, va, vb, read_c);
    if (m == 10) return;
    store_row(c + 10 * ldc, ca0, ca1, k0, k1, va, vb, read_c);
    if (m == 11) return;
    store_row(c + 11 * ldc, cb0, cb1, k0, k1, va, vb, read_c);
}

}  // namespace

const GemmBf16Kernel kGemmBf16Avx512Bf16 = {CpuPath::avx512_bf16, Bf16PanelLayout::k_pairs, kMr,
                                            kNr, 192, 384, 3072, tile_12x32};

}  // namespace moe
