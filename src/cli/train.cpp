// moe train: trains a small MoE language model on a text file (the KJV Bible by default),
// with a byte-level BPE tokenizer trained on the same text, AdamW, the warm-up + cosine
// schedule, a validation split, a JSONL log and a progress line, then prints a sample. Under
// mpirun the experts are split between the ranks and the batch too (train_dist.h).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "progress.h"
#include "router_options.h"
#include "sampling.h"
#include "train_checkpoint.h"
#include "train_dist.h"
#include "moe/error.h"
#include "moe/files.h"
#include "moe/gemm.h"
#include "moe/model.h"
#include "moe/model_io.h"
#include "moe/optim.h"
#include "moe/rng.h"
#include "moe/token_file.h"
#include "moe/tokenizer.h"

namespace moe::cli {
namespace {

struct TrainOptions {
    std::string data = "data/kjv.txt", out = "runs/kjv";
    int64_t vocab = 1024, layers = 4, hidden = 128, heads = 4, kv_heads = 2, experts = 8, top_k = 2;
    int64_t expert_ff = 256, seq_len = 128, batch = 16, steps = 0, warmup = 50;
    int64_t eval_every = 100, eval_batches = 8, log_every = 10, sample_tokens = 200;
    int64_t save_every = 200, stop_after = 0, grad_accum = 1;
    int64_t sparse_step = 1, dense_ff = 0, n_shared = 0, shared_ff = 0;
    std::vector<int64_t> mlp_only_layers;
    std::string dtype = "f32", init, tokenizer;
    bool resume = false, tie = false;
    double time_budget = 480, lr = 3e-3, min_lr_ratio = 0.1, weight_decay = 0.1, clip = 1.0;
    double aux_coef = 0.01, z_coef = 0.001, temperature = 0.8;
    std::string prompt = "And God said";
    uint64_t seed = 1;
    int threads = 0;
    int expert_ranks = 0;  // under mpirun: ranks holding one copy of the experts (0 = all)
    RouterCliOptions router;
};

// Model FLOPs of one training token (forward + backward = 3x forward): the matrix products of
// attention (projections, and the causal scores and mixing at the average length (T + 1) / 2),
// the router, the K active experts and the LM head.
double train_flops_per_token(const ModelConfig& c, int64_t T) {
    const double D = double(c.hidden()), hd = double(c.attn.hd()), H = double(c.attn.n_heads);
    const double Hkv = double(c.attn.n_kv_heads), V = double(c.vocab_size);
    double total = 2 * D * V;
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const MoeLayerConfig f = c.ffn(l);
        const double E = c.is_moe_layer(l) ? double(f.n_experts) : 0.0;  // a dense layer has no router
        total += 2 * D * H * hd * 2 + 2 * D * Hkv * hd * 2 + 2 * 2 * H * hd * double(T + 1) / 2 + 2 * D * E +
                 double(f.top_k) * 6 * D * double(f.d_ff) + double(f.n_shared) * 6 * D * double(f.d_ff_shared);
    }
    return 3 * total;
}

// Every 50th line goes to validation (DATA.md), the rest to training.
void split_lines(const std::string& text, std::string& train, std::string& val) {
    std::istringstream in(text);
    std::string line;
    for (int64_t i = 0; std::getline(in, line); ++i) (i % 50 == 49 ? val : train) += line + "\n";
}

struct Trainer {
    TrainOptions o;
    ModelConfig cfg;
    Arena pa, ga, ma, va;
    ModelSlots slots;
    ModelParams p, g, m, v;
    std::vector<AdamWTensor> opt;
    std::vector<bool> opt_expert;  // opt[i] is a routed-expert tensor (sharded under mpirun)
    ModelCache cache;
    std::vector<int32_t> tokens, targets;
    // Under mpirun: this rank's part, its sequences [b0, b0 + bn) of every batch, and on rank 0
    // the whole model (every expert) gathered for checkpoints and the sample. One process:
    // dist = nullptr, b0 = 0, bn = batch.
    TrainDist* dist = nullptr;
    int64_t b0 = 0, bn = 0;
    Arena fpa, fma, fva;
    ModelParams full, full_m, full_v;

