// DeepSeek-V2 / V2-Lite and DeepSeek-V3 (transformers' DeepseekV2Config / DeepseekV3Config, 4.56):
// multi-head latent attention (include/moe/mla.h) with optional yarn rope_scaling, dense SwiGLU
// layers of intermediate_size below first_k_dense_replace, then MoE layers of n_routed_experts
// experts of moe_intermediate_size plus n_shared_experts merged into one ungated MLP.
// The routers, as transformers computes them (docs/model_spec.md, "Architectures"):
//   V2 (DeepseekV2MoEGate): softmax, top-k ("greedy") or group-limited top-k (group score = the
//      group's max, "group_limited_greedy"), weights = p * routed_scaling_factor (never
//      renormalised: transformers ignores norm_topk_prob, which the released V2 models leave false);
//   V3 (DeepseekV3TopkRouter, "noaux_tc"): sigmoid, selection by s + e_score_correction_bias with
//      group score = sum of each group's two largest, weights = s, / their sum when norm_topk_prob,
//      times routed_scaling_factor. Our routers `topk` and `sigmoid_bias` compute exactly these.
#include <algorithm>

#include "arch_internal.h"

namespace moe::arch {
namespace {

// rope_scaling: absent / "default" is plain RoPE, "yarn" maps into MlaYarn, anything else is refused.
void read_rope_scaling(const ConfigFields& f, MlaConfig& m) {
    if (!f.has("rope_scaling")) return;
    const nlohmann::json& rs = f.json()["rope_scaling"];
    if (!rs.is_object()) f.fail("rope_scaling must be an object or null, got " + rs.dump());
    const std::string kind = rs.value("rope_type", rs.value("type", std::string()));
    if (kind == "default") return;
    if (kind != "yarn")
        f.fail("rope_scaling type \"" + kind + "\" is not supported for DeepSeek: only \"yarn\" (as DeepSeek's "
               "configs use) or none");
    const ConfigFields y(rs, f.path() + ": rope_scaling");  // errors name the file and rope_scaling
    auto num = [&](const char* key, double fallback) { return y.get(key, fallback); };
    if (!y.has("factor")) f.fail("rope_scaling of type yarn has no \"factor\"; it is required");
    MlaYarn& o = m.yarn;
    o.factor = num("factor", 1.0);
    o.original_max_position_embeddings = int64_t(num("original_max_position_embeddings", 0.0));
    o.beta_fast = num("beta_fast", 32.0);  // transformers: `or 32`, so 0 means the default too
    o.beta_slow = num("beta_slow", 1.0);
    o.mscale = num("mscale", 0.0);
    o.mscale_all_dim = num("mscale_all_dim", 0.0);
    o.attention_factor = num("attention_factor", 0.0);
    if (rs.contains("truncate") && !rs["truncate"].is_null()) {
        if (!rs["truncate"].is_boolean()) f.fail("rope_scaling.truncate must be true or false, got " + rs["truncate"].dump());
        o.truncate = rs["truncate"].get<bool>();
    }
}

// What V2 and V3 share: the attention, the layer layout, the experts.
void read_deepseek_common(const ConfigFields& f, ModelConfig& c, bool v3) {
    const char* name = v3 ? "deepseek_v3" : "deepseek_v2";
    refuse_attention_bias(f);
    if (f.get("mlp_bias", false)) f.fail("mlp_bias = true (biases on the MLPs) is not supported");
    if (c.attn.n_kv_heads != c.attn.n_heads)
        f.fail("num_key_value_heads = " + std::to_string(c.attn.n_kv_heads) + " must equal num_attention_heads = " +
               std::to_string(c.attn.n_heads) + ": multi-head latent attention gives every head its own key and value");
    // q_lora_rank must be given; null means none (V2-Lite: q_proj directly). An absent field would
    // take transformers' class default (1536), which a checkpoint of other sizes contradicts.
    if (!f.json().contains("q_lora_rank"))
        f.fail("has no \"q_lora_rank\"; it is required (null for q_proj without the low-rank compression)");
    MlaConfig& m = c.mla;
    m.d_model = c.attn.d_model;
    m.n_heads = c.attn.n_heads;
    m.q_lora_rank = f.get("q_lora_rank", int64_t(0));
    m.kv_lora_rank = f.get("kv_lora_rank", int64_t(0), true);
    m.qk_nope_head_dim = f.get("qk_nope_head_dim", int64_t(0), true);
    m.qk_rope_head_dim = f.get("qk_rope_head_dim", int64_t(0), true);
    m.v_head_dim = f.get("v_head_dim", int64_t(0), true);
    m.rope_theta = c.attn.rope_theta;
    m.max_position_embeddings = f.get("max_position_embeddings", int64_t(v3 ? 4096 : 2048));
    m.rope_interleave = v3 ? f.get("rope_interleave", true) : true;  // V2 always rotates adjacent pairs
    // transformers 4.56's DeepseekV2Attention leaves yarn's mscale out of the softmax scale, its
    // DeepseekV3Attention puts it in (docs/model_spec.md, "Multi-head latent attention").
    m.softmax_mscale = v3;
    read_rope_scaling(f, m);
    c.attn.mla = true;
    c.attn.head_dim = m.qk_rope_head_dim;  // as transformers sets head_dim; the MLA sizes are in c.mla

    MoeLayerConfig& e = c.moe;
    e.n_experts = f.get("n_routed_experts", int64_t(0), true);
    e.top_k = f.get("num_experts_per_tok", int64_t(0), true);
    e.d_ff = f.get("moe_intermediate_size", int64_t(0), true);
    c.dense_intermediate_size = f.get("intermediate_size", int64_t(0), true);
    const int64_t shared = f.get("n_shared_experts", int64_t(0));
    if (shared < 0) f.fail("n_shared_experts must be >= 0, got " + std::to_string(shared));
    e.n_shared = shared > 0 ? 1 : 0;  // one MLP of n_shared_experts * moe_intermediate_size
    e.d_ff_shared = shared * e.d_ff;
    e.shared_gate = false;
    e.router.routed_scaling_factor = f.get("routed_scaling_factor", v3 ? 2.5 : 1.0);
    // Layers below first_k_dense_replace are dense (mlp_only_layers), every other layer is MoE.
    const int64_t k = f.get("first_k_dense_replace", int64_t(v3 ? 3 : 0));
    if (k < 0) f.fail("first_k_dense_replace must be >= 0, got " + std::to_string(k));
    const int64_t freq = f.get("moe_layer_freq", int64_t(1));
    if (freq != 1)
        f.fail("moe_layer_freq = " + std::to_string(freq) + " is not supported (transformers' " + name +
               " makes every layer from first_k_dense_replace on MoE; the released models use 1)");
    c.decoder_sparse_step = 1;
    c.mlp_only_layers.clear();
    for (int64_t l = 0; l < std::min(k, c.num_layers); ++l) c.mlp_only_layers.push_back(l);
}

}  // namespace

void read_deepseek_v2(const ConfigFields& f, ModelConfig& c) {
    read_deepseek_common(f, c, false);
    MoeLayerConfig& m = c.moe;
    m.router.kind = RouterKind::topk;
    if (f.get("scoring_func", std::string("softmax")) != "softmax")
        f.fail("scoring_func \"" + f.get("scoring_func", std::string()) +
               "\" is not supported for deepseek_v2: transformers' DeepseekV2MoEGate scores with a softmax");
    // transformers 4.56 ignores norm_topk_prob for V2 and DeepSeek's own code renormalises without
    // routed_scaling_factor: the two disagree, and the released V2 models set it false.
    if (f.get("norm_topk_prob", false))
        f.fail("norm_topk_prob = true is not supported for deepseek_v2 (transformers ignores it, DeepSeek's "
               "code renormalises instead of scaling; the released V2 models set it false)");
    m.renormalize = false;
    const std::string method = f.get("topk_method", std::string("greedy"));
    if (method == "greedy") {
        m.router.n_group = m.router.topk_group = 1;  // n_group / topk_group unused
    } else if (method == "group_limited_greedy") {
        m.router.n_group = f.get("n_group", int64_t(0), true);
        m.router.topk_group = f.get("topk_group", int64_t(0), true);
    } else {
        f.fail("topk_method \"" + method + "\" is not supported for deepseek_v2; expected \"greedy\" or "
               "\"group_limited_greedy\" (\"noaux_tc\" is DeepSeek-V3's: model_type deepseek_v3)");
    }
}

void read_deepseek_v3(const ConfigFields& f, ModelConfig& c) {
    read_deepseek_common(f, c, true);
    MoeLayerConfig& m = c.moe;
    // transformers' DeepseekV3TopkRouter always routes noaux_tc with sigmoid scores.
    const std::string method = f.get("topk_method", std::string("noaux_tc"));
    if (method != "noaux_tc")
        f.fail("topk_method \"" + method + "\" is not supported for deepseek_v3; expected \"noaux_tc\" (sigmoid "
               "scores with e_score_correction_bias, as transformers' DeepseekV3TopkRouter computes)");
    if (f.get("scoring_func", std::string("sigmoid")) != "sigmoid")
        f.fail("scoring_func \"" + f.get("scoring_func", std::string()) +
               "\" is not supported for deepseek_v3; expected \"sigmoid\" (noaux_tc)");
    m.router.kind = RouterKind::sigmoid_bias;
    m.renormalize = f.get("norm_topk_prob", true);
    m.router.n_group = f.get("n_group", int64_t(8));
    m.router.topk_group = f.get("topk_group", int64_t(4));
}

}  // namespace moe::arch
