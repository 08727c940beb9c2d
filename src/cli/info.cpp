// moe info: what this machine and build will use.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "moe/cpu.h"
#include "moe/gemm.h"

namespace moe::cli {

void register_info(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("info", "print the CPU paths and backends this build uses (JSON)");
    cmd->callback([] {
        nlohmann::json j;
        nlohmann::json paths = nlohmann::json::array();
        for (int p = 0; p < kNumCpuPaths; ++p)
            if (cpu_supports(CpuPath(p))) paths.push_back(cpu_path_name(CpuPath(p)));
        j["cpu_paths_supported"] = paths;
        j["cpu_path_active"] = cpu_path_name(cpu_active_path());
        j["gemm_backend"] = gemm_backend_name();
        j["threads"] = get_num_threads();
        std::printf("%s\n", j.dump().c_str());
    });
}

}  // namespace moe::cli