    // The model from the options, or (--init) from the init directory's config.json.
    void configure() {
        if (!o.init.empty()) {
            cfg = model_config_read(o.init + "/config.json");
            cfg.moe.router.training = true;
            cfg.moe.router.seed = o.seed;
            o.vocab = cfg.vocab_size, o.layers = cfg.num_layers, o.hidden = cfg.hidden();
            o.heads = cfg.attn.n_heads, o.kv_heads = cfg.attn.n_kv_heads, o.tie = cfg.tie_word_embeddings;
            o.experts = cfg.moe.n_experts, o.top_k = cfg.moe.top_k, o.expert_ff = cfg.moe.d_ff;
        } else {
            cfg.vocab_size = o.vocab;
            cfg.num_layers = o.layers;
            cfg.attn = {o.hidden, o.heads, o.kv_heads, 0, 10000};
            cfg.moe.d_model = o.hidden;
            cfg.moe.d_ff = o.expert_ff;
            cfg.moe.n_experts = o.experts;
            cfg.moe.top_k = o.top_k;
            cfg.moe.n_shared = o.n_shared;
            cfg.moe.d_ff_shared = o.shared_ff > 0 ? o.shared_ff : o.expert_ff;
            cfg.moe.router.seed = o.seed;
            cfg.tie_word_embeddings = o.tie;
            cfg.decoder_sparse_step = o.sparse_step;
            cfg.mlp_only_layers = o.mlp_only_layers;
            cfg.dense_intermediate_size = o.dense_ff;
            if (o.experts > 0) apply_router_options(o.router, cfg.moe);
        }
        MOE_CHECK(o.dtype == "f32" || o.dtype == "bf16", "train", "--dtype must be f32 or bf16, got " + o.dtype);
        cfg.moe.dtype = o.dtype == "bf16" ? DType::bf16 : DType::f32;
        model_validate(cfg);
    }

    void init_params(const ModelParams& q) {
        model_params_init(q, cfg, o.seed);
        // A small embedding and output scale for a stable start (GPT-2 style 0.02 would be too
        // small for this width); the MoE and attention keep their 1/sqrt(fan_in) init.
        for (int64_t i = 0; i < q.embed.numel(); ++i) q.embed.f32()[i] *= 0.1f;
        if (!o.init.empty()) model_load_weights(o.init, cfg, q);
    }

    void build() {
        const int64_t n_local = dist ? dist->n_local_experts() : 0;
        slots = model_params_reserve(pa, cfg, n_local);
        for (Arena* a : {&ga, &ma, &va}) model_params_reserve(*a, cfg, n_local);
        for (Arena* a : {&pa, &ga, &ma, &va}) a->allocate();
        p = model_params_point(pa, slots, cfg);
        g = model_params_point(ga, slots, cfg);
        m = model_params_point(ma, slots, cfg);
        v = model_params_point(va, slots, cfg);
        if (dist == nullptr) {
            init_params(p);
        } else {
            // Every rank draws the whole model as one process does (same seed) and keeps its
            // experts, so that runs on any number of ranks start from the same weights. Rank 0
            // keeps the whole model for checkpoints.
            Arena whole_arena;
            const ModelParams whole = model_params_allocate(whole_arena, cfg);
            init_params(whole);
            dist->slice(model_param_names(whole, cfg), model_param_names(p, cfg));
            if (dist->lead()) {
                fpa = std::move(whole_arena);
                full = whole;
                full_m = model_params_allocate(fma, cfg);
                full_v = model_params_allocate(fva, cfg);
            }
            cache.exchange = dist->exchange();
        }
        auto pn = model_param_names(p, cfg), gn = model_param_names(g, cfg);
        auto mn = model_param_names(m, cfg), vn = model_param_names(v, cfg);
        for (size_t i = 0; i < pn.size(); ++i)
            if (!pn[i].first.ends_with("e_score_correction_bias")) {  // set by the bias update, not by AdamW
                opt.push_back({pn[i].second.f32(), gn[i].second.f32(), mn[i].second.f32(), vn[i].second.f32(),
                           pn[i].second.numel(), pn[i].second.shape.ndim >= 2});
                opt_expert.push_back(is_expert_tensor(pn[i].first));
            }
        b0 = dist ? dist->batch_begin(o.batch) : 0;
        bn = dist ? o.batch / dist->ranks() : o.batch;
        const int64_t N = bn * o.seq_len;
        tokens.resize(size_t(N));
        targets.resize(size_t(N));
    }

