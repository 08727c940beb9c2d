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
void write_prompt_logits(const std::string& path, const ModelConfig& c, const InferWeights& w,
                         std::vector<int32_t> ids) {
    MOE_CHECK(!ids.empty(), "generate", "--logits-out needs a non-empty prompt");
    const int64_t T = int64_t(ids.size());
    InferSession s(c, w, T);
    const float* logits = s.feed(ids.data(), T, true);
    TensorView tokens{ids.data(), DType::i32, Shape{T}};
    TensorView lv{const_cast<float*>(logits), DType::f32, Shape{T, c.vocab_size}};
    safetensors_write(path, {{"tokens", tokens}, {"logits", lv}}, {});
}

void run_generate(const GenerateOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    const auto m = load_model(o.model, "generate");
    const ModelConfig& c = m->c;
    if (!o.logits_out.empty()) write_prompt_logits(o.logits_out, c, m->w, m->tok.encode(o.prompt));
    Rng rng(o.seed);
    const int64_t ctx = o.ctx > 0 ? o.ctx : m->info.max_position_embeddings;
    std::printf("%s\n", sample_text(c, m->w, m->tok, o.prompt, o.n, o.temperature, ctx, rng).c_str());
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
