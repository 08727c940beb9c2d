// moe: the command-line program (moe bench | info | inspect | train | generate | upcycle | convert;
// run and serve come with their issues). Errors from bad input print one line and exit 1; nothing aborts.
#include <cstdio>
#include <exception>

#include "commands.h"
#include "moe/error.h"

int main(int argc, char** argv) {
    CLI::App app{"moe: a Mixture-of-Experts engine"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "moe 0.1.0");
    CLI::App* bench = app.add_subcommand("bench", "benchmarks, printing one JSON line per measurement");
    bench->require_subcommand(1);
    moe::cli::register_bench_layer(*bench);
    moe::cli::register_bench_gemm(*bench);
    moe::cli::register_bench_router(*bench);
    moe::cli::register_bench_run(*bench);
    moe::cli::register_bench_alltoall(*bench);
    moe::cli::register_bench_stream(*bench);
    moe::cli::register_info(app);
    moe::cli::register_train(app);
    moe::cli::register_generate(app);
    moe::cli::register_upcycle(app);
    moe::cli::register_run(app);
    moe::cli::register_inspect(app);
    moe::cli::register_convert(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const moe::Error& e) {
        std::fprintf(stderr, "moe: error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "moe: error: out of memory; try a smaller shape or fewer tokens\n");
        return 1;
    }
    return 0;
}
