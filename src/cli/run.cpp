// moe run: text generation from a model directory with a KV cache, llama.cpp's flags and
// sampler chain, streaming the text as it is drawn, and llama.cpp-style timings on stderr.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "model_loader.h"
#include "moe/error.h"
#include "moe/gemm.h"
#include "moe/infer.h"
#include "moe/tokenizer.h"

namespace moe::cli {
namespace {

struct RunOptions {
    std::string model = "runs/kjv", prompt = "And God said";
    int64_t n = 128, ctx = 0;
    uint64_t seed = 1;
    int threads = 0;
    SamplingParams sampling;
    std::vector<std::string> stop;
};

void run(const RunOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    sampling_validate(o.sampling);
    const auto m = load_model(o.model, "run");
    const ModelConfig& c = m->c;
    const ModelFileInfo& info = m->info;
    const BpeTokenizer& tok = m->tok;
    std::vector<int32_t> ids = tok.encode(o.prompt);
    MOE_CHECK(!ids.empty(), "run", "the prompt is empty; pass -p TEXT");
    const int64_t ctx = o.ctx > 0 ? o.ctx : info.max_position_embeddings;
    MOE_CHECK(int64_t(ids.size()) + o.n <= ctx, "run",
              "the prompt (" + std::to_string(ids.size()) + " tokens) and -n " + std::to_string(o.n) +
                  " do not fit the context of " + std::to_string(ctx) + " tokens; pass a larger -c or a smaller -n");
    InferSession session(c, m->w, ctx);
    Rng rng(o.seed);
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    const float* logits = session.feed(ids.data(), int64_t(ids.size()));
    const double prompt_s = std::chrono::duration<double>(clock::now() - t0).count();
    const size_t n_prompt = ids.size();
    std::string text;
    t0 = clock::now();
    int64_t generated = 0;
    for (; generated < o.n; ++generated) {
        const int32_t next = sample_token(logits, c.vocab_size, o.sampling, ids, rng);
        ids.push_back(next);
        const std::string& piece = tok.token_bytes(next);
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        text += piece;
        bool stop = false;
        for (const std::string& s : o.stop) stop |= !s.empty() && text.find(s) != std::string::npos;
        if (stop || generated + 1 == o.n) {
            ++generated;
            break;
        }
        logits = session.feed(&next, 1);
    }
    const double gen_s = std::chrono::duration<double>(clock::now() - t0).count();
    std::printf("\n");
    std::fprintf(stderr, "moe run: prompt %zu tokens in %.1f ms (%.1f tokens/s); generation %lld tokens in %.1f ms "
                 "(%.1f tokens/s)\n", n_prompt, prompt_s * 1e3, double(n_prompt) / prompt_s, (long long)generated,
                 gen_s * 1e3, generated > 0 ? double(generated) / gen_s : 0.0);
}

}  // namespace

void register_run(CLI::App& app) {
    auto o = std::make_shared<RunOptions>();
    CLI::App* cmd = app.add_subcommand("run", "generate text from a model directory (KV cache, llama.cpp's sampling flags)");
    cmd->add_option("-m,--model", o->model, "model directory (config.json, tokenizer.json, model.safetensors) or a Mixtral .gguf");
    cmd->add_option("-p,--prompt", o->prompt, "prompt");
    cmd->add_option("-n,--n-predict", o->n, "tokens to generate")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_option("-c,--ctx-size", o->ctx, "context size (default: max_position_embeddings)")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->add_option("-s,--seed", o->seed, "sampling seed");
    cmd->add_option("--temp", o->sampling.temperature, "temperature (0 = greedy)");
    cmd->add_option("--top-k", o->sampling.top_k, "keep the k most likely tokens (0 = off)");
    cmd->add_option("--top-p", o->sampling.top_p, "keep the smallest set with probability >= p (1 = off)");
    cmd->add_option("--min-p", o->sampling.min_p, "drop tokens below min_p x the most likely one's probability (0 = off)");
    cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "penalise the last --repeat-last-n tokens (1 = off)");
    cmd->add_option("--repeat-last-n", o->sampling.repeat_last_n, "tokens the repetition penalty looks back over");
    cmd->add_option("--stop", o->stop, "stop when the generated text contains this string (repeatable)");
    cmd->callback([o] { run(*o); });
}

}  // namespace moe::cli
