// DeepSeek-V2 / V3 as llama.cpp's "deepseek2" GGUF (src/model/gguf_deepseek2.h), with the facts of
// llama.cpp's convert_hf_to_gguf.py (DeepseekV2Model) and src/models/deepseek2.cpp:
//  - multi-head latent attention stored as MQA: head_count_kv 1, key_length L + R, value_length L,
//    key_length_mla Nd + R, value_length_mla Vd; kv_b_proj split into attn_k_b / attn_v_b;
//  - RoPE on adjacent pairs (LLAMA_ROPE_TYPE_NORM), so q / kv_a rows are not permuted;
//  - every RMSNorm with attention.layer_norm_rms_epsilon, q_a / kv_a ones included;
//  - yarn: beta_fast 32, beta_slow 1 (the keys are not read), and from rope.scaling.factor s,
//    yarn_log_multiplier (0.1 a) and attn_factor r: RoPE's cos / sin times
//    rope = a != 0 ? r : r m(s, 1), softmax scale (rope m(s, a))^2 / sqrt(Nd + R), m(s, 0) = 1,
//    m(s, a) = 1 + 0.1 a ln s (llama-context.cpp's yarn_attn_factor, ggml's rope mscale,
//    deepseek2's kq_scale; both derived again below);
//  - router: expert_gating_func softmax (1) or sigmoid (2) + exp_probs_b, groups scored by the sum
//    of their two best, weights / their sum when expert_weights_norm, times expert_weights_scale.
#include "gguf_deepseek2.h"

#include <cmath>
#include <string>

#include "moe/error.h"

