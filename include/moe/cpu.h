// Run-time CPU dispatch. One binary runs on every x86-64: each kernel is compiled once per
// instruction-set path, and the path is chosen at start-up from the CPU's features, or forced
// with the environment variable MOE_CPU=scalar|avx2|avx512|avx512_bf16 (a path the CPU lacks
// is an error, not a silent fallback).
#pragma once

namespace moe {

enum class CpuPath : int { scalar = 0, avx2 = 1, avx512 = 2, avx512_bf16 = 3 };
constexpr int kNumCpuPaths = 4;

const char* cpu_path_name(CpuPath p);
bool cpu_supports(CpuPath p);  // the CPU and OS can run this path
CpuPath cpu_best_path();       // the fastest path this CPU supports
CpuPath cpu_active_path();     // MOE_CPU if set (validated), else cpu_best_path()

}  // namespace moe
