// bf16 GEMM on AMX (Sapphire Rapids and later): TDPBF16PS multiplies a 16 x 32 bf16 A tile by a
// (16 k-pairs x 16 columns x 2) B tile into a 16 x 16 f32 C tile.
//
// Why AMX and not AVX512-BF16: measured on a Sapphire Rapids core, VDPBF16PS zmm issues at
// 1.3 G/s against 5.1 G/s for VFMADD231PS zmm (24 independent chains of each, one core;
// docs/benchmarks.md): 82 bf16 GFLOP/s against 164 f32 GFLOP/s per core, so a VDPBF16PS kernel
// is slower than widening to f32. One TDPBF16PS does 16 x 16 x 32 multiply-adds.
//
// Register tile: C block 32 x 32 = 4 accumulator tiles (tmm0-3), A 2 x (16 x 32) (tmm4-5),
// B 2 x (16 pairs x 16 columns) (tmm6-7): 4 TDPBF16PS per 32-deep k step, each A and B tile
// used twice. Blocking: K in blocks of KC = 256; A packed as 32-row panels (row-major, k padded
// to a multiple of 32 with zeros), B as 32-column panels of k-pairs ([pair][column][2]). Tasks
// are (32-row panel, 128-column group) pairs, a partition that does not depend on the thread
// count, and every C element sums its k blocks in order: bit-identical for any thread count.
#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cpuid.h>
#include <cstring>
#include <vector>

#include "moe/gemm_bf16.h"

namespace moe {
namespace {

constexpr int64_t kMR = 32, kNR = 32, kKC = 256, kNG = 4 * kNR;

struct TileConfig {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];  // bytes per row of each tile
    uint8_t rows[16];
};

void configure_tiles() {
    TileConfig cfg{};
    cfg.palette_id = 1;
    for (int t = 0; t < 8; ++t) {  // every tile: 16 rows of 64 bytes
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
}

// A panel: rows [m0, m0 + 32) x k [k0, k0 + kc) of op(A), row-major with row length kc_pad,
// zero padded. Reads run along memory: rows of A, or for a transposed A its rows k.
void pack_a(uint16_t* out, const bf16* A, bool ta, int64_t lda, int64_t m0, int64_t m, int64_t k0,
            int64_t kc, int64_t kc_pad) {
    std::memset(out, 0, size_t(kMR * kc_pad) * 2);
    if (!ta) {
        for (int64_t i = 0; i < m; ++i)
            std::memcpy(out + i * kc_pad, A + (m0 + i) * lda + k0, size_t(kc) * 2);
    } else {
        for (int64_t k = 0; k < kc; ++k) {
            const bf16* src = A + (k0 + k) * lda + m0;
            for (int64_t i = 0; i < m; ++i) out[i * kc_pad + k] = src[i].bits;
        }
    }
}

// B panel: k [k0, k0 + kc) x columns [n0, n0 + 32) of op(B) -> [pair][column][2], zero padded.
// Transposed B (stored (N, K), e.g. a weight (F, D)): a k-pair is one 32-bit load of a row.
// Otherwise two rows k, k + 1 are interleaved.
void pack_b(uint16_t* out, const bf16* B, bool tb, int64_t ldb, int64_t k0, int64_t kc,
            int64_t kc_pad, int64_t n0, int64_t n) {
    const int64_t kp = kc_pad / 2, full = kc / 2;  // pairs in the panel; pairs with both k
    uint32_t* out32 = reinterpret_cast<uint32_t*>(out);
    if (n < kNR || kc != kc_pad) std::memset(out, 0, size_t(kp * kNR) * 4);
    if (tb) {
        for (int64_t j = 0; j < n; ++j) {
            const bf16* row = B + (n0 + j) * ldb + k0;
            for (int64_t p = 0; p < full; ++p) {
                uint32_t v;
                std::memcpy(&v, row + 2 * p, 4);
                out32[p * kNR + j] = v;
            }
            if (kc % 2) out32[full * kNR + j] = row[kc - 1].bits;
        }
    } else {
        for (int64_t p = 0; p < full; ++p) {
            const bf16* r0 = B + (k0 + 2 * p) * ldb + n0;
            const bf16* r1 = r0 + ldb;
            for (int64_t j = 0; j < n; ++j) out32[p * kNR + j] = r0[j].bits | (uint32_t(r1[j].bits) << 16);
        }
        if (kc % 2) {
            const bf16* r0 = B + (k0 + kc - 1) * ldb + n0;
            for (int64_t j = 0; j < n; ++j) out32[full * kNR + j] = r0[j].bits;
        }
    }
}

// C block (m <= 32, n <= 32) = alpha * A_panel @ B_panel + beta * C (beta == 0: C not read).
void block(int64_t kc_pad, const uint16_t* a, const uint16_t* b, float* C, int64_t ldc, int64_t m,
           int64_t n, float alpha, float beta) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const int64_t a_stride = kc_pad * 2, b_stride = kNR * 4;  // bytes per tile row
    for (int64_t k = 0; k < kc_pad; k += 32) {
        _tile_loadd(4, a + k, a_stride);
        _tile_loadd(5, a + 16 * kc_pad + k, a_stride);
        _tile_loadd(6, b + k * kNR, b_stride);       // pairs k/2 .. k/2+15, columns 0..15
        _tile_loadd(7, b + k * kNR + 32, b_stride);  // columns 16..31
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    alignas(64) float acc[32][32];
    _tile_stored(0, &acc[0][0], 128);
    _tile_stored(1, &acc[0][16], 128);
    _tile_stored(2, &acc[16][0], 128);
    _tile_stored(3, &acc[16][16], 128);
    const __mmask16 m0 = n >= 16 ? 0xffff : __mmask16((1u << n) - 1);
    const __mmask16 m1 = n >= 32 ? 0xffff : n > 16 ? __mmask16((1u << (n - 16)) - 1) : 0;
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int64_t i = 0; i < m; ++i) {
        float* c = C + i * ldc;
        __m512 r0 = _mm512_mul_ps(va, _mm512_load_ps(&acc[i][0]));
        __m512 r1 = _mm512_mul_ps(va, _mm512_load_ps(&acc[i][16]));
        if (beta != 0.0f) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), r1);
        }
        _mm512_mask_storeu_ps(c, m0, r0);
        _mm512_mask_storeu_ps(c + 16, m1, r1);
    }
}

}  // namespace