    // Rank 0's whole model := every rank's part (a collective: every rank calls it).
    void gather_full() {
        const bool lead = dist->lead();
        dist->gather(model_param_names(p, cfg), lead ? model_param_names(full, cfg) : NamedTensors{});
        dist->gather(model_param_names(m, cfg), lead ? model_param_names(full_m, cfg) : NamedTensors{});
        dist->gather(model_param_names(v, cfg), lead ? model_param_names(full_v, cfg) : NamedTensors{});
    }

    // Fills tokens / targets with this rank's windows of seq_len + 1 among the batch's `starts`.
    void fill(const TokenFile& data, const std::vector<int64_t>& starts) {
        for (int64_t b = 0; b < bn; ++b)
            for (int64_t t = 0; t < o.seq_len; ++t) {
                tokens[size_t(b * o.seq_len + t)] = data.data()[starts[size_t(b0 + b)] + t];
                targets[size_t(b * o.seq_len + t)] = data.data()[starts[size_t(b0 + b)] + t + 1];
            }
    }

    double eval(const TokenFile& val) {
        cfg.moe.router.training = false;
        const int64_t span = val.size() - o.seq_len - 1;
        double sum = 0;
        for (int64_t e = 0; e < o.eval_batches; ++e) {
            std::vector<int64_t> starts;
            for (int64_t b = 0; b < o.batch; ++b)
                starts.push_back((e * o.batch + b) * span / (o.eval_batches * o.batch));
            fill(val, starts);
            sum += model_forward(cache, cfg, p, tokens.data(), targets.data(), bn, o.seq_len,
                                 float(o.aux_coef), float(o.z_coef)).ce;
        }
        cfg.moe.router.training = true;
        if (dist) sum = dist->mean(sum);  // every rank's mean over as many tokens: the batch's mean
        return sum / double(o.eval_batches);
    }
};

// <out>/<name>: the split encoded once; re-encoded only when the text or the tokenizer (its
// tokenizer.json's hash) changed.
std::unique_ptr<TokenFile> token_shard(const std::string& out, const std::string& name, const std::string& text,
                                       const BpeTokenizer& tok, uint64_t tokenizer_hash) {
    const std::string path = out + "/" + name;
    const uint64_t key = text_hash(text) ^ (tokenizer_hash * 31);
    if (std::filesystem::exists(path)) {
        try {
            auto f = std::make_unique<TokenFile>(path);
            if (f->source_hash() == key && f->vocab_size() == tok.vocab_size()) return f;
        } catch (const Error& e) {
            std::fprintf(stderr, "moe train: %s; encoding the corpus again\n", e.what());
        }
    }
    token_file_write(path, tok.encode(text), tok.vocab_size(), key);
    return std::make_unique<TokenFile>(path);
}

void train_loop(const TrainOptions& opts, TrainDist* dist) {
    if (opts.threads > 0) set_num_threads(opts.threads);
    auto t = std::make_unique<Trainer>();
    t->o = opts;
    t->dist = dist;
    TrainOptions& o = t->o;
    const bool lead = dist == nullptr || dist->lead();  // prints and writes the run's files
    const std::string text = read_file(o.data, "train",
                                       "run scripts/setup.sh (it writes data/kjv.txt) or pass --data FILE",
                                       "the corpus");
    MOE_CHECK(text.size() > size_t(10 * (o.seq_len + 1)), "train",
              o.data + " has " + std::to_string(text.size()) + " bytes; the corpus must be much longer than --ctx-size");
    std::filesystem::create_directories(o.out);
    std::string train_text, val_text;
    split_lines(text, train_text, val_text);
    if (lead)
        std::fprintf(stderr, "moe train: %s: %zu bytes (%zu train, %zu validation)\n", o.data.c_str(), text.size(),
                     train_text.size(), val_text.size());
    t->configure();
    if (dist) {
        dist->setup(t->cfg, o.batch, o.expert_ranks);
        if (lead)
            std::fprintf(stderr, "moe train: %d ranks (mpirun), %lld of %lld experts and %lld of %lld sequences per rank, "
                         "%d copies of the experts\n", dist->ranks(), (long long)dist->n_local_experts(),
                         (long long)t->cfg.moe.n_experts, (long long)(o.batch / dist->ranks()), (long long)o.batch,
                         dist->ranks() / dist->expert_ranks());
    } else {
        MOE_CHECK(o.expert_ranks <= 1, "train",
                  "--expert-ranks " + std::to_string(o.expert_ranks) + " needs ranks: launch with mpirun -np N (N a multiple of it)");
    }
    BpeTokenizer tok;
    if (!lead) {
        // Rank 0 makes (or reads) the tokenizer and encodes the corpus; the others read its files.
    } else if (o.resume || !o.init.empty()) {  // the run's own tokenizer, so the tokens are the same
        tok = BpeTokenizer::load((o.resume ? o.out : o.init) + "/tokenizer.json");
        if (!o.resume) tok.save(o.out + "/tokenizer.json");
    } else if (!o.tokenizer.empty()) {  // an existing tokenizer.json (e.g. a Llama-style one)
        tok = BpeTokenizer::load(o.tokenizer);
        tok.save(o.out + "/tokenizer.json");
    } else {
        tok = BpeTokenizer::train(train_text, o.vocab, 2, [&](int64_t done, int64_t total) {
            if (done % 64 == 0 || done == total) std::fprintf(stderr, "\rtokenizer: merge %lld / %lld", (long long)done, (long long)total);
        });
        std::fprintf(stderr, "\n");
        tok.save(o.out + "/tokenizer.json");
    }
    if (dist) dist->barrier();
    if (!lead) tok = BpeTokenizer::load(o.out + "/tokenizer.json");
    MOE_CHECK(o.init.empty() || tok.vocab_size() == t->cfg.vocab_size, "train",
              o.init + ": tokenizer.json has " + std::to_string(tok.vocab_size()) + " tokens, config.json says " +
                  std::to_string(t->cfg.vocab_size));
    o.vocab = tok.vocab_size();
    t->cfg.vocab_size = o.vocab;
    const uint64_t tok_hash = text_hash(read_file(o.out + "/tokenizer.json", "train"));
    std::unique_ptr<TokenFile> train_file, val_file;
    for (int turn = 0; turn < 2; ++turn) {  // rank 0 encodes (when needed), then the others map its files
        if (turn == (lead ? 0 : 1)) {
            train_file = token_shard(o.out, "train.tokens", train_text, tok, tok_hash);
            val_file = token_shard(o.out, "val.tokens", val_text, tok, tok_hash);
        }
        if (dist) dist->barrier();
    }
    const TokenFile &train = *train_file, &val = *val_file;
    MOE_CHECK(val.size() > o.seq_len + 1, "train", "the validation split is shorter than --ctx-size");
    MOE_CHECK(train.size() > o.seq_len + 1, "train", "the training split is shorter than --ctx-size");
    if (lead)
        std::fprintf(stderr, "tokens: %lld train, %lld validation (%.2f bytes per token), vocabulary %lld\n",
                 (long long)train.size(), (long long)val.size(), double(train_text.size()) / double(train.size()),
                 (long long)o.vocab);
    t->build();
    const ModelFileInfo info{o.seq_len, o.aux_coef, o.z_coef};
    if (lead) write_file_atomic(o.out + "/config.json", model_config_json(t->cfg, info), "train");
    // What a checkpoint must agree with to be resumed.
    std::string dense;
    for (int64_t l = 0; l < t->cfg.num_layers; ++l) dense += t->cfg.is_moe_layer(l) ? "M" : "d";
    const std::string key = "V=" + std::to_string(o.vocab) + " L=" + std::to_string(o.layers) + " D=" +
                            std::to_string(o.hidden) + " H=" + std::to_string(o.heads) + " Hkv=" +
                            std::to_string(o.kv_heads) + " E=" + std::to_string(t->cfg.moe.n_experts) + " K=" +
                            std::to_string(t->cfg.moe.top_k) + " F=" + std::to_string(t->cfg.moe.d_ff) + " router=" +
                            router_kind_name(t->cfg.moe.router.kind) + (o.tie ? " tied" : "") + " layers=" + dense +
                            " Fd=" + std::to_string(t->cfg.dense_ff()) + " S=" + std::to_string(t->cfg.moe.n_shared);
    Rng rng(o.seed);
    AdamWConfig oc;
    oc.lr = o.lr;
    oc.lr_min = o.lr * o.min_lr_ratio;
    oc.warmup = o.warmup;
    oc.weight_decay = o.weight_decay;
    oc.max_norm = o.clip;
    oc.total = o.steps > 0 ? o.steps : 1000000;  // set from the time budget after a few steps
    int64_t step0 = 0;
    if (o.resume) {
        TrainState st = load_checkpoint(o.out, t->cfg, t->p, t->m, t->v, key, dist ? dist->shard() : ExpertShard{});
        step0 = st.step;
        oc.total = st.total;
        oc.warmup = st.warmup;
        std::copy(st.rng, st.rng + 4, rng.state);
        t->cache.layers.resize(size_t(o.layers));
        for (size_t l = 0; l < st.router_steps.size(); ++l) t->cache.layers[l].moe.router.step = st.router_steps[l];
        if (lead)
            std::fprintf(stderr, "resumed %s/checkpoint.safetensors at step %lld of %lld\n", o.out.c_str(),
                         (long long)step0, (long long)oc.total);
    }
    auto save = [&](int64_t done) {
        TrainState st;
        st.step = done;
        st.total = oc.total;
        st.warmup = oc.warmup;
        std::copy(rng.state, rng.state + 4, st.rng);
        for (const auto& layer : t->cache.layers) st.router_steps.push_back(layer.moe.router.step);
        if (dist) t->gather_full();  // the file holds every expert: it loads on any number of ranks
        if (!lead) return;
        const ModelParams &p = dist ? t->full : t->p, &m = dist ? t->full_m : t->m, &v = dist ? t->full_v : t->v;
        save_checkpoint(o.out, t->cfg, p, m, v, st, key);
        model_save_hf(o.out, t->cfg, p, info);
    };
    std::ofstream log;
    if (lead) log.open(o.out + "/metrics.jsonl", o.resume ? std::ios::app : std::ios::trunc);
    const NamedTensors grad_names = model_param_names(t->g, t->cfg);
    const int64_t N = o.batch * o.seq_len * o.grad_accum;  // tokens per optimizer step
    const auto start = std::chrono::steady_clock::now();
    double val_loss = NAN;
    int64_t step = 0;
    bool stopped = false;
    for (step = step0 + 1; step <= oc.total; ++step) {
        // Gradient accumulation: `grad_accum` micro-batches add into the gradients, which are
        // then averaged, so a step is the mean loss over batch * grad_accum sequences.
        std::memset(t->ga.base_f32(), 0, t->ga.bytes());
        ModelLosses L;
        for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
            std::vector<int64_t> starts;
            for (int64_t b = 0; b < o.batch; ++b)
                starts.push_back(int64_t(rng.next_u64() % uint64_t(train.size() - o.seq_len - 1)));
            t->fill(train, starts);
            ModelLosses Lm = model_forward(t->cache, t->cfg, t->p, t->tokens.data(), t->targets.data(), t->bn,
                                           o.seq_len, float(o.aux_coef), float(o.z_coef));
            model_backward(t->g, t->cache, t->cfg, t->p, t->tokens.data(), float(o.aux_coef), float(o.z_coef));
            const double w = 1.0 / double(o.grad_accum);
            L.ce += w * Lm.ce, L.aux += w * Lm.aux, L.z += w * Lm.z, L.total += w * Lm.total;
        }
        if (o.grad_accum > 1) {
            const float inv = 1.0f / float(o.grad_accum);
            float* gp = t->ga.base_f32();
            for (size_t i = 0; i < t->ga.bytes() / sizeof(float); ++i) gp[i] *= inv;
        }
        if (dist) {
            dist->reduce_grads(grad_names);
            double l[4] = {L.ce, L.aux, L.z, L.total};  // each rank's over its tokens: the mean is the batch's
            dist->mean(l, 4);  // (ce and z exactly; the balance loss is per rank, docs/distributed.md)
            L.ce = l[0], L.aux = l[1], L.z = l[2], L.total = l[3];
        }
        const double gnorm = dist ? adamw_step(t->opt, oc, step, dist->grad_norm(t->opt, t->opt_expert))
                                  : adamw_step(t->opt, oc, step);
        for (int64_t l = 0; l < t->cfg.num_layers; ++l)  // DeepSeek-V3's aux-loss-free bias (sigmoid_bias)
            if (t->cfg.is_moe_layer(l) && t->cfg.moe.router.kind == RouterKind::sigmoid_bias) {
                // Under mpirun from the load of every rank's tokens: the bias stays one tensor.
                std::vector<double> load = moe_layer_bias_load(t->cache.layers[size_t(l)].moe, t->cfg.moe);
                if (dist) dist->sum(load.data(), int64_t(load.size()));
                moe_layer_update_bias(t->p.layers[size_t(l)].moe, load, t->cfg.moe);
            }
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        // Fit the schedule to the time budget: after 5 steps, and again after the first
        // validation pass, whose cost then counts too.
        if (o.steps == 0 && !o.resume && (step == 5 || step == o.eval_every + 1)) {
            oc.total = std::max<int64_t>(step + 1, int64_t(o.time_budget / (elapsed / double(step))));
            oc.warmup = std::min(oc.warmup, oc.total / 10);
            if (dist) {  // rank 0's clock decides, or the ranks would stop at different steps
                int64_t sched[2] = {oc.total, oc.warmup};
                dist->broadcast(sched, 2);
                oc.total = sched[0], oc.warmup = sched[1];
            }
        }
        nlohmann::json load = nlohmann::json::array();  // this step's, before validation reuses the cache
        for (const auto& layer : t->cache.layers) {
            std::vector<int64_t> counts = moe_layer_load_stats(layer.moe).counts;
            if (dist) {  // every rank's tokens
                std::vector<double> c(counts.begin(), counts.end());
                dist->sum(c.data(), int64_t(c.size()));
                for (size_t e = 0; e < c.size(); ++e) counts[e] = int64_t(c[e]);
            }
            load.push_back(counts);
        }
        if (step % o.eval_every == 0 || step == oc.total) val_loss = t->eval(val);
        if (lead && (step % o.log_every == 0 || step == oc.total || step % o.eval_every == 0)) {
            nlohmann::json j = {{"step", step}, {"loss", L.total}, {"ce", L.ce}, {"ppl", std::exp(L.ce)},
                                {"aux", L.aux}, {"z", L.z}, {"lr", lr_at(oc, step)}, {"grad_norm", gnorm},
                                {"tokens_per_s", double((step - step0) * N) / elapsed}, {"elapsed_s", elapsed}};
            if (step % o.eval_every == 0 || step == oc.total) j["val_loss"] = val_loss;
            j["expert_load"] = load;
            log << j.dump() << "\n";
            log.flush();
            std::fprintf(stderr, "\rstep %lld/%lld %s loss %.3f val %.3f  %.0f tok/s  %.0fs left   ",
                         (long long)step, (long long)oc.total, progress_bar(double(step) / double(oc.total)).c_str(), L.ce, val_loss,
                         double((step - step0) * N) / elapsed, elapsed / double(step - step0) * double(oc.total - step));
        }
        if ((o.save_every > 0 && step % o.save_every == 0) || step == oc.total || step == o.stop_after) save(step);
        if (step == o.stop_after) {
            stopped = true;
            ++step;
            break;
        }
    }
    if (lead) std::fprintf(stderr, "\n");
    const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (dist) t->gather_full();  // rank 0 samples from the whole model
    if (!lead) return;
    if (stopped) {
        std::printf("moe train: stopped after step %lld (--stop-after); %s/checkpoint.safetensors holds it, "
                    "continue with --resume\n", (long long)(step - 1), o.out.c_str());
        return;
    }
    const double tok_s = double((step - 1 - step0) * N) / total_s;
    std::printf("moe train: %lld steps, %.0f s, %.0f tokens/s (%.1f model GFLOP/s), validation loss %.3f "
                "(perplexity %.1f)\n", (long long)(step - 1), total_s, tok_s,
                tok_s * train_flops_per_token(t->cfg, o.seq_len) * 1e-9, val_loss, std::exp(val_loss));
    const ModelParams& whole = dist ? t->full : t->p;
    std::printf("--- sample (temperature %.1f) ---\n%s\n", o.temperature, sample_text(t->cfg, infer_weights(whole, t->cfg), tok, o.prompt, o.sample_tokens, o.temperature, o.seq_len, rng).c_str());
    std::printf("--- run files in %s: metrics.jsonl, tokenizer.json, config.json, model.safetensors, "
                "checkpoint.safetensors, train.tokens, val.tokens ---\n",
                o.out.c_str());
}

