// moe generate: samples from a model trained by `moe train` (its run directory: config.json,
// tokenizer.json, checkpoint.safetensors), with llama.cpp-style flags.
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "sampling.h"
#include "moe/error.h"
#include "moe/files.h"
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
};

ModelConfig config_from_json(const std::string& path, int64_t& max_positions) {
    const nlohmann::json j = read_json_file(path, "generate", "-m takes the --out directory of a moe train run");
    auto need = [&](const char* k) -> const nlohmann::json& {
        MOE_CHECK(j.contains(k), "generate", path + " has no \"" + std::string(k) + "\"");
        return j[k];
    };
    ModelConfig c;
    c.vocab_size = need("vocab_size").get<int64_t>();
    c.num_layers = need("num_hidden_layers").get<int64_t>();
    c.attn = {need("hidden_size").get<int64_t>(), need("num_attention_heads").get<int64_t>(),
              need("num_key_value_heads").get<int64_t>(), j.value("head_dim", int64_t(0)),
              j.value("rope_theta", 10000.0)};
    c.rms_norm_eps = j.value("rms_norm_eps", 1e-5);
    c.tie_word_embeddings = j.value("tie_word_embeddings", false);
    c.moe.d_model = c.attn.d_model;
    c.moe.d_ff = need("intermediate_size").get<int64_t>();
    c.moe.n_experts = need("num_local_experts").get<int64_t>();
    c.moe.top_k = need("num_experts_per_tok").get<int64_t>();
    c.moe.router.kind = parse_router_kind(j.value("moe_router", std::string("topk")));
    c.moe.router.training = false;
    max_positions = j.value("max_position_embeddings", int64_t(128));
    model_validate(c);
    return c;
}

void run_generate(const GenerateOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    int64_t c_max_positions = 0;
    const ModelConfig c = config_from_json(o.model + "/config.json", c_max_positions);
    BpeTokenizer tok = BpeTokenizer::load(o.model + "/tokenizer.json");
    MOE_CHECK(tok.vocab_size() == c.vocab_size, "generate",
              o.model + ": tokenizer.json has " + std::to_string(tok.vocab_size()) + " tokens, config.json says " +
                  std::to_string(c.vocab_size));
    Arena arena;
    ModelSlots slots = model_params_reserve(arena, c);
    arena.allocate();
    ModelParams p = model_params_point(arena, slots, c);
    SafetensorsFile f(o.model + "/checkpoint.safetensors");
    for (auto& [name, view] : model_param_names(p, c)) {
        std::vector<float> v = f.f32(name);
        MOE_CHECK(int64_t(v.size()) == view.numel(), "generate",
                  f.path() + ": " + name + " has " + std::to_string(v.size()) + " values, config.json implies " +
                      std::to_string(view.numel()));
        std::memcpy(view.data, v.data(), v.size() * sizeof(float));
    }
    Rng rng(o.seed);
    const int64_t ctx = o.ctx > 0 ? o.ctx : c_max_positions;
    std::printf("%s\n", sample_text(c, p, tok, o.prompt, o.n, o.temperature, ctx, rng).c_str());
}

}  // namespace

void register_generate(CLI::App& app) {
    auto o = std::make_shared<GenerateOptions>();
    CLI::App* cmd = app.add_subcommand("generate", "sample text from a model trained by moe train");
    cmd->add_option("-m,--model", o->model, "the run directory of moe train (--out)");
    cmd->add_option("-p,--prompt", o->prompt, "prompt");
    cmd->add_option("-n,--n-predict", o->n, "tokens to generate")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_option("-c,--ctx-size", o->ctx, "context window (default: the training context)")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_option("--temp", o->temperature, "temperature (0 = greedy)")->check(CLI::Range(0.0, 100.0));
    cmd->add_option("-s,--seed", o->seed, "sampling seed");
    cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->callback([o] { run_generate(*o); });
}

}  // namespace moe::cli
