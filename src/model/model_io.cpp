// config.json and model.safetensors of a model directory (include/moe/model_io.h).
#include "moe/model_io.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/files.h"
#include "moe/gguf_model.h"
#include "moe/safetensors.h"

namespace moe {

bool model_is_mixtral(const ModelConfig& c) {
    for (int64_t l = 0; l < c.num_layers; ++l)
        if (!c.is_moe_layer(l)) return false;
    const MoeLayerConfig& m = c.moe;
    const RouterConfig& r = m.router;
    return r.kind == RouterKind::topk && m.renormalize && m.n_shared == 0 && m.capacity_factor == 0 &&
           r.norm_p == 1 && r.routed_scaling_factor == 1 && r.n_group == 1 && r.router_jitter_noise == 0 &&
           c.attn.hd() * c.attn.n_heads == c.attn.d_model;
}

std::string model_config_json(const ModelConfig& c, const ModelFileInfo& info) {
    const MoeLayerConfig& m = c.moe;
    const RouterConfig& r = m.router;
    const bool mixtral = model_is_mixtral(c);
    nlohmann::ordered_json j = {
        {"architectures", {mixtral ? "MixtralForCausalLM" : "MoeForCausalLM"}},
        {"model_type", mixtral ? "mixtral" : "moe"},
        {"vocab_size", c.vocab_size},
        {"hidden_size", c.hidden()},
        {"intermediate_size", m.d_ff},
        {"num_hidden_layers", c.num_layers},
        {"num_attention_heads", c.attn.n_heads},
        {"num_key_value_heads", c.attn.n_kv_heads},
        {"head_dim", c.attn.hd()},
        {"num_local_experts", m.n_experts},
        {"num_experts_per_tok", m.top_k},
        {"max_position_embeddings", info.max_position_embeddings},
        {"rms_norm_eps", c.rms_norm_eps},
        {"rope_theta", c.attn.rope_theta},
        {"sliding_window", nullptr},
        {"tie_word_embeddings", c.tie_word_embeddings},
        {"router_aux_loss_coef", info.router_aux_loss_coef},
        {"router_z_loss_coef", info.router_z_loss_coef},
        {"router_jitter_noise", r.router_jitter_noise},
        {"hidden_act", "silu"},
        {"torch_dtype", "float32"},
        // Beyond Mixtral: the router family and its options, shared experts, dense layers.
        {"moe_router", router_kind_name(r.kind)},
        {"norm_topk_prob", m.renormalize},
        {"capacity_factor", m.capacity_factor},
        {"moe_normalize_expert_weights", r.norm_p},
        {"routed_scaling_factor", r.routed_scaling_factor},
        {"n_group", r.n_group},
        {"topk_group", r.topk_group},
        {"top_p", r.top_p},
        {"sinkhorn_iters", r.sinkhorn_iters},
        {"router_dim", r.router_dim},
        {"dselect_gamma", r.dselect_gamma},
        {"slots_per_expert", r.slots_per_expert},
        {"n_shared_experts", m.n_shared},
        {"shared_expert_intermediate_size", m.d_ff_shared},
        {"shared_expert_gate", m.shared_gate},
        {"decoder_sparse_step", c.decoder_sparse_step},
        {"mlp_only_layers", c.mlp_only_layers},
        {"dense_intermediate_size", c.dense_ff()},
    };
    return j.dump(2) + "\n";
}

ModelConfig model_config_read(const std::string& path, ModelFileInfo* info) {
    const char* op = "model_config";
    const nlohmann::json j = read_json_file(path, op, "pass a model directory: moe train --out, moe upcycle --out, or a Hugging Face download");
    MOE_CHECK(j.is_object(), op, path + " is not a JSON object");
    const std::string type = j.value("model_type", std::string("mixtral"));
    MOE_CHECK(type == "mixtral" || type == "moe", op,
              path + ": model_type \"" + type + "\" is not supported; this reader takes \"mixtral\" and \"moe\"");
    auto get = [&](const char* key, auto fallback, bool required) {
        using T = decltype(fallback);
        if (!j.contains(key) || j[key].is_null()) {
            MOE_CHECK(!required, op, path + " has no \"" + key + "\"; it is required");
            return fallback;
        }
        try {
            return j[key].get<T>();
        } catch (const nlohmann::json::exception&) {
            fail(op, path + ": \"" + key + "\" has the wrong type (" + j[key].type_name() + ")");
        }
    };
    ModelConfig c;
    c.vocab_size = get("vocab_size", int64_t(0), true);
    c.num_layers = get("num_hidden_layers", int64_t(0), true);
    c.attn.d_model = get("hidden_size", int64_t(0), true);
    c.attn.n_heads = get("num_attention_heads", int64_t(0), true);
    c.attn.n_kv_heads = get("num_key_value_heads", c.attn.n_heads, false);
    c.attn.head_dim = get("head_dim", int64_t(0), false);
    c.attn.rope_theta = get("rope_theta", 1e6, false);
    c.rms_norm_eps = get("rms_norm_eps", 1e-5, false);
    c.tie_word_embeddings = get("tie_word_embeddings", false, false);
    MOE_CHECK(get("hidden_act", std::string("silu"), false) == "silu", op,
              path + ": hidden_act must be \"silu\" (SwiGLU experts)");
    const int64_t window = get("sliding_window", int64_t(0), false);
    const int64_t max_pos = get("max_position_embeddings", int64_t(4096), false);
    MOE_CHECK(window == 0 || window >= max_pos, op,
              path + ": sliding_window " + std::to_string(window) +
                  " is shorter than max_position_embeddings; sliding-window attention is not implemented");
    MoeLayerConfig& m = c.moe;
    m.d_model = c.attn.d_model;
    m.d_ff = get("intermediate_size", int64_t(0), true);
    m.n_experts = get("num_local_experts", int64_t(0), true);
    m.top_k = get("num_experts_per_tok", int64_t(0), true);
    m.renormalize = get("norm_topk_prob", true, false);
    m.capacity_factor = get("capacity_factor", 0.0, false);
    m.n_shared = get("n_shared_experts", int64_t(0), false);
    m.d_ff_shared = get("shared_expert_intermediate_size", int64_t(0), false);
    m.shared_gate = get("shared_expert_gate", false, false);
    RouterConfig& r = m.router;
    try {
        r.kind = parse_router_kind(get("moe_router", std::string("topk"), false));
    } catch (const Error& e) {
        fail(op, path + ": moe_router: " + e.what());
    }
    r.router_jitter_noise = get("router_jitter_noise", 0.0, false);
    r.norm_p = get("moe_normalize_expert_weights", 1.0, false);
    r.routed_scaling_factor = get("routed_scaling_factor", 1.0, false);
    r.n_group = get("n_group", int64_t(1), false);
    r.topk_group = get("topk_group", int64_t(1), false);
    r.top_p = get("top_p", 0.5, false);
    r.sinkhorn_iters = get("sinkhorn_iters", int64_t(8), false);
    r.router_dim = get("router_dim", int64_t(16), false);
    r.dselect_gamma = get("dselect_gamma", 1.0, false);
    r.slots_per_expert = get("slots_per_expert", int64_t(1), false);
    r.training = false;
    c.decoder_sparse_step = get("decoder_sparse_step", int64_t(1), false);
    c.mlp_only_layers = get("mlp_only_layers", std::vector<int64_t>{}, false);
    c.dense_intermediate_size = get("dense_intermediate_size", int64_t(0), false);
    if (info) {
        info->max_position_embeddings = max_pos;
        info->router_aux_loss_coef = get("router_aux_loss_coef", 0.0, false);
        info->router_z_loss_coef = get("router_z_loss_coef", 0.0, false);
    }
    try {
        model_validate(c);
    } catch (const Error& e) {
        fail(op, path + " describes an impossible model: " + e.what());
    }
    return c;
}

void model_save_hf(const std::string& dir, const ModelConfig& c, const ModelParams& p, const ModelFileInfo& info) {
    std::filesystem::create_directories(dir);
    safetensors_write(dir + "/model.safetensors", model_hf_tensors(p, c), {{"format", "pt"}});
    write_file_atomic(dir + "/config.json", model_config_json(c, info), "model_save_hf");
}

void model_load_weights(const std::string& dir, const ModelConfig& c, const ModelParams& p) {
    if (std::filesystem::is_regular_file(dir) && gguf_has_magic(dir)) {
        gguf_model_load_weights(GgufFile(dir), c, p);
        return;
    }
    const bool hf = std::filesystem::exists(dir + "/model.safetensors");
    const std::string path = dir + (hf ? "/model.safetensors" : "/checkpoint.safetensors");
    MOE_CHECK(hf || std::filesystem::exists(path), "model_load",
              dir + " has neither model.safetensors nor checkpoint.safetensors; pass a model directory "
                    "(moe train --out, moe upcycle --out, or a Hugging Face download)");
    SafetensorsFile f(path);
    for (auto& [name, view] : hf ? model_hf_tensors(p, c) : model_param_names(p, c)) {
        std::vector<int64_t> shape = f.shape(name);
        std::vector<int64_t> want(view.shape.dims, view.shape.dims + view.shape.ndim);
        auto str = [](const std::vector<int64_t>& s) {
            std::string o = "(";
            for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
            return o + ")";
        };
        MOE_CHECK(shape == want, "model_load",
                  path + ": " + name + " has shape " + str(shape) + ", config.json implies " + str(want) +
                      "; the weights belong to another configuration");
        std::vector<float> v = f.f32(name);
        std::memcpy(view.data, v.data(), v.size() * sizeof(float));
    }
}

}  // namespace moe
