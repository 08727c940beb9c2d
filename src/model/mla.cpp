// Multi-head latent attention (include/moe/mla.h; docs/model_spec.md, "Multi-head latent
// attention"). The cache holds one row per position, [c_t (L) | k_pe_t (R)]: c_t the RMS-normed
// compressed KV, k_pe_t the roped key part shared by every head. Two computations read it:
//   naive:    K_nope, V (ctx, H (Nd + Vd)) = C W_kv_b^T, then per-head attention (prefill);
//   absorbed: q~_h = [W_UK_h^T q_nope_h | q_pe_h] (L + R) attends over the cache rows as one
//             MQA head of width L + R, o_h = W_UV_h (sum_t p_t c_t) (decode).
// Both are the same function: q_nope . (W_UK c) = (W_UK^T q_nope) . c and W_UV (sum p c) = sum p (W_UV c).
#include "moe/mla.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "moe/attention.h"
#include "moe/error.h"
#include "moe/gemm.h"

namespace moe {

namespace {

constexpr const char* kOp = "mla";
// The absorbed path's scores of all heads are one (positions H, ctx) matrix; positions are taken
// in blocks so that it stays below this many floats (16 MiB).
constexpr int64_t kMaxScores = int64_t(1) << 22;

std::string shape_str(int64_t r, int64_t c) {
    std::string s = "(";  // appended, not "(" + ...: GCC 12 warns (-Wrestrict) on that at -O3
    s += std::to_string(r);
    s += ", ";
    s += std::to_string(c);
    s += ")";
    return s;
}

// yarn_get_mscale: 0.1 m ln(s) + 1 for a scale s > 1, else 1.
double yarn_mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }

void check_matrix(const QMatrix& w, const char* name, int64_t rows, int64_t cols, const std::string& expected) {
    MOE_CHECK(w.data != nullptr, kOp, std::string(name) + " has no data");
    MOE_CHECK(w.rows == rows && w.cols == cols, kOp,
              std::string(name) + " is " + shape_str(w.rows, w.cols) + ", expected " + expected + " = " +
                  shape_str(rows, cols));
    MOE_CHECK(qmatmul_supports(w.type), kOp,
              std::string(name) + " is " + ggml_type_name(w.type) + ", which has no matrix product here");
}

void check_weights(const MlaConfig& c, const MlaWeights& w) {
    const int64_t D = c.d_model, H = c.n_heads, L = c.kv_lora_rank, R = c.qk_rope_head_dim;
    const int64_t Nd = c.qk_nope_head_dim, Vd = c.v_head_dim, Qr = c.q_lora_rank;
    if (Qr > 0) {
        check_matrix(w.q_a_proj, "q_a_proj", Qr, D, "(q_lora_rank, D)");
        check_matrix(w.q_b_proj, "q_b_proj", H * (Nd + R), Qr, "(H (qk_nope + qk_rope), q_lora_rank)");
        MOE_CHECK(w.q_a_norm != nullptr, kOp, "q_lora_rank is " + std::to_string(Qr) + " but q_a_layernorm is missing");
    } else {
        check_matrix(w.q_proj, "q_proj", H * (Nd + R), D, "(H (qk_nope + qk_rope), D)");
    }
    check_matrix(w.kv_a_proj, "kv_a_proj_with_mqa", L + R, D, "(kv_lora_rank + qk_rope, D)");
    // kv_b_proj, or its two halves (llama.cpp's attn_k_b / attn_v_b) without it.
    MOE_CHECK(w.kv_b_proj.data || (w.k_b.data && w.v_b.data), kOp,
              "kv_b_proj is missing, and k_b and v_b (its halves) are not both given");
    if (w.kv_b_proj.data)
        check_matrix(w.kv_b_proj, "kv_b_proj", H * (Nd + Vd), L, "(H (qk_nope + v_head), kv_lora_rank)");
    check_matrix(w.o_proj, "o_proj", D, H * Vd, "(D, H v_head)");
    MOE_CHECK(w.kv_a_norm != nullptr, kOp, "kv_a_layernorm is missing");
    if (w.k_b.data)
        check_matrix(w.k_b, "k_b", H * L, Nd, "(H kv_lora_rank, qk_nope)");
    else
        MOE_CHECK(ggml_type_info(w.kv_b_proj.type).dequantize, kOp,
                  std::string("kv_b_proj is ") + ggml_type_name(w.kv_b_proj.type) + ", which cannot be dequantized");
    if (w.v_b.data) check_matrix(w.v_b, "v_b", H * Vd, L, "(H v_head, kv_lora_rank)");
}

// y_h (n, rows_h) = x_h (n, cols) w_h^T for the H heads, where x's row (i, h) starts at
// x + (i H + h) xs and y_h's row i at y + i ldy + h yh. A few rows (decode) with quantized weights:
// x quantized once and every head's product in one parallel loop, not H small qmatmuls.
template <class WeightOf>
void head_products(float* y, int64_t ldy, int64_t yh, const float* x, int64_t xs, int64_t n, int64_t H,
                   WeightOf w_of, QMatmulScratch& s) {
    const QMatrix w0 = w_of(0);
    if (n <= kQGemvMaxRows && w0.type != GgmlType::f32) {
        const int64_t xb = qgemv_quantize(s.xq, w0.type, x, xs, n * H, w0.cols);
        std::vector<QGemvJob> jobs;
        for (int64_t h = 0; h < H; ++h) jobs.push_back({w_of(h), s.xq.data() + h * xb, H * xb, n, y + h * yh, ldy, 0.0f});
        qgemv_run(qdot_kernels(), jobs.data(), H);
        return;
    }
    for (int64_t h = 0; h < H; ++h) qmatmul(y + h * yh, ldy, x + h * xs, H * xs, n, w_of(h), 0.0f, s);
}

}  // namespace