namespace moe::gguf_ds2 {
namespace {

constexpr const char* kOp = "gguf_model";
constexpr uint32_t kGatingSoftmax = 1, kGatingSigmoid = 2;  // llama_expert_gating_func_type

double yarn_m(double s, double a) { return 1.0 + 0.1 * a * std::log(s); }

// The leading dense layers (first_k_dense_replace), or -1 when the dense layers do not lead.
int64_t leading_dense(const ModelConfig& c) {
    int64_t k = 0;
    while (k < c.num_layers && !c.is_moe_layer(k)) ++k;
    for (int64_t l = k; l < c.num_layers; ++l)
        if (!c.is_moe_layer(l)) return -1;
    return k;
}

// llama.cpp's deepseek2 yarn keys for our RoPE factor and softmax scale (the inverse of the
// header's formulas): rope = r (a != 0) and m(s, a) = sqrt(scale sqrt(Nd + R)) / rope; a = 0 when
// that is 1, and then r = rope / m(s, 1).
struct YarnKeys {
    double a = 0, r = 1;  // yarn_log_multiplier / 0.1, rope.scaling.attn_factor
};
YarnKeys yarn_keys(const MlaConfig& m) {
    const double s = m.yarn.factor, rope = mla_rope_attention_factor(m);
    const double ma = std::sqrt(mla_softmax_scale(m) * std::sqrt(double(m.qk_head_dim()))) / rope;
    if (std::abs(ma - 1.0) < 1e-12) return {0.0, rope / yarn_m(s, 1.0)};
    return {(ma - 1.0) / (0.1 * std::log(s)), rope};
}

}  // namespace

std::string unsupported(const ModelConfig& c) {
    const MlaConfig& m = c.mla;
    const MoeLayerConfig& e = c.moe;
    const RouterConfig& r = e.router;
    if (!c.attn.mla) return "DeepSeek's attention must be multi-head latent attention";
    if (!m.rope_interleave)
        return "rope_interleave = false (RoPE on (j, j + R/2)); llama.cpp's deepseek2 rotates adjacent pairs";
    if (m.lora_norm_eps != c.rms_norm_eps)
        return "q_a_layernorm / kv_a_layernorm use eps " + std::to_string(m.lora_norm_eps) +
               " (transformers' default) but rms_norm_eps is " + std::to_string(c.rms_norm_eps) +
               "; llama.cpp's deepseek2 uses rms_norm_eps for every RMSNorm (DeepSeek's released configs set 1e-6)";
    if (m.yarn_active()) {
        const MlaYarn& y = m.yarn;
        if (y.factor <= 1) return "yarn rope_scaling with factor <= 1 is not expressible in llama.cpp's keys";
        if ((y.beta_fast != 32 && y.beta_fast != 0) || (y.beta_slow != 1 && y.beta_slow != 0) || !y.truncate)
            return "yarn with beta_fast != 32, beta_slow != 1 or truncate = false; llama.cpp's deepseek2 fixes 32, 1 "
                   "and truncates";
    }
    if (leading_dense(c) < 0) return "its dense layers do not all come before the MoE layers (first_k_dense_replace)";
    if (e.n_shared != 1 || e.shared_gate || e.d_ff <= 0 || e.d_ff_shared % e.d_ff != 0)
        return "llama.cpp's deepseek2 needs one ungated shared expert of n_shared_experts (>= 1) x moe_intermediate_size";
    if (e.capacity_factor != 0 || r.norm_p != 1) return "the router must have no capacity and norm_p 1";
    if (c.arch == ModelArch::deepseek_v3 && r.kind != RouterKind::sigmoid_bias)
        return "DeepSeek-V3's router must be sigmoid_bias";
    if (c.arch == ModelArch::deepseek_v2 && r.kind != RouterKind::topk) return "DeepSeek-V2's router must be topk";
    if (r.kind == RouterKind::topk && r.n_group > 1)
        return "group_limited_greedy with n_group > 1: DeepSeek-V2 scores a group by its best expert, llama.cpp by "
               "the sum of its two best (DeepSeek-V3's rule)";
    return "";
}

void write_metadata(GgufWriter& w, const ModelConfig& c, const ModelFileInfo& info) {
    const std::string k = "deepseek2.";
    const MlaConfig& m = c.mla;
    const MoeLayerConfig& e = c.moe;
    w.add_u32(k + "leading_dense_block_count", uint32_t(leading_dense(c)));
    // llama.cpp reads q_lora_rank unless it takes the model for a V2-Lite by its layer count
    // (26 / 27); 0 (q_proj, no compression) is what it then assumes. convert_hf_to_gguf.py omits
    // the key for a null q_lora_rank, so its tiny V2-Lite files do not load there.
    w.add_u32(k + "attention.q_lora_rank", uint32_t(m.q_lora_rank));
    w.add_u32(k + "attention.kv_lora_rank", uint32_t(m.kv_lora_rank));
    // The absorbed attention as MQA over [c_t | k_pe_t]: keys of L + R, values of L.
    w.add_u32(k + "attention.key_length", uint32_t(m.kv_lora_rank + m.qk_rope_head_dim));
    w.add_u32(k + "attention.value_length", uint32_t(m.kv_lora_rank));
    w.add_u32(k + "attention.key_length_mla", uint32_t(m.qk_head_dim()));
    w.add_u32(k + "attention.value_length_mla", uint32_t(m.v_head_dim));
    w.add_u32(k + "expert_feed_forward_length", uint32_t(e.d_ff));
    w.add_u32(k + "expert_shared_count", uint32_t(e.d_ff_shared / e.d_ff));
    w.add_f32(k + "expert_weights_scale", float(e.router.routed_scaling_factor));
    if (e.renormalize) w.add_bool(k + "expert_weights_norm", true);
    w.add_u32(k + "expert_gating_func", e.router.kind == RouterKind::sigmoid_bias ? kGatingSigmoid : kGatingSoftmax);
    w.add_u32(k + "expert_group_count", uint32_t(e.router.n_group));
    w.add_u32(k + "expert_group_used_count", uint32_t(e.router.topk_group));
    if (!m.yarn_active()) return;
    w.add_string(k + "rope.scaling.type", "yarn");
    w.add_f32(k + "rope.scaling.factor", float(m.yarn.factor));
    const int64_t orig = m.yarn.original_max_position_embeddings > 0 ? m.yarn.original_max_position_embeddings
                                                                     : m.max_position_embeddings;
    w.add_u32(k + "rope.scaling.original_context_length", uint32_t(orig > 0 ? orig : info.max_position_embeddings));
    const YarnKeys y = yarn_keys(m);
    if (y.a != 0) w.add_f32(k + "rope.scaling.yarn_log_multiplier", float(0.1 * y.a));
    if (y.r != 1) w.add_f32(k + "rope.scaling.attn_factor", float(y.r));
}

void read_config(const GgufFile& f, ModelConfig& c, int64_t context_length) {
    const std::string& path = f.path();
    const std::string k = "deepseek2.";
    auto need = [&](const std::string& key) {
        MOE_CHECK(f.has(k + key), kOp, path + " has no " + k + key + "; it is required for a deepseek2 GGUF");
        return f.get_int(k + key);
    };
    auto int_or = [&](const std::string& key, int64_t fallback) { return f.has(k + key) ? f.get_int(k + key) : fallback; };
    auto f32_or = [&](const std::string& key, float fallback) { return f.has(k + key) ? f.get<float>(k + key) : fallback; };
    auto refuse = [&](const std::string& what) { fail(kOp, path + ": " + what); };
    MOE_CHECK(f.has(k + "attention.key_length_mla"), kOp,
              path + " has no " + k + "attention.key_length_mla: a deepseek2 file from before llama.cpp split attn_kv_b "
                     "into attn_k_b / attn_v_b (or without MLA); convert the model again");
    // Router: llama.cpp's default gating is softmax (DeepSeek-V2 files have no key).
    const int64_t gating = int_or("expert_gating_func", kGatingSoftmax);
    if (gating != kGatingSoftmax && gating != kGatingSigmoid)
        refuse(k + "expert_gating_func is " + std::to_string(gating) + "; supported: 1 (softmax) and 2 (sigmoid)");
    const bool sigmoid = gating == kGatingSigmoid;
    c.arch = sigmoid ? ModelArch::deepseek_v3 : ModelArch::deepseek_v2;
    MoeLayerConfig& e = c.moe;
    e.d_ff = need("expert_feed_forward_length");
    const int64_t shared = need("expert_shared_count");
    if (shared < 1) refuse(k + "expert_shared_count is " + std::to_string(shared) + "; deepseek2 needs >= 1");
    e.n_shared = 1;
    e.d_ff_shared = shared * e.d_ff;
    e.shared_gate = false;
    e.renormalize = f.has(k + "expert_weights_norm") && f.get<bool>(k + "expert_weights_norm");
    const float scale = f32_or("expert_weights_scale", 0.0f);
    e.router.routed_scaling_factor = scale == 0.0f ? 1.0 : double(scale);  // llama.cpp: 0 = no scaling
    e.router.kind = sigmoid ? RouterKind::sigmoid_bias : RouterKind::topk;
    const int64_t groups = int_or("expert_group_count", 0);
    e.router.n_group = groups > 1 ? groups : 1;
    e.router.topk_group = groups > 1 ? need("expert_group_used_count") : 1;
    if (!sigmoid && groups > 1)
        refuse(k + "expert_group_count is " + std::to_string(groups) + " with softmax gating: llama.cpp scores groups "
               "by the sum of their two best experts, moe's softmax router by the best; not implemented");
    // Layers: the leading ones dense (feed_forward_length), the others MoE.
    const int64_t dense = int_or("leading_dense_block_count", 0);
    if (dense < 0 || dense > c.num_layers)
        refuse(k + "leading_dense_block_count is " + std::to_string(dense) + ", outside 0 .. block_count");
    c.mlp_only_layers.clear();
    for (int64_t l = 0; l < dense; ++l) c.mlp_only_layers.push_back(l);
    c.decoder_sparse_step = 1;
    c.dense_intermediate_size = dense > 0 ? need("feed_forward_length") : 0;
    // Multi-head latent attention.
    MlaConfig& m = c.mla;
    m.d_model = c.attn.d_model;
    m.n_heads = c.attn.n_heads;
    m.q_lora_rank = int_or("attention.q_lora_rank", 0);
    m.kv_lora_rank = need("attention.kv_lora_rank");
    m.qk_rope_head_dim = need("rope.dimension_count");
    m.qk_nope_head_dim = need("attention.key_length_mla") - m.qk_rope_head_dim;
    m.v_head_dim = need("attention.value_length_mla");
    if (m.qk_nope_head_dim < 1)
        refuse(k + "attention.key_length_mla must exceed rope.dimension_count (" + std::to_string(m.qk_rope_head_dim) + ")");
    if (int_or("attention.key_length", m.kv_lora_rank + m.qk_rope_head_dim) != m.kv_lora_rank + m.qk_rope_head_dim ||
        int_or("attention.value_length", m.kv_lora_rank) != m.kv_lora_rank)
        refuse(k + "attention.key_length / value_length must be kv_lora_rank + rope.dimension_count / kv_lora_rank "
               "(the latent cache's row) for multi-head latent attention");
    m.rope_theta = c.attn.rope_theta;
    m.max_position_embeddings = context_length;
    m.lora_norm_eps = c.rms_norm_eps;  // llama.cpp: one eps for every RMSNorm
    m.rope_interleave = true;          // LLAMA_ROPE_TYPE_NORM: adjacent pairs
    const std::string type = f.has(k + "rope.scaling.type") ? f.get<std::string>(k + "rope.scaling.type") : "";
    const float factor = f32_or("rope.scaling.factor", 0.0f);
    const float r = f32_or("rope.scaling.attn_factor", 1.0f);
    if (type == "yarn") {
        if (!(factor > 1.0f)) refuse(k + "rope.scaling.factor must be > 1 for yarn, got " + std::to_string(factor));
        // The keys as llama.cpp reads them: the multiplier over 0.1 in float, as its loader divides.
        const double a = f.has(k + "rope.scaling.yarn_log_multiplier")
                             ? double(f.get<float>(k + "rope.scaling.yarn_log_multiplier") / 0.1f)
                             : 0.0;
        const double s = double(factor);
        const double rope = a != 0 ? double(r) : double(r) * yarn_m(s, 1.0);
        const double mscale = rope * (a != 0 ? yarn_m(s, a) : 1.0);
        m.yarn = MlaYarn{};
        m.yarn.factor = s;
        m.yarn.original_max_position_embeddings = int_or("rope.scaling.original_context_length", context_length);
        m.yarn.attention_factor = rope;
        m.softmax_scale = mscale * mscale / std::sqrt(double(m.qk_head_dim()));
    } else if (!(type.empty() || type == "none") || (factor != 0.0f && factor != 1.0f) || r != 1.0f) {
        refuse(k + "rope.scaling is type \"" + type + "\", factor " + std::to_string(factor) + ", attn_factor " +
               std::to_string(r) + "; supported: none, or yarn");
    }
    c.attn.mla = true;
    c.attn.head_dim = m.qk_rope_head_dim;  // as the Hugging Face reader sets it
    c.attn.n_kv_heads = c.attn.n_heads;    // the file says 1 (MQA over the latent); every head is its own
}

}  // namespace moe::gguf_ds2
