// X-MoE routing (Chi et al. 2022): project the token to a low-dimensional space, and score it
// against the experts' embeddings by cosine similarity over a learnable temperature.
// docs/routers.md (xmoe). From the logits on it is the topk router.
#include <algorithm>
#include <cmath>
#include <vector>

#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/router_internal.h"

namespace moe {
namespace {

constexpr float kNormEps = 1e-6f;

// unit[i] = v[i] / max(|v[i]|, eps) row by row; norm[i] = |v[i]|.
void normalize_rows(float* unit, float* norm, const float* v, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; ++i) {
        double s = 0;
        for (int64_t j = 0; j < d; ++j) s += double(v[i * d + j]) * v[i * d + j];
        norm[i] = float(std::sqrt(s));
        float inv = 1.0f / std::max(norm[i], kNormEps);
        for (int64_t j = 0; j < d; ++j) unit[i * d + j] = v[i * d + j] * inv;
    }
}

// d v from d unit: (du - u (u . du)) / |v| (the eps branch: du / eps, a constant divisor).
void normalize_rows_backward(float* dv, const float* du, const float* unit, const float* norm,
                             int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; ++i) {
        const float* u = unit + i * d;
        const float* g = du + i * d;
        if (norm[i] <= kNormEps) {
            for (int64_t j = 0; j < d; ++j) dv[i * d + j] += g[j] / kNormEps;
            continue;
        }
        double dot = 0;
        for (int64_t j = 0; j < d; ++j) dot += double(u[j]) * g[j];
        for (int64_t j = 0; j < d; ++j) dv[i * d + j] += float((g[j] - u[j] * dot) / norm[i]);
    }
}

}  // namespace

void xmoe_logits(RouterCache& rc, const MoeLayerConfig& c, const MoeLayerParams& p,
                 const float* xr, int64_t T) {
    const int64_t D = c.d_model, E = c.n_experts, R = c.router.router_dim;
    const float tau = p.router_temp.f32()[0];
    MOE_CHECK(tau > 0 && std::isfinite(tau), "moe_layer_forward",
              "xmoe's temperature (router_temp) must be a positive number, got " + std::to_string(tau));
    std::vector<float> h(static_cast<size_t>(T * R));
    gemm_f32(false, true, T, R, D, 1.0f, xr, D, p.router_proj.f32(), D, 0.0f, h.data(), R);
    rc.proj_unit.resize(size_t(T * R));
    rc.proj_norm.resize(size_t(T));
    rc.emb_unit.resize(size_t(E * R));
    rc.emb_norm.resize(size_t(E));
    normalize_rows(rc.proj_unit.data(), rc.proj_norm.data(), h.data(), T, R);
    normalize_rows(rc.emb_unit.data(), rc.emb_norm.data(), p.router.f32(), E, R);
    gemm_f32(false, true, T, E, R, 1.0f / tau, rc.proj_unit.data(), R, rc.emb_unit.data(), R, 0.0f,
             rc.logits.data(), E);
}

void xmoe_backward(float* dxr, const MoeLayerParams& grads, const float* dl, const RouterCache& rc,
                   const MoeLayerConfig& c, const MoeLayerParams& p, const float* xr, int64_t T) {
    const int64_t D = c.d_model, E = c.n_experts, R = c.router.router_dim;
    const float tau = p.router_temp.f32()[0];
    // logits = hu . eu / tau: d tau = -sum(dl * logits) / tau.
    double dtau = 0;
    for (int64_t i = 0; i < T * E; ++i) dtau -= double(dl[i]) * rc.logits[size_t(i)];
    grads.router_temp.f32()[0] += float(dtau / tau);
    std::vector<float> dhu(static_cast<size_t>(T * R)), deu(static_cast<size_t>(E * R));
    gemm_f32(false, false, T, R, E, 1.0f / tau, dl, E, rc.emb_unit.data(), R, 0.0f, dhu.data(), R);
    gemm_f32(true, false, E, R, T, 1.0f / tau, dl, E, rc.proj_unit.data(), R, 0.0f, deu.data(), R);
    normalize_rows_backward(grads.router.f32(), deu.data(), rc.emb_unit.data(), rc.emb_norm.data(), E, R);
    std::vector<float> dh(static_cast<size_t>(T * R), 0.0f);
    normalize_rows_backward(dh.data(), dhu.data(), rc.proj_unit.data(), rc.proj_norm.data(), T, R);
    gemm_f32(true, false, R, D, T, 1.0f, dh.data(), R, xr, D, 1.0f, grads.router_proj.f32(), D);
    gemm_f32(false, false, T, D, R, 1.0f, dh.data(), R, p.router_proj.f32(), D, 1.0f, dxr, D);
}

}  // namespace moe