void mla_validate(const MlaConfig& c) {
    auto positive = [](int64_t v, const char* name) {
        MOE_CHECK(v > 0, kOp, std::string(name) + " must be > 0, got " + std::to_string(v));
    };
    positive(c.d_model, "hidden_size");
    positive(c.n_heads, "num_attention_heads");
    positive(c.kv_lora_rank, "kv_lora_rank");
    positive(c.qk_nope_head_dim, "qk_nope_head_dim");
    positive(c.qk_rope_head_dim, "qk_rope_head_dim");
    positive(c.v_head_dim, "v_head_dim");
    MOE_CHECK(c.q_lora_rank >= 0, kOp, "q_lora_rank must be >= 0 (0: none, q_proj), got " + std::to_string(c.q_lora_rank));
    MOE_CHECK(c.qk_rope_head_dim % 2 == 0, kOp,
              "qk_rope_head_dim must be even (RoPE rotates pairs), got " + std::to_string(c.qk_rope_head_dim));
    MOE_CHECK(c.rope_theta > 0 && std::isfinite(c.rope_theta), kOp, "rope_theta must be > 0, got " + std::to_string(c.rope_theta));
    MOE_CHECK(c.softmax_scale >= 0 && std::isfinite(c.softmax_scale), kOp,
              "the softmax scale must be >= 0 (0: from the sizes), got " + std::to_string(c.softmax_scale));
    MOE_CHECK(c.lora_norm_eps > 0, kOp, "the q_a / kv_a RMSNorm eps must be > 0, got " + std::to_string(c.lora_norm_eps));
    const MlaYarn& y = c.yarn;
    MOE_CHECK(y.factor > 0 && std::isfinite(y.factor), kOp,
              "rope_scaling.factor must be > 0 (1: no scaling), got " + std::to_string(y.factor));
    if (!c.yarn_active()) return;
    MOE_CHECK(y.original_max_position_embeddings > 0 || c.max_position_embeddings > 0, kOp,
              "yarn rope_scaling needs original_max_position_embeddings or max_position_embeddings > 0");
    MOE_CHECK(y.original_max_position_embeddings >= 0, kOp, "rope_scaling.original_max_position_embeddings must be >= 0, got " +
                                                                std::to_string(y.original_max_position_embeddings));
    MOE_CHECK(y.beta_fast >= 0 && y.beta_slow >= 0, kOp,
              "rope_scaling.beta_fast and beta_slow must be >= 0 (0: the defaults 32, 1), got " +
                  std::to_string(y.beta_fast) + ", " + std::to_string(y.beta_slow));
    MOE_CHECK(y.attention_factor >= 0 && std::isfinite(y.mscale) && std::isfinite(y.mscale_all_dim), kOp,
              "rope_scaling.attention_factor must be >= 0 and mscale / mscale_all_dim finite");
}

