// moe bench gemm: the SGEMM ceiling of a layer shape. Times, through moe::gemm_f32, exactly the
// matrix products the layer runs (per expert, n = T*K/E rows: gate and up x @ w^T, down a @ w2^T,
// and in backward da, dw2, dw1, dw3, two dx products), sums them as the layer would and reports
// GFLOP/s: the "best SGEMM GFLOP/s for the same matrix sizes" the layer is compared with.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "layer_shapes.h"
#include "moe/gemm.h"
#include "moe/gemm_bf16.h"
#include "moe/kernels.h"
#include "moe/rng.h"
#include "moe/tensor.h"

namespace moe::cli {
namespace {

struct Product {
    const char* name;
    bool ta, tb;
    int64_t M, N, K;
    int64_t count;  // how many times one layer step runs it
    bool backward;
};

double time_product(const Product& p, int reps, bool bf) {
    Buffer a(DType::f32, {p.M * p.K}), b(DType::f32, {p.K * p.N}), c(DType::f32, {p.M * p.N});
    Rng rng(3);
    rng.fill_normal(a.f32(), a.numel(), 0, 1);
    rng.fill_normal(b.f32(), b.numel(), 0, 1);
    Buffer ab(DType::bf16, {bf ? p.M * p.K : 0}), bb(DType::bf16, {bf ? p.K * p.N : 0});
    if (bf) {
        kernels().f32_to_bf16(ab.bf(), a.f32(), a.numel());
        kernels().f32_to_bf16(bb.bf(), b.f32(), b.numel());
    }
    const int64_t lda = p.ta ? p.M : p.K, ldb = p.tb ? p.K : p.N;
    std::vector<double> t;
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        if (bf)
            gemm_bf16(p.ta, p.tb, p.M, p.N, p.K, 1.0f, ab.bf(), lda, bb.bf(), ldb, 0.0f, c.f32(), p.N);
        else
            gemm_f32(p.ta, p.tb, p.M, p.N, p.K, 1.0f, a.f32(), lda, b.f32(), ldb, 0.0f, c.f32(), p.N);
        auto t1 = std::chrono::steady_clock::now();
        if (r > 0) t.push_back(std::chrono::duration<double>(t1 - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

void add_swiglu(std::vector<Product>& ps, int64_t n, int64_t D, int64_t F, int64_t count) {
    ps.push_back({"fwd_gate_up x@w1T", false, true, n, F, D, 2 * count, false});
    ps.push_back({"fwd_down a@w2T", false, true, n, D, F, count, false});
    ps.push_back({"bwd_dw2 dyT@a", true, false, D, F, n, count, true});
    ps.push_back({"bwd_da dy@w2", false, false, n, F, D, count, true});
    ps.push_back({"bwd_dw13 dhT@x", true, false, F, D, n, 2 * count, true});
    ps.push_back({"bwd_dx dh@w", false, false, n, D, F, 2 * count, true});
}

}  // namespace

void register_bench_gemm(CLI::App& bench) {
    auto shape = std::make_shared<std::string>("S1");
    auto reps = std::make_shared<int>(5);
    auto threads = std::make_shared<int>(0);
    auto dtype = std::make_shared<std::string>("f32");
    auto verbose = std::make_shared<bool>(false);
    CLI::App* cmd = bench.add_subcommand("gemm", "SGEMM GFLOP/s on exactly the products of a layer shape");
    cmd->add_option("--shape", *shape, "S1 | S2 | S3")->check(CLI::IsMember({"S1", "S2", "S3"}));
    cmd->add_option("--reps", *reps, "timed repetitions per product (median)")->check(CLI::Range(1, 1000));
    cmd->add_option("-t,--threads", *threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->add_option("--dtype", *dtype, "f32 (gemm_f32) or bf16 (gemm_bf16: bf16 inputs, f32 accumulation)")
        ->check(CLI::IsMember({"f32", "bf16"}));
    cmd->add_flag("--per-product", *verbose, "also print one line per distinct product");
    cmd->callback([=] {
        const bool bf = *dtype == "bf16";
        if (*threads > 0) set_num_threads(*threads);
        const LayerShape& s = layer_shape(*shape);
        std::vector<Product> ps;
        add_swiglu(ps, s.T * s.K / s.E, s.D, s.F, s.E);
        if (s.S > 0) add_swiglu(ps, s.T, s.D, s.Fs, s.S);
        double t_fwd = 0, t_all = 0, f_fwd = 0, f_all = 0;
        for (const Product& p : ps) {
            double t = time_product(p, *reps, bf) * double(p.count);
            double f = 2.0 * double(p.M) * double(p.N) * double(p.K) * double(p.count);
            if (*verbose) {
                nlohmann::json j{{"bench", "gemm_product"}, {"shape", s.name}, {"product", p.name},
                                 {"dtype", *dtype}, {"M", p.M}, {"N", p.N}, {"K", p.K},
                                 {"ta", p.ta}, {"tb", p.tb}, {"gflops", f / t * 1e-9}};
                std::printf("%s\n", j.dump().c_str());
            }
            t_all += t, f_all += f;
            if (!p.backward) t_fwd += t, f_fwd += f;
        }
        for (bool bwd : {false, true}) {
            nlohmann::json j;
            j["bench"] = "gemm";
            j["impl"] = bf ? "gemm_bf16" : gemm_backend_name();
            j["dtype"] = *dtype;
            j["shape"] = s.name;
            j["pass"] = bwd ? "fwd+bwd" : "fwd";
            j["threads"] = get_num_threads();
            j["reps"] = *reps;
            j["ms"] = (bwd ? t_all : t_fwd) * 1e3;
            j["gflops"] = (bwd ? f_all / t_all : f_fwd / t_fwd) * 1e-9;
            std::printf("%s\n", j.dump().c_str());
        }
    });
}

}  // namespace moe::cli
