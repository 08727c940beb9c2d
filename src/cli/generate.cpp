// moe generate: samples from a model directory (moe train --out, moe upcycle --out: config.json,
// tokenizer.json, model.safetensors or checkpoint.safetensors) or a Mixtral GGUF with tokenizer
// metadata (moe convert), with llama.cpp-style flags.
#include <cstdio>
#include <algorithm>
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
    std::string logits_out, prompt_ids;
    int64_t batch = 0;
    bool repack = true;
};

// "1,2,3" or "1 2 3" -> ids; throws naming the bad entry.
std::vector<int32_t> parse_ids(const std::string& s, int64_t V) {
    std::vector<int32_t> ids;
    std::string cur;
    auto flush = [&] {
        if (cur.empty()) return;
        size_t used = 0;
        long long v = -1;
        try {
            v = std::stoll(cur, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        MOE_CHECK(used == cur.size() && v >= 0 && v < V, "generate",
                  "--prompt-ids: '" + cur + "' is not a token id in [0, " + std::to_string(V) + ")");
        ids.push_back(int32_t(v));
        cur.clear();
    };
    for (char ch : s) {
        if (ch == ',' || ch == ' ') flush();
        else cur += ch;
    }
    flush();
    MOE_CHECK(!ids.empty(), "generate", "--prompt-ids is empty; give ids like 1,2,3");
    return ids;
}

// The prompt's tokens and the logits at every position, for comparisons with other engines
// (tools/check_hf_mixtral.py, tools/check_llamacpp_logits.py). batch > 0: the prompt goes
// through the decoder in chunks of that many tokens (llama.cpp's -ub), so batch 1 takes the
// decode path (quantized activations) at every position.
void write_prompt_logits(const std::string& path, const ModelConfig& c, const InferWeights& w,
                         std::vector<int32_t> ids, int64_t batch) {
    MOE_CHECK(!ids.empty(), "generate", "--logits-out needs a non-empty prompt");
    const int64_t T = int64_t(ids.size()), V = c.vocab_size, step = batch > 0 ? batch : T;
    InferSession s(c, w, T);
    std::vector<float> logits(size_t(T * V));
    for (int64_t t0 = 0; t0 < T; t0 += step) {
        const int64_t n = std::min(step, T - t0);
        std::copy_n(s.feed(ids.data() + t0, n, true), n * V, logits.data() + t0 * V);
    }
    TensorView tokens{ids.data(), DType::i32, Shape{T}};
    TensorView lv{logits.data(), DType::f32, Shape{T, V}};
    safetensors_write(path, {{"tokens", tokens}, {"logits", lv}}, {});
}

void run_generate(const GenerateOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    const bool by_ids = !o.prompt_ids.empty();  // a GGUF without a vocabulary works on ids
    const auto m = load_model(o.model, "generate", !by_ids, o.repack);
    const ModelConfig& c = m->c;
    std::vector<int32_t> ids = by_ids ? parse_ids(o.prompt_ids, c.vocab_size) : m->tok.encode(o.prompt);
    // Llama family: BOS first, as llama.cpp (not for --prompt-ids: those are taken as given).
    const bool bos = !by_ids && !ids.empty() && m->tok.prepend_bos(ids);
    if (!o.logits_out.empty()) write_prompt_logits(o.logits_out, c, m->w, ids, o.batch);
    Rng rng(o.seed);
    const int64_t ctx = o.ctx > 0 ? o.ctx : m->info.max_position_embeddings;
    const std::vector<int32_t> out = sample_ids(c, m->w, ids, o.n, o.temperature, ctx, rng, by_ids ? -1 : m->tok.eos_id());
    if (!by_ids) {
        std::printf("%s\n", m->tok.decode(std::vector<int32_t>(out.begin() + (bos ? 1 : 0), out.end())).c_str());
        return;
    }
    for (size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? " " : "", out[i]);
    std::printf("\n");
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
    cmd->add_option("--prompt-ids", o->prompt_ids, "the prompt as token ids (\"1,2,3\"), instead of -p; prints ids (no tokenizer needed)");
    cmd->add_option("-b,--batch-size", o->batch, "--logits-out: feed the prompt in chunks of this many tokens (1: the decode path everywhere; default: all at once)")
        ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_flag("!--no-repack", o->repack, "use Q4_0 / Q8_0 weights as stored, not packed by 8 rows for the faster kernels");
    cmd->add_option("--logits-out", o->logits_out, "also write the prompt's tokens and logits (T, V) to this safetensors file");
    cmd->callback([o] { run_generate(*o); });
}

}  // namespace moe::cli
