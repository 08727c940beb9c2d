// moe bench run: prompt processing (pp) and generation (tg) speed of the KV-cached decoder, as
// llama-bench measures them, on a model directory or on a random-weight shape of issue 5.
#include <algorithm>
#include <chrono>
#include <filesystem>
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
#include "moe/model_shapes.h"
#include "moe/quant.h"
#include "moe/stream.h"

namespace moe::cli {
namespace {

struct BenchRunOptions {
    std::string model, shape = "mixtral-mini";
    int64_t pp = 512, tg = 128;
    int reps = 3, threads = 0;
    bool stream = true, repack = true;
};

// The type most of the weights are stored in: the last layer's experts (DeepSeek's first layers
// are dense; F32 for a directory).
std::string weights_type(const InferWeights& w) {
    if (w.layers.empty()) return "F32";
    const MoeLayerParams& f = w.layers.back().ffn;
    return f.quant.active() ? ggml_type_name(f.quant.w1.type) : "F32";
}

void bench_run(const BenchRunOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    const int64_t ctx = o.pp + o.tg;
    std::unique_ptr<LoadedModel> loaded;
    ModelConfig c;
    Arena arena;
    InferWeights w;
    double gb = 0;
    if (!o.model.empty()) {  // a directory (f32 arena) or a GGUF (mapped, stored types)
        loaded = load_model(o.model, "bench run", false, o.repack);
        c = loaded->c;
        w = loaded->w;
        double bytes = double(loaded->arena.bytes());
        if (loaded->format == "gguf") {
            bytes = double(std::filesystem::file_size(o.model));
        } else if (loaded->format == "directory (mapped)") {  // the weight files, mapped
            bytes = 0;
            for (const auto& e : std::filesystem::directory_iterator(o.model)) {
                const std::string n = e.path().filename().string();
                if (n.rfind("model", 0) == 0 && e.path().extension() == ".safetensors") bytes += double(e.file_size());
            }
        }
        gb = bytes / 1e9;
    } else {
        c = model_shape_config(*find_model_shape(o.shape));
        model_validate(c);
        ModelSlots slots = model_params_reserve(arena, c);
        const double need = double(arena.bytes()) / 1e9;
        MOE_CHECK(need < 20, "bench run",
                  o.shape + " needs " + std::to_string(need) + " GB of f32 weights; write a quantized GGUF of it "
                            "(moe convert --random) and pass it with -m");
        arena.allocate();
        const ModelParams p = model_params_point(arena, slots, c);
        model_params_init(p, c, 1);
        w = infer_weights(p, c);
        gb = double(arena.bytes()) / 1e9;
    }
    const double active = infer_active_bytes(w, c);
    std::vector<int32_t> prompt(size_t(o.pp));
    for (int64_t i = 0; i < o.pp; ++i) prompt[size_t(i)] = int32_t((i * 7919) % c.vocab_size);
    std::vector<double> pp_s, tg_s;
    using clock = std::chrono::steady_clock;
    int64_t kv_bytes = 0;
    for (int r = 0; r <= o.reps; ++r) {  // repetition 0 warms up
        InferSession s(c, w, ctx);
        kv_bytes = s.kv_cache_bytes();
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
    const double rss = peak_rss_mb();  // before STREAM's arrays
    // The memory bandwidth of this run (STREAM triad, 3 x 256 MiB of doubles) and the decode rate
    // against it: active weight bytes per token x tokens/s over triad GB/s.
    const StreamResult st = o.stream ? stream_bandwidth(get_num_threads(), int64_t(256) << 20, 5) : StreamResult{};
    nlohmann::ordered_json j = {{"bench", "run"}, {"model", o.model.empty() ? o.shape : o.model}, {"weights_type", weights_type(w)},
                                {"threads", get_num_threads()}, {"pp_tokens", o.pp}, {"pp_tokens_per_s", pp},
                                {"tg_tokens", o.tg}, {"tg_tokens_per_s", tg},
                                {"active_weight_bytes_per_token", active},
                                {"tg_weight_GB_per_s", active * tg / 1e9}, {"weights_GB", gb},
                                {"kv_cache_MB", double(kv_bytes) / 1e6}, {"peak_rss_mb", rss},
                                // the bar: resident memory <= 1.1 x (weights + KV cache)
                                {"rss_over_weights_plus_kv", rss * 1048576.0 / (gb * 1e9 + double(kv_bytes))},
                                {"packed_MB", loaded ? double(loaded->packed_bytes) / 1e6 : 0.0}, {"reps", o.reps}};
    if (o.stream) {
        j["stream_triad_GB_per_s"] = st.triad.best_GBps;
        j["tg_over_triad"] = active * tg / 1e9 / st.triad.best_GBps;
    }
    std::printf("%s\n", j.dump().c_str());
}

}  // namespace

void register_bench_run(CLI::App& bench) {
    auto o = std::make_shared<BenchRunOptions>();
    CLI::App* cmd = bench.add_subcommand("run", "prompt processing and generation speed (llama-bench's pp / tg)");
    cmd->add_option("-m,--model", o->model, "model directory or .gguf (default: random f32 weights of --shape)");
    cmd->add_option("--shape", o->shape, "mixtral-mini | olmoe-shape (issue 5's shapes, random weights)")
        ->check(CLI::IsMember({"mixtral-mini", "olmoe-shape", "tiny"}));
    cmd->add_option("-p,--n-prompt", o->pp, "prompt tokens")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    cmd->add_option("-n,--n-gen", o->tg, "generated tokens")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    cmd->add_option("-r,--reps", o->reps, "timed repetitions (median)")->check(CLI::Range(1, 100));
    cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->add_flag("!--no-repack", o->repack, "use Q4_0 / Q8_0 weights as stored, not packed by 8 rows for the faster kernels");
    cmd->add_flag("!--no-stream", o->stream, "skip the STREAM triad measurement (memory bandwidth, about 3 s and 768 MiB)");
    cmd->callback([o] { bench_run(*o); });
}

}  // namespace moe::cli
