// What the architecture files (arch_<name>.cpp) share: typed access to a config.json with
// errors that name the file and the field, and each architecture's reader of the fields
// beyond the common ones (model_config_read reads those: sizes, heads, RoPE, norms).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "moe/arch.h"
#include "moe/error.h"
#include "moe/model.h"

namespace moe::arch {

class ConfigFields {
public:
    ConfigFields(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {}
    bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
    // The value of `key`, or `fallback` when it is absent or null (an error when required).
    template <class T>
    T get(const char* key, T fallback, bool required = false) const {
        if (!has(key)) {
            if (required) fail(std::string("has no \"") + key + "\"; it is required");
            return fallback;
        }
        try {
            return j_[key].get<T>();
        } catch (const nlohmann::json::exception&) {
            fail(std::string("\"") + key + "\" has the wrong type (" + j_[key].type_name() + ")");
        }
    }
    [[noreturn]] void fail(const std::string& what) const { moe::fail("model_config", path_ + ": " + what); }
    const nlohmann::json& json() const { return j_; }
    const std::string& path() const { return path_; }

private:
    const nlohmann::json& j_;
    std::string path_;
};

// Each fills c.moe (and the layer layout, attention extras) from the architecture's fields;
// the common fields are already in c.
void read_mixtral(const ConfigFields& f, ModelConfig& c);
void read_qwen2_moe(const ConfigFields& f, ModelConfig& c);
void read_qwen3_moe(const ConfigFields& f, ModelConfig& c);
void read_olmoe(const ConfigFields& f, ModelConfig& c);
void read_deepseek_v2(const ConfigFields& f, ModelConfig& c);
void read_deepseek_v3(const ConfigFields& f, ModelConfig& c);

// The reader of architecture a (the table's second column, kept here: it needs ConfigFields).
using Reader = void (*)(const ConfigFields&, ModelConfig&);
Reader reader(ModelArch a);

// The softmax top-k router of Qwen-MoE and OLMoE: num_experts experts of d_ff_key's size,
// num_experts_per_tok of them per token, renormalised when norm_topk_prob (default off).
void read_softmax_topk(const ConfigFields& f, ModelConfig& c, const char* d_ff_key);
// attention_bias = true: refused (it would also bias o_proj, which the decoder lacks; the
// released Qwen3-MoE, OLMoE and DeepSeek models have none).
void refuse_attention_bias(const ConfigFields& f);

// Qwen's sliding-window switch: refused when on (sliding-window attention is not implemented).
void refuse_sliding_window(const ConfigFields& f);

}  // namespace moe::arch
