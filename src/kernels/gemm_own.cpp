// Our own f32 GEMM: the portable driver and the scalar reference microkernel.
//
// Structure (BLIS, Van Zee & van de Geijn 2015): five loops around an MR x NR microkernel.
//   for jc in N step NC        B block (KC, NC) lives in L3, shared by every ic
//     for pc in K step KC      pack B block into NR-wide micro-panels (kc, NR)
//       for ic in M step MC    pack A block into MR-tall micro-panels (kc, MR); lives in L2
//         for jr in NC step NR   one B micro-panel (kc, NR) stays in L1 ...
//           for ir in MC step MR ... while the A micro-panels stream past it from L2
//             microkernel: C(MR, NR) += A panel^T @ B panel, accumulators in registers
// Packing makes the microkernel's loads unit-stride and independent of trans_a / trans_b /
// lda / ldb, so one microkernel serves all four transpose cases; edge panels are zero-padded
// so the microkernel always runs the full MR x NR tile and only its store is clipped.
//
// Threads: C is cut into a tm x tn grid of rectangles (rows in multiples of MR, columns in
// multiples of NR), one per thread, each running the five loops on its own with its own pack
// buffers. No barrier inside the GEMM, and no false sharing on C. The price is that a thread
// packs the A rows (or B columns) of its whole row (column) of the grid, so the grid is chosen
// to minimise the packed volume M/tm + N/tn per thread: with 2 threads and the MoE shapes that
// splits the longer of M and N, and the duplicated packing is ~1/min(M, N) of the FLOPs.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

#include "moe/error.h"
#include "moe/gemm_own.h"

namespace moe {
namespace {

// ---- scalar microkernel: the reference twin of the SIMD ones ------------------------------
// 4 x 8 keeps 32 accumulators, enough independent chains for the SSE2 code the compiler
// generates from it at the baseline ISA; it is here to be obviously right, not fast.
constexpr int kScalarMr = 4, kScalarNr = 8;

void tile_scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                 float alpha, float beta) {
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
            ci[j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * ci[j];
    }
}

// ---- packing --------------------------------------------------------------------------------
// op(A)(i, p) for the block rows [i0, i0 + mc), depth [p0, p0 + kc) into ceil(mc / mr) panels,
// panel r at out + r * kc * mr, element (p, i) at p * mr + i; rows past mc are zero.
void pack_a(bool trans_a, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
            int64_t kc, int mr, float* out) {
    for (int64_t r = 0; r < mc; r += mr) {
        const int rows = int(std::min<int64_t>(mr, mc - r));
        float* dst = out + r * kc;  // (r / mr) * kc * mr
        if (trans_a) {
            // A stored (K, M): each depth step p reads `rows` contiguous floats.
            for (int64_t p = 0; p < kc; ++p) {
                const float* src = A + (p0 + p) * lda + i0 + r;
                float* d = dst + p * mr;
                for (int i = 0; i < rows; ++i) d[i] = src[i];
                for (int i = rows; i < mr; ++i) d[i] = 0.0f;
            }
        } else {
            // A stored (M, K): read each row contiguously, write with stride mr.
            for (int i = 0; i < rows; ++i) {
                const float* src = A + (i0 + r + i) * lda + p0;
                for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = src[p];
            }
            for (int i = rows; i < mr; ++i)
                for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = 0.0f;
        }
    }
}

// op(B)(p, j) for depth [p0, p0 + kc), columns [j0, j0 + nc) into ceil(nc / nr) panels, panel
// s at out + s * kc * nr, element (p, j) at p * nr + j; columns past nc are zero.
void pack_b(bool trans_b, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
            int64_t nc, int nr, float* out) {
    for (int64_t s = 0; s < nc; s += nr) {
        const int cols = int(std::min<int64_t>(nr, nc - s));
        float* dst = out + s * kc;
        if (!trans_b) {
            // B stored (K, N): each depth step reads `cols` contiguous floats.
            for (int64_t p = 0; p < kc; ++p) {
                const float* src = B + (p0 + p) * ldb + j0 + s;
                float* d = dst + p * nr;
                for (int j = 0; j < cols; ++j) d[j] = src[j];
                for (int j = cols; j < nr; ++j) d[j] = 0.0f;
            }
        } else {
            // B stored (N, K), the x @ w^T case: read each weight row contiguously, write with
            // stride nr (a transpose; the panel is reused by all M rows, which pays for it).
            for (int j = 0; j < cols; ++j) {
                const float* src = B + (j0 + s + j) * ldb + p0;
                for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = src[p];
            }
            for (int j = cols; j < nr; ++j)
                for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = 0.0f;
        }
    }
}

// ---- per-thread pack buffers ------------------------------------------------------------------
// Cached per thread (OpenMP keeps its pool alive) so a GEMM does not pay page faults for
// megabytes of fresh buffer on every call. 64-byte aligned: one cache line per panel start.
struct PackBuffer {
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> data;
    int64_t size = 0;

