// The decoder-only MoE language model: the pieces of attention.h, moe_layer.h and lm_loss.h
// chained with residuals, and their backward in reverse (docs/model_spec.md, "The model").
#include "moe/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/lm_loss.h"
#include "moe/rng.h"

namespace moe {
namespace {

float* grow_buf(Buffer& b, int64_t rows, int64_t cols) {
    if (b.numel() != rows * cols || !b.f32()) b = Buffer(DType::f32, {rows, cols});  // () has numel 1, no data
    return b.f32();
}

void zero(float* p, int64_t n) { std::memset(p, 0, size_t(n) * sizeof(float)); }

}  // namespace

bool ModelConfig::is_moe_layer(int64_t l) const {
    if (moe.n_experts <= 0 || decoder_sparse_step <= 0 || (l + 1) % decoder_sparse_step != 0) return false;
    return std::find(mlp_only_layers.begin(), mlp_only_layers.end(), l) == mlp_only_layers.end();
}

MoeLayerConfig ModelConfig::ffn(int64_t l) const {
    if (is_moe_layer(l)) return moe;
    MoeLayerConfig d;
    d.d_model = attn.d_model;
    d.d_ff = dense_ff();
    d.n_experts = 1;
    d.top_k = 1;
    d.dtype = moe.dtype;
    d.router.kind = RouterKind::dense;  // softmax over one expert: weight 1, no gradient
    return d;
}

void model_validate(const ModelConfig& c) {
    const char* op = "model";
    MOE_CHECK(c.vocab_size > 0, op, "vocab_size must be > 0, got " + std::to_string(c.vocab_size));
    MOE_CHECK(c.num_layers > 0, op, "num_hidden_layers must be > 0, got " + std::to_string(c.num_layers));
    MOE_CHECK(c.rms_norm_eps > 0, op, "rms_norm_eps must be > 0, got " + std::to_string(c.rms_norm_eps));
    MOE_CHECK(c.moe.d_model == c.attn.d_model, op,
              "the MoE layer's d_model (" + std::to_string(c.moe.d_model) + ") must equal hidden_size (" +
                  std::to_string(c.attn.d_model) + ")");
    MOE_CHECK(c.moe.n_experts >= 0, op, "num_local_experts must be >= 0 (0 = a dense model), got " +
                                            std::to_string(c.moe.n_experts));
    MOE_CHECK(c.decoder_sparse_step >= 1, op,
              "decoder_sparse_step must be >= 1 (every step-th layer is MoE), got " + std::to_string(c.decoder_sparse_step));
    MOE_CHECK(c.dense_intermediate_size >= 0, op,
              "dense_intermediate_size must be >= 0 (0 = top_k * intermediate_size), got " +
                  std::to_string(c.dense_intermediate_size));
    for (int64_t l : c.mlp_only_layers)
        MOE_CHECK(l >= 0 && l < c.num_layers, op,
                  "mlp_only_layers names layer " + std::to_string(l) + "; layers are 0.." + std::to_string(c.num_layers - 1));
    attention_validate(c.attn);
    if (c.attn.mla) {
        mla_validate(c.mla);
        MOE_CHECK(c.mla.d_model == c.attn.d_model && c.mla.n_heads == c.attn.n_heads, op,
                  "the latent attention's hidden_size / heads (" + std::to_string(c.mla.d_model) + ", " +
                      std::to_string(c.mla.n_heads) + ") must equal the model's (" + std::to_string(c.attn.d_model) +
                      ", " + std::to_string(c.attn.n_heads) + ")");
        MOE_CHECK(c.attn.n_kv_heads == c.attn.n_heads, op,
                  "multi-head latent attention has as many key / value heads as heads: num_key_value_heads = " +
                      std::to_string(c.attn.n_kv_heads) + " must equal num_attention_heads = " + std::to_string(c.attn.n_heads));
    }
    for (int64_t l = 0; l < c.num_layers; ++l) moe_layer_validate(c.ffn(l));
}

ModelSlots model_params_reserve(Arena& a, const ModelConfig& c, int64_t n_local_experts) {
    model_validate(c);
    const int64_t V = c.vocab_size, D = c.hidden(), H = c.attn.n_heads, Hkv = c.attn.n_kv_heads;
    const int64_t hd = c.attn.hd();
    ModelSlots s;
    s.embed = a.reserve(DType::f32, {V, D});
    for (int64_t l = 0; l < c.num_layers; ++l) {
        // input_norm, post_norm, q, k, v, o, then the extras (empty when the config has none):
        // q / k / v biases, q / k norms.
        // Multi-head latent attention replaces q / k / v / o (reserved empty), then its own.
        const bool std_attn = !c.attn.mla;
        const bool bias = c.attn.qkv_bias;
        const int64_t qn = c.attn.q_norm_len(), kn = c.attn.k_norm_len();
        auto mat = [&](bool on, int64_t rows, int64_t cols) {
            return on ? a.reserve(DType::f32, {rows, cols}) : a.reserve(DType::f32, {0});
        };
        s.layers.push_back({a.reserve(DType::f32, {D}), a.reserve(DType::f32, {D}), mat(std_attn, H * hd, D),
                            mat(std_attn, Hkv * hd, D), mat(std_attn, Hkv * hd, D), mat(std_attn, D, H * hd),
                            a.reserve(DType::f32, {bias ? H * hd : 0}), a.reserve(DType::f32, {bias ? Hkv * hd : 0}),
                            a.reserve(DType::f32, {bias ? Hkv * hd : 0}), a.reserve(DType::f32, {qn}),
                            a.reserve(DType::f32, {kn})});
        const MlaConfig& m = c.mla;
        const bool mla = c.attn.mla, qa = mla && m.q_lora_rank > 0;
        const int64_t Qr = m.q_lora_rank, Lr = m.kv_lora_rank, R = m.qk_rope_head_dim, qk = m.qk_head_dim();
        for (size_t t : {mat(mla && !qa, H * qk, D), mat(qa, Qr, D), a.reserve(DType::f32, {qa ? Qr : 0}),
                         mat(qa, H * qk, Qr), mat(mla, Lr + R, D), a.reserve(DType::f32, {mla ? Lr : 0}),
                         mat(mla, H * (m.qk_nope_head_dim + m.v_head_dim), Lr), mat(mla, D, H * m.v_head_dim)})
            s.layers.back().push_back(t);
        s.moe.push_back(moe_layer_params_reserve(a, c.ffn(l), c.is_moe_layer(l) ? n_local_experts : 0));
    }
    s.final_norm = a.reserve(DType::f32, {D});
    s.lm_head = c.tie_word_embeddings ? s.embed : a.reserve(DType::f32, {V, D});
    return s;
}

ModelParams model_params_point(const Arena& a, const ModelSlots& s, const ModelConfig& c) {
    ModelParams p;
    p.embed = a.view(s.embed);
    p.final_norm = a.view(s.final_norm);
    p.lm_head = a.view(s.lm_head);
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const std::vector<size_t>& t = s.layers[size_t(l)];
        ModelLayerParams lp;
        lp.input_norm = a.view(t[0]);
        lp.post_norm = a.view(t[1]);
        lp.attn = {a.view(t[2]), a.view(t[3]), a.view(t[4]), a.view(t[5]), a.view(t[6]),
                   a.view(t[7]), a.view(t[8]), a.view(t[9]), a.view(t[10])};
        lp.mla = {a.view(t[11]), a.view(t[12]), a.view(t[13]), a.view(t[14]),
                  a.view(t[15]), a.view(t[16]), a.view(t[17]), a.view(t[18])};
        lp.moe = moe_layer_params_point(a, s.moe[size_t(l)]);
        p.layers.push_back(lp);
    }
    return p;
}

