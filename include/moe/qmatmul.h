// Products with weights kept as a GGUF stores them (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K,
// Q6_K):
// y = x W^T (nn.Linear) straight from the blocks, no f32 copy of W. A few rows of x (decode)
// go through per-row dot kernels on quantized activations, llama.cpp's scheme: x is quantized
// once to Q8_0 (for Q8_0 / Q4_0 weights) or Q8_K (for the K-quants), and each block's integer
// dot product is scaled by the two block scales. More rows (prompt processing) dequantize W a
// panel at a time and use the f32 GEMM, except Q4_0 / Q8_0 matrices packed by 8 rows
// (include/moe/qpack.h), which keep the integer kernels up to kQPackedGemmMaxRows rows. docs/formats.md, "Quantized products", has the formulas.
#pragma once
#include <cassert>
#include <cstdint>
#include <vector>

#include "moe/cpu.h"
#include "moe/quant.h"

namespace moe {

// A rows x cols weight matrix in a ggml type, row-major: row r is ggml_row_bytes(type, cols)
// bytes at data + r * row_bytes. A view: the bytes stay with the owner (an mmapped GGUF, an arena).
// packed8: the rows interleaved by groups of 8 (qmatrix_pack8, include/moe/qpack.h): group g
// is still 8 row_bytes() at data + 8 g row_bytes(), but no single row lies contiguous, so
// row() is not defined; slices start and end on group boundaries.
struct QMatrix {
    GgmlType type = GgmlType::f32;
    int64_t rows = 0, cols = 0;
    const void* data = nullptr;
    bool packed8 = false;
    int64_t row_bytes() const { return ggml_row_bytes(type, cols); }
    const uint8_t* row(int64_t r) const {
        assert((!packed8 || r % 8 == 0) && "a packed matrix's rows are not contiguous");
        return static_cast<const uint8_t*>(data) + r * row_bytes();
    }
    // Rows [r0, r0 + n) as a matrix (an expert of a stacked (E F, D) tensor); packed: r0 and n
    // multiples of 8 (qmatrix_pack8 packs only matrices whose experts are).
    QMatrix slice(int64_t r0, int64_t n) const { return {type, n, cols, row(r0), packed8}; }
};

// The activation format a weight type's dot product takes: Q8_0 for Q8_0 / Q4_0, Q8_K for
// Q4_K / Q5_K / Q6_K, F32 for F32 / F16 / BF16. Throws naming the type when there is no dot product.
GgmlType qdot_activation_type(GgmlType weight);
bool qmatmul_supports(GgmlType weight);

// sum over the n values of one row: w (n values of the weight type) . x (n values in the
// activation format). n a multiple of the block size.
using QDotFn = float (*)(const void* w, const void* x, int64_t n);

// The 8 dot products of one packed group of 8 rows (QMatrix::packed8) with x: y[0..7], rows in
// their order. n a multiple of the block size.
using QDot8Fn = void (*)(const void* w, const void* x, int64_t n, float* y);

// Rows of x quantized to Q8_0 for the packed products of many rows (prompts): row i's blocks at
// q + i stride, and per block (row-major, nb a row) its scale as f32 and 8 x the sum of its
// values (the nibbles stay unsigned, q - 8 = nibble - 8: 8 sum(x) comes off each block's sum).
struct QxRows {
    const uint8_t* q = nullptr;
    int64_t stride = 0, nb = 0;
    const float* d = nullptr;
    const int32_t* sum8 = nullptr;
};
// y[i ldy + r] (= beta y +) for rows i0 .. i0 + nx - 1 of x and the 8 rows r of one packed group.
using QGemm8Fn = void (*)(const void* w, const QxRows& x, int64_t i0, int64_t nx, float* y, int64_t ldy, float beta);

struct QDotTable {
    CpuPath path;
    QDotFn f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k;
    QDot8Fn q4_0_x8, q8_0_x8;              // packed Q4_0 / Q8_0 . Q8_0, one row of x
    QGemm8Fn q4_0_x8_gemm, q8_0_x8_gemm;   // the same, many rows of x (the same sums)
    QDotFn get(GgmlType weight) const;
    QDot8Fn get8(GgmlType weight) const;    // nullptr for a type that does not pack
    QGemm8Fn gemm8(GgmlType weight) const;
};
const QDotTable& qdot_kernels();                // the active path (MOE_CPU honoured)
const QDotTable* qdot_kernels_for(CpuPath p);   // nullptr when not compiled in or unsupported
extern const QDotTable kQDotScalar;
extern const QDotTable kQDotAvx2;

// Activation quantization, one definition for every path (kernels/ref/qdot_ref.cpp), as ggml's
// CPU backend quantizes activations on x86: Q8_0 blocks of 32 (f16 scale max|x| / 127, values
// x 127 / max|x| rounded half to even, as its AVX2 quantize_row_q8_0), Q8_K blocks of 256
// (quantize_row_q8_K_ref: f32 scale, 16 int16 sums of 16 values). F32: a copy. dst holds
// ggml_row_bytes(act, n) bytes.
void quantize_activations(GgmlType act, const float* x, void* dst, int64_t n);

// Reused buffers of qmatmul (grow, never shrink).
struct QMatmulScratch {
    std::vector<uint8_t> xq, xq2;  // the quantized rows of x (xq2: a second format)
    std::vector<float> panel;  // dequantized rows of W
    std::vector<float> xd;     // QxRows: block scales and 8 x block sums of xq
    std::vector<int32_t> xs8;
};

// y (n, w.rows), row stride ldy = beta * y + x (n, w.cols), row stride ldx, times W^T.
// Throws naming the type when W's type has no product here.
void qmatmul(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t n, const QMatrix& w, float beta,
             QMatmulScratch& scratch);
// The same with an explicit kernel table (tests run every path) and the decode path forced on
// or off (gemv = 1: dot kernels for every n; 0: dequantize + GEMM for every n; -1: by n, and a
// packed matrix takes its many-rows kernel for kQGemvMaxRows < n <= kQPackedGemmMaxRows).
void qmatmul(const QDotTable& table, float* y, int64_t ldy, const float* x, int64_t ldx, int64_t n,
             const QMatrix& w, float beta, QMatmulScratch& scratch, int gemv = -1);

// Rows of x up to which qmatmul uses the dot kernels (decode); above it, dequantize + GEMM.
constexpr int64_t kQGemvMaxRows = 4;
// A packed matrix takes its many-rows kernel up to this many rows of x, and dequantize + GEMM
// above: measured on a 2-core Zen3 (docs/formats.md, "Packed Q4_0 and Q8_0"), the integer kernel
// runs at 130-190 GFLOP/s for any count while the f32 GEMM needs about 128 rows to overtake it
// on some shapes (160-176 at 512 rows) and pays for the dequantization below that.
constexpr int64_t kQPackedGemmMaxRows = 128;

// Several products of the same x (q, k and v of attention): y_j = x W_j^T, as qmatmul each,
// but on the dot path x is quantized once and all rows run in one parallel loop (when every
// W_j takes the same activation format and none is F32, which goes to the GEMM).
struct QOutput {
    const QMatrix* w;
    float* y;
    int64_t ldy;
};
void qmatmul_shared_x(const QOutput* outs, int count, const float* x, int64_t ldx, int64_t n, QMatmulScratch& scratch);

// The dot path in two steps, so that one parallel loop serves several matrices (q, k and v of
// a token; the gate and up matrices of all its experts): quantize the rows of x once per
// activation format, then run every job's rows in one loop. Job: y[i * ldy + r] (= beta y +)
// w.row(r) . x_i for r < w.rows, i < n, x_i at xq + i * xq_stride in w's activation format.
struct QGemvJob {
    QMatrix w;
    const uint8_t* xq = nullptr;
    int64_t xq_stride = 0, n = 0;
    float* y = nullptr;
    int64_t ldy = 0;
    float beta = 0.0f;
};
// Quantizes n rows of x (row stride ldx, cols values each) for weights of type `weight` into
// buf; returns the byte stride of one quantized row.
int64_t qgemv_quantize(std::vector<uint8_t>& buf, GgmlType weight, const float* x, int64_t ldx, int64_t n, int64_t cols);
void qgemv_run(const QDotTable& table, const QGemvJob* jobs, int64_t n_jobs);

}  // namespace moe
