// The weight files of a Hugging Face model directory (model.safetensors, or the shards of
// model.safetensors.index.json), shared by model_load_weights (copies into an f32 arena) and
// hf_infer_weights (uses them where they lie).
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "moe/error.h"
#include "moe/files.h"
#include "moe/safetensors.h"

namespace moe {

// The weight files of a Hugging Face directory: model.safetensors, or the shards that
// model.safetensors.index.json's weight_map names; each shard is read when first needed.
class HfWeights {
public:
    explicit HfWeights(const std::string& dir) : dir_(dir) {
        const std::string index = dir + "/model.safetensors.index.json";
        if (!std::filesystem::exists(index)) {
            single_ = dir + "/model.safetensors";
            return;
        }
        const nlohmann::json j = read_json_file(index, "model_load", "the index of a sharded Hugging Face checkpoint");
        MOE_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), "model_load",
                  index + " has no \"weight_map\" object (tensor name -> shard file)");
        for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
            MOE_CHECK(it.value().is_string(), "model_load", index + ": weight_map[\"" + it.key() + "\"] is not a file name");
            const std::string shard = it.value().get<std::string>();
            MOE_CHECK(shard.find('/') == std::string::npos && shard != ".." && !shard.empty(), "model_load",
                      index + ": weight_map[\"" + it.key() + "\"] = \"" + shard + "\" is not a file of the directory");
            map_[it.key()] = shard;
        }
    }
    // The file that holds `name`; throws naming the index when no shard does.
    const SafetensorsFile& file_of(const std::string& name) {
        std::string file = single_;
        if (file.empty()) {
            auto it = map_.find(name);
            MOE_CHECK(it != map_.end(), "model_load",
                      dir_ + "/model.safetensors.index.json names no shard for " + name +
                          "; config.json implies it (a checkpoint of another configuration?)");
            file = dir_ + "/" + it->second;
            MOE_CHECK(std::filesystem::exists(file), "model_load",
                      dir_ + "/model.safetensors.index.json puts " + name + " in " + it->second +
                          ", which is missing: an incomplete download? Fetch every shard the index names");
        }
        auto f = open_.find(file);
        if (f == open_.end()) f = open_.emplace(file, std::make_unique<SafetensorsFile>(file)).first;
        return *f->second;
    }
    // Every tensor name of the checkpoint.
    std::vector<std::string> names() {
        std::vector<std::string> out;
        if (!single_.empty()) {
            for (const auto& [n, e] : file_of("").entries()) out.push_back(n);
        } else {
            for (const auto& [n, f] : map_) out.push_back(n);
        }
        return out;
    }

private:
    std::string dir_, single_;
    std::map<std::string, std::string> map_;
    std::map<std::string, std::unique_ptr<SafetensorsFile>> open_;
};

// Whether dir holds Hugging Face weights: model.safetensors or the index of its shards.
inline bool hf_has_weights(const std::string& dir) {
    return std::filesystem::exists(dir + "/model.safetensors") || std::filesystem::exists(dir + "/model.safetensors.index.json");
}

// "(a, b, c)"
inline std::string hf_shape_str(const std::vector<int64_t>& s) {
    std::string o = "(";
    for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
    return o + ")";
}

// The entry of `name` in f, present and of shape `want`; else an error naming the file, the tensor
// and what config.json (of architecture `arch`) implies.
inline const SafetensorsEntry& hf_checked_entry(const SafetensorsFile& f, const std::string& name,
                                                const std::vector<int64_t>& want, const char* arch, const char* op) {
    MOE_CHECK(f.has(name), op,
              f.path() + " has no tensor " + name + "; config.json (" + arch +
                  ") implies it: the weights belong to another configuration");
    const SafetensorsEntry& e = f.info(name);
    MOE_CHECK(e.shape == want, op,
              f.path() + ": " + name + " has shape " + hf_shape_str(e.shape) + ", config.json implies " +
                  hf_shape_str(want) + "; the weights belong to another configuration");
    return e;
}

// A layer tensor of the checkpoint the model does not read (a bias config.json does not
// announce, say) would silently change the function: refused.
inline void hf_refuse_unused(HfWeights& files, const std::set<std::string>& used, const std::string& dir,
                             const char* arch, const char* op) {
    for (const std::string& name : files.names())
        MOE_CHECK(used.count(name) || name.rfind("model.layers.", 0) != 0 || name.find("rotary_emb") != std::string::npos,
                  op,
                  dir + ": the checkpoint has " + name + ", which the " + arch +
                      " model of config.json does not use; check model_type and the config's switches");
}

}  // namespace moe
