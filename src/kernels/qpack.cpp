// Packing Q4_0 / Q8_0 rows by 8 (include/moe/qpack.h).
#include "moe/qpack.h"

#include <cstring>
#include <string>
#include <vector>

#include "moe/error.h"
#include "moe/quant.h"

namespace moe {
namespace {

// A packed block: the 8 rows' f16 scales, then chunks of 32 bytes, chunk c holding quant bytes
// 8 (c / 2) .. 8 (c / 2) + 7 of rows 4 (c % 2) .. 4 (c % 2) + 3 (qb quant bytes a row: 2 qb / 8 chunks).
void pack_block(const uint8_t* const* rows, uint8_t* o, int64_t qb) {
    for (int i = 0; i < 8; ++i) std::memcpy(o + 2 * i, rows[kQx8ScaleRow[i]], 2);
    for (int64_t c = 0; c < qb / 4; ++c)
        for (int j = 0; j < 4; ++j) std::memcpy(o + 16 + 32 * c + 8 * j, rows[4 * (c % 2) + j] + 2 + 8 * (c / 2), 8);
}
void unpack_block(const uint8_t* o, uint8_t* const* rows, int64_t qb) {
    for (int i = 0; i < 8; ++i) std::memcpy(rows[kQx8ScaleRow[i]], o + 2 * i, 2);
    for (int64_t c = 0; c < qb / 4; ++c)
        for (int j = 0; j < 4; ++j) std::memcpy(rows[4 * (c % 2) + j] + 2 + 8 * (c / 2), o + 16 + 32 * c + 8 * j, 8);
}

// Bytes of one row's block: an f16 scale, then its quants.
int64_t block_bytes(GgmlType t) { return ggml_type_info(t).block_bytes; }

}  // namespace

bool qmatrix_packable(const QMatrix& m) {
    return (m.type == GgmlType::q4_0 || m.type == GgmlType::q8_0) && !m.packed8 && m.data && m.rows > 0 &&
           m.rows % 8 == 0 && m.cols % 32 == 0;
}

QMatrix qmatrix_pack8(const QMatrix& m, uint8_t* dst) {
    MOE_CHECK(qmatrix_packable(m), "qmatrix_pack8",
              std::string("packs Q4_0 / Q8_0 matrices of a multiple of 8 rows, got ") + ggml_type_name(m.type) + " (" +
                  std::to_string(m.rows) + ", " + std::to_string(m.cols) + ")" + (m.packed8 ? ", packed already" : ""));
    const int64_t rb = m.row_bytes(), nb = m.cols / 32, groups = m.rows / 8, kb = block_bytes(m.type);
    const uint8_t* src = static_cast<const uint8_t*>(m.data);
#pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* rows[8];
        for (int i = 0; i < 8; ++i) rows[i] = src + (8 * g + i) * rb;
        uint8_t* out = dst + 8 * g * rb;
        for (int64_t b = 0; b < nb; ++b) {
            pack_block(rows, out + 8 * kb * b, kb - 2);
            for (auto& r : rows) r += kb;
        }
    }
    return QMatrix{m.type, m.rows, m.cols, dst, true};
}

void qmatrix_unpack_group(const QMatrix& m, int64_t g, uint8_t* rows8) {
    MOE_CHECK(m.packed8 && g >= 0 && g < m.rows / 8, "qmatrix_unpack_group",
              "group " + std::to_string(g) + " of a " + (m.packed8 ? "packed" : "plain") + " matrix of " +
                  std::to_string(m.rows) + " rows");
    const int64_t rb = m.row_bytes(), kb = block_bytes(m.type);
    const uint8_t* in = static_cast<const uint8_t*>(m.data) + 8 * g * rb;
    uint8_t* rows[8];
    for (int i = 0; i < 8; ++i) rows[i] = rows8 + i * rb;
    for (int64_t b = 0; b < m.cols / 32; ++b) {
        unpack_block(in + 8 * kb * b, rows, kb - 2);
        for (auto& r : rows) r += kb;
    }
}

void qmatrix_dequantize_rows(const QMatrix& m, int64_t r0, int64_t n, float* out) {
    if (!m.packed8) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < n; ++r) dequantize_row(m.type, m.row(r0 + r), out + r * m.cols, m.cols);
        return;
    }
    MOE_CHECK(r0 % 8 == 0 && n % 8 == 0 && r0 + n <= m.rows, "qmatrix_dequantize_rows",
              "rows [" + std::to_string(r0) + ", " + std::to_string(r0 + n) + ") of a packed matrix of " +
                  std::to_string(m.rows) + " rows: whole groups of 8 only");
    const int64_t rb = m.row_bytes();
#pragma omp parallel
    {
        std::vector<uint8_t> plain(size_t(8 * rb));
#pragma omp for schedule(static)
        for (int64_t g = r0 / 8; g < (r0 + n) / 8; ++g) {
            qmatrix_unpack_group(m, g, plain.data());
            for (int i = 0; i < 8; ++i) dequantize_row(m.type, plain.data() + i * rb, out + (8 * g + i - r0) * m.cols, m.cols);
        }
    }
}

}  // namespace moe
