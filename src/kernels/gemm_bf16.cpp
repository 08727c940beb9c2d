// bf16 GEMM (f32 accumulation, f32 C): the portable blocked driver and the scalar reference
// microkernel. The AVX2 and AVX-512 paths reuse the own f32 GEMM's tiles on operands widened
// while packing; src/kernels/avx512_bf16/ has the VDPBF16PS and AMX kernels;
// include/moe/gemm_bf16.h has the contract.
//
// Structure (BLIS, as in gemm_own.cpp), with the packing shared by all threads:
//   for ic0 in M step MB               row super-block: bounds the shared A buffer
//     for pc in K step KC              depth block; the first applies beta, later ones add
//       pack op(A) rows [ic0, ic0+MB) x depth block into MR-tall micro-panels   (all threads)
//       for jc in N step NC
//         pack op(B) depth block x columns [jc, jc+NC) into NR-wide micro-panels (all threads)
//         for each task (MC rows x 128 columns of this block), dynamically scheduled:
//           for jr in the task's columns step NR   B micro-panel (KC, NR) stays in L1 ...
//             for ir in the task's rows step MR    ... while the A micro-panels stream from L2
//               microkernel: C(MR, NR) = alpha * A panel^T @ B panel + beta_k * C
// Packing converts (bf16 -> f32, or bf16 -> k-pairs) and transposes once, so one microkernel
// serves all four transpose cases and any lda / ldb; edge panels are zero-padded so the
// microkernel always runs the full tile and only its store is clipped.
//
// Threads: both operands are packed once per block by all threads together (omp for), so no
// thread repeats another's packing, unlike gemm_own's per-thread grid; the price is two
// barriers per (KC, NC) block, a few microseconds against milliseconds of work. The C tasks
// are a fixed partition of C (MC rows x 128 columns, independent of the thread count), and each
// C element is computed by exactly one task, summing its products in depth order within a KC
// block and the KC blocks in order, so the result is bit-identical for any thread count (and
// any scheduling). 128 columns: enough tasks to balance 2-16 threads on the MoE shapes
// (1024 x 2816: 8 x 22 tasks for AVX2), while a task still runs ~5 M multiply-adds.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "moe/error.h"
#include "moe/gemm_bf16.h"
#include "moe/gemm_own.h"

