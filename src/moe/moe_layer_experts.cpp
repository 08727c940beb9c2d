// The expert compute of the layer, shared by the routed path (moe_layer.cpp), Soft MoE
// (moe_layer_soft.cpp) and both backwards: the routed experts over rows grouped by expert, and
// the shared experts over every token, in f32 or bf16.
#include <algorithm>
#include <cmath>
#include <vector>

#include "moe/gemm.h"
#include "moe/kernels.h"
#include "moe/moe_layer_internal.h"
#include "moe/swiglu_experts.h"

namespace moe {

namespace {

// Decode (every expert's segment <= kQGemvMaxRows rows): the rows quantized once per format,
// the gate and up products of all experts in one parallel loop, then all down products in
// another, instead of three loops per expert (OLMoE decodes 8 experts per token and layer).
void quant_experts_decode(float* out, float* h1, float* h3, MoeLayerCache& cache, const MoeQuantExperts& q,
                          const float* rows, int64_t D, int64_t F, int64_t w0, int64_t n_local) {
    const int64_t* offsets = cache.local_offsets.data();
    const int64_t N = offsets[n_local];
    const QDotTable& table = qdot_kernels();
    QMatmulScratch& s = cache.qmm;
    const int64_t xb1 = qgemv_quantize(s.xq, q.w1.type, rows, D, N, D);
    const bool same = qdot_activation_type(q.w3.type) == qdot_activation_type(q.w1.type);
    const int64_t xb3 = same ? xb1 : qgemv_quantize(s.xq2, q.w3.type, rows, D, N, D);
    const uint8_t* x3 = same ? s.xq.data() : s.xq2.data();
    std::vector<QGemvJob> jobs;
    for (int64_t e = 0; e < n_local; ++e) {
        const int64_t r0 = offsets[e], n = offsets[e + 1] - r0, ew = w0 + e;
        if (n == 0) continue;
        jobs.push_back({q.gate(ew, F), s.xq.data() + r0 * xb1, xb1, n, h1 + r0 * F, F, 0.0f});
        jobs.push_back({q.up(ew, F), x3 + r0 * xb3, xb3, n, h3 + r0 * F, F, 0.0f});
    }
    qgemv_run(table, jobs.data(), int64_t(jobs.size()));
    kernels().swiglu_forward(h1, h1, h3, N * F);  // inference: h1 becomes the activation
    const int64_t xb2 = qgemv_quantize(s.xq, q.w2.type, h1, F, N, F);
    jobs.clear();
    for (int64_t e = 0; e < n_local; ++e) {
        const int64_t r0 = offsets[e], n = offsets[e + 1] - r0, ew = w0 + e;
        if (n > 0) jobs.push_back({q.down(ew, D), s.xq.data() + r0 * xb2, xb2, n, out + r0 * D, D, 0.0f});
    }
    qgemv_run(table, jobs.data(), int64_t(jobs.size()));
}

}  // namespace

void experts_forward(float* out, MoeLayerCache& cache, const MoeLayerConfig& c,
                     const MoeLayerParams& params, const float* rows, int64_t w0, int64_t n_local) {
    const int64_t D = c.d_model, F = c.d_ff;
    const int64_t* offsets = cache.local_offsets.data();
    const int64_t N = offsets[n_local];
    int64_t max_n = 0;
    for (int64_t e = 0; e < n_local; ++e) max_n = std::max(max_n, offsets[e + 1] - offsets[e]);
    float* scratch = grow(cache.scratch, max_n * F);
    float* h1 = grow(cache.h1, N * F);
    float* h3 = grow(cache.h3, N * F);
    if (params.quant.active() && max_n <= kQGemvMaxRows) {
        quant_experts_decode(out, h1, h3, cache, params.quant, rows, D, F, w0, n_local);
    } else if (params.quant.active()) {
        const MoeQuantExperts& q = params.quant;
        for (int64_t e = 0; e < n_local; ++e) {
            const int64_t r0 = offsets[e], n = offsets[e + 1] - r0, ew = w0 + e;
            if (n == 0) continue;
            float* a1 = h1 + r0 * F;
            float* a3 = h3 + r0 * F;
            qmatmul(a1, F, rows + r0 * D, D, n, q.gate(ew, F), 0.0f, cache.qmm);
            qmatmul(a3, F, rows + r0 * D, D, n, q.up(ew, F), 0.0f, cache.qmm);
            const KernelTable& k = kernels();
            parallel_chunks(n * F, [&](int64_t i, int64_t len) { k.swiglu_forward(scratch + i, a1 + i, a3 + i, len); });
            qmatmul(out + r0 * D, D, scratch, F, n, q.down(ew, D), 0.0f, cache.qmm);
        }
    } else if (c.dtype == DType::bf16) {
        MoeBf16Weights wb = moe_layer_bf16_weights(cache, c, params, w0, n_local, true);
        bf16* rows_b = grow_bf16(cache.rows_b, N * D);
        convert_to_bf16(rows_b, rows, N * D);
        bf16* scratch_b = grow_bf16(cache.scratch_b, max_n * (2 * F + D));
        SwigluGroupBf16 g{offsets, n_local, D, F, wb.w1, wb.w3, wb.w2};
        swiglu_experts_forward_bf16(out, h1, h3, scratch, scratch_b, rows_b, g, 0.0f);
    } else {
        SwigluGroup g{offsets, n_local, D, F, params.w1.f32() + w0 * F * D,
                      params.w3.f32() + w0 * F * D, params.w2.f32() + w0 * D * F};
        swiglu_experts_forward(out, h1, h3, scratch, rows, g, 0.0f);
    }
}

void experts_backward(float* dout, const MoeLayerParams& grads, MoeLayerCache& cache,
                      const MoeLayerConfig& c, const MoeLayerParams& params, const float* rows,
                      int64_t w0, int64_t n_local) {
    const int64_t D = c.d_model, F = c.d_ff;
    const int64_t* offsets = cache.local_offsets.data();
    float* dw1 = grads.w1.f32() + w0 * F * D;
    float* dw3 = grads.w3.f32() + w0 * F * D;
    float* dw2 = grads.w2.f32() + w0 * D * F;
    if (c.dtype == DType::bf16) {
        // The bf16 copies made by this forward (not refreshed: backward sees the same weights).
        MoeBf16Weights wb = moe_layer_bf16_weights(cache, c, params, w0, n_local, false);
        SwigluGroupBf16 g{offsets, n_local, D, F, wb.w1, wb.w3, wb.w2};
        swiglu_experts_backward_bf16(dout, dw1, dw3, dw2, dout, cache.h1.f32(), cache.h3.f32(),
                                     cache.scratch.f32(), cache.scratch_b.bf(), cache.rows_b.bf(), g, 0.0f);
    } else {
        SwigluGroup g{offsets, n_local, D, F, params.w1.f32() + w0 * F * D,
                      params.w3.f32() + w0 * F * D, params.w2.f32() + w0 * D * F};
        swiglu_experts_backward(dout, dw1, dw3, dw2, dout, cache.h1.f32(), cache.h3.f32(),
                                cache.scratch.f32(), rows, g, 0.0f);
    }
}

void shared_forward(float* y, MoeLayerCache& cache, const MoeLayerConfig& c,
                    const MoeLayerParams& params, const float* x, int64_t T, int64_t w0, int64_t n_local) {
    const int64_t D = c.d_model, S = c.n_shared, Fs = c.d_ff_shared;
    if (S == 0) return;
    float* sh1 = grow(cache.sh1, S * T * Fs);
    float* sh3 = grow(cache.sh3, S * T * Fs);
    float* scratch = grow(cache.scratch, T * Fs);
    // Ungated, each shared expert accumulates straight into y; gated (Qwen), into its own output
    // (saved for the gate's gradient), then y += sigmoid(x . gate_s) * output.
    const bool gated = c.shared_gate;
    float* outs = gated ? grow(cache.sh_out, S * T * D) : nullptr;
    auto target = [&](int64_t s) { return gated ? outs + s * T * D : y; };
    const float beta = gated ? 0.0f : 1.0f;
    int64_t offsets[2] = {0, T};
    if (c.dtype == DType::bf16) {
        MoeBf16Weights wb = moe_layer_bf16_weights(cache, c, params, w0, n_local, false);
        bf16* x_b = grow_bf16(cache.x_b, T * D);
        convert_to_bf16(x_b, x, T * D);
        bf16* scratch_b = grow_bf16(cache.scratch_b, T * (2 * Fs + D));
        for (int64_t s = 0; s < S; ++s) {
            SwigluGroupBf16 gs{offsets, 1, D, Fs, wb.ws1 + s * Fs * D, wb.ws3 + s * Fs * D, wb.ws2 + s * D * Fs};
            swiglu_experts_forward_bf16(target(s), sh1 + s * T * Fs, sh3 + s * T * Fs, scratch, scratch_b, x_b, gs, beta);
        }
    } else {
        for (int64_t s = 0; s < S; ++s) {
            SwigluGroup gs{offsets, 1, D, Fs, params.ws1.f32() + s * Fs * D, params.ws3.f32() + s * Fs * D,
                           params.ws2.f32() + s * D * Fs};
            swiglu_experts_forward(target(s), sh1 + s * T * Fs, sh3 + s * T * Fs, scratch, x, gs, beta);
        }
    }
    if (!gated) return;
    float* sig = grow(cache.sh_sig, S * T);  // (S, T)
    gemm_f32(false, true, S, T, D, 1.0f, params.ws_gate.f32(), D, x, D, 0.0f, sig, T);
    for (int64_t i = 0; i < S * T; ++i) sig[i] = 1.0f / (1.0f + std::exp(-sig[i]));
    const KernelTable& k = kernels();
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t)
        for (int64_t s = 0; s < S; ++s) k.axpy(y + t * D, sig[s * T + t], outs + (s * T + t) * D, D);
}

