// moe convert: a Mixtral-style model directory (config.json, model.safetensors, tokenizer.json)
// -> one GGUF file as llama.cpp's convert_hf_to_gguf.py writes Mixtral (include/moe/gguf_model.h);
// or, with --random SHAPE, a model of one of issue 5's shapes with random weights, generated
// tensor by tensor while the file is written (it need not fit in memory).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "commands.h"
#include "progress.h"
#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/gguf_model.h"
#include "moe/model_shapes.h"

namespace moe::cli {
namespace {

constexpr const char* kOp = "convert";

struct ConvertOptions {
    std::string model, random, out, outtype = "f32", name;
    uint64_t seed = 1;
    bool seed_given = false;
    int threads = 0;
};

void run_random(const ConvertOptions& o, GgmlType type) {
    const ModelShape* shape = find_model_shape(o.random);
    MOE_CHECK(shape, kOp, "unknown shape '" + o.random + "' for --random; known shapes: " + model_shape_names());
    if (o.threads > 0) set_num_threads(o.threads);
    GgufRandomOptions opts;
    opts.outtype = type;
    opts.seed = o.seed;
    opts.name = o.name.empty() ? std::string(shape->name) : o.name;
    opts.context_length = shape->context_length;
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    auto last = t0;
    opts.progress = [&](int64_t done, int64_t total) {
        const auto now = clock::now();
        if (done < total && now - last < std::chrono::milliseconds(250)) return;
        last = now;
        const double s = std::chrono::duration<double>(now - t0).count(), f = double(done) / double(total);
        std::fprintf(stderr, "\rmoe convert: %s %5.1f%%  %.2f / %.2f G values  %.0fs, %.0fs left   ",
                     progress_bar(f).c_str(), 100 * f, double(done) / 1e9, double(total) / 1e9, s,
                     done > 0 ? s / f - s : 0.0);
    };
    const std::vector<std::string> notes = gguf_write_random_model(o.out, model_shape_config(*shape), opts);
    std::fprintf(stderr, "\n");
    for (const std::string& note : notes) std::fprintf(stderr, "moe convert: note: %s\n", note.c_str());
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    std::printf("wrote %s (%s, random weights of %s, seed %llu, %.2f GB) in %.1f s with %d threads\n", o.out.c_str(),
                o.outtype.c_str(), shape->name, (unsigned long long)o.seed,
                double(std::filesystem::file_size(o.out)) / 1e9, s, get_num_threads());
}

void run_convert(const ConvertOptions& o) {
    static const std::map<std::string, GgmlType> kTypes = {{"f32", GgmlType::f32}, {"f16", GgmlType::f16},
                                                           {"bf16", GgmlType::bf16}, {"q8_0", GgmlType::q8_0},
                                                           {"q4_0", GgmlType::q4_0}};
    const GgmlType type = kTypes.at(o.outtype);  // CLI11 checked it
    MOE_CHECK(o.model.empty() || o.random.empty(), kOp,
              "give either -m MODEL_DIR (convert a model) or --random SHAPE (random weights), not both");
    MOE_CHECK(!o.model.empty() || !o.random.empty(), kOp,
              "give -m MODEL_DIR (a model directory to convert) or --random SHAPE (random weights; shapes: " +
                  model_shape_names() + ")");
    MOE_CHECK(!o.seed_given || !o.random.empty(), kOp, "--seed is for --random; a converted model keeps its weights");
    if (!o.random.empty()) return run_random(o, type);
    GgufConvertOptions opts;
    opts.outtype = type;
    opts.name = o.name;
    for (const std::string& note : gguf_convert_model_dir(o.model, o.out, opts))
        std::fprintf(stderr, "moe convert: note: %s\n", note.c_str());
    std::printf("wrote %s (%s)\n", o.out.c_str(), o.outtype.c_str());
}

}  // namespace

void register_convert(CLI::App& app) {
    auto o = std::make_shared<ConvertOptions>();
    CLI::App* cmd = app.add_subcommand("convert", "write a Mixtral-style model directory, or random weights of a shape, as GGUF (llama.cpp's layout)");
    cmd->add_option("-m,--model", o->model, "model directory (config.json, model.safetensors, tokenizer.json)");
    cmd->add_option("--random", o->random, "instead of -m: random weights of a shape (" + model_shape_names() + ")");
    cmd->add_option("-o,--out", o->out, "the GGUF file to write")->required();
    cmd->add_option("--outtype", o->outtype, "type of the weight matrices (norms and router stay f32)")
        ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0"}));
    cmd->add_option("--name", o->name, "general.name (default: the directory's or the shape's name)");
    cmd->add_option("--seed", o->seed, "seed of the --random weights (default 1)");
    cmd->add_option("-t,--threads", o->threads, "threads generating --random weights (default: all cores)")
        ->check(CLI::Range(0, 1024));
    cmd->callback([o, cmd] {
        o->seed_given = cmd->count("--seed") > 0;
        run_convert(*o);
    });
}

}  // namespace moe::cli