ModelParams model_params_allocate(Arena& a, const ModelConfig& c) {
    const ModelSlots s = model_params_reserve(a, c);
    a.allocate();
    return model_params_point(a, s, c);
}

void model_params_init(const ModelParams& p, const ModelConfig& c, uint64_t seed) {
    Rng rng(seed);
    rng.fill_normal(p.embed.f32(), p.embed.numel(), 0.0f, 1.0f);
    auto ones = [](const TensorView& t) { std::fill_n(t.f32(), t.numel(), 1.0f); };
    auto matrix = [&](const TensorView& t) {
        rng.fill_normal(t.f32(), t.numel(), 0.0f, 1.0f / std::sqrt(float(t.shape[t.shape.ndim - 1])));
    };
    for (size_t l = 0; l < p.layers.size(); ++l) {
        const ModelLayerParams& lp = p.layers[l];
        ones(lp.input_norm);
        ones(lp.post_norm);
        matrix(lp.attn.q_proj);
        matrix(lp.attn.k_proj);
        matrix(lp.attn.v_proj);
        matrix(lp.attn.o_proj);
        ones(lp.attn.q_norm);
        ones(lp.attn.k_norm);  // the biases stay 0
        for (const TensorView* t : {&lp.mla.q_proj, &lp.mla.q_a_proj, &lp.mla.q_b_proj, &lp.mla.kv_a_proj,
                                    &lp.mla.kv_b_proj, &lp.mla.o_proj})
            matrix(*t);
        ones(lp.mla.q_a_norm);
        ones(lp.mla.kv_a_norm);
        moe_layer_params_init(lp.moe, seed + 1000 + l);
    }
    ones(p.final_norm);
    if (!c.tie_word_embeddings) matrix(p.lm_head);
}