namespace moe {
namespace {

// ---- scalar microkernel: the reference twin of the AVX2 one -------------------------------
// 4 x 8 keeps 32 accumulators, enough independent chains for the SSE2 code the compiler
// generates at the baseline ISA; it is here to be obviously right, not fast. Multiply, then
// add: the product of two widened bf16 values is exact in f32, so this rounds exactly as the
// AVX2 kernel's FMA does (the baseline ISA has no FMA, so the compiler cannot contract
// either). The epilogue uses std::fma where the AVX2 kernel uses vfmadd, for the same reason.
constexpr int kScalarMr = 4, kScalarNr = 8;

void tile_scalar(int64_t kc, const void* a_panel, const void* b_panel, float* c, int64_t ldc,
                 int m, int n, float alpha, float beta) {
    const float* a = static_cast<const float*>(a_panel);
    const float* b = static_cast<const float*>(b_panel);
    float acc[kScalarMr][kScalarNr] = {};
    for (int64_t p = 0; p < kc; ++p) {
        for (int i = 0; i < kScalarMr; ++i) {
            const float ai = a[p * kScalarMr + i];
            for (int j = 0; j < kScalarNr; ++j) acc[i][j] += ai * b[p * kScalarNr + j];
        }
    }
    for (int i = 0; i < m; ++i) {
        float* ci = c + i * ldc;
        for (int j = 0; j < n; ++j)
            ci[j] = beta == 0.0f ? alpha * acc[i][j] : std::fma(alpha, acc[i][j], beta * ci[j]);
    }
}

// ---- packing ----------------------------------------------------------------------------------
// A micro-panel is `width` lines (rows of op(A), or columns of op(B)) by a depth block. With
// k_major the element (line r, depth p) of the source is X[p * ld + r] (op(A) = A stored
// (K, M), or op(B) = B stored (K, N)); otherwise it is X[r * ld + p] (A stored (M, K), or B
// stored (N, K), the x @ w^T case). So op(B)'s micro-panels are op(B)^T's, packed like A's.

// 4-byte words of one micro-panel `width` lines wide and kc deep.
int64_t panel_words(Bf16PanelLayout layout, int64_t kc, int width) {
    return (layout == Bf16PanelLayout::f32 ? kc : (kc + 1) / 2) * width;
}

inline uint32_t bits_at(const bf16* x) { return x->bits; }

inline float widen_bits(uint32_t bits) {
    const uint32_t u = bits << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// f32 layout: out[p * width + r] = op(X)(r0 + r, p0 + p) widened; lines past `lines` are 0.
void pack_f32(const bf16* X, int64_t ld, bool k_major, int64_t r0, int lines, int64_t p0,
              int64_t kc, int width, float* out) {
    if (k_major) {
        // Each depth step reads `lines` contiguous bf16 and writes them contiguously: the
        // compiler vectorises the widening (a shift) even at the baseline ISA.
        for (int64_t p = 0; p < kc; ++p) {
            const bf16* src = X + (p0 + p) * ld + r0;
            float* d = out + p * width;
            for (int r = 0; r < lines; ++r) d[r] = widen_bits(bits_at(src + r));
            for (int r = lines; r < width; ++r) d[r] = 0.0f;
        }
    } else {
        // Each line is read contiguously and written with stride `width` (a transpose). The
        // panel (kc * width floats, 16 KiB for AVX2) stays in L1, so the strided writes hit L1.
        for (int r = 0; r < lines; ++r) {
            const bf16* src = X + (r0 + r) * ld + p0;
            for (int64_t p = 0; p < kc; ++p) out[p * width + r] = widen_bits(bits_at(src + p));
        }
        for (int r = lines; r < width; ++r)
            for (int64_t p = 0; p < kc; ++p) out[p * width + r] = 0.0f;
    }
}

// k_pairs layout: out[p * width + r] = op(X)(r0 + r, p0 + 2p) | op(X)(r0 + r, p0 + 2p + 1) << 16,
// the odd depth tail and lines past `lines` zero. Little-endian, so as bf16 this is the
// (kp, width, 2) array VDPBF16PS wants for B, and for A one 32-bit broadcast per row.
void pack_pairs(const bf16* X, int64_t ld, bool k_major, int64_t r0, int lines, int64_t p0,
                int64_t kc, int width, uint32_t* out) {
    const int64_t kp = kc / 2;  // full pairs; an odd kc leaves one tail element
    if (k_major) {
        // Interleave two consecutive depth rows.
        for (int64_t p = 0; p < kp; ++p) {
            const bf16* lo = X + (p0 + 2 * p) * ld + r0;
            const bf16* hi = lo + ld;
            uint32_t* d = out + p * width;
            for (int r = 0; r < lines; ++r) d[r] = bits_at(lo + r) | bits_at(hi + r) << 16;
            for (int r = lines; r < width; ++r) d[r] = 0;
        }
        if (kc % 2) {
            const bf16* lo = X + (p0 + kc - 1) * ld + r0;
            uint32_t* d = out + kp * width;
            for (int r = 0; r < lines; ++r) d[r] = bits_at(lo + r);
            for (int r = lines; r < width; ++r) d[r] = 0;
        }
    } else {
        // A pair is two adjacent bf16 in memory: one unaligned 32-bit copy, written with stride
        // `width`.
        for (int r = 0; r < lines; ++r) {
            const bf16* src = X + (r0 + r) * ld + p0;
            for (int64_t p = 0; p < kp; ++p) {
                uint32_t pair;
                std::memcpy(&pair, src + 2 * p, 4);
                out[p * width + r] = pair;
            }
            if (kc % 2) out[kp * width + r] = bits_at(src + kc - 1);
        }
        for (int r = lines; r < width; ++r)
            for (int64_t p = 0; p < (kc + 1) / 2; ++p) out[p * width + r] = 0;
    }
}

void pack_panel(Bf16PanelLayout layout, const bf16* X, int64_t ld, bool k_major, int64_t r0,
                int lines, int64_t p0, int64_t kc, int width, uint32_t* out) {
    if (layout == Bf16PanelLayout::f32)
        pack_f32(X, ld, k_major, r0, lines, p0, kc, width, reinterpret_cast<float*>(out));
    else
        pack_pairs(X, ld, k_major, r0, lines, p0, kc, width, out);
}

// ---- pack buffers -----------------------------------------------------------------------------
// Owned by the calling thread and cached (OpenMP keeps its pool alive, and one layer step makes
// hundreds of GEMMs) so a call does not pay page faults for megabytes of fresh buffer. 64-byte
// aligned: every micro-panel starts on a cache line (panel sizes are multiples of 64 bytes for
// the SIMD tiles: kc * 16 floats, kp * 32 pairs).
struct PackBuffer {
    struct Free {
        void operator()(uint32_t* p) const { std::free(p); }
    };
    std::unique_ptr<uint32_t, Free> data;
    int64_t size = 0;

    uint32_t* get(int64_t words) {
        if (words > size) {
            const int64_t bytes = (words * 4 + 63) / 64 * 64;
            data.reset(static_cast<uint32_t*>(std::aligned_alloc(64, size_t(bytes))));
            MOE_CHECK(data, "gemm_bf16", "out of memory for pack buffers");
            size = words;
        }
        return data.get();
    }
};

thread_local PackBuffer t_pack_a, t_pack_b;

int64_t ceil_div(int64_t x, int64_t d) { return (x + d - 1) / d; }

constexpr int64_t kTaskCols = 128;  // columns per C task; a multiple of every nr
// Rows packed at once: the A buffer is at most this many rows x KC (4.5-6 MiB for the shipped
// kernels); taller products repack B once per super-block, 1 / kRowBlocksPacked of the work.
constexpr int64_t kRowBlocksPacked = 32;

// C = beta * C, without reading C when beta == 0 (the K == 0 / alpha == 0 case).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
    for (int64_t i = 0; i < M; ++i) {
        float* ci = C + i * ldc;
        if (beta == 0.0f)
            std::fill(ci, ci + N, 0.0f);
        else if (beta != 1.0f)
            for (int64_t j = 0; j < N; ++j) ci[j] *= beta;
    }
}

void gemm_run(const GemmBf16Kernel& kr, bool trans_a, bool trans_b, int64_t M, int64_t N,
              int64_t K, float alpha, const bf16* A, int64_t lda, const bf16* B, int64_t ldb,
              float beta, float* C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    // Below ~64^3 multiply-adds the fork/join (a few microseconds) costs more than it saves.
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (double(M) * double(N) * double(K) < 64.0 * 64.0 * 64.0) threads = 1;

    const int mr = kr.mr, nr = kr.nr;
    const int64_t mb_max = std::min(kRowBlocksPacked * kr.mc, ceil_div(M, mr) * mr);
    const int64_t nc_max = std::min(kr.nc, ceil_div(N, nr) * nr);
    const int64_t kc_max = std::min(kr.kc, K);
    uint32_t* a_buf = t_pack_a.get(mb_max / mr * panel_words(kr.layout, kc_max, mr));
    uint32_t* b_buf = t_pack_b.get(nc_max / nr * panel_words(kr.layout, kc_max, nr));

    // Every thread walks the same block loops; the omp for loops inside split the packing and
    // the tasks, and their implicit barriers order "pack" before "use" before "repack".
#pragma omp parallel num_threads(threads)
    for (int64_t ic0 = 0; ic0 < M; ic0 += mb_max) {
        const int64_t mb = std::min(mb_max, M - ic0);
        const int64_t a_panels = ceil_div(mb, mr);
        for (int64_t pc = 0; pc < K; pc += kr.kc) {
            const int64_t kc = std::min(kr.kc, K - pc);
            const float beta_k = pc == 0 ? beta : 1.0f;
            const int64_t a_words = panel_words(kr.layout, kc, mr);
            const int64_t b_words = panel_words(kr.layout, kc, nr);
            // No barrier needed here: the B packing's barrier below also waits for this.
#pragma omp for schedule(static) nowait
            for (int64_t r = 0; r < a_panels; ++r)
                pack_panel(kr.layout, A, lda, trans_a, ic0 + r * mr,
                           int(std::min<int64_t>(mr, mb - r * mr)), pc, kc, mr,
                           a_buf + r * a_words);
            for (int64_t jc = 0; jc < N; jc += kr.nc) {
                const int64_t nc = std::min(kr.nc, N - jc);
                const int64_t b_panels = ceil_div(nc, nr);
#pragma omp for schedule(static)
                for (int64_t s = 0; s < b_panels; ++s)
                    pack_panel(kr.layout, B, ldb, !trans_b, jc + s * nr,
                               int(std::min<int64_t>(nr, nc - s * nr)), pc, kc, nr,
                               b_buf + s * b_words);

                const int64_t row_tasks = ceil_div(mb, kr.mc), col_tasks = ceil_div(nc, kTaskCols);
#pragma omp for schedule(dynamic, 1)
                for (int64_t t = 0; t < row_tasks * col_tasks; ++t) {
                    const int64_t i0 = (t / col_tasks) * kr.mc, j0 = (t % col_tasks) * kTaskCols;
                    const int64_t i1 = std::min(mb, i0 + kr.mc), j1 = std::min(nc, j0 + kTaskCols);
                    for (int64_t jr = j0; jr < j1; jr += nr) {
                        const uint32_t* b_panel = b_buf + jr / nr * b_words;
                        const int n = int(std::min<int64_t>(nr, j1 - jr));
                        for (int64_t ir = i0; ir < i1; ir += mr)
                            kr.tile(kc, a_buf + ir / mr * a_words, b_panel,
                                    C + (ic0 + ir) * ldc + jc + jr, ldc,
                                    int(std::min<int64_t>(mr, i1 - ir)), n, alpha, beta_k);
                    }
                }
            }
        }
    }
}

// AVX2: widen while packing and run the own f32 GEMM's 6 x 16 AVX2 tile
// (src/kernels/avx2/gemm_own_avx2.cpp, where its register and port budget is written down),
// with this driver's KC = 192 so the summation order is the scalar twin's.
void tile_own_avx2(int64_t kc, const void* a, const void* b, float* c, int64_t ldc, int m, int n,
                   float alpha, float beta) {
    kGemmOwnAvx2.tile(kc, static_cast<const float*>(a), static_cast<const float*>(b), c, ldc, m,
                      n, alpha, beta);
}

// AVX-512F without BF16 instructions: widen while packing, as for AVX2, and run the own f32
// GEMM's AVX-512 tile (12 x 32, src/kernels/avx512/gemm_own_avx512.cpp): it reads the same f32
// panel layout and has the same epilogue contract, so only the pointer types need adapting.
// Its KC (192) equals ours, so this path too is bit-identical to the scalar twin.
void tile_own_avx512(int64_t kc, const void* a, const void* b, float* c, int64_t ldc, int m,
                     int n, float alpha, float beta) {
    kGemmOwnAvx512.tile(kc, static_cast<const float*>(a), static_cast<const float*>(b), c, ldc,
                        m, n, alpha, beta);
}

const GemmBf16Kernel& kernel_for(CpuPath path) {
    MOE_CHECK(cpu_supports(path), "gemm_bf16",
              std::string("this CPU cannot run the ") + cpu_path_name(path) + " path");
    switch (path) {
        case CpuPath::scalar: return kGemmBf16Scalar;
        case CpuPath::avx2: {
            // MC 144 (A block 108 KiB in L2), KC 192 (B micro-panel 12 KiB in L1), NC 3072
            // (B block 2.25 MiB in L3: the MoE widths fit in one block).
            static const GemmBf16Kernel k = {CpuPath::avx2, Bf16PanelLayout::f32, kGemmOwnAvx2.mr,
                                             kGemmOwnAvx2.nr, 144, 192, 3072, tile_own_avx2};
            return k;
        }
        case CpuPath::avx512: {
            // Built on first use, not at static initialisation: kGemmOwnAvx512 lives in another
            // translation unit, whose initialisation order is unspecified.
            static const GemmBf16Kernel k = {
                CpuPath::avx512,  Bf16PanelLayout::f32, kGemmOwnAvx512.mr, kGemmOwnAvx512.nr,
                kGemmOwnAvx512.mc, kGemmOwnAvx512.kc,   kGemmOwnAvx512.nc, tile_own_avx512};
            return k;
        }
        case CpuPath::avx512_bf16: return kGemmBf16Avx512Bf16;
    }
    fail("gemm_bf16", "unknown CPU path");
}

}  // namespace

// Blocking for the scalar twin: KC must equal the AVX2 and AVX-512 f32 kernels' (192: it fixes
// the summation order, which the bit-identity test relies on); the rest only needs to be right.
const GemmBf16Kernel kGemmBf16Scalar = {CpuPath::scalar, Bf16PanelLayout::f32, kScalarMr,
                                        kScalarNr,       128,                  192,
                                        2048,            tile_scalar};

void gemm_bf16_path(CpuPath path, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                    float alpha, const bf16* A, int64_t lda, const bf16* B, int64_t ldb,
                    float beta, float* C, int64_t ldc) {
    gemm_run(kernel_for(path), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, float* C,
               int64_t ldc) {
    static const CpuPath path = cpu_active_path();
    static const GemmBf16Kernel& kr = kernel_for(path);
    // AMX where the CPU has it: VDPBF16PS runs at half the f32 FMA rate on Sapphire Rapids.
    static const bool amx = path == CpuPath::avx512_bf16 && amx_bf16_usable();
    if (amx && M > 0 && N > 0 && K > 0 && alpha != 0.0f)
        gemm_bf16_amx(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        gemm_run(kr, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace moe
