// moe generate: samples from a model directory (moe train --out, moe upcycle --out: config.json,
// tokenizer.json, model.safetensors or checkpoint.safetensors) or a Mixtral GGUF with tokenizer
// metadata (moe convert), with llama.cpp-style flags.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "commands.h"
#include "model_loader.h"
#include "sampling.h"
#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/safetensors.h"

namespace moe::cli {
namespace {

struct GenerateOptions {
    std::string model = "runs/kjv", prompt = "And God said";
    int64_t n = 100, ctx = 0;
    double temperature = 0.8;
    uint64_t seed = 1;
    int threads = 0;
    std::string logits_out;
};

// The prompt's tokens and the logits at every position, for comparisons with other engines
// (tools/check_hf_mixtral.py).
void write_prompt_logits(const std::string& path, const ModelConfig& c, const ModelParams& p,
                         std::vector<int32_t> ids) {
    MOE_CHECK(!ids.empty(), "generate", "--logits-out needs a non-empty prompt");
    const int64_t T = int64_t(ids.size());
    std::vector<int32_t> targets(ids.size(), -100);
    ModelCache cache;
    model_forward(cache, c, p, ids.data(), targets.data(), 1, T, 0.0f, 0.0f);
    TensorView tokens{ids.data(), DType::i32, Shape{T}};
    safetensors_write(path, {{"tokens", tokens}, {"logits", cache.logits.view()}}, {});
}

void run_generate(const GenerateOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    const auto m = load_model(o.model, "generate");
    const ModelConfig& c = m->c;
    const ModelParams& p = m->p;
    if (!o.logits_out.empty()) write_prompt_logits(o.logits_out, c, p, m->tok.encode(o.prompt));
    Rng rng(o.seed);
    const int64_t ctx = o.ctx > 0 ? o.ctx : m->info.max_position_embeddings;
    std::printf("%s\n", sample_text(c, p, m->tok, o.prompt, o.n, o.temperature, ctx, rng).c_str());
}

}  // namespace

void register_generate(CLI::App& app) {
    auto o = std::make_shared<GenerateOptions>();
    CLI::App* cmd = app.add_subcommand("generate", "sample text from a model trained by moe train");
    cmd->add_option("-m,--model", o->model, "the run directory of moe train (--out), or a .gguf file");
    cmd->add_option("-p,--prompt", o->prompt, "prompt");
    cmd->add_option("-n,--n-predict", o->n, "tokens to generate")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_option("-c,--ctx-size", o->ctx, "context window (default: the training context)")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_option("--temp", o->temperature, "temperature (0 = greedy)")->check(CLI::Range(0.0, 100.0));
    cmd->add_option("-s,--seed", o->seed, "sampling seed");
    cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->add_option("--logits-out", o->logits_out, "also write the prompt's tokens and logits (T, V) to this safetensors file");
    cmd->callback([o] { run_generate(*o); });
}

}  // namespace moe::cli
