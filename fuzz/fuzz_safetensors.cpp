// libFuzzer target for the safetensors reader: parse arbitrary bytes, then copy out every F32
// and I32 tensor the parse accepted. Anything but moe::Error is a bug. docs/formats.md ("Fuzzing").
#include <cstddef>
#include <cstdint>

#include "moe/error.h"
#include "moe/safetensors.h"

namespace {
volatile uint64_t g_sink;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const moe::SafetensorsFile f = moe::SafetensorsFile::from_bytes({data, size}, "fuzz.safetensors");
        for (const auto& [key, value] : f.metadata()) g_sink = key.size() + value.size();
        for (const auto& [name, e] : f.entries()) {
            if (e.dtype == "F32") g_sink = f.f32(name).size();
            if (e.dtype == "I32") g_sink = f.i32(name).size();
            g_sink = f.shape(name).size();
        }
    } catch (const moe::Error&) {
    }
    return 0;
}
