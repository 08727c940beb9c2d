// bf16 GEMM with f32 accumulation and f32 output, for bf16 training (f32 master weights).
// Neither Debian's nor Ubuntu's OpenBLAS exports cblas_sbgemm, so this is our own: a BLIS-style
// blocked driver (src/kernels/gemm_bf16.cpp) with one register microkernel per CpuPath.
//
// Paths: scalar, avx2 and avx512 widen bf16 to f32 while packing (exact: a bf16 is the top half
// of an f32) and run an f32 microkernel (avx512: the own f32 GEMM's AVX-512 tile);
// avx512_bf16 packs k-pairs of bf16 and runs VDPBF16PS, except that gemm_bf16 runs the AMX
// kernel where AMX is usable (VDPBF16PS issues at half the f32 FMA rate on Sapphire Rapids). The product of two bf16 values is
// exact in f32 (8 x 8 significand bits), so the scalar kernel (multiply, then add) and the
// SIMD f32 kernels (FMA) round identically: with the same KC their results are bit-identical
// (barring products below FLT_MIN), which the test checks. Every path: each C element sums its K products in
// order, in K blocks of the kernel's KC, on whatever thread; results do not depend on the
// thread count.
#pragma once
#include <cstdint>

#include "moe/bf16.h"
#include "moe/cpu.h"

namespace moe {

// C(M, N) = alpha * op(A)(M, K) @ op(B)(K, N) + beta * C; A, B bf16, C f32, f32 accumulation.
// Row-major, leading dimensions in elements; op(A) = A (M, K) when !trans_a, else A is stored
// (K, M); same for B (stored (K, N), or (N, K) when trans_b). beta == 0: C is not read (NaN in
// C does not propagate). Runs on cpu_active_path() with omp_get_max_threads() threads (one
// inside a parallel region).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, float* C,
               int64_t ldc);

// The AMX kernel (src/kernels/avx512_bf16/gemm_bf16_amx.cpp), which gemm_bf16 uses on the
// avx512_bf16 path when amx_bf16_usable(): the CPU has AMX-TILE and AMX-BF16 and Linux granted
// this process the tile state. Requires M, N, K > 0 and alpha != 0.
bool amx_bf16_usable();
void gemm_bf16_amx(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, float* C,
                   int64_t ldc);

// The same on a given path (tests, benchmarks); throws moe::Error when the CPU cannot run it.
void gemm_bf16_path(CpuPath path, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                    float alpha, const bf16* A, int64_t lda, const bf16* B, int64_t ldb,
                    float beta, float* C, int64_t ldc);

// Internal: one microkernel, the panel layout it reads and the cache blocking it was tuned
// with. Defined in src/kernels/gemm_bf16.cpp (scalar; the avx2 and avx512 ones are built there
// from the own f32 GEMM's tiles) and src/kernels/avx512_bf16/.
enum class Bf16PanelLayout {
    // f32, widened while packing: A micro-panel (kc, mr), B micro-panel (kc, nr).
    f32,
    // bf16 k-pairs for dot-product instructions, kp = ceil(kc / 2), the odd tail padded with 0:
    // A micro-panel (kp, mr) of u32 = op(A)(i, 2p) | op(A)(i, 2p + 1) << 16;
    // B micro-panel (kp, nr, 2) of bf16 = op(B)(2p, j), op(B)(2p + 1, j).
    k_pairs,
};

struct GemmBf16Kernel {
    CpuPath path;
    Bf16PanelLayout layout;
    int mr, nr;              // register tile
    int64_t mc, kc, nc;      // cache blocks: A block (mc, kc) in L2, B block (kc, nc) in L3;
                             // kc even (k_pairs) and fixed: it sets the summation order
    // C(m, n) = alpha * acc + beta * C, acc(mr, nr) = sum over the kc depth of the packed panels
    // a and b (zero-padded past m, n and kc), m <= mr and n <= nr the part of the tile that
    // exists in C. beta == 0: C is not read.
    void (*tile)(int64_t kc, const void* a, const void* b, float* c, int64_t ldc, int m, int n,
                 float alpha, float beta);
};

extern const GemmBf16Kernel kGemmBf16Scalar;
extern const GemmBf16Kernel kGemmBf16Avx512Bf16;

}  // namespace moe