    float* get(int64_t n) {
        if (n > size) {
            const int64_t bytes = (n * int64_t(sizeof(float)) + 63) / 64 * 64;
            data.reset(static_cast<float*>(std::aligned_alloc(64, size_t(bytes))));
            MOE_CHECK(data, "gemm_f32_own", "out of memory for pack buffers");
            size = n;
        }
        return data.get();
    }
};

thread_local PackBuffer t_pack_a, t_pack_b;

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// The five loops for C rows [r0, r1), columns [c0, c1), on the calling thread.
void gemm_serial(const GemmOwnKernel& kr, bool trans_a, bool trans_b, int64_t r0, int64_t r1,
                 int64_t c0, int64_t c1, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    const int64_t mr = kr.mr, nr = kr.nr;
    const int64_t mc_max = std::min(kr.mc, round_up(r1 - r0, mr));
    const int64_t nc_max = std::min(kr.nc, round_up(c1 - c0, nr));
    const int64_t kc_max = std::min(kr.kc, K);
    float* a_pack = t_pack_a.get(mc_max * kc_max);
    float* b_pack = t_pack_b.get(nc_max * kc_max);

    for (int64_t jc = c0; jc < c1; jc += kr.nc) {
        const int64_t nc = std::min(kr.nc, c1 - jc);
        for (int64_t pc = 0; pc < K; pc += kr.kc) {
            const int64_t kc = std::min(kr.kc, K - pc);
            // The first depth block applies the caller's beta; the later ones accumulate.
            const float beta_k = pc == 0 ? beta : 1.0f;
            pack_b(trans_b, B, ldb, pc, kc, jc, nc, kr.nr, b_pack);
            for (int64_t ic = r0; ic < r1; ic += kr.mc) {
                const int64_t mc = std::min(kr.mc, r1 - ic);
                pack_a(trans_a, A, lda, ic, mc, pc, kc, kr.mr, a_pack);
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    const int n = int(std::min(nr, nc - jr));
                    const float* b_panel = b_pack + jr * kc;
                    for (int64_t ir = 0; ir < mc; ir += mr) {
                        const int m = int(std::min(mr, mc - ir));
                        kr.tile(kc, a_pack + ir * kc, b_panel, C + (ic + ir) * ldc + jc + jr,
                                ldc, m, n, alpha, beta_k);
                    }
                }
            }
        }
    }
}

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

const GemmOwnKernel& kernel_for(CpuPath path) {
    MOE_CHECK(cpu_supports(path), "gemm_f32_own",
              std::string("this CPU cannot run the ") + cpu_path_name(path) + " path");
    switch (path) {
        case CpuPath::scalar: return kGemmOwnScalar;
        case CpuPath::avx2: return kGemmOwnAvx2;
        // No BF16 instructions in an f32 GEMM: the avx512_bf16 path runs the avx512 kernel.
        case CpuPath::avx512:
        case CpuPath::avx512_bf16: return kGemmOwnAvx512;
    }
    fail("gemm_f32_own", "unknown CPU path");
}

void gemm_run(const GemmOwnKernel& kr, bool trans_a, bool trans_b, int64_t M, int64_t N,
              int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
              float beta, float* C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    // Below ~64^3 multiply-adds the fork/join (a few microseconds) costs more than it saves.
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (double(M) * double(N) * double(K) < 64.0 * 64.0 * 64.0) threads = 1;
    if (threads <= 1) {
        gemm_serial(kr, trans_a, trans_b, 0, M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // Grid tm x tn = threads minimising the per-thread packed volume M/tm + N/tn.
    const int64_t m_tiles = (M + kr.mr - 1) / kr.mr, n_tiles = (N + kr.nr - 1) / kr.nr;
    int tm = 1;
    double best = -1.0;
    for (int t = 1; t <= threads; ++t) {
        if (threads % t != 0 || t > m_tiles || threads / t > n_tiles) continue;
        const double cost = double(M) / t + double(N) / (threads / t);
        if (best < 0.0 || cost < best) best = cost, tm = t;
    }
    if (best < 0.0) {
        // Too few tiles for every factorisation: fall back to splitting the longer side.
        tm = m_tiles >= n_tiles ? int(std::min<int64_t>(threads, m_tiles)) : 1;
        threads = m_tiles >= n_tiles ? tm : int(std::min<int64_t>(threads, n_tiles));
    }
    const int tn = threads / tm;
    const int64_t rows_per = (m_tiles + tm - 1) / tm * kr.mr;
    const int64_t cols_per = (n_tiles + tn - 1) / tn * kr.nr;

#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        const int64_t r0 = (t / tn) * rows_per, c0 = (t % tn) * cols_per;
        const int64_t r1 = std::min(M, r0 + rows_per), c1 = std::min(N, c0 + cols_per);
        if (r0 < r1 && c0 < c1)
            gemm_serial(kr, trans_a, trans_b, r0, r1, c0, c1, K, alpha, A, lda, B, ldb, beta, C,
                        ldc);
    }
}

}  // namespace

// Blocking for the scalar twin: only needs to be correct; sizes as for AVX2.
const GemmOwnKernel kGemmOwnScalar = {CpuPath::scalar, kScalarMr, kScalarNr, 128, 256, 2048,
                                      tile_scalar};

void gemm_f32_own_path(CpuPath path, bool trans_a, bool trans_b, int64_t M, int64_t N,
                       int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                       int64_t ldb, float beta, float* C, int64_t ldc) {
    gemm_run(kernel_for(path), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_f32_own(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc) {
    static const GemmOwnKernel& kr = kernel_for(cpu_active_path());
    gemm_run(kr, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace moe