bool amx_bf16_usable() {
    static const bool usable = [] {
        unsigned a, b, c, d;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
        const bool tile = d & (1u << 24), bf16 = d & (1u << 22);
        if (!tile || !bf16) return false;
        // Linux gives a process the 8 KiB of tile state only on request.
        const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
        return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    }();
    return usable;
}

void gemm_bf16_amx(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A,
                   int64_t lda, const bf16* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    const int64_t m_panels = (M + kMR - 1) / kMR, n_panels = (N + kNR - 1) / kNR;
    const int64_t n_groups = (N + kNG - 1) / kNG;
    thread_local std::vector<uint16_t> ap, bp;
    ap.resize(size_t(m_panels * kMR * kKC));
    bp.resize(size_t(n_panels * kNR * kKC));
    uint16_t* a_packed = ap.data();
    uint16_t* b_packed = bp.data();
    for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int64_t kc = std::min(kKC, K - k0), kc_pad = (kc + 31) / 32 * 32;
        const float b_eff = k0 == 0 ? beta : 1.0f;
#pragma omp parallel
        {
#pragma omp for schedule(static) nowait
            for (int64_t i = 0; i < m_panels; ++i)
                pack_a(a_packed + i * kMR * kKC, A, ta, lda, i * kMR, std::min(kMR, M - i * kMR),
                       k0, kc, kc_pad);
#pragma omp for schedule(static)
            for (int64_t j = 0; j < n_panels; ++j)
                pack_b(b_packed + j * kNR * kKC, B, tb, ldb, k0, kc, kc_pad, j * kNR,
                       std::min(kNR, N - j * kNR));
            configure_tiles();
#pragma omp for schedule(dynamic, 1) collapse(2)
            for (int64_t i = 0; i < m_panels; ++i)
                for (int64_t g = 0; g < n_groups; ++g)
                    for (int64_t j = g * 4; j < std::min(n_panels, g * 4 + 4); ++j)
                        block(kc_pad, a_packed + i * kMR * kKC, b_packed + j * kNR * kKC,
                              C + i * kMR * ldc + j * kNR, ldc, std::min(kMR, M - i * kMR),
                              std::min(kNR, N - j * kNR), alpha, b_eff);
            _tile_release();
        }
    }
}

}  // namespace moe
