// moe bench layer: the MoE layer's forward (and backward) on the reference shapes.
// One JSON line per measurement: median of --reps timed runs after --warmup untimed ones.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_layer_dist.h"
#include "commands.h"
#include "layer_shapes.h"
#include "layer_timing.h"
#include "router_options.h"
#include "moe/cpu.h"
#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/moe_layer.h"

namespace moe::cli {
namespace {

struct BenchLayerOptions {
    std::string shape = "S1";
    bool backward = false;
    std::string dtype = "f32";
    int reps = 5;
    int warmup = 1;
    int threads = 0;
    int ranks = 1;       // > 1: expert parallelism over MPI, T tokens per rank
    int64_t tokens = 0;  // > 0: T instead of the shape's
    RouterCliOptions router;
};

void bench_one(const LayerShape& s, const BenchLayerOptions& o) {
    MoeLayerConfig cfg;
    cfg.d_model = s.D;
    cfg.d_ff = s.F;
    cfg.n_experts = s.E;
    cfg.top_k = s.K;
    cfg.n_shared = s.S;
    cfg.d_ff_shared = s.Fs;
    cfg.renormalize = true;
    cfg.dtype = o.dtype == "bf16" ? DType::bf16 : DType::f32;
    apply_router_options(o.router, cfg);

    std::unique_ptr<DistBench> dist;
    if (o.ranks > 1) dist = std::make_unique<DistBench>(o.ranks, cfg.n_experts);
    LayerTiming run = time_layer(cfg, s.T, o.backward, o.reps, o.warmup, dist ? &dist->timing() : nullptr);
    const double med = run.median();
    // Useful FLOPs: the kept assignments (T * K when dropless top-k) and the shared experts.
    const double A = double(run.assignments);
    double fwd_flops = A * 6.0 * s.D * s.F + double(s.T) * s.S * 6.0 * s.D * s.Fs;
    double flops = o.backward ? 3.0 * fwd_flops : fwd_flops;
    // What the step needs: weights, gradients, x / y / dy / dx, and the saved activations.
    double saved = 4.0 * (A * s.D * 2 + A * s.F * 2 + double(s.T) * s.E + double(s.S) * s.T * s.Fs * 2);
    double io = 4.0 * double(s.T) * s.D * (o.backward ? 4 : 2);
    // bf16 compute also needs the bf16 copies of the expert weights and the rows in bf16.
    if (cfg.dtype == DType::bf16) saved += run.param_bytes / 2 + 2.0 * (A + double(s.T)) * s.D;
    double needed = run.param_bytes + run.grad_bytes + saved + io;

    nlohmann::json j;
    j["bench"] = "layer";
    j["impl"] = "moe";
    j["shape"] = s.name;
    j["pass"] = o.backward ? "fwd+bwd" : "fwd";
    j["dtype"] = o.dtype;
    j["router"] = o.router.router;
    j["threads"] = get_num_threads();
    j["cpu_path"] = cpu_path_name(cpu_active_path());
    j["gemm"] = gemm_backend_name();
    j["T"] = s.T, j["D"] = s.D, j["F"] = s.F, j["E"] = s.E, j["K"] = cfg.top_k, j["S"] = s.S, j["Fs"] = s.Fs;
    j["reps"] = o.reps;
    j["median_ms"] = med * 1e3;
    j["min_ms"] = *std::min_element(run.seconds.begin(), run.seconds.end()) * 1e3;
    j["tokens_per_s"] = double(s.T) / med;
    j["gflops"] = flops / med * 1e-9;
    j["peak_rss_mb"] = peak_rss_mb();
    j["needed_mb"] = needed / 1048576.0;
    j["rss_over_needed"] = peak_rss_mb() / (needed / 1048576.0);
    j["load_max_over_mean"] = run.load.max_over_mean;
    j["aux_loss"] = run.losses.aux;
    const MoePhaseTimes& ph = run.median_phases();
    nlohmann::json split = {{"router", ph.router * 1e3}, {"dispatch", ph.dispatch * 1e3},
                            {"experts", ph.experts * 1e3}, {"combine", ph.combine * 1e3},
                            {"shared", ph.shared * 1e3}};
    if (o.backward) {
        split["bwd_combine"] = ph.bwd_combine * 1e3;
        split["bwd_experts"] = ph.bwd_experts * 1e3;
        split["bwd_scatter"] = ph.bwd_scatter * 1e3;
        split["bwd_router"] = ph.bwd_router * 1e3;
        split["bwd_shared"] = ph.bwd_shared * 1e3;
    }
    j["phase_ms"] = split;
    if (dist) dist->report(j, run, cfg, s.T, o.backward);
    if (dist && dist->rank() != 0) return;  // one line per measurement: rank 0's
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
}

}  // namespace

void register_bench_layer(CLI::App& bench) {
    auto o = std::make_shared<BenchLayerOptions>();
    CLI::App* cmd = bench.add_subcommand("layer", "time the MoE layer (forward, or forward+backward)");
    cmd->add_option("--shape", o->shape, "S1 mixtral-mini | S2 olmoe-layer | S3 deepseek-style")
        ->check(CLI::IsMember({"S1", "S2", "S3"}));
    cmd->add_flag("--backward", o->backward, "time forward + backward");
    cmd->add_option("--dtype", o->dtype, "compute dtype")->check(CLI::IsMember({"f32", "bf16"}));
    cmd->add_option("--reps", o->reps, "timed repetitions (median reported)")->check(CLI::Range(1, 1000));
    cmd->add_option("--warmup", o->warmup, "untimed repetitions first")->check(CLI::Range(0, 100));
    cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->add_option("--tokens", o->tokens, "T, tokens (per rank), instead of the shape's")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
    cmd->add_option("--ranks", o->ranks, "expert-parallel ranks (launch: mpirun -np N); T tokens per rank")
        ->check(CLI::Range(1, 65536));
    add_router_options(cmd, o->router);
    cmd->callback([o] {
        if (o->threads > 0) set_num_threads(o->threads);
        LayerShape s = layer_shape(o->shape);
        if (o->tokens > 0) s.T = o->tokens;
        bench_one(s, *o);
    });
}

}  // namespace moe::cli