void run_train(const TrainOptions& opts) {
    const std::unique_ptr<TrainDist> dist = TrainDist::start_if_launched();
    if (dist == nullptr || dist->ranks() == 1) return train_loop(opts, dist.get());
    try {
        train_loop(opts, dist.get());
    } catch (const Error& e) {
        // The others may be waiting for this rank in a collective: end them all.
        dist->abort_with(e.what());
    } catch (const std::bad_alloc&) {
        dist->abort_with("out of memory; try a smaller shape or fewer tokens");
    }
}

}  // namespace

void register_train(CLI::App& app) {
    auto o = std::make_shared<TrainOptions>();
    CLI::App* cmd = app.add_subcommand("train", "train an MoE language model on a text file and print a sample");
    cmd->add_option("--data", o->data, "UTF-8 text file (default: data/kjv.txt, written by scripts/setup.sh)");
    cmd->add_option("--out", o->out, "run directory: tokenizer.json, metrics.jsonl");
    cmd->add_option("--tokenizer", o->tokenizer, "use this tokenizer.json (byte-level or SentencePiece-style BPE) instead of training one; sets the vocabulary size");
    cmd->add_option("--vocab-size", o->vocab, "BPE vocabulary size")->check(CLI::Range(int64_t(256), int64_t(1) << 20));
    cmd->add_option("--num-hidden-layers", o->layers, "transformer blocks")->check(CLI::Range(int64_t(1), int64_t(1024)));
    cmd->add_option("--hidden-size", o->hidden, "model width D")->check(CLI::Range(int64_t(8), int64_t(1) << 16));
    cmd->add_option("--num-attention-heads", o->heads, "attention heads")->check(CLI::Range(int64_t(1), int64_t(1024)));
    cmd->add_option("--num-key-value-heads", o->kv_heads, "key / value heads (GQA)")->check(CLI::Range(int64_t(1), int64_t(1024)));
    cmd->add_option("--num-local-experts", o->experts, "routed experts per layer (0 = a dense model)")->check(CLI::Range(int64_t(0), int64_t(1024)));
    cmd->add_option("--num-experts-per-tok", o->top_k, "experts per token (K)")->check(CLI::Range(int64_t(1), int64_t(1024)));
    cmd->add_option("--intermediate-size", o->expert_ff, "hidden size of one expert")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    cmd->add_option("--decoder-sparse-step", o->sparse_step, "every step-th layer is MoE, the others dense (Switch: 2)")->check(CLI::Range(int64_t(1), int64_t(1024)));
    cmd->add_option("--mlp-only-layers", o->mlp_only_layers, "layers with a dense FFN (comma-separated indices)")->delimiter(',');
    cmd->add_option("--dense-intermediate-size", o->dense_ff, "hidden size of a dense FFN (0 = top_k * intermediate_size)")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_option("--n-shared-experts", o->n_shared, "shared experts every token goes through (DeepSeekMoE)")->check(CLI::Range(int64_t(0), int64_t(64)));
    cmd->add_option("--shared-expert-intermediate-size", o->shared_ff, "hidden size of a shared expert (0 = intermediate_size)")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_option("--dtype", o->dtype, "expert compute: f32, or bf16 (bf16 products, f32 master weights)")->check(CLI::IsMember({"f32", "bf16"}));
    cmd->add_option("--init", o->init, "start from this model directory (moe upcycle --out, or a run): its config.json, tokenizer.json and weights; the model flags are ignored");
    cmd->add_option("-c,--ctx-size", o->seq_len, "tokens per training sequence (context)")->check(CLI::Range(int64_t(2), int64_t(1) << 16));
    cmd->add_option("-b,--batch", o->batch, "sequences per step")->check(CLI::Range(int64_t(1), int64_t(1) << 16));
    cmd->add_option("--steps", o->steps, "optimizer steps (0 = as many as --time-budget allows)")->check(CLI::Range(int64_t(0), int64_t(1) << 40));
    cmd->add_option("--time-budget", o->time_budget, "seconds of training when --steps is 0")->check(CLI::Range(1.0, 1e7));
    cmd->add_option("--lr", o->lr, "peak learning rate")->check(CLI::Range(0.0, 10.0));
    cmd->add_option("--warmup", o->warmup, "warm-up steps")->check(CLI::Range(int64_t(0), int64_t(1) << 40));
    cmd->add_option("--weight-decay", o->weight_decay, "AdamW decoupled weight decay (matrices only)");
    cmd->add_option("--clip", o->clip, "gradient clipping max norm (0 = off)");
    cmd->add_option("--aux-coef", o->aux_coef, "router balance loss coefficient (router_aux_loss_coef)");
    cmd->add_option("--z-coef", o->z_coef, "router z-loss coefficient (router_z_loss_coef)");
    cmd->add_option("--eval-every", o->eval_every, "steps between validation passes")->check(CLI::Range(int64_t(1), int64_t(1) << 40));
    cmd->add_option("-n,--sample-tokens", o->sample_tokens, "tokens to generate at the end")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    cmd->add_option("-p,--prompt", o->prompt, "prompt of the sample");
    cmd->add_option("--temp", o->temperature, "sampling temperature")->check(CLI::Range(0.01, 100.0));
    cmd->add_option("-s,--seed", o->seed, "seed of the initialisation, batches and sampling");
    cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->add_option("--grad-accum", o->grad_accum, "micro-batches per optimizer step (gradient accumulation)")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    cmd->add_flag("--tie-word-embeddings", o->tie, "the LM head is the embedding matrix");
    cmd->add_option("--log-every", o->log_every, "steps between metrics.jsonl lines")->check(CLI::Range(int64_t(1), int64_t(1) << 40));
    cmd->add_option("--save-every", o->save_every, "steps between checkpoints (and at the end; 0 = only at the end)")->check(CLI::Range(int64_t(0), int64_t(1) << 40));
    cmd->add_flag("--resume", o->resume, "continue from --out's checkpoint.safetensors and tokenizer.json");
    cmd->add_option("--stop-after", o->stop_after, "stop after this step, checkpointed (an interruption, for testing resume)")->check(CLI::Range(int64_t(0), int64_t(1) << 40));
    cmd->add_option("--expert-ranks", o->expert_ranks, "under mpirun: ranks sharing one copy of the experts (0 = all); the N / G copies average their gradients")->check(CLI::Range(0, 1 << 20));
    add_router_options(cmd, o->router);
    cmd->callback([o] { run_train(*o); });
}

}  // namespace moe::cli