namespace {

// Row e of a stacked (E, A, B) tensor as an (A, B) matrix.
TensorView slice(const TensorView& t, int64_t e) {
    const int64_t n = t.shape[1] * t.shape[2];
    return TensorView{t.f32() + e * n, t.dtype, Shape{t.shape[1], t.shape[2]}};
}

// The names of the whole model; `per_expert`: one matrix per expert, as Hugging Face stores them.
std::vector<std::pair<std::string, TensorView>> names(const ModelParams& p, const ModelConfig& c, bool per_expert) {
    std::vector<std::pair<std::string, TensorView>> out;
    auto add = [&](const std::string& name, const TensorView& t) {
        if (t.numel() > 0) out.push_back({name, t});
    };
    const ArchInfo& arch = arch_info(c.arch);
    MOE_CHECK(per_expert || c.arch == ModelArch::mixtral, "model",
              std::string("checkpoints of moe train hold moe's own layout, not ") + arch.name);
    add("model.embed_tokens.weight", p.embed);
    for (size_t l = 0; l < p.layers.size(); ++l) {
        const ModelLayerParams& lp = p.layers[l];
        const MoeLayerParams& m = lp.moe;
        const std::string pre = "model.layers." + std::to_string(l) + ".";
        add(pre + "input_layernorm.weight", lp.input_norm);
        add(pre + "self_attn.q_proj.weight", lp.attn.q_proj);
        add(pre + "self_attn.k_proj.weight", lp.attn.k_proj);
        add(pre + "self_attn.v_proj.weight", lp.attn.v_proj);
        add(pre + "self_attn.o_proj.weight", lp.attn.o_proj);
        add(pre + "self_attn.q_proj.bias", lp.attn.q_bias);
        add(pre + "self_attn.k_proj.bias", lp.attn.k_bias);
        add(pre + "self_attn.v_proj.bias", lp.attn.v_bias);
        add(pre + "self_attn.q_norm.weight", lp.attn.q_norm);
        add(pre + "self_attn.k_norm.weight", lp.attn.k_norm);
        add(pre + "self_attn.q_proj.weight", lp.mla.q_proj);  // MLA: the std. q_proj is empty
        add(pre + "self_attn.q_a_proj.weight", lp.mla.q_a_proj);
        add(pre + "self_attn.q_a_layernorm.weight", lp.mla.q_a_norm);
        add(pre + "self_attn.q_b_proj.weight", lp.mla.q_b_proj);
        add(pre + "self_attn.kv_a_proj_with_mqa.weight", lp.mla.kv_a_proj);
        add(pre + "self_attn.kv_a_layernorm.weight", lp.mla.kv_a_norm);
        add(pre + "self_attn.kv_b_proj.weight", lp.mla.kv_b_proj);
        add(pre + "self_attn.o_proj.weight", lp.mla.o_proj);
        add(pre + "post_attention_layernorm.weight", lp.post_norm);
        if (!c.is_moe_layer(int64_t(l))) {  // the router of a one-expert layer is not a parameter
            add(pre + "mlp.gate_proj.weight", slice(m.w1, 0));
            add(pre + "mlp.up_proj.weight", slice(m.w3, 0));
            add(pre + "mlp.down_proj.weight", slice(m.w2, 0));
            continue;
        }
        const std::string moe = pre + arch.moe_block;
        add(moe + "gate.weight", m.router);
        add(moe + "gate.noise.weight", m.router_noise);
        add(moe + "gate.e_score_correction_bias", m.router_bias);
        add(moe + "gate.proj.weight", m.router_proj);
        add(moe + "gate.temperature", m.router_temp);
        const char* const* en = arch.expert_names;
        if (per_expert) {
            for (int64_t e = 0; e < m.w1.shape[0]; ++e) {
                const std::string ex = moe + "experts." + std::to_string(e) + ".";
                add(ex + en[0] + ".weight", slice(m.w1, e));
                add(ex + en[2] + ".weight", slice(m.w2, e));
                add(ex + en[1] + ".weight", slice(m.w3, e));
            }
            MOE_CHECK(arch.shared_indexed || m.ws1.shape[0] <= 1, "model",
                      std::string(arch.name) + " has at most one shared expert");
            for (int64_t s = 0; s < m.ws1.shape[0]; ++s) {
                const std::string ex =
                    moe + arch.shared_block + (arch.shared_indexed ? std::to_string(s) + "." : std::string());
                add(ex + en[0] + ".weight", slice(m.ws1, s));
                add(ex + en[2] + ".weight", slice(m.ws2, s));
                add(ex + en[1] + ".weight", slice(m.ws3, s));
            }
        } else {
            add(moe + "experts.w1", m.w1);
            add(moe + "experts.w3", m.w3);
            add(moe + "experts.w2", m.w2);
            add(moe + "shared_experts.w1", m.ws1);
            add(moe + "shared_experts.w3", m.ws3);
            add(moe + "shared_experts.w2", m.ws2);
        }
        add(moe + (per_expert ? arch.shared_gate : "shared_experts.gate.weight"), m.ws_gate);
    }
    add("model.norm.weight", p.final_norm);
    if (!c.tie_word_embeddings) add("lm_head.weight", p.lm_head);
    return out;
}

}  // namespace

