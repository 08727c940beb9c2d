// qmatmul (include/moe/qmatmul.h): the dot-kernel path for a few rows, dequantize + GEMM for
// more, and the per-path kernel tables.
#include "moe/qmatmul.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/qpack.h"

namespace moe {

GgmlType qdot_activation_type(GgmlType weight) {
    switch (weight) {
        case GgmlType::f32:
        case GgmlType::f16:
        case GgmlType::bf16: return GgmlType::f32;
        case GgmlType::q8_0:
        case GgmlType::q4_0: return GgmlType::q8_0;
        case GgmlType::q4_k:
        case GgmlType::q5_k:
        case GgmlType::q6_k: return GgmlType::q8_k;
        default:
            fail("qmatmul", std::string("no quantized product for ") + ggml_type_name(weight) +
                                " weights; supported: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K (requantize the file, "
                                "e.g. with llama-quantize)");
    }
}

bool qmatmul_supports(GgmlType weight) {
    switch (weight) {
        case GgmlType::f32: case GgmlType::f16: case GgmlType::bf16: case GgmlType::q8_0:
        case GgmlType::q4_0: case GgmlType::q4_k: case GgmlType::q5_k: case GgmlType::q6_k: return true;
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
        case GgmlType::q5_k: return q5_k;
        case GgmlType::q6_k: return q6_k;
        default: return nullptr;
    }
}

QDot8Fn QDotTable::get8(GgmlType weight) const {
    return weight == GgmlType::q4_0 ? q4_0_x8 : weight == GgmlType::q8_0 ? q8_0_x8 : nullptr;
}

QGemm8Fn QDotTable::gemm8(GgmlType weight) const {
    return weight == GgmlType::q4_0 ? q4_0_x8_gemm : weight == GgmlType::q8_0 ? q8_0_x8_gemm : nullptr;
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

int64_t qgemv_quantize(std::vector<uint8_t>& buf, GgmlType weight, const float* x, int64_t ldx, int64_t n, int64_t cols) {
    const GgmlType act = qdot_activation_type(weight);
    const int64_t xb = ggml_row_bytes(act, cols);
    if (int64_t(buf.size()) < n * xb) buf.resize(size_t(n * xb));
    for (int64_t i = 0; i < n; ++i) quantize_activations(act, x + i * ldx, buf.data() + i * xb, cols);
    return xb;
}

void qgemv_run(const QDotTable& table, const QGemvJob* jobs, int64_t n_jobs) {
    // Blocks of rows of every job, split evenly across the threads: each weight row is read
    // once (from memory) and used for every row of x (from cache).
    constexpr int64_t kBlock = 32;
    struct Block {
        int64_t job, r0, r1;
    };
    std::vector<Block> blocks;  // read by every thread of the loop below
    int64_t work = 0;
    for (int64_t j = 0; j < n_jobs; ++j) {
        for (int64_t r = 0; r < jobs[j].w.rows; r += kBlock) blocks.push_back({j, r, std::min(jobs[j].w.rows, r + kBlock)});
        work += jobs[j].w.rows * jobs[j].w.cols * jobs[j].n;
    }
    const int64_t nb = int64_t(blocks.size());
#pragma omp parallel for schedule(static) if (work >= (1 << 16))
    for (int64_t b = 0; b < nb; ++b) {
        const QGemvJob& J = jobs[blocks[size_t(b)].job];
        const int64_t wb = J.w.row_bytes();
        const uint8_t* W = static_cast<const uint8_t*>(J.w.data);
        if (J.w.packed8) {  // groups of 8 rows (a block of 32 rows starts on a group)
            const QDot8Fn dot8 = table.get8(J.w.type);
            float v[8];
            for (int64_t r = blocks[size_t(b)].r0; r < blocks[size_t(b)].r1; r += 8)
                for (int64_t i = 0; i < J.n; ++i) {
                    dot8(W + r * wb, J.xq + i * J.xq_stride, J.w.cols, v);
                    float* out = J.y + i * J.ldy + r;
                    for (int k = 0; k < 8; ++k) out[k] = J.beta == 0.0f ? v[k] : J.beta * out[k] + v[k];
                }
            continue;
        }
        const QDotFn dot = table.get(J.w.type);
        for (int64_t r = blocks[size_t(b)].r0; r < blocks[size_t(b)].r1; ++r)
            for (int64_t i = 0; i < J.n; ++i) {
                const float v = dot(W + r * wb, J.xq + i * J.xq_stride, J.w.cols);
                float& out = J.y[i * J.ldy + r];
                out = J.beta == 0.0f ? v : J.beta * out + v;
            }
    }
}

namespace {

// x's rows quantized to Q8_0 with each block's f32 scale and 8 x its sum (QxRows; the sum is
// for Q4_0's unsigned nibbles, Q8_0's kernels do not read it).
QxRows quantize_rows(QMatmulScratch& s, const float* x, int64_t ldx, int64_t n, int64_t cols) {
    const int64_t nb = cols / 32, stride = ggml_row_bytes(GgmlType::q8_0, cols);
    if (int64_t(s.xq.size()) < n * stride) s.xq.resize(size_t(n * stride));
    if (int64_t(s.xd.size()) < n * nb) s.xd.resize(size_t(n * nb)), s.xs8.resize(size_t(n * nb));
    uint8_t* q = s.xq.data();
    float* d = s.xd.data();
    int32_t* sum8 = s.xs8.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        quantize_activations(GgmlType::q8_0, x + i * ldx, q + i * stride, cols);
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* blk = q + i * stride + 34 * b;
            uint16_t h;
            std::memcpy(&h, blk, 2);
            int32_t sum = 0;
            for (int j = 0; j < 32; ++j) sum += int8_t(blk[2 + j]);
            d[i * nb + b] = fp16_to_fp32(h);
            sum8[i * nb + b] = 8 * sum;
        }
    }
    return QxRows{q, stride, nb, d, sum8};
}

// A packed matrix times many rows of x: each thread keeps its groups of 8 rows and passes them
// over tiles of x's rows (a tile's activations stay in cache for all its groups).
void qgemm_packed(const QDotTable& table, float* y, int64_t ldy, const QxRows& x, int64_t n, const QMatrix& w, float beta) {
    constexpr int64_t kTile = 64;
    const int64_t groups = w.rows / 8, gb = 8 * w.row_bytes();
    const uint8_t* W = static_cast<const uint8_t*>(w.data);
    const QGemm8Fn gemm = table.gemm8(w.type);
#pragma omp parallel
    for (int64_t i0 = 0; i0 < n; i0 += kTile) {
        const int64_t nx = std::min(kTile, n - i0);
#pragma omp for schedule(static) nowait
        for (int64_t g = 0; g < groups; ++g) gemm(W + g * gb, x, i0, nx, y + 8 * g, ldy, beta);
    }
}

}  // namespace

