#include "train_checkpoint.h"

#include <cstring>

#include "moe/error.h"
#include "moe/safetensors.h"

namespace moe::cli {

bool is_expert_tensor(const std::string& name) {
    return name.ends_with(".experts.w1") || name.ends_with(".experts.w3") || name.ends_with(".experts.w2");
}

void save_checkpoint(const std::string& dir, const ModelConfig& c, const ModelParams& p,
                     const ModelParams& m, const ModelParams& v, const TrainState& s,
                     const std::string& key) {
    auto tensors = model_param_names(p, c);
    for (auto& [name, view] : model_param_names(m, c)) tensors.push_back({"optim.m." + name, view});
    for (auto& [name, view] : model_param_names(v, c)) tensors.push_back({"optim.v." + name, view});
    std::map<std::string, std::string> meta = {{"format", "moe-train-checkpoint-1"}, {"config", key},
                                               {"step", std::to_string(s.step)}, {"total", std::to_string(s.total)},
                                               {"warmup", std::to_string(s.warmup)}};
    for (int i = 0; i < 4; ++i) meta["rng." + std::to_string(i)] = std::to_string(s.rng[i]);
    for (size_t l = 0; l < s.router_steps.size(); ++l) meta["router_step." + std::to_string(l)] = std::to_string(s.router_steps[l]);
    safetensors_write(dir + "/checkpoint.safetensors", tensors, meta);
}

TrainState load_checkpoint(const std::string& dir, const ModelConfig& c, const ModelParams& p,
                           const ModelParams& m, const ModelParams& v, const std::string& key,
                           ExpertShard shard) {
    const std::string path = dir + "/checkpoint.safetensors";
    SafetensorsFile f(path);
    const char* op = "resume";
    MOE_CHECK(f.metadata().count("format") && f.meta("format") == "moe-train-checkpoint-1", op,
              path + " is not a moe train checkpoint (no format moe-train-checkpoint-1 in its metadata)");
    MOE_CHECK(f.meta("config") == key, op,
              path + " was written for " + f.meta("config") + "; this run is " + key +
                  ". Pass the same model options, or another --out to start afresh");
    auto restore = [&](const std::string& prefix, const ModelParams& dst) {
        for (auto& [name, view] : model_param_names(dst, c)) {
            std::vector<float> data = f.f32(prefix + name);
            // A rank's experts are one contiguous slice of the stacked (E, ., .) tensor.
            const int64_t parts = is_expert_tensor(name) ? shard.count : 1;
            MOE_CHECK(int64_t(data.size()) == view.numel() * parts, op,
                      path + ": " + prefix + name + " has " + std::to_string(data.size()) + " values, expected " +
                          std::to_string(view.numel() * parts));
            const int64_t at = parts > 1 ? shard.index * view.numel() : 0;
            std::memcpy(view.data, data.data() + at, size_t(view.numel()) * sizeof(float));
        }
    };
    restore("", p);
    restore("optim.m.", m);
    restore("optim.v.", v);
    TrainState s;
    s.step = std::stoll(f.meta("step"));
    s.total = std::stoll(f.meta("total"));
    s.warmup = std::stoll(f.meta("warmup"));
    for (int i = 0; i < 4; ++i) s.rng[i] = std::stoull(f.meta("rng." + std::to_string(i)));
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const std::string k = "router_step." + std::to_string(l);
        s.router_steps.push_back(f.metadata().count(k) ? std::stoll(f.meta(k)) : 0);
    }
    return s;
}

}  // namespace moe::cli