std::vector<std::pair<std::string, TensorView>> model_param_names(const ModelParams& p, const ModelConfig& c) {
    return names(p, c, false);
}

std::vector<std::pair<std::string, TensorView>> model_hf_tensors(const ModelParams& p, const ModelConfig& c) {
    return names(p, c, true);
}

ModelLosses model_forward(ModelCache& cache, const ModelConfig& c, const ModelParams& p,
                          const int32_t* tokens, const int32_t* targets, int64_t B, int64_t T,
                          float aux_coef, float z_coef) {
    model_validate(c);
    MOE_CHECK(B > 0 && T > 0, "model_forward", "need B, T > 0, got B = " + std::to_string(B) + ", T = " + std::to_string(T));
    const int64_t N = B * T, D = c.hidden(), V = c.vocab_size;
    const float eps = float(c.rms_norm_eps);
    cache.B = B;
    cache.T = T;
    cache.layers.resize(size_t(c.num_layers));
    ModelLosses losses;
    Buffer* h = nullptr;  // the residual stream entering the current layer
    Buffer sub(DType::f32, {N, D});  // a sub-layer's output before the residual add
    for (int64_t l = 0; l < c.num_layers; ++l) {
        ModelCache::Layer& L = cache.layers[size_t(l)];
        const ModelLayerParams& lp = p.layers[size_t(l)];
        float* h_in = grow_buf(L.h_in, N, D);
        if (l == 0) {
            embedding_forward(h_in, p.embed.f32(), tokens, N, V, D);
        } else {
            std::memcpy(h_in, h->f32(), size_t(N * D) * sizeof(float));
        }
        L.rstd1.resize(size_t(N));
        L.rstd2.resize(size_t(N));
        float* n1 = grow_buf(L.n1, N, D);
        rmsnorm_forward(n1, L.rstd1.data(), h_in, lp.input_norm.f32(), N, D, eps);
        attention_forward(sub.view(), L.attn, c.attn, lp.attn, L.n1.view(), B, T);
        float* h_mid = grow_buf(L.h_mid, N, D);
        for (int64_t i = 0; i < N * D; ++i) h_mid[i] = h_in[i] + sub.f32()[i];
        float* n2 = grow_buf(L.n2, N, D);
        rmsnorm_forward(n2, L.rstd2.data(), h_mid, lp.post_norm.f32(), N, D, eps);
        MoeLayerLosses ml;
        ExpertExchange* ex = c.is_moe_layer(l) ? cache.exchange : nullptr;  // a dense FFN is replicated
        moe_layer_forward(sub.view(), ml, L.moe, c.ffn(l), lp.moe, L.n2.view(), ex, tokens);
        if (c.is_moe_layer(l)) {
            losses.aux += ml.aux;
            losses.z += ml.z;
        }
        float* h_out = grow_buf(cache.h_out, N, D);
        for (int64_t i = 0; i < N * D; ++i) h_out[i] = h_mid[i] + sub.f32()[i];
        h = &cache.h_out;
    }
    cache.rstd_f.resize(size_t(N));
    float* hf = grow_buf(cache.hf, N, D);
    rmsnorm_forward(hf, cache.rstd_f.data(), cache.h_out.f32(), p.final_norm.f32(), N, D, eps);
    float* logits = grow_buf(cache.logits, N, V);
    gemm_f32(false, true, N, V, D, 1.0f, hf, D, p.lm_head.f32(), D, 0.0f, logits, V);
    losses.ce = cross_entropy(grow_buf(cache.dlogits, N, V), logits, targets, N, V);
    losses.total = losses.ce + double(aux_coef) * losses.aux + double(z_coef) * losses.z;
    return losses;
}

