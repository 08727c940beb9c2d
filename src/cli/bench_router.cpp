// moe bench router: each router's forward and backward time against the expert compute of the
// same layer (T = 4096, D = 2048, E = 64, OLMoE-like experts F = 1024, K = 8), one JSON line
// per router. The router's share must stay small: it is the part that does not scale with F.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "layer_timing.h"
#include "router_options.h"
#include "moe/gemm.h"

namespace moe::cli {
namespace {

struct BenchRouterOptions {
    std::string kind = "all";
    int64_t T = 4096, D = 2048, E = 64, F = 1024, K = 8;
    int reps = 3, warmup = 1, threads = 0;
};

void bench_router_kind(const std::string& kind, const BenchRouterOptions& o) {
    MoeLayerConfig cfg;
    cfg.d_model = o.D;
    cfg.d_ff = o.F;
    cfg.n_experts = o.E;
    cfg.top_k = o.K;
    RouterCliOptions ro;
    ro.router = kind;
    if (kind == "sigmoid_bias") ro.n_group = 8, ro.topk_group = 4;  // DeepSeek-V3 style
    if (kind == "mod") cfg.n_experts = 1, cfg.top_k = 1;             // one block, skipped or not
    apply_router_options(ro, cfg);
    LayerTiming run = time_layer(cfg, o.T, true, o.reps, o.warmup);
    const MoePhaseTimes& ph = run.median_phases();
    const double router = ph.router, router_bwd = ph.bwd_router;
    const double experts = ph.experts, experts_bwd = ph.bwd_experts;
    nlohmann::json j;
    j["bench"] = "router";
    j["router"] = kind;
    j["threads"] = get_num_threads();
    j["T"] = o.T, j["D"] = o.D, j["E"] = o.E, j["F"] = o.F, j["K"] = cfg.top_k;
    j["assignments"] = run.assignments;
    j["router_fwd_ms"] = router * 1e3;
    j["router_bwd_ms"] = router_bwd * 1e3;
    j["experts_fwd_ms"] = experts * 1e3;
    j["experts_bwd_ms"] = experts_bwd * 1e3;
    j["router_over_experts_fwd"] = router / experts;
    j["router_over_experts"] = (router + router_bwd) / (experts + experts_bwd);
    j["load_max_over_mean"] = run.load.max_over_mean;
    j["dropped_fraction"] = run.load.dropped_fraction;
    j["unrouted_fraction"] = run.load.unrouted_fraction;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
}

}  // namespace

void register_bench_router(CLI::App& bench) {
    auto o = std::make_shared<BenchRouterOptions>();
    CLI::App* cmd = bench.add_subcommand("router", "time each router against the expert compute of its layer");
    cmd->add_option("--kind", o->kind, "a router (" + router_kind_list() + ", switch) or all");
    cmd->add_option("-T,--tokens", o->T, "tokens")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    cmd->add_option("--reps", o->reps, "timed repetitions (median reported)")->check(CLI::Range(1, 1000));
    cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->callback([o] {
        if (o->threads > 0) set_num_threads(o->threads);
        std::vector<std::string> kinds;
        if (o->kind == "all") {
            for (RouterKind k : {RouterKind::topk, RouterKind::gshard, RouterKind::noisy_topk,
                                 RouterKind::sigmoid_bias, RouterKind::expert_choice, RouterKind::hash,
                                 RouterKind::dense, RouterKind::top_p, RouterKind::sinkhorn,
                                 RouterKind::base, RouterKind::xmoe, RouterKind::dselect,
                                 RouterKind::mod})
                kinds.push_back(router_kind_name(k));
            kinds.push_back("switch");
        } else {
            kinds.push_back(o->kind);
        }
        for (const std::string& k : kinds) bench_router_kind(k, *o);
    });
}

}  // namespace moe::cli