std::vector<float> mla_rope_inv_freq(const MlaConfig& c) {
    mla_validate(c);
    const int64_t R = c.qk_rope_head_dim, half = R / 2;
    const double base = c.rope_theta;
    // transformers: pos_freqs = base ** (arange(0, R, 2) / R) and inv_freq = 1 / pos_freqs in f32.
    std::vector<float> pos_freqs(static_cast<size_t>(half)), inv(static_cast<size_t>(half));
    for (int64_t j = 0; j < half; ++j) {
        pos_freqs[size_t(j)] = float(std::pow(base, double(float(2 * j) / float(R))));
        inv[size_t(j)] = 1.0f / pos_freqs[size_t(j)];
    }
    if (!c.yarn_active()) return inv;
    // YaRN (arXiv:2309.00071): frequencies that turn fewer than beta_slow times over the original
    // context are interpolated (divided by factor), those that turn more than beta_fast times are
    // kept, a linear ramp over the dimensions between.
    const MlaYarn& y = c.yarn;
    const double factor = y.factor;
    const double orig = double(y.original_max_position_embeddings > 0 ? y.original_max_position_embeddings
                                                                      : c.max_position_embeddings);
    const double beta_fast = y.beta_fast > 0 ? y.beta_fast : 32, beta_slow = y.beta_slow > 0 ? y.beta_slow : 1;
    auto correction_dim = [&](double rotations) {
        return double(R) * std::log(orig / (rotations * 2 * std::numbers::pi)) / (2 * std::log(base));
    };
    double low = correction_dim(beta_fast), high = correction_dim(beta_slow);
    if (y.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, double(R - 1));
    if (low == high) high += 0.001;  // transformers: prevent a division by zero
    for (int64_t j = 0; j < half; ++j) {
        const float ramp = std::clamp(float((float(j) - float(low)) / float(high - low)), 0.0f, 1.0f);
        const float extrapolation = 1.0f - ramp;
        const float interpolated = 1.0f / (float(factor) * pos_freqs[size_t(j)]);
        inv[size_t(j)] = interpolated * (1.0f - extrapolation) + inv[size_t(j)] * extrapolation;
    }
    return inv;
}

double mla_rope_attention_factor(const MlaConfig& c) {
    if (!c.yarn_active()) return 1.0;
    const MlaYarn& y = c.yarn;
    if (y.attention_factor > 0) return y.attention_factor;
    if (y.mscale != 0 && y.mscale_all_dim != 0) return yarn_mscale(y.factor, y.mscale) / yarn_mscale(y.factor, y.mscale_all_dim);
    return yarn_mscale(y.factor, 1.0);
}

double mla_softmax_scale(const MlaConfig& c) {
    if (c.softmax_scale > 0) return c.softmax_scale;
    double s = 1.0 / std::sqrt(double(c.qk_head_dim()));
    if (c.softmax_mscale && c.yarn_active() && c.yarn.mscale_all_dim != 0) {
        const double m = yarn_mscale(c.yarn.factor, c.yarn.mscale_all_dim);
        s *= m * m;
    }
    return s;
}

std::vector<float> mla_k_b_from_kv_b(const MlaConfig& c, const QMatrix& kv_b) {
    mla_validate(c);
    const int64_t H = c.n_heads, L = c.kv_lora_rank, Nd = c.qk_nope_head_dim, Vd = c.v_head_dim;
    MOE_CHECK(kv_b.data && kv_b.rows == H * (Nd + Vd) && kv_b.cols == L, kOp,
              "kv_b_proj is " + shape_str(kv_b.rows, kv_b.cols) + ", expected " + shape_str(H * (Nd + Vd), L));
    std::vector<float> row(static_cast<size_t>(L)), k_b(static_cast<size_t>(H * L * Nd));
    for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < Nd; ++j) {
            dequantize_row(kv_b.type, kv_b.row(h * (Nd + Vd) + j), row.data(), L);
            for (int64_t l = 0; l < L; ++l) k_b[size_t((h * L + l) * Nd + j)] = row[size_t(l)];
        }
    return k_b;
}

