#include "moe/cpu.h"
#include "moe/kernels.h"

namespace moe {

const KernelTable* kernels_for(CpuPath p) {
    if (!cpu_supports(p)) return nullptr;
    switch (p) {
        case CpuPath::scalar: return &kKernelsScalar;
        case CpuPath::avx2: return &kKernelsAvx2;
        // The element-wise kernels gain nothing from the BF16 dot-product instructions.
        case CpuPath::avx512:
        case CpuPath::avx512_bf16: return &kKernelsAvx512;
    }
    return nullptr;
}

const KernelTable& kernels() {
    static const KernelTable* table = kernels_for(cpu_active_path());
    return *table;
}

}  // namespace moe
