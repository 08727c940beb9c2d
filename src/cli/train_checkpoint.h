// Checkpoints of `moe train`: the model (Hugging Face Mixtral names, experts stacked), the AdamW
// moments and the loop's state in one safetensors file written atomically. The model alone, as
// Hugging Face stores it, goes to model.safetensors beside it (moe/model_io.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "moe/model.h"

namespace moe::cli {

struct TrainState {
    int64_t step = 0;                   // optimizer steps done
    int64_t total = 0, warmup = 0;      // the schedule in use
    uint64_t rng[4] = {0, 0, 0, 0};     // the batch sampler's state
    std::vector<int64_t> router_steps;  // each layer's router RNG position
};

// Expert parallelism: this process holds routed-expert shard `index` of `count` (experts
// [index E / count, (index + 1) E / count) of every MoE layer); {0, 1} = all of them.
struct ExpertShard {
    int64_t index = 0, count = 1;
};
// True for the names model_param_names gives the routed experts' stacked tensors
// (block_sparse_moe.experts.w1 / w3 / w2), the only tensors split between ranks.
bool is_expert_tensor(const std::string& name);

// <dir>/checkpoint.safetensors. `key` describes the run's shapes; loading checks it.
void save_checkpoint(const std::string& dir, const ModelConfig& c, const ModelParams& p,
                     const ModelParams& m, const ModelParams& v, const TrainState& s,
                     const std::string& key);
// Restores p, m, v and returns the state; throws naming the file and the mismatch when the
// checkpoint is missing, truncated, or from another configuration.
// The file always holds every expert (saving under mpirun gathers them first), so a checkpoint
// written by any number of ranks loads on any other: `shard` picks this rank's slice.
TrainState load_checkpoint(const std::string& dir, const ModelConfig& c, const ModelParams& p,
                           const ModelParams& m, const ModelParams& v, const std::string& key,
                           ExpertShard shard = {});

}  // namespace moe::cli