void mla_kv_b_set_keys(const MlaConfig& c, const float* k_b, float* kv_b) {
    const int64_t H = c.n_heads, L = c.kv_lora_rank, Nd = c.qk_nope_head_dim, kd = Nd + c.v_head_dim;
    for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < Nd; ++j)
            for (int64_t l = 0; l < L; ++l) kv_b[(h * kd + j) * L + l] = k_b[(h * L + l) * Nd + j];
}

MlaAttention::MlaAttention(const MlaConfig& c, int64_t max_ctx) : c_(c), max_ctx_(max_ctx) {
    mla_validate(c_);
    MOE_CHECK(max_ctx > 0, kOp, "the context size must be > 0, got " + std::to_string(max_ctx));
    row_ = c_.kv_lora_rank + c_.qk_rope_head_dim;
    cache_.assign(size_t(max_ctx * row_), 0.0f);
    scale_ = float(mla_softmax_scale(c_));
    // cos / sin as transformers: freqs = inv_freq * t in f32, then cos, sin times attention_factor.
    const std::vector<float> inv = mla_rope_inv_freq(c_);
    const double af = mla_rope_attention_factor(c_);
    const int64_t half = c_.qk_rope_head_dim / 2;
    cos_.resize(size_t(max_ctx * half));
    sin_.resize(size_t(max_ctx * half));
    for (int64_t t = 0; t < max_ctx; ++t)
        for (int64_t j = 0; j < half; ++j) {
            const double a = double(inv[size_t(j)] * float(t));
            cos_[size_t(t * half + j)] = float(std::cos(a) * af);
            sin_[size_t(t * half + j)] = float(std::sin(a) * af);
        }
}

void MlaAttention::rope(float* u, int64_t t) const {
    const int64_t R = c_.qk_rope_head_dim, half = R / 2;
    const float* cs = cos_.data() + t * half;
    const float* sn = sin_.data() + t * half;
    if (!c_.rope_interleave) {
        rope_rotate(u, cs, sn, R);  // (u_j, u_{j + R/2}) by angle j
        return;
    }
    for (int64_t j = 0; j < half; ++j) {  // (u_2j, u_2j+1) by angle j: (a + ib) e^{i theta}
        const float a = u[2 * j], b = u[2 * j + 1];
        u[2 * j] = a * cs[j] - b * sn[j];
        u[2 * j + 1] = b * cs[j] + a * sn[j];
    }
}

MlaPath MlaAttention::choose_path(int64_t n, int64_t pos) const {
    // Multiply-adds per head. Naive: expanding the ctx latents, then scores and values of width
    // Nd + R and Vd. Absorbed: q_nope through W_UK, scores and values over L + R and L, W_UV.
    const double L = double(c_.kv_lora_rank), R = double(c_.qk_rope_head_dim);
    const double Nd = double(c_.qk_nope_head_dim), Vd = double(c_.v_head_dim);
    const double N = double(n), T = double(pos + n);
    const double naive = T * L * (Nd + Vd) + N * T * (Nd + R + Vd);
    const double absorbed = N * L * (Nd + Vd) + N * T * (2 * L + R);
    return absorbed <= naive ? MlaPath::absorbed : MlaPath::naive;
}

