// moe bench run: prompt processing (pp) and generation (tg) speed of the KV-cached decoder, as
// llama-bench measures them, on a model directory or on a random-weight shape of issue 5.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "layer_timing.h"
#include "model_loader.h"
#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/infer.h"

namespace moe::cli {
namespace {

struct BenchRunOptions {
    std::string model, shape = "mixtral-mini";
    int64_t pp = 512, tg = 128;
    int reps = 3, threads = 0;
};

ModelConfig shape_config(const std::string& shape) {
    ModelConfig c;
    c.vocab_size = 32000;
    if (shape == "mixtral-mini") {
        c.num_layers = 8;
        c.attn = {1024, 16, 4, 0, 1e6};
        c.moe.d_ff = 2816, c.moe.n_experts = 8, c.moe.top_k = 2;
    } else {  // olmoe-shape
        c.num_layers = 16;
        c.attn = {2048, 16, 16, 0, 1e4};
        c.moe.d_ff = 1024, c.moe.n_experts = 64, c.moe.top_k = 8;
    }
    c.moe.d_model = c.attn.d_model;
    c.moe.router.training = false;
    return c;
}

// Bytes of weights one decode token reads: attention, norms, router, K experts, LM head
// (embedding: one row).
double active_bytes(const ModelConfig& c) {
    const double D = double(c.hidden()), hd = double(c.attn.hd());
    double n = double(c.vocab_size) * D + D + D;
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const MoeLayerConfig f = c.ffn(l);
        n += 2 * D + D * hd * double(2 * c.attn.n_heads + 2 * c.attn.n_kv_heads) +
             (c.is_moe_layer(l) ? double(f.n_experts) * D : 0) + double(f.top_k) * 3 * D * double(f.d_ff) +
             double(f.n_shared) * 3 * D * double(f.d_ff_shared);
    }
    return 4 * n;
}

void bench_run(const BenchRunOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    const int64_t ctx = o.pp + o.tg;
    std::unique_ptr<LoadedModel> loaded;
    ModelConfig c;
    Arena arena;
    ModelParams p;
    if (!o.model.empty()) {  // weights dequantized to f32 at load (a .gguf too)
        loaded = load_model(o.model, "bench run", false);
        c = loaded->c;
        p = loaded->p;
    } else {
        c = shape_config(o.shape);
        model_validate(c);
        ModelSlots slots = model_params_reserve(arena, c);
        const double need = double(arena.bytes()) / 1e9;
        MOE_CHECK(need < 20, "bench run",
                  o.shape + " needs " + std::to_string(need) + " GB of f32 weights; it runs once quantized weights "
                            "stay quantized (issue 5), or pass a smaller model with -m");
        arena.allocate();
        p = model_params_point(arena, slots, c);
        model_params_init(p, c, 1);
    }
    const double gb = double((loaded ? loaded->arena : arena).bytes()) / 1e9;
    std::vector<int32_t> prompt(size_t(o.pp));
    for (int64_t i = 0; i < o.pp; ++i) prompt[size_t(i)] = int32_t((i * 7919) % c.vocab_size);
    std::vector<double> pp_s, tg_s;
    using clock = std::chrono::steady_clock;
    for (int r = 0; r <= o.reps; ++r) {  // repetition 0 warms up
        InferSession s(c, p, ctx);
        auto t0 = clock::now();
        const float* l = s.feed(prompt.data(), o.pp);
        const double a = std::chrono::duration<double>(clock::now() - t0).count();
        t0 = clock::now();
        for (int64_t i = 0; i < o.tg; ++i) {
            const int32_t next = int32_t(std::max_element(l, l + c.vocab_size) - l);
            l = s.feed(&next, 1);
        }
        const double b = std::chrono::duration<double>(clock::now() - t0).count();
        if (r > 0) pp_s.push_back(a), tg_s.push_back(b);
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    const double pp = double(o.pp) / median(pp_s), tg = double(o.tg) / median(tg_s);
    nlohmann::ordered_json j = {{"bench", "run"}, {"model", o.model.empty() ? o.shape : o.model}, {"dtype", "f32"},
                                {"threads", get_num_threads()}, {"pp_tokens", o.pp}, {"pp_tokens_per_s", pp},
                                {"tg_tokens", o.tg}, {"tg_tokens_per_s", tg},
                                {"active_weight_bytes_per_token", active_bytes(c)},
                                {"tg_weight_GB_per_s", active_bytes(c) * tg / 1e9}, {"weights_GB", gb},
                                {"peak_rss_mb", peak_rss_mb()}, {"reps", o.reps}};
    std::printf("%s\n", j.dump().c_str());
}

}  // namespace

void register_bench_run(CLI::App& bench) {
    auto o = std::make_shared<BenchRunOptions>();
    CLI::App* cmd = bench.add_subcommand("run", "prompt processing and generation speed (llama-bench's pp / tg)");
    cmd->add_option("-m,--model", o->model, "model directory (default: random weights of --shape)");
    cmd->add_option("--shape", o->shape, "mixtral-mini | olmoe-shape (issue 5's shapes, random weights)")
        ->check(CLI::IsMember({"mixtral-mini", "olmoe-shape"}));
    cmd->add_option("-p,--n-prompt", o->pp, "prompt tokens")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    cmd->add_option("-n,--n-gen", o->tg, "generated tokens")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    cmd->add_option("-r,--reps", o->reps, "timed repetitions (median)")->check(CLI::Range(1, 100));
    cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->callback([o] { bench_run(*o); });
}

}  // namespace moe::cli
