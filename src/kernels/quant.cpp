// ggml type layouts (block sizes from ggml's type traits) and the dequantization dispatch.
#include "moe/quant.h"

#include <string>

#include "moe/error.h"

namespace moe {
namespace {

constexpr int64_t kQK = 256;  // values per super-block of the K-quants (QK_K)

struct TypeRow {
    uint32_t id;
    GgmlTypeInfo info;
};

// Every type ggml defines today (removed ids 4, 5, 31-33, 36-38 are absent). The dequantize flag
// marks what kernels/ref/dequant_ref.cpp implements.
constexpr TypeRow kTypes[] = {
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 2 + 16, true}},
    {3, {"Q4_1", 32, 2 + 2 + 16, true}},
    {6, {"Q5_0", 32, 2 + 4 + 16, true}},
    {7, {"Q5_1", 32, 2 + 2 + 4 + 16, true}},
    {8, {"Q8_0", 32, 2 + 32, true}},
    {9, {"Q8_1", 32, 4 + 4 + 32, false}},
    {10, {"Q2_K", kQK, 2 + 2 + kQK / 16 + kQK / 4, false}},
    {11, {"Q3_K", kQK, 2 + kQK / 4 + kQK / 8 + 12, false}},
    {12, {"Q4_K", kQK, 2 + 2 + kQK / 2 + 12, true}},
    {13, {"Q5_K", kQK, 2 + 2 + kQK / 2 + kQK / 8 + 12, true}},
    {14, {"Q6_K", kQK, 2 + kQK / 2 + kQK / 4 + kQK / 16, true}},
    {15, {"Q8_K", kQK, 4 + kQK + kQK / 8, false}},
    {16, {"IQ2_XXS", kQK, 2 + kQK / 4, false}},
    {17, {"IQ2_XS", kQK, 2 + kQK / 4 + kQK / 32, false}},
    {18, {"IQ3_XXS", kQK, 2 + kQK / 4 + kQK / 8, false}},
    {19, {"IQ1_S", kQK, 2 + kQK / 8 + kQK / 16, false}},
    {20, {"IQ4_NL", 32, 2 + 16, false}},
    {21, {"IQ3_S", kQK, 2 + kQK / 4 + kQK / 8 + kQK / 32 + 4, false}},
    {22, {"IQ2_S", kQK, 2 + kQK / 4 + kQK / 16, false}},
    {23, {"IQ4_XS", kQK, 2 + 2 + kQK / 2 + kQK / 64, false}},
    {24, {"I8", 1, 1, false}},
    {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},
    {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},
    {29, {"IQ1_M", kQK, kQK / 8 + kQK / 16 + kQK / 32, false}},
    {30, {"BF16", 1, 2, true}},
    {34, {"TQ1_0", kQK, 2 + 4 * 13, false}},
    {35, {"TQ2_0", kQK, 2 + 64, false}},
    {39, {"MXFP4", 32, 1 + 16, false}},
};

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
    for (const TypeRow& r : kTypes)
        if (r.id == type) return &r.info;
    return nullptr;
}

const GgmlTypeInfo& ggml_type_info(GgmlType type) {
    const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
    MOE_CHECK(info, "quant", "ggml type id " + std::to_string(uint32_t(type)) + " is not a known type");
    return *info;
}

const char* ggml_type_name(GgmlType type) { return ggml_type_info(type).name; }

int64_t ggml_row_bytes(GgmlType type, int64_t n) {
    const GgmlTypeInfo& t = ggml_type_info(type);
    MOE_CHECK(n >= 0 && n % t.block_size == 0, "quant",
              std::string("a row of ") + t.name + " holds a multiple of " + std::to_string(t.block_size) +
                  " values, got " + std::to_string(n));
    return n / t.block_size * t.block_bytes;
}

DequantFn DequantTable::get(GgmlType type) const {
    switch (type) {
        case GgmlType::f32: return f32;
        case GgmlType::f16: return f16;
        case GgmlType::bf16: return bf16;
        case GgmlType::q4_0: return q4_0;
        case GgmlType::q4_1: return q4_1;
        case GgmlType::q5_0: return q5_0;
        case GgmlType::q5_1: return q5_1;
        case GgmlType::q8_0: return q8_0;
        case GgmlType::q4_k: return q4_k;
        case GgmlType::q5_k: return q5_k;
        case GgmlType::q6_k: return q6_k;
        default: return nullptr;
    }
}

const DequantTable* dequant_kernels_for(CpuPath p) {
    if (!cpu_supports(p)) return nullptr;
    switch (p) {
        case CpuPath::scalar: return &kDequantScalar;
        // Dequantization is bound by loads and shuffles; AVX-512 paths use the AVX2 twins.
        case CpuPath::avx2:
        case CpuPath::avx512:
        case CpuPath::avx512_bf16: return &kDequantAvx2;
    }
    return nullptr;
}

const DequantTable& dequant_kernels() {
    static const DequantTable* table = dequant_kernels_for(cpu_active_path());
    return *table;
}

void dequantize_row(const DequantTable& table, GgmlType type, const void* src, float* dst, int64_t n) {
    const GgmlTypeInfo& t = ggml_type_info(type);
    DequantFn fn = table.get(type);
    MOE_CHECK(fn, "dequantize", std::string("dequantizing ") + t.name +
                                    " is not supported yet; supported: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 "
                                    "Q8_0 Q4_K Q5_K Q6_K");
    MOE_CHECK(n >= 0 && n % t.block_size == 0, "dequantize",
              std::string(t.name) + " rows hold a multiple of " + std::to_string(t.block_size) +
                  " values, got " + std::to_string(n));
    fn(src, dst, n / t.block_size);
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
    dequantize_row(dequant_kernels(), type, src, dst, n);
}

}  // namespace moe