void qmatmul(const QDotTable& table, float* y, int64_t ldy, const float* x, int64_t ldx, int64_t n,
             const QMatrix& w, float beta, QMatmulScratch& s, int gemv) {
    const char* op = "qmatmul";
    if (n <= 0 || w.rows == 0) return;
    MOE_CHECK(w.data && w.cols > 0, op, "the weight matrix has no data");
    (void)qdot_activation_type(w.type);  // throws for a type without a product
    if (w.type == GgmlType::f32) {  // already what the GEMM takes
        gemm_f32(false, true, n, w.rows, w.cols, 1.0f, x, ldx, static_cast<const float*>(w.data), w.cols, beta, y, ldy);
        return;
    }
    if (gemv == 1 || (gemv < 0 && n <= kQGemvMaxRows)) {
        QGemvJob job{w, nullptr, 0, n, y, ldy, beta};
        job.xq_stride = qgemv_quantize(s.xq, w.type, x, ldx, n, w.cols);
        job.xq = s.xq.data();
        qgemv_run(table, &job, 1);
        return;
    }
    if (w.packed8 && gemv < 0 && n <= kQPackedGemmMaxRows) {
        qgemm_packed(table, y, ldy, quantize_rows(s, x, ldx, n, w.cols), n, w, beta);
        return;
    }
    // Dequantize a panel of rows (about 4 MiB of f32, whole groups of a packed matrix) at a
    // time, then one GEMM per panel.
    const int64_t panel = std::clamp<int64_t>((int64_t(1) << 20) / w.cols / 8 * 8, 16, w.rows);
    if (int64_t(s.panel.size()) < panel * w.cols) s.panel.resize(size_t(panel * w.cols));
    float* P = s.panel.data();
    for (int64_t r0 = 0; r0 < w.rows; r0 += panel) {
        const int64_t m = std::min(panel, w.rows - r0);
        qmatrix_dequantize_rows(w, r0, m, P);
        gemm_f32(false, true, n, m, w.cols, 1.0f, x, ldx, P, w.cols, beta, y + r0, ldy);
    }
}

void qmatmul(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t n, const QMatrix& w, float beta,
             QMatmulScratch& s) {
    qmatmul(qdot_kernels(), y, ldy, x, ldx, n, w, beta, s);
}

void qmatmul_shared_x(const QOutput* outs, int count, const float* x, int64_t ldx, int64_t n, QMatmulScratch& s) {
    bool one_loop = count > 0 && n <= kQGemvMaxRows;
    for (int j = 0; j < count && one_loop; ++j)
        one_loop = outs[j].w->type != GgmlType::f32 &&
                   qdot_activation_type(outs[j].w->type) == qdot_activation_type(outs[0].w->type);
    if (!one_loop) {
        for (int j = 0; j < count; ++j) qmatmul(outs[j].y, outs[j].ldy, x, ldx, n, *outs[j].w, 0.0f, s);
        return;
    }
    const int64_t xb = qgemv_quantize(s.xq, outs[0].w->type, x, ldx, n, outs[0].w->cols);
    std::vector<QGemvJob> jobs;
    for (int j = 0; j < count; ++j) jobs.push_back({*outs[j].w, s.xq.data(), xb, n, outs[j].y, outs[j].ldy, 0.0f});
    qgemv_run(qdot_kernels(), jobs.data(), count);
}

}  // namespace moe