void MlaAttention::project(const MlaWeights& w, const float* x, int64_t n, int64_t pos, QMatmulScratch& s) {
    const int64_t D = c_.d_model, H = c_.n_heads, L = c_.kv_lora_rank, R = c_.qk_rope_head_dim;
    const int64_t Qr = c_.q_lora_rank, qd = c_.qk_head_dim(), qw = H * qd;
    const float eps = float(c_.lora_norm_eps);
    q_.resize(size_t(n * qw));
    kv_a_.resize(size_t(n * row_));
    float rstd = 0;
    if (Qr > 0) {  // q = q_b_proj(q_a_layernorm(q_a_proj(x)))
        q_lat_.resize(size_t(n * Qr));
        const QOutput outs[2] = {{&w.q_a_proj, q_lat_.data(), Qr}, {&w.kv_a_proj, kv_a_.data(), row_}};
        qmatmul_shared_x(outs, 2, x, D, n, s);
        for (int64_t i = 0; i < n; ++i)
            rmsnorm_forward(q_lat_.data() + i * Qr, &rstd, q_lat_.data() + i * Qr, w.q_a_norm, 1, Qr, eps);
        qmatmul(q_.data(), qw, q_lat_.data(), Qr, n, w.q_b_proj, 0.0f, s);
    } else {
        const QOutput outs[2] = {{&w.q_proj, q_.data(), qw}, {&w.kv_a_proj, kv_a_.data(), row_}};
        qmatmul_shared_x(outs, 2, x, D, n, s);
    }
    for (int64_t i = 0; i < n; ++i) {
        float* row = cache_.data() + (pos + i) * row_;
        rmsnorm_forward(row, &rstd, kv_a_.data() + i * row_, w.kv_a_norm, 1, L, eps);  // c_t = kv_a_layernorm(compressed_kv)
        std::copy_n(kv_a_.data() + i * row_ + L, R, row + L);
        rope(row + L, pos + i);
        for (int64_t h = 0; h < H; ++h) rope(q_.data() + i * qw + h * qd + c_.qk_nope_head_dim, pos + i);
    }
}

void MlaAttention::attend_naive(const MlaWeights& w, int64_t n, int64_t pos, QMatmulScratch& s) {
    const int64_t H = c_.n_heads, L = c_.kv_lora_rank, R = c_.qk_rope_head_dim;
    const int64_t Nd = c_.qk_nope_head_dim, Vd = c_.v_head_dim, qd = Nd + R, qw = H * qd, kd = Nd + Vd;
    const int64_t end = pos + n, kw = H * kd;
    kv_.resize(size_t(end * kw));
    qmatmul(kv_.data(), kw, cache_.data(), row_, end, w.kv_b_proj, 0.0f, s);  // [k_nope_h | v_h] of every position
    const int64_t threads = omp_get_max_threads();
    scores_.resize(size_t(threads * n * end));
    // One head per iteration, scores in the thread's own buffer; OpenBLAS runs single-threaded
    // inside the region.
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < H; ++h) {
        float* S = scores_.data() + omp_get_thread_num() * n * end;
        const float* q = q_.data() + h * qd;
        gemm_f32(false, true, n, end, Nd, scale_, q, qw, kv_.data() + h * kd, kw, 0.0f, S, end);
        gemm_f32(false, true, n, end, R, scale_, q + Nd, qw, cache_.data() + L, row_, 1.0f, S, end);
        for (int64_t i = 0; i < n; ++i) causal_softmax_row(S + i * end, pos + i, end);  // query i sees 0 .. pos + i
        gemm_f32(false, false, n, Vd, end, 1.0f, S, end, kv_.data() + h * kd + Nd, kw, 0.0f, o_.data() + h * Vd, H * Vd);
    }
}

