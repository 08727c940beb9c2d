// moe run: text generation from a model directory with a KV cache, llama.cpp's flags and
// sampler chain, streaming the text as it is drawn, and llama.cpp-style timings on stderr.
// BOS first when the tokenizer asks for it (Llama-family), as llama.cpp does; generation stops at
// the end-of-sequence token. --chat: an interactive conversation in the model's chat template,
// kept in the KV cache (each turn feeds only the new part of the rendered conversation).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "model_loader.h"
#include "moe/chat.h"
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
    bool chat = false, repack = true;
    std::string chat_template, system;
};

using clock = std::chrono::steady_clock;
double seconds_since(clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); }

// --chat: read user lines from stdin; each turn renders the whole conversation, feeds the part
// the cache has not seen (the rendering of the past is a prefix of the new one; when a template
// rewrites the past, the cache starts over), and streams the reply until the end-of-turn token.
void run_chat(const RunOptions& o, const LoadedModel& m) {
    const BpeTokenizer& tok = m.tok;
    std::string how = "--chat-template";
    const ChatTemplate t = o.chat_template.empty() ? chat_template_for_model(o.model, &how) : chat_template_from_name(o.chat_template);
    const std::string bos = tok.bos_id() >= 0 ? tok.token_text(tok.bos_id()) : "";
    const std::string eos = tok.eos_id() >= 0 ? tok.token_text(tok.eos_id()) : "";
    const std::string end_of_turn = chat_end_of_turn(t, eos);
    std::vector<int32_t> stop_ids;
    if (tok.eos_id() >= 0) stop_ids.push_back(tok.eos_id());
    if (const int32_t id = tok.special_id(end_of_turn); id >= 0) stop_ids.push_back(id);
    const int64_t ctx = o.ctx > 0 ? o.ctx : m.info.max_position_embeddings;
    std::fprintf(stderr, "moe run --chat: template %s (from %s), BOS %s; one message per line, end with EOF (Ctrl-D)\n",
                 chat_template_name(t), how.c_str(), tok.add_bos() ? "added" : "not added");
    InferSession session(m.c, m.w, ctx);
    Rng rng(o.seed);
    std::vector<ChatMessage> msgs;
    if (!o.system.empty()) msgs.push_back({"system", o.system});
    std::string rendered;             // the conversation as the cache holds it
    std::vector<int32_t> history;     // the ids in the cache (the repetition penalty's window)
    int64_t fed_total = 0, gen_total = 0;
    double gen_s = 0;
    std::string line;
    for (int turn = 1;;) {
        std::fputs("> ", stderr);
        std::fflush(stderr);
        if (!std::getline(std::cin, line)) break;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        msgs.push_back({"user", line});
        const std::string full = chat_render(t, msgs, true, bos, eos);
        if (full.compare(0, rendered.size(), rendered) != 0) {  // the template rewrote the past
            session.reset();
            rendered.clear();
            history.clear();
        }
        std::vector<int32_t> ids = tok.encode(full.substr(rendered.size()));
        if (rendered.empty()) tok.prepend_bos(ids);
        MOE_CHECK(session.pos() + int64_t(ids.size()) < ctx, "run",
                  "the conversation (" + std::to_string(session.pos() + int64_t(ids.size())) +
                      " tokens) no longer fits the context of " + std::to_string(ctx) + " tokens; pass a larger -c");
        const float* logits = session.feed(ids.data(), int64_t(ids.size()));
        history.insert(history.end(), ids.begin(), ids.end());
        rendered = full;
        fed_total += int64_t(ids.size());
        std::string reply;
        bool ended = false;
        const auto t0 = clock::now();
        int64_t k = 0;
        for (; k < o.n && session.pos() < ctx; ++k) {
            const int32_t next = sample_token(logits, m.c.vocab_size, o.sampling, history, rng);
            history.push_back(next);
            logits = session.feed(&next, 1);
            if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
                ended = true;
                ++k;
                break;
            }
            const std::string& piece = tok.token_bytes(next);
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            reply += piece;
        }
        gen_s += seconds_since(t0);
        gen_total += k;
        std::fputc('\n', stdout);
        std::fflush(stdout);
        msgs.push_back({"assistant", reply});
        rendered += reply + (ended ? end_of_turn : "");
        std::fprintf(stderr, "moe run --chat: turn %d fed %zu new tokens, replied %lld tokens%s; %lld of %lld positions used\n",
                     turn++, ids.size(), (long long)k, ended ? " (end of turn)" : "", (long long)session.pos(),
                     (long long)ctx);
    }
    std::fprintf(stderr, "\nmoe run --chat: %lld tokens fed, %lld generated (%.1f tokens/s)\n", (long long)fed_total,
                 (long long)gen_total, gen_total > 0 ? double(gen_total) / gen_s : 0.0);
}

void run(const RunOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    sampling_validate(o.sampling);
    const auto m = load_model(o.model, "run", true, o.repack);
    if (o.chat) {
        run_chat(o, *m);
        return;
    }
    const ModelConfig& c = m->c;
    const ModelFileInfo& info = m->info;
    const BpeTokenizer& tok = m->tok;
    std::vector<int32_t> ids = tok.encode(o.prompt);
    MOE_CHECK(!ids.empty(), "run", "the prompt is empty; pass -p TEXT");
    tok.prepend_bos(ids);  // as llama.cpp
    const int64_t ctx = o.ctx > 0 ? o.ctx : info.max_position_embeddings;
    MOE_CHECK(int64_t(ids.size()) + o.n <= ctx, "run",
              "the prompt (" + std::to_string(ids.size()) + " tokens) and -n " + std::to_string(o.n) +
                  " do not fit the context of " + std::to_string(ctx) + " tokens; pass a larger -c or a smaller -n");
    InferSession session(c, m->w, ctx);
    Rng rng(o.seed);
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);
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
        if (next == tok.eos_id()) {  // end of sequence: not printed (llama.cpp stops at it too)
            ++generated;
            break;
        }
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
    cmd->add_flag("!--no-repack", o->repack, "use Q4_0 / Q8_0 weights as stored, not packed by 8 rows for the faster kernels");
    cmd->add_flag("--chat", o->chat, "interactive chat: user messages from stdin, one per line, in the model's chat template");
    cmd->add_option("--chat-template", o->chat_template,
                    "chat template (" + chat_template_names() + "; default: from the model's metadata)");
    cmd->add_option("--system", o->system, "--chat: a system message first (not in the mistral template)");
    cmd->callback([o] { run(*o); });
}

}  // namespace moe::cli
