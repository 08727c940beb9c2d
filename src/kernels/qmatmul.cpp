// qmatmul (include/moe/qmatmul.h): the dot-kernel path for a few rows, dequantize + GEMM for
// more, and the per-path kernel tables.
#include "moe/qmatmul.h"

#include <algorithm>
#include <string>

#include "moe/error.h"
#include "moe/gemm.h"

namespace moe {

GgmlType qdot_activation_type(GgmlType weight) {
    switch (weight) {
        case GgmlType::f32:
        case GgmlType::f16:
        case GgmlType::bf16: return GgmlType::f32;
        case GgmlType::q8_0:
        case GgmlType::q4_0: return GgmlType::q8_0;
        case GgmlType::q4_k:
        case GgmlType::q6_k: return GgmlType::q8_k;
        default:
            fail("qmatmul", std::string("no quantized product for ") + ggml_type_name(weight) +
                                " weights; supported: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q6_K (requantize the file, "
                                "e.g. with llama-quantize)");
    }
}

bool qmatmul_supports(GgmlType weight) {
    switch (weight) {
        case GgmlType::f32: case GgmlType::f16: case GgmlType::bf16: case GgmlType::q8_0:
        case GgmlType::q4_0: case GgmlType::q4_k: case GgmlType::q6_k: return true;
        default: return false;
    }
}

QDotFn QDotTable::get(GgmlType weight) const {
    switch (weight) {
        case GgmlType::f32: return f32;
        case GgmlType::f16: return f16;
        case GgmlType::bf16: return bf16;
        case GgmlType::q8_0: return q8_0;
        case GgmlType::q4_0: return q4_0;
        case GgmlType::q4_k: return q4_k;
        case GgmlType::q6_k: return q6_k;
        default: return nullptr;
    }
}

const QDotTable* qdot_kernels_for(CpuPath p) {
    if (!cpu_supports(p)) return nullptr;
    switch (p) {
        case CpuPath::scalar: return &kQDotScalar;
        // No AVX-512 twins yet: those paths use the AVX2 kernels.
        case CpuPath::avx2:
        case CpuPath::avx512:
        case CpuPath::avx512_bf16: return &kQDotAvx2;
    }
    return nullptr;
}

const QDotTable& qdot_kernels() {
    static const QDotTable* table = qdot_kernels_for(cpu_active_path());
    return *table;
}

void qmatmul(const QDotTable& table, float* y, int64_t ldy, const float* x, int64_t ldx, int64_t n,
             const QMatrix& w, float beta, QMatmulScratch& s, int gemv) {
    const char* op = "qmatmul";
    if (n <= 0 || w.rows == 0) return;
    MOE_CHECK(w.data && w.cols > 0, op, "the weight matrix has no data");
    const GgmlType act = qdot_activation_type(w.type);
    if (w.type == GgmlType::f32) {  // already what the GEMM takes
        gemm_f32(false, true, n, w.rows, w.cols, 1.0f, x, ldx, static_cast<const float*>(w.data), w.cols, beta, y, ldy);
        return;
    }
    const int64_t wb = w.row_bytes();
    if (gemv == 1 || (gemv < 0 && n <= kQGemvMaxRows)) {
        const int64_t xb = ggml_row_bytes(act, w.cols);
        if (int64_t(s.xq.size()) < n * xb) s.xq.resize(size_t(n * xb));
        for (int64_t i = 0; i < n; ++i) quantize_activations(act, x + i * ldx, s.xq.data() + i * xb, w.cols);
        const QDotFn dot = table.get(w.type);
        const uint8_t* W = static_cast<const uint8_t*>(w.data);
        const uint8_t* X = s.xq.data();
        // Each weight row is read once (from memory) and used for every row of x (from cache).
#pragma omp parallel for schedule(static) if (w.rows * w.cols >= (1 << 16))
        for (int64_t r = 0; r < w.rows; ++r) {
            for (int64_t i = 0; i < n; ++i) {
                const float v = dot(W + r * wb, X + i * xb, w.cols);
                float& out = y[i * ldy + r];
                out = beta == 0.0f ? v : beta * out + v;
            }
        }
        return;
    }
    // Dequantize a panel of rows (about 4 MiB of f32) at a time, then one GEMM per panel.
    const int64_t panel = std::clamp<int64_t>((int64_t(1) << 20) / w.cols, 16, w.rows);
    if (int64_t(s.panel.size()) < panel * w.cols) s.panel.resize(size_t(panel * w.cols));
    float* P = s.panel.data();
    for (int64_t r0 = 0; r0 < w.rows; r0 += panel) {
        const int64_t m = std::min(panel, w.rows - r0);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < m; ++r) dequantize_row(w.type, w.row(r0 + r), P + r * w.cols, w.cols);
        gemm_f32(false, true, n, m, w.cols, 1.0f, x, ldx, P, w.cols, beta, y + r0, ldy);
    }
}

void qmatmul(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t n, const QMatrix& w, float beta,
             QMatmulScratch& s) {
    qmatmul(qdot_kernels(), y, ldy, x, ldx, n, w, beta, s);
}

}  // namespace moe