void MlaAttention::attend_absorbed(const MlaWeights& w, int64_t n, int64_t pos, QMatmulScratch& s) {
    const int64_t H = c_.n_heads, L = c_.kv_lora_rank, R = c_.qk_rope_head_dim;
    const int64_t Nd = c_.qk_nope_head_dim, Vd = c_.v_head_dim, qd = Nd + R, qw = H * qd, kd = Nd + Vd;
    const int64_t end = pos + n, aw = row_;  // an absorbed query is as wide as a cache row
    // q~ (n, H, L + R): [q_nope_h W_UK_h | q_pe_h], W_UK_h = kv_b_proj's rows h kd .. h kd + Nd.
    qabs_.resize(size_t(n * H * aw));
    if (w.k_b.data) {
        head_products(qabs_.data(), H * aw, aw, q_.data(), qd, n, H,
                      [&](int64_t h) { return w.k_b.slice(h * L, L); }, s);
    } else {
        if (w.kv_b_proj.type != GgmlType::f32) panel_.resize(size_t(Nd * L));
        for (int64_t h = 0; h < H; ++h) {
            const float* wuk;
            if (w.kv_b_proj.type == GgmlType::f32) {
                wuk = static_cast<const float*>(w.kv_b_proj.data) + h * kd * L;
            } else {
                for (int64_t j = 0; j < Nd; ++j)
                    dequantize_row(w.kv_b_proj.type, w.kv_b_proj.row(h * kd + j), panel_.data() + j * L, L);
                wuk = panel_.data();
            }
            gemm_f32(false, false, n, L, Nd, 1.0f, q_.data() + h * qd, qw, wuk, L, 0.0f, qabs_.data() + h * aw, H * aw);
        }
    }
    for (int64_t i = 0; i < n; ++i)
        for (int64_t h = 0; h < H; ++h)
            std::copy_n(q_.data() + i * qw + h * qd + Nd, R, qabs_.data() + (i * H + h) * aw + L);
    // Every head of every new position attends over the same cache rows: one MQA head of width
    // L + R for the scores, the first L values of each row for the output.
    o_lat_.resize(size_t(n * H * L));
    const int64_t block = std::clamp<int64_t>(kMaxScores / (H * end), 1, n);
    scores_.resize(size_t(block * H * end));
    for (int64_t i0 = 0; i0 < n; i0 += block) {
        const int64_t nb = std::min(block, n - i0), rows = nb * H;
        float* S = scores_.data();
        gemm_f32(false, true, rows, end, aw, scale_, qabs_.data() + i0 * H * aw, aw, cache_.data(), row_, 0.0f, S, end);
        for (int64_t r = 0; r < rows; ++r) causal_softmax_row(S + r * end, pos + i0 + r / H, end);
        gemm_f32(false, false, rows, L, end, 1.0f, S, end, cache_.data(), row_, 0.0f, o_lat_.data() + i0 * H * L, L);
    }
    // o_h = o_lat_h W_UV_h^T, W_UV_h = kv_b_proj's rows h kd + Nd .. (h + 1) kd (or v_b's h Vd ..).
    head_products(o_.data(), H * Vd, Vd, o_lat_.data(), L, n, H, [&](int64_t h) {
        return w.v_b.data ? w.v_b.slice(h * Vd, Vd) : w.kv_b_proj.slice(h * kd + Nd, Vd);
    }, s);
}

void MlaAttention::forward(const MlaWeights& w, const float* x, float* out, int64_t n, int64_t pos,
                           QMatmulScratch& s, MlaPath path) {
    MOE_CHECK(x != nullptr && out != nullptr, kOp, "x and out must not be null");
    MOE_CHECK(n > 0, kOp, "no positions to compute (n = " + std::to_string(n) + ")");
    MOE_CHECK(pos >= 0 && pos <= filled_, kOp,
              "position " + std::to_string(pos) + " would skip cached positions: " + std::to_string(filled_) +
                  " are held, the next must be <= that");
    MOE_CHECK(pos + n <= max_ctx_, kOp,
              "the context is full: " + std::to_string(pos) + " + " + std::to_string(n) + " positions > " +
                  std::to_string(max_ctx_) + "; make the context larger");
    check_weights(c_, w);
    project(w, x, n, pos, s);
    filled_ = pos + n;
    o_.resize(size_t(n * c_.n_heads * c_.v_head_dim));
    MOE_CHECK(path != MlaPath::naive || w.kv_b_proj.data, kOp,
              "the naive path expands the latents with kv_b_proj, which these weights lack (k_b / v_b only)");
    if (path == MlaPath::automatic) path = w.kv_b_proj.data ? choose_path(n, pos) : MlaPath::absorbed;
    if (path == MlaPath::naive)
        attend_naive(w, n, pos, s);
    else
        attend_absorbed(w, n, pos, s);
    qmatmul(out, c_.d_model, o_.data(), c_.n_heads * c_.v_head_dim, n, w.o_proj, 0.0f, s);
}

}  // namespace moe
