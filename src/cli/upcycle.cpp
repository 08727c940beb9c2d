// moe upcycle: a dense model directory -> an MoE one whose experts start as copies of the dense
// FFNs (Komatsuzaki et al. 2022); `moe train --init` then continues training it.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "router_options.h"
#include "moe/error.h"
#include "moe/files.h"
#include "moe/model_io.h"
#include "moe/upcycle.h"

namespace moe::cli {
namespace {

struct UpcycleOptions {
    std::string model, out;
    int64_t experts = 8, top_k = 2, expert_ff = 0, sparse_step = 1;
    std::vector<int64_t> mlp_only_layers;
    uint64_t seed = 1;
    RouterCliOptions router;
};

int64_t count(const ModelParams& p, const ModelConfig& c) {
    int64_t n = 0;
    for (auto& [name, t] : model_param_names(p, c)) n += t.numel();
    return n;
}

void run_upcycle(const UpcycleOptions& o) {
    const char* op = "upcycle";
    ModelFileInfo info;
    const ModelConfig src_c = model_config_read(o.model + "/config.json", &info);
    for (int64_t l = 0; l < src_c.num_layers; ++l)
        MOE_CHECK(!src_c.is_moe_layer(l), op,
                  o.model + " already has MoE layers (layer " + std::to_string(l) +
                      "); upcycle takes a dense model (moe train --num-local-experts 0)");
    ModelConfig dst_c = src_c;
    dst_c.moe.d_ff = o.expert_ff > 0 ? o.expert_ff : src_c.dense_ff();
    dst_c.moe.n_experts = o.experts;
    dst_c.moe.top_k = o.top_k;
    dst_c.moe.n_shared = 0;
    dst_c.moe.router = RouterConfig{};
    dst_c.moe.router.seed = o.seed;
    dst_c.moe.router.training = false;
    dst_c.decoder_sparse_step = o.sparse_step;
    dst_c.mlp_only_layers = o.mlp_only_layers;
    dst_c.dense_intermediate_size = src_c.dense_ff();
    apply_router_options(o.router, dst_c.moe);
    model_validate(dst_c);

    MOE_CHECK(std::filesystem::absolute(o.out) != std::filesystem::absolute(o.model), op,
              "--out must differ from -m: upcycling writes a new model directory");
    Arena sa, da;
    const ModelParams src = model_params_allocate(sa, src_c), dst = model_params_allocate(da, dst_c);
    model_load_weights(o.model, src_c, src);
    model_upcycle(src_c, src, dst_c, dst, o.seed);
    model_save_hf(o.out, dst_c, dst, info);
    write_file_atomic(o.out + "/tokenizer.json",
                      read_file(o.model + "/tokenizer.json", op, "the dense model directory needs its tokenizer.json"), op);
    int64_t moe_layers = 0;
    for (int64_t l = 0; l < dst_c.num_layers; ++l) moe_layers += dst_c.is_moe_layer(l);
    std::printf("moe upcycle: %s (%lld parameters, dense) -> %s (%lld parameters; %lld of %lld layers MoE with "
                "E = %lld, K = %lld, router %s)\ncontinue training with: moe train --init %s --out RUN\n",
                o.model.c_str(), (long long)count(src, src_c), o.out.c_str(), (long long)count(dst, dst_c),
                (long long)moe_layers, (long long)dst_c.num_layers, (long long)dst_c.moe.n_experts,
                (long long)dst_c.moe.top_k, router_kind_name(dst_c.moe.router.kind), o.out.c_str());
}

}  // namespace

void register_upcycle(CLI::App& app) {
    auto o = std::make_shared<UpcycleOptions>();
    CLI::App* cmd = app.add_subcommand("upcycle", "turn a dense model into an MoE one, experts copied from the dense FFNs");
    cmd->add_option("-m,--model", o->model, "the dense model directory (moe train --num-local-experts 0 --out)")->required();
    cmd->add_option("--out", o->out, "the new model directory")->required();
    cmd->add_option("--num-local-experts", o->experts, "experts per MoE layer")->check(CLI::Range(int64_t(1), int64_t(1024)));
    cmd->add_option("--num-experts-per-tok", o->top_k, "experts per token (K)")->check(CLI::Range(int64_t(1), int64_t(1024)));
    cmd->add_option("--intermediate-size", o->expert_ff, "expert size (default and required: the dense FFN's)")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_option("--decoder-sparse-step", o->sparse_step, "every step-th layer becomes MoE (Komatsuzaki: 2)")->check(CLI::Range(int64_t(1), int64_t(1024)));
    cmd->add_option("--mlp-only-layers", o->mlp_only_layers, "layers that stay dense (comma-separated)")->delimiter(',');
    cmd->add_option("-s,--seed", o->seed, "seed of the new routers");
    add_router_options(cmd, o->router);
    cmd->callback([o] { run_upcycle(*o); });
}

}  // namespace moe::cli
