// moe bench alltoall: the expert exchange alone, no compute, for the communication model of
// docs/distributed.md. Every rank spreads `rows` assignments evenly over the E experts, so
// (N - 1) / N of them leave the rank. One JSON line per size: medians over --reps of the
// forward dispatch (to_experts: counts + rows) and combine (from_experts), each timed from a
// barrier so that no rank's lateness is counted as communication.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_layer_dist.h"
#include "commands.h"
#include "moe/error.h"
#include "moe/rng.h"

namespace moe::cli {
namespace {

struct BenchAlltoallOptions {
    int ranks = 1;
    int64_t D = 1024, E = 8;
    std::vector<int64_t> rows = {16, 64, 256, 1024, 4096, 8192};
    int reps = 9, warmup = 2;
};

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

void bench_alltoall(const BenchAlltoallOptions& o) {
    DistBench dist(o.ranks, o.E);
    MpiExchange& ex = *dist.timing().exchange;
    ex.set_measure_wait(false);  // the barriers are here, outside the timed calls
    const dist::Comm& comm = dist.timing().comm;
    const int N = comm.size();
    for (int64_t A : o.rows) {
        RoutePlan plan;  // only what the exchange reads: E, the CSR offsets and A
        plan.n_tokens = A, plan.n_experts = o.E, plan.top_k = 1;
        plan.expert_offsets.resize(size_t(o.E + 1));
        for (int64_t e = 0; e <= o.E; ++e) plan.expert_offsets[size_t(e)] = A * e / o.E;
        plan.token_index.assign(size_t(A), 0);
        std::vector<float> rows(size_t(A * o.D)), back(size_t(A * o.D));
        Rng(7).fill_normal(rows.data(), int64_t(rows.size()), 0, 1);
        std::vector<double> to_s, from_s;
        std::vector<int64_t> offsets;
        for (int r = 0; r < o.warmup + o.reps; ++r) {
            comm.barrier();
            auto t0 = std::chrono::steady_clock::now();
            float* local = ex.to_experts(plan, rows.data(), o.D, offsets);
            auto t1 = std::chrono::steady_clock::now();
            comm.barrier();
            auto t2 = std::chrono::steady_clock::now();
            ex.from_experts(plan, local, o.D, back.data());
            auto t3 = std::chrono::steady_clock::now();
            if (r < o.warmup) continue;
            to_s.push_back(std::chrono::duration<double>(t1 - t0).count());
            from_s.push_back(std::chrono::duration<double>(t3 - t2).count());
        }
        MOE_CHECK(back == rows, "bench alltoall", "the rows did not come back unchanged");
        // The slowest rank's median is the group's.
        std::vector<double> med(2 * size_t(N), 0.0);
        med[size_t(comm.rank())] = median_of(to_s);
        med[size_t(N + comm.rank())] = median_of(from_s);
        comm.allreduce_sum(med.data(), int64_t(med.size()));
        if (comm.rank() != 0) continue;
        const int64_t remote = A - (plan.expert_offsets[size_t((comm.rank() + 1) * ex.n_local_experts())] -
                                    plan.expert_offsets[size_t(comm.rank() * ex.n_local_experts())]);
        nlohmann::json j;
        j["bench"] = "alltoall";
        j["ranks"] = N;
        j["D"] = o.D, j["E"] = o.E;
        j["rows_per_rank"] = A;
        j["bytes_remote_rank"] = double(remote) * double(o.D) * sizeof(float);
        j["reps"] = o.reps;
        j["dispatch_ms"] = *std::max_element(med.begin(), med.begin() + N) * 1e3;
        j["combine_ms"] = *std::max_element(med.begin() + N, med.end()) * 1e3;
        std::printf("%s\n", j.dump().c_str());
        std::fflush(stdout);
    }
}

}  // namespace

void register_bench_alltoall(CLI::App& bench) {
    auto o = std::make_shared<BenchAlltoallOptions>();
    CLI::App* cmd = bench.add_subcommand("alltoall", "time the expert exchange alone (mpirun -np N ... --ranks N)");
    cmd->add_option("--ranks", o->ranks, "MPI ranks (must equal mpirun -np)")->check(CLI::Range(1, 65536));
    cmd->add_option("-D", o->D, "row width (floats)")->check(CLI::Range(1, 1 << 20));
    cmd->add_option("-E", o->E, "experts (divisible by --ranks)")->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--rows", o->rows, "assignments per rank, one measurement each");
    cmd->add_option("--reps", o->reps, "timed repetitions (median reported)")->check(CLI::Range(1, 1000));
    cmd->add_option("--warmup", o->warmup, "untimed repetitions first")->check(CLI::Range(0, 100));
    cmd->callback([o] { bench_alltoall(*o); });
}

}  // namespace moe::cli
