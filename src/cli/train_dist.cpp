#include "train_dist.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "moe/error.h"

namespace moe::cli {

std::unique_ptr<TrainDist> TrainDist::start_if_launched() {
    const int launched = dist::launcher_world_size();
    if (launched == 0) return nullptr;
    if (!dist::mpi_built()) {
        MOE_CHECK(launched == 1, "train",
                  "started by mpirun with " + std::to_string(launched) +
                      " processes, but this moe was built with -DMOE_MPI=OFF: each would train alone on the "
                      "same --out. Install OpenMPI (scripts/deps.sh) and rebuild, or run moe train without mpirun");
        return nullptr;
    }
    return std::unique_ptr<TrainDist>(new TrainDist());
}

TrainDist::TrainDist() : session_(nullptr, nullptr), world_(dist::Comm::world()) {
    rank_ = world_.rank();
    ranks_ = world_.size();
}

TrainDist::~TrainDist() = default;

void TrainDist::setup(const ModelConfig& c, int64_t batch, int expert_ranks) {
    const std::string N = std::to_string(ranks_);
    MOE_CHECK(batch % ranks_ == 0, "train",
              "--batch " + std::to_string(batch) + " does not split over " + N + " ranks (mpirun -np " + N +
                  "): each rank trains on batch / N sequences; pass a multiple of " + N);
    group_ = expert_ranks > 0 ? expert_ranks : ranks_;
    MOE_CHECK(ranks_ % group_ == 0, "train",
              "--expert-ranks " + std::to_string(group_) + " does not divide the " + N + " ranks (mpirun -np " + N +
                  "): the ranks form N / G copies of the experts, G ranks each");
    groups_ = dist::dist_split_groups(world_, group_);
    bool any_moe = false;
    for (int64_t l = 0; l < c.num_layers; ++l) any_moe = any_moe || c.is_moe_layer(l);
    if (!any_moe) return;  // a dense model: pure data parallelism, no exchange
    const int64_t E = c.moe.n_experts;
    const std::string G = std::to_string(group_);
    MOE_CHECK(E % group_ == 0, "train",
              "--num-local-experts " + std::to_string(E) + " does not split over " + G + " ranks (" +
                  (expert_ranks > 0 ? "--expert-ranks " + G : "mpirun -np " + N) +
                  "): every rank holds E / " + G + " experts; use a number of ranks that divides " + std::to_string(E) +
                  (expert_ranks > 0 ? "" : ", or --expert-ranks G with G dividing both"));
    // Soft MoE mixes every token of the batch into each slot: not per rank (the layer refuses an
    // exchange that is not in place).
    MOE_CHECK(c.moe.router.kind != RouterKind::soft_moe, "train",
              std::string("--router ") + router_kind_name(c.moe.router.kind) +
                  " does not train under mpirun yet (docs/distributed.md, \"Training under mpirun\"); run it in one "
                  "process");
    n_local_ = E / group_;
    exchange_ = std::make_unique<MpiExchange>(groups_.experts, E);
}

void TrainDist::reduce_grads(const NamedTensors& grads) {
    const float inv = 1.0f / float(ranks_);
    int64_t n = 0;
    for (const auto& [name, t] : grads)
        if (!is_expert_tensor(name)) n += t.numel();
    staging_.resize(size_t(n));
    // One allreduce of every replicated gradient packed together: a model has hundreds of small
    // tensors, and each MPI call costs a latency.
    int64_t at = 0;
    for (const auto& [name, t] : grads)
        if (!is_expert_tensor(name)) {
            std::memcpy(staging_.data() + at, t.f32(), size_t(t.numel()) * sizeof(float));
            at += t.numel();
        }
    world_.allreduce_sum(staging_.data(), n);
    // Several copies of the experts (G < N): each copy's gradient sums its own group's tokens.
    if (group_ < ranks_)
        for (const auto& [name, t] : grads)
            if (is_expert_tensor(name)) groups_.data.allreduce_sum(t.f32(), t.numel());
    at = 0;
    for (const auto& [name, t] : grads) {
        float* g = t.f32();
        if (is_expert_tensor(name)) {
            for (int64_t i = 0; i < t.numel(); ++i) g[i] *= inv;
        } else {
            for (int64_t i = 0; i < t.numel(); ++i) g[i] = staging_[size_t(at + i)] * inv;
            at += t.numel();
        }
    }
}

double TrainDist::grad_norm(const std::vector<AdamWTensor>& opt, const std::vector<bool>& is_expert) const {
    // [0] the replicated tensors' squares (the same on every rank after reduce_grads: counted
    // once), [1] this rank's expert shards' (summed over its expert group: the other copies
    // hold the same gradients).
    double ss[2] = {0, 0};
    for (size_t i = 0; i < opt.size(); ++i) {
        double s = 0;
        const float* g = opt[i].grad;
#pragma omp parallel for schedule(static) reduction(+ : s)
        for (int64_t j = 0; j < opt[i].n; ++j) s += double(g[j]) * g[j];
        ss[is_expert[i] ? 1 : 0] += s;
    }
    groups_.experts.allreduce_sum(&ss[1], 1);
    return std::sqrt(ss[0] + ss[1]);
}

void TrainDist::sum(double* x, int64_t n) const { world_.allreduce_sum(x, n); }

void TrainDist::mean(double* x, int64_t n) const {
    world_.allreduce_sum(x, n);
    for (int64_t i = 0; i < n; ++i) x[i] /= double(ranks_);
}

void TrainDist::broadcast(int64_t* x, int64_t n) const { world_.broadcast(x, n * int64_t(sizeof(int64_t)), 0); }

void TrainDist::slice(const NamedTensors& full, const NamedTensors& local) const {
    MOE_CHECK(full.size() == local.size(), "train", "internal: the full and the sharded model differ in tensors");
    for (size_t i = 0; i < full.size(); ++i) {
        const TensorView &f = full[i].second, &l = local[i].second;
        const int64_t parts = is_expert_tensor(local[i].first) ? group_ : 1;
        MOE_CHECK(full[i].first == local[i].first && f.numel() == l.numel() * parts, "train",
                  "internal: " + local[i].first + " is not 1/" + std::to_string(parts) + " of " + full[i].first);
        const int64_t at = parts > 1 ? shard().index * l.numel() : 0;
        std::memcpy(l.f32(), f.f32() + at, size_t(l.numel()) * sizeof(float));
    }
}

void TrainDist::gather(const NamedTensors& local, const NamedTensors& full) const {
    MOE_CHECK(!lead() || full.size() == local.size(), "train", "internal: the full and the sharded model differ");
    for (size_t i = 0; i < local.size(); ++i) {
        const TensorView& l = local[i].second;
        if (is_expert_tensor(local[i].first)) {
            // Position p of a group holds rows [p E/G, (p+1) E/G) of the stacked tensor:
            // MPI_Gather's layout exactly. The first group (world ranks 0..G-1) is gathered; the
            // other copies are the same.
            if (rank_ < group_) groups_.experts.gather(l.f32(), l.numel(), lead() ? full[i].second.f32() : nullptr, 0);
        } else if (lead()) {
            std::memcpy(full[i].second.f32(), l.f32(), size_t(l.numel()) * sizeof(float));
        }
    }
}

void TrainDist::abort_with(const std::string& what) const {
    std::fprintf(stderr, "\nmoe: error on rank %d of %d: %s; stopping every rank (MPI_Abort)\n", rank_, ranks_,
                 what.c_str());
    std::fflush(stderr);
    world_.abort(1);
}

}  // namespace moe::cli
