#include "bench_layer_dist.h"

#include <string>
#include <vector>

#include "moe/error.h"

namespace moe::cli {

DistBench::DistBench(int ranks, int64_t n_experts) : session_(nullptr, nullptr) {
    const std::string launch = "mpirun -np " + std::to_string(ranks) + " moe bench layer --ranks " +
                               std::to_string(ranks);
    MOE_CHECK(dist::mpi_built(), "bench layer",
              "--ranks " + std::to_string(ranks) + " needs MPI, but this moe was built with -DMOE_MPI=OFF; " +
                  "install OpenMPI (scripts/deps.sh), rebuild, and launch with " + launch);
    timing_.comm = dist::Comm::world();
    MOE_CHECK(timing_.comm.size() == ranks, "bench layer",
              "--ranks " + std::to_string(ranks) + " but MPI started " + std::to_string(timing_.comm.size()) +
                  " process(es); launch with " + launch);
    exchange_ = std::make_unique<MpiExchange>(timing_.comm, n_experts);
    exchange_->set_measure_wait(true);
    timing_.exchange = exchange_.get();
}

void DistBench::report(nlohmann::json& j, const LayerTiming& run, const MoeLayerConfig& cfg, int64_t T,
                       bool backward) const {
    const dist::Comm& comm = timing_.comm;
    const int N = comm.size();
    const double row_bytes = double(cfg.d_model) * sizeof(float);
    const ExchangeTraffic& tr = run.traffic[run.median_index()];
    const char* names[4] = {"fwd_dispatch", "fwd_combine", "bwd_dispatch", "bwd_combine"};
    nlohmann::json a2a, regroup, wait;
    double comm_s = 0, regroup_s = 0, wait_s = 0, sent = double(tr.count_bytes);
    for (int p = 0; p < (backward ? 4 : 2); ++p) {
        a2a[names[p]] = tr.seconds_alltoall[p] * 1e3;
        regroup[names[p]] = tr.seconds_regroup[p] * 1e3;
        wait[names[p]] = tr.seconds_wait[p] * 1e3;
        comm_s += tr.seconds_alltoall[p];
        regroup_s += tr.seconds_regroup[p];
        wait_s += tr.seconds_wait[p];
        sent += double(tr.rows_remote[p]) * row_bytes;
    }
    // The minimum: each of this rank's kept assignments whose expert lives elsewhere goes out
    // and comes back once (twice more in backward); one whose expert is here moves nothing.
    const double passes = backward ? 4 : 2;
    const double min_rank = passes * double(run.assignments - run.local_assignments) * row_bytes;
    // Every rank's median and traffic, summed: slot r holds rank r's median.
    std::vector<double> all(size_t(N) + 2, 0.0);
    all[size_t(comm.rank())] = run.median();
    all[size_t(N)] = sent;
    all[size_t(N) + 1] = min_rank;
    comm.allreduce_sum(all.data(), int64_t(all.size()));

    j["ranks"] = N;
    j["experts_per_rank"] = cfg.n_experts / N;
    j["tokens_per_rank"] = T;
    std::vector<double> medians_ms(all.begin(), all.begin() + N);
    for (double& v : medians_ms) v *= 1e3;
    j["median_ms_per_rank"] = medians_ms;
    j["a2a_ms"] = a2a;    // inside MPI: counts + rows, after the barrier
    j["wait_ms"] = wait;  // in the barrier before: the other ranks' compute, load imbalance
    j["regroup_ms"] = regroup;
    j["comm_ms"] = comm_s * 1e3;
    j["comm_fraction"] = comm_s / run.median();
    j["regroup_fraction"] = regroup_s / run.median();
    j["wait_fraction"] = wait_s / run.median();
    j["bytes_sent_rank"] = sent;
    j["bytes_sent_total"] = all[size_t(N)];
    j["bytes_min_rank"] = min_rank;
    j["bytes_min_total"] = all[size_t(N) + 1];
    // What uniform routing would need: (N - 1) / N of the T K rows leave the rank.
    j["bytes_uniform_rank"] = passes * double(T * cfg.top_k) * double(N - 1) / N * row_bytes;
}

}  // namespace moe::cli
