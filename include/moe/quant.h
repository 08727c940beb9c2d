// llama.cpp's tensor types (ggml_type) and their block layouts, and dequantization to f32,
// bit-compatible with ggml's dequantize_row_* (and gguf-py's gguf.quants.dequantize). A type
// stores a row of n values as n / block_size blocks of block_bytes each; docs/formats.md has
// every layout and formula. kernels/ref/dequant_ref.cpp is the definition; kernels/avx2 holds
// SIMD twins, chosen at run time like the element-wise kernels (MOE_CPU honoured).
#pragma once
#include <cstdint>

#include "moe/cpu.h"

namespace moe {

// The numeric values are ggml's (they are what a GGUF file stores).
enum class GgmlType : uint32_t {
    f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9,
    q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15,
    iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22,
    iq4_xs = 23, i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30,
    tq1_0 = 34, tq2_0 = 35, mxfp4 = 39,
};

struct GgmlTypeInfo {
    const char* name;     // "Q4_K", as llama.cpp prints it
    int64_t block_size;   // values per block
    int64_t block_bytes;  // bytes per block
    bool dequantize;      // dequantize_row supports it
};

// The layout of a type id read from a file, or nullptr when the id is not a ggml type we know.
const GgmlTypeInfo* ggml_type_info(uint32_t type);
// Same for a GgmlType value (always known).
const GgmlTypeInfo& ggml_type_info(GgmlType type);
const char* ggml_type_name(GgmlType type);
// Bytes of a row of n values; throws unless n is a multiple of the block size.
int64_t ggml_row_bytes(GgmlType type, int64_t n);

// Dequantizes n_blocks whole blocks of one type from src to dst (n_blocks * block_size floats).
using DequantFn = void (*)(const void* src, float* dst, int64_t n_blocks);

// One dequantizer per supported type, per CPU path; nullptr for a type this table lacks.
struct DequantTable {
    CpuPath path;
    DequantFn f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k;
    DequantFn get(GgmlType type) const;
};

// The table for the active path (MOE_CPU honoured), resolved once.
const DequantTable& dequant_kernels();
// The table of a given path, or nullptr when that path is not compiled in or the CPU lacks it.
const DequantTable* dequant_kernels_for(CpuPath p);

// dst[0..n) = the n values stored at src; n a multiple of the block size. Throws naming the type
// when it cannot be dequantized or n is not a whole number of blocks.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);
void dequantize_row(const DequantTable& table, GgmlType type, const void* src, float* dst, int64_t n);

// IEEE half to float, exact (subnormals, infinities; a NaN stays NaN, quieted as F16C does).
float fp16_to_fp32(uint16_t h);
// Float to IEEE half, rounded to nearest even (subnormals; overflow to infinity), as numpy's
// astype(float16) and ggml's GGML_FP32_TO_FP16 round.
uint16_t fp32_to_fp16(float f);

// Quantizes n values (a multiple of the block size) of src into dst (ggml_row_bytes(type, n)
// bytes): F32, F16, BF16, Q8_0 and Q4_0, bit-identical to ggml's quantize_row_*_ref and
// gguf-py's gguf.quants.quantize (kernels/ref/quantize_ref.cpp). Throws naming the type when
// it cannot be quantized or n is not a whole number of blocks.
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);
// True when quantize_row supports the type.
bool can_quantize(GgmlType type);

extern const DequantTable kDequantScalar;
extern const DequantTable kDequantAvx2;

}  // namespace moe
