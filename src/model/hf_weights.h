// The weight files of a Hugging Face model directory (model.safetensors, or the shards of
// model.safetensors.index.json), shared by model_load_weights (copies into an f32 arena) and
// hf_infer_weights (uses them where they lie).
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
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

}  // namespace moe
