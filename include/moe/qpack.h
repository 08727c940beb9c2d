// Interleaving a quantized matrix's rows by groups of 8 for the decode and prompt kernels
// (QMatrix::packed8), as llama.cpp's CPU backend repacks Q4_0 at load ("Q4_0_8x8"; our layout is
// our own). A row's dot product reads one block of 32 weights at a time and spends most of its
// instructions on that row's nibbles, scale and horizontal sums; 8 rows side by side share the
// activation, their 8 scales convert in one instruction and their 8 sums leave in one vector
// (docs/formats.md, "Packed Q4_0 and Q8_0").
//
// Layout (Q4_0: 16 quant bytes a row's block, Q8_0: 32): group g of 8 rows is 8 row_bytes() at
// data + 8 g row_bytes(); inside it, block b (columns 32 b .. 32 b + 31) is 8 block bytes (144,
// 272) at 8 b block bytes:
//   bytes 0..15  the 8 rows' f16 scales, slot i holding row kQx8ScaleRow[i];
//   then chunks of 32 bytes (4 for Q4_0, 8 for Q8_0): chunk c holds rows 4 (c % 2) .. 4 (c % 2)
//                + 3, 8 bytes each (row 4 (c % 2) + j at byte 8 j of the chunk): quant bytes
//                8 (c / 2) .. 8 (c / 2) + 7 of that row's block. Q4_0: byte k holds value k in
//                its low nibble and value k + 16 in its high one; Q8_0: byte k is value k.
#pragma once
#include <cstdint>

#include "moe/qmatmul.h"

namespace moe {

// The order in which the AVX2 kernel's lanes come out (a horizontal add of rows 0-3 and 4-7).
inline constexpr int kQx8ScaleRow[8] = {0, 1, 4, 5, 2, 3, 6, 7};

// Whether qmatrix_pack8 takes m: Q4_0 or Q8_0, rows a multiple of 8, not packed already.
bool qmatrix_packable(const QMatrix& m);
// Writes m's rows packed into dst (m.rows * m.row_bytes() bytes, not overlapping m) and returns
// the view of dst. Throws unless qmatrix_packable(m). Parallel over groups (OpenMP).
QMatrix qmatrix_pack8(const QMatrix& m, uint8_t* dst);
// The 8 plain rows of group g of a packed matrix, back in the file's layout (8 row_bytes()).
void qmatrix_unpack_group(const QMatrix& m, int64_t g, uint8_t* rows8);
// Rows [r0, r0 + n) of m as f32 (out: n x m.cols), packed or not; packed: r0 and n multiples of 8.
void qmatrix_dequantize_rows(const QMatrix& m, int64_t r0, int64_t n, float* out);

}  // namespace moe
