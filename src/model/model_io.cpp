// config.json and model.safetensors of a model directory (include/moe/model_io.h).
#include "moe/model_io.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>

#include "arch_internal.h"
#include "hf_weights.h"
#include "moe/error.h"
#include "moe/files.h"
#include "moe/gguf_model.h"
#include "moe/safetensors.h"

namespace moe {

bool model_is_mixtral(const ModelConfig& c) {
    if (c.arch != ModelArch::mixtral || !c.attn.plain()) return false;
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
    MOE_CHECK(c.arch == ModelArch::mixtral && c.attn.plain(), "model_config",
              std::string("writing a config.json for ") + arch_info(c.arch).name +
                  " is not supported: moe writes its own and Mixtral's layout only");
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
    const ArchInfo* a = arch_find(type);
    MOE_CHECK(a != nullptr, op,
              path + ": model_type \"" + type + "\" is not supported; supported: " + arch_names());
    const arch::ConfigFields f(j, path);
    ModelConfig c;
    c.arch = a->id;
    c.vocab_size = f.get("vocab_size", int64_t(0), true);
    c.num_layers = f.get("num_hidden_layers", int64_t(0), true);
    c.attn.d_model = f.get("hidden_size", int64_t(0), true);
    c.attn.n_heads = f.get("num_attention_heads", int64_t(0), true);
    c.attn.n_kv_heads = f.get("num_key_value_heads", c.attn.n_heads);
    c.attn.head_dim = f.get("head_dim", int64_t(0));
    c.attn.rope_theta = f.get("rope_theta", 1e6);
    c.rms_norm_eps = f.get("rms_norm_eps", 1e-5);
    c.tie_word_embeddings = f.get("tie_word_embeddings", false);
    if (f.get("hidden_act", std::string("silu")) != "silu") f.fail("hidden_act must be \"silu\" (SwiGLU experts)");
    if (f.has("rope_scaling") && !arch_uses_mla(a->id)) {  // DeepSeek's reader takes yarn
        const nlohmann::json& rs = j["rope_scaling"];
        const std::string kind = rs.is_object() ? rs.value("rope_type", rs.value("type", std::string())) : std::string();
        if (kind != "default")
            f.fail("rope_scaling " + rs.dump() + " is not supported (only plain RoPE); remove it to run at the trained length");
    }
    c.moe.d_model = c.attn.d_model;
    arch::reader(a->id)(f, c);
    c.moe.router.training = false;
    if (info) {
        info->max_position_embeddings = f.get("max_position_embeddings", int64_t(4096));
        info->router_aux_loss_coef = f.get("router_aux_loss_coef", 0.0);
        info->router_z_loss_coef = f.get("router_z_loss_coef", 0.0);
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
    const bool hf = hf_has_weights(dir);
    MOE_CHECK(hf || std::filesystem::exists(dir + "/checkpoint.safetensors"), "model_load",
              dir + " has none of model.safetensors, model.safetensors.index.json (shards) and "
                    "checkpoint.safetensors; pass a model directory (moe train --out, moe upcycle --out, or a "
                    "Hugging Face download)");
    std::unique_ptr<SafetensorsFile> ckpt = hf ? nullptr : std::make_unique<SafetensorsFile>(dir + "/checkpoint.safetensors");
    std::unique_ptr<HfWeights> files = hf ? std::make_unique<HfWeights>(dir) : nullptr;
    std::set<std::string> used;
    for (auto& [name, view] : hf ? model_hf_tensors(p, c) : model_param_names(p, c)) {
        const SafetensorsFile& f = hf ? files->file_of(name) : *ckpt;
        hf_checked_entry(f, name, std::vector<int64_t>(view.shape.dims, view.shape.dims + view.shape.ndim),
                         arch_info(c.arch).name, "model_load");
        std::vector<float> v = f.f32(name);
        std::memcpy(view.data, v.data(), v.size() * sizeof(float));
        used.insert(name);
    }
    if (hf) hf_refuse_unused(*files, used, dir, arch_info(c.arch).name, "model_load");
}

}  // namespace moe
