// libFuzzer target for the GGUF reader: parse arbitrary bytes, then read everything the parse
// promises is valid (every metadata value through its typed getter, every tensor's bytes, the
// dequantized values of small tensors). Anything but moe::Error is a bug. Build and run:
// docs/formats.md ("Fuzzing").
#include <cstddef>
#include <cstdint>

#include "moe/error.h"
#include "moe/gguf.h"

namespace {

volatile uint64_t g_sink;

template <class T> void touch_array(const moe::GgufFile& g, const std::string& key) {
    for (const auto& x : g.get_array<T>(key)) g_sink = g_sink + uint64_t(x != T(0));
}

void touch_value(const moe::GgufFile& g, const std::string& key, const moe::GgufValue& v) {
    using moe::GgufType;
    switch (v.type) {
        case GgufType::u8: g_sink = g.get<uint8_t>(key); break;
        case GgufType::i8: g_sink = uint64_t(g.get<int8_t>(key)); break;
        case GgufType::u16: g_sink = g.get<uint16_t>(key); break;
        case GgufType::i16: g_sink = uint64_t(g.get<int16_t>(key)); break;
        case GgufType::u32: g_sink = g.get<uint32_t>(key); break;
        case GgufType::i32: g_sink = uint64_t(g.get<int32_t>(key)); break;
        case GgufType::u64: g_sink = g.get<uint64_t>(key); break;
        case GgufType::i64: g_sink = uint64_t(g.get<int64_t>(key)); break;
        case GgufType::f32: g_sink = uint64_t(g.get<float>(key) != 0.0f); break;
        case GgufType::f64: g_sink = uint64_t(g.get<double>(key) != 0.0); break;
        case GgufType::boolean: g_sink = g.get<bool>(key); break;
        case GgufType::string: g_sink = g.get<std::string>(key).size(); break;
        case GgufType::array:
            switch (v.elem_type) {
                case GgufType::u8: touch_array<uint8_t>(g, key); break;
                case GgufType::i8: touch_array<int8_t>(g, key); break;
                case GgufType::u16: touch_array<uint16_t>(g, key); break;
                case GgufType::i16: touch_array<int16_t>(g, key); break;
                case GgufType::u32: touch_array<uint32_t>(g, key); break;
                case GgufType::i32: touch_array<int32_t>(g, key); break;
                case GgufType::u64: touch_array<uint64_t>(g, key); break;
                case GgufType::i64: touch_array<int64_t>(g, key); break;
                case GgufType::f32: touch_array<float>(g, key); break;
                case GgufType::f64: touch_array<double>(g, key); break;
                case GgufType::boolean: touch_array<bool>(g, key); break;
                case GgufType::string:
                    for (const auto& s : g.get_array<std::string>(key)) g_sink = g_sink + s.size();
                    break;
                case GgufType::array: break;
            }
            break;
    }
    try {
        g_sink = uint64_t(g.get_int(key));
    } catch (const moe::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const moe::GgufFile g = moe::GgufFile::from_bytes({data, size}, "fuzz.gguf");
        for (const auto& [key, v] : g.metadata()) touch_value(g, key, v);
        for (const moe::GgufTensor& t : g.tensors()) {
            const uint8_t* p = g.tensor_data(t);
            g_sink = p[0] + p[t.nbytes - 1];
            if (moe::ggml_type_info(t.type).dequantize && t.numel() <= (int64_t(1) << 16))
                g_sink = g.dequantize(t.name).size();
        }
    } catch (const moe::Error&) {
    }
    return 0;
}
