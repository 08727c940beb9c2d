// moe generate: samples from a model directory (moe train --out, moe upcycle --out: config.json,
// tokenizer.json, model.safetensors or checkpoint.safetensors) or a Mixtral GGUF with tokenizer
// metadata (moe convert), with llama.cpp-style flags.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "sampling.h"
#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/gguf_model.h"
#include "moe/model_io.h"
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
    ModelFileInfo info;
    // A .gguf file (moe convert, or llama.cpp's converter for Mixtral) or a model directory.
    const bool gguf = std::filesystem::is_regular_file(o.model) && gguf_has_magic(o.model);
    std::unique_ptr<GgufFile> file = gguf ? std::make_unique<GgufFile>(o.model) : nullptr;
    const ModelConfig c = gguf ? gguf_model_config(*file, &info) : model_config_read(o.model + "/config.json", &info);
    MOE_CHECK(!gguf || gguf_has_tokenizer(*file), "generate",
              o.model + " has no tokenizer metadata (tokenizer.ggml.*); convert a directory that has tokenizer.json");
    BpeTokenizer tok = gguf ? gguf_tokenizer(*file) : BpeTokenizer::load(o.model + "/tokenizer.json");
    MOE_CHECK(tok.vocab_size() == c.vocab_size, "generate",
              o.model + ": the tokenizer has " + std::to_string(tok.vocab_size()) + " tokens, the model " +
                  std::to_string(c.vocab_size));
    Arena arena;
    ModelSlots slots = model_params_reserve(arena, c);
    arena.allocate();
    ModelParams p = model_params_point(arena, slots, c);
    if (gguf)
        gguf_model_load_weights(*file, c, p);
    else
        model_load_weights(o.model, c, p);
    if (!o.logits_out.empty()) write_prompt_logits(o.logits_out, c, p, tok.encode(o.prompt));
    Rng rng(o.seed);
    const int64_t ctx = o.ctx > 0 ? o.ctx : info.max_position_embeddings;
    std::printf("%s\n", sample_text(c, p, tok, o.prompt, o.n, o.temperature, ctx, rng).c_str());
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
