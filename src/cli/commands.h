// The `moe` subcommands: each registers its options on the CLI11 app and runs when chosen.
#pragma once
#include <CLI/CLI.hpp>

namespace moe::cli {

void register_bench_layer(CLI::App& bench);
void register_bench_gemm(CLI::App& bench);
void register_bench_router(CLI::App& bench);
void register_bench_run(CLI::App& bench);
void register_bench_alltoall(CLI::App& bench);
void register_bench_stream(CLI::App& bench);
void register_info(CLI::App& app);
void register_train(CLI::App& app);
void register_generate(CLI::App& app);
void register_upcycle(CLI::App& app);
void register_run(CLI::App& app);
void register_inspect(CLI::App& app);
void register_convert(CLI::App& app);

}  // namespace moe::cli
