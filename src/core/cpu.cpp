#include "moe/cpu.h"

#include <cpuid.h>

#include <cstdlib>
#include <string>

#include "moe/error.h"

namespace moe {

namespace {

// CPUID leaf 1, ECX bit 29. (Clang 14 has no "f16c" for __builtin_cpu_supports.)
bool cpu_has_f16c() {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

}  // namespace

const char* cpu_path_name(CpuPath p) {
    switch (p) {
        case CpuPath::scalar: return "scalar";
        case CpuPath::avx2: return "avx2";
        case CpuPath::avx512: return "avx512";
        case CpuPath::avx512_bf16: return "avx512_bf16";
    }
    return "?";
}

bool cpu_supports(CpuPath p) {
    __builtin_cpu_init();
    switch (p) {
        case CpuPath::scalar: return true;
        case CpuPath::avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   cpu_has_f16c();
        case CpuPath::avx512:
            return cpu_supports(CpuPath::avx2) && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512dq");
        case CpuPath::avx512_bf16:
            return cpu_supports(CpuPath::avx512) && __builtin_cpu_supports("avx512bf16");
    }
    return false;
}

CpuPath cpu_best_path() {
    for (int p = kNumCpuPaths - 1; p > 0; --p)
        if (cpu_supports(CpuPath(p))) return CpuPath(p);
    return CpuPath::scalar;
}

CpuPath cpu_active_path() {
    const char* env = std::getenv("MOE_CPU");
    if (!env || !*env) return cpu_best_path();
    std::string want(env);
    for (int p = 0; p < kNumCpuPaths; ++p) {
        if (want == cpu_path_name(CpuPath(p))) {
            if (!cpu_supports(CpuPath(p)))
                fail("cpu", "MOE_CPU=" + want + " but this CPU does not support it; best is " +
                                cpu_path_name(cpu_best_path()));
            return CpuPath(p);
        }
    }
    fail("cpu", "MOE_CPU=" + want + " is not a path; use scalar, avx2, avx512 or avx512_bf16");
}

}  // namespace moe