void shared_backward(float* dx, const float* dy, const MoeLayerParams& grads, MoeLayerCache& cache,
                     const MoeLayerConfig& c, const MoeLayerParams& params, const float* x, int64_t T,
                     int64_t w0, int64_t n_local) {
    const int64_t D = c.d_model, S = c.n_shared, Fs = c.d_ff_shared;
    if (S == 0) return;
    const bool bf = c.dtype == DType::bf16, gated = c.shared_gate;
    const KernelTable& k = kernels();
    // Gated: d logit_st = sig (1 - sig) <dy_t, out_st>; each expert then sees sig_st * dy_t.
    std::vector<float> dy_s(gated ? size_t(T * D) : 0);
    if (gated) {
        const float* sig = cache.sh_sig.f32();
        const float* outs = cache.sh_out.f32();
        std::vector<float> dlogit(static_cast<size_t>(S * T));
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < S * T; ++i) {
            const int64_t t = i % T;
            dlogit[size_t(i)] = sig[i] * (1.0f - sig[i]) * k.dot(dy + t * D, outs + i * D, D);
        }
        gemm_f32(false, false, S, D, T, 1.0f, dlogit.data(), T, x, D, 1.0f, grads.ws_gate.f32(), D);
        gemm_f32(true, false, T, D, S, 1.0f, dlogit.data(), T, params.ws_gate.f32(), D, 1.0f, dx, D);
    }
    MoeBf16Weights wb{};
    if (bf) wb = moe_layer_bf16_weights(cache, c, params, w0, n_local, false);
    int64_t offs[2] = {0, T};
    float* scratch = grow(cache.scratch, T * Fs);
    bf16* scratch_b = bf ? grow_bf16(cache.scratch_b, T * (2 * Fs + D)) : nullptr;
    for (int64_t s = 0; s < S; ++s) {
        const float* dout = dy;
        if (gated) {
            const float* sig = cache.sh_sig.f32() + s * T;
#pragma omp parallel for schedule(static)
            for (int64_t t = 0; t < T; ++t) k.scale_copy(dy_s.data() + t * D, sig[t], dy + t * D, D);
            dout = dy_s.data();
        }
        float* dws1 = grads.ws1.f32() + s * Fs * D;
        float* dws3 = grads.ws3.f32() + s * Fs * D;
        float* dws2 = grads.ws2.f32() + s * D * Fs;
        float* sh1 = cache.sh1.f32() + s * T * Fs;
        float* sh3 = cache.sh3.f32() + s * T * Fs;
        if (bf) {
            SwigluGroupBf16 gs{offs, 1, D, Fs, wb.ws1 + s * Fs * D, wb.ws3 + s * Fs * D, wb.ws2 + s * D * Fs};
            swiglu_experts_backward_bf16(dx, dws1, dws3, dws2, dout, sh1, sh3, scratch, scratch_b,
                                         cache.x_b.bf(), gs, 1.0f);
        } else {
            SwigluGroup gs{offs, 1, D, Fs, params.ws1.f32() + s * Fs * D, params.ws3.f32() + s * Fs * D,
                           params.ws2.f32() + s * D * Fs};
            swiglu_experts_backward(dx, dws1, dws3, dws2, dout, sh1, sh3, scratch, x, gs, 1.0f);
        }
    }
}

}  // namespace moe
