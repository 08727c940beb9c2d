// moe train under mpirun (docs/distributed.md, "Training under mpirun"): expert parallelism for
// the routed experts, data parallelism for everything else. Every rank holds the replicated
// tensors whole and E / G experts of each MoE layer, G = the expert group size (all N ranks by
// default; with G < N the world is N / G replicas of G ranks, dist_split_groups); the global
// batch of B sequences is split into N slices of B / N, one per rank; the MoE layers' all-to-all
// (MpiExchange over the rank's expert group) brings the group's rows to the experts' owners.
// After backward the replicated gradients are averaged over all ranks; an expert's gradient
// already sums its group's tokens: it is summed over the replicas and rescaled.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "train_checkpoint.h"
#include "moe/dist.h"
#include "moe/model.h"
#include "moe/mpi_exchange.h"
#include "moe/optim.h"

namespace moe::cli {

using NamedTensors = std::vector<std::pair<std::string, TensorView>>;

class TrainDist {
public:
    // nullptr when this process was not started by an MPI launcher: one process, the plain
    // loop. Otherwise MPI is started (MPI_Init) and the object lives until the run ends. A build
    // without MPI started by `mpirun -np N`, N > 1, is refused (N copies would train alone and
    // write the same --out).
    static std::unique_ptr<TrainDist> start_if_launched();
    ~TrainDist();

    int rank() const { return rank_; }
    int ranks() const { return ranks_; }
    bool lead() const { return rank_ == 0; }  // prints, logs and writes the run's files

    // Checks that N divides the batch, that the expert group size G (0 = N) divides N and E, and
    // that the router works per rank; makes the groups and the exchange. Throws "[train] ..."
    // naming N, the value and the fix.
    void setup(const ModelConfig& c, int64_t batch, int expert_ranks);
    int64_t n_local_experts() const { return n_local_; }  // 0 for a model without MoE layers
    int expert_ranks() const { return group_; }           // G
    ExpertShard shard() const { return {rank_ % group_, group_}; }
    ExpertExchange* exchange() { return exchange_.get(); }
    // This rank's sequences of a global batch of B: [begin, begin + B / N).
    int64_t batch_begin(int64_t B) const { return B / ranks_ * rank_; }

    // After backward (and gradient accumulation) of each rank's local mean loss: replicated
    // gradients := their mean over ranks; expert shards := / N (the all-to-all already summed
    // every rank's tokens into them, each rank's loss weighted as if it were the whole batch).
    void reduce_grads(const NamedTensors& grads);
    // The gradient norm of the whole model: replicated tensors once, expert shards summed.
    double grad_norm(const std::vector<AdamWTensor>& opt, const std::vector<bool>& is_expert) const;
    // In place: the element-wise mean / sum over ranks.
    void mean(double* x, int64_t n) const;
    void sum(double* x, int64_t n) const;
    double mean(double x) const {
        mean(&x, 1);
        return x;
    }
    void broadcast(int64_t* x, int64_t n) const;  // rank 0's values everywhere
    void barrier() const { world_.barrier(); }

    // full (every expert, identical on every rank) -> local (this rank's experts).
    void slice(const NamedTensors& full, const NamedTensors& local) const;
    // local -> full on rank 0 (replicated tensors copied, expert shards gathered in rank order);
    // `full` is only written on rank 0 and may be empty elsewhere.
    void gather(const NamedTensors& local, const NamedTensors& full) const;

    // An error on this rank while the others may wait in a collective: print it with the rank
    // and end the whole job (MPI_Abort).
    [[noreturn]] void abort_with(const std::string& what) const;

private:
    TrainDist();
    dist::Session session_;
    dist::Comm world_;
    int rank_ = 0, ranks_ = 1, group_ = 1;
    int64_t n_local_ = 0;
    dist::ParallelGroups groups_;  // experts: this rank's G ranks; data: the ranks with its shard
    std::unique_ptr<MpiExchange> exchange_;
    std::vector<float> staging_;  // replicated gradients packed for one allreduce
};

}  // namespace moe::cli