void model_backward(const ModelParams& grads, ModelCache& cache, const ModelConfig& c,
                    const ModelParams& p, const int32_t* tokens, float aux_coef, float z_coef) {
    const int64_t B = cache.B, T = cache.T, N = B * T, D = c.hidden(), V = c.vocab_size;
    MOE_CHECK(N > 0 && cache.dlogits.numel() == N * V, "model_backward", "backward called without a forward");
    Buffer dh(DType::f32, {N, D}), dsub(DType::f32, {N, D}), dn(DType::f32, {N, D});
    // LM head and final norm.
    const float* dlogits = cache.dlogits.f32();
    zero(dsub.f32(), N * D);
    gemm_f32(false, false, N, D, V, 1.0f, dlogits, V, p.lm_head.f32(), D, 0.0f, dsub.f32(), D);
    gemm_f32(true, false, V, D, N, 1.0f, dlogits, V, cache.hf.f32(), D, 1.0f, grads.lm_head.f32(), D);
    zero(dh.f32(), N * D);
    rmsnorm_backward(dh.f32(), grads.final_norm.f32(), dsub.f32(), cache.h_out.f32(), p.final_norm.f32(),
                     cache.rstd_f.data(), N, D);
    const MoeLossCoefs coefs{aux_coef, z_coef, 0.0f};
    for (int64_t l = c.num_layers - 1; l >= 0; --l) {
        ModelCache::Layer& L = cache.layers[size_t(l)];
        const ModelLayerParams& lp = p.layers[size_t(l)];
        const ModelLayerParams& lg = grads.layers[size_t(l)];
        // h_out = h_mid + moe(n2): dh passes through, and through the MoE and its norm.
        zero(dn.f32(), N * D);
        moe_layer_backward(dn.view(), lg.moe, dh.view(), c.is_moe_layer(l) ? coefs : MoeLossCoefs{}, L.moe,
                           c.ffn(l), lp.moe, L.n2.view(), c.is_moe_layer(l) ? cache.exchange : nullptr);
        rmsnorm_backward(dh.f32(), lg.post_norm.f32(), dn.f32(), L.h_mid.f32(), lp.post_norm.f32(),
                         L.rstd2.data(), N, D);
        // h_mid = h_in + attn(n1).
        zero(dn.f32(), N * D);
        attention_backward(dn.view(), lg.attn, dh.view(), L.attn, c.attn, lp.attn, L.n1.view());
        rmsnorm_backward(dh.f32(), lg.input_norm.f32(), dn.f32(), L.h_in.f32(), lp.input_norm.f32(),
                         L.rstd1.data(), N, D);
    }
    embedding_backward(grads.embed.f32(), dh.f32(), tokens, N, D);
}

}  // namespace moe
