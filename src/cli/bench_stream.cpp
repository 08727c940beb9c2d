// moe bench stream: memory bandwidth as STREAM measures it (include/moe/stream.h), one JSON line.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "moe/error.h"
#include "moe/stream.h"

namespace moe::cli {
namespace {

struct BenchStreamOptions {
    int threads = 0, reps = 10;
    int64_t size_mib = 256;
};

void bench_stream(const BenchStreamOptions& o) {
    const StreamResult r = stream_bandwidth(o.threads, o.size_mib << 20, o.reps);
    nlohmann::ordered_json j = {{"bench", "stream"}, {"dtype", "f64"}, {"threads", r.threads},
                                {"array_MiB", double(r.bytes_per_array) / 1048576.0}, {"arrays", 3},
                                {"reps", r.reps}};
    const std::pair<const char*, const StreamKernel*> kernels[] = {
        {"copy", &r.copy}, {"scale", &r.scale}, {"add", &r.add}, {"triad", &r.triad}};
    for (const auto& [name, k] : kernels) {
        j[std::string(name) + "_GBps_best"] = k->best_GBps;
        j[std::string(name) + "_GBps_median"] = k->median_GBps;
    }
    j["valid"] = r.valid;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    MOE_CHECK(r.valid, "bench stream", "the arrays do not hold the values the kernels compute (STREAM's check failed)");
}

}  // namespace

void register_bench_stream(CLI::App& bench) {
    auto o = std::make_shared<BenchStreamOptions>();
    CLI::App* cmd = bench.add_subcommand(
        "stream", "memory bandwidth, STREAM's copy / scale / add / triad on doubles (GB/s, best and median)");
    cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->add_option("--size-mib", o->size_mib, "MiB per array (3 arrays); well above the last-level cache")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    cmd->add_option("-r,--reps", o->reps, "timed repetitions after one warm-up")->check(CLI::Range(1, 200));
    cmd->callback([o] { bench_stream(*o); });
}

}  // namespace moe::cli
