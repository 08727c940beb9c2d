// moe inspect FILE: the metadata and the tensor table (name, type, shape, bytes) of a GGUF or
// safetensors file, as a readable table or as JSON (--json). The format is told by the GGUF magic.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "moe/gguf.h"
#include "moe/safetensors.h"

namespace moe::cli {
namespace {

constexpr uint64_t kShownElements = 8;  // long arrays (vocabularies) are cut to their first values

template <class T> nlohmann::json numbers(const GgufValue& v) {
    nlohmann::json a = nlohmann::json::array();
    for (uint64_t i = 0; i < std::min(v.count, kShownElements); ++i) {
        T x;
        std::memcpy(&x, v.data + i * sizeof(T), sizeof(T));
        a.push_back(x);
    }
    return a;
}

nlohmann::json gguf_value_json(const GgufValue& v) {
    if (v.type == GgufType::string) return std::string(v.strings[0]);
    const GgufType t = v.type == GgufType::array ? v.elem_type : v.type;
    nlohmann::json a;
    switch (t) {
        case GgufType::u8: a = numbers<uint8_t>(v); break;
        case GgufType::i8: a = numbers<int8_t>(v); break;
        case GgufType::u16: a = numbers<uint16_t>(v); break;
        case GgufType::i16: a = numbers<int16_t>(v); break;
        case GgufType::u32: a = numbers<uint32_t>(v); break;
        case GgufType::i32: a = numbers<int32_t>(v); break;
        case GgufType::u64: a = numbers<uint64_t>(v); break;
        case GgufType::i64: a = numbers<int64_t>(v); break;
        case GgufType::f32: a = numbers<float>(v); break;
        case GgufType::f64: a = numbers<double>(v); break;
        case GgufType::boolean: a = numbers<bool>(v); break;
        case GgufType::string:
            a = nlohmann::json::array();
            for (uint64_t i = 0; i < std::min(v.count, kShownElements); ++i) a.push_back(std::string(v.strings[i]));
            break;
        case GgufType::array: break;
    }
    return v.type == GgufType::array ? a : a[0];
}

nlohmann::json inspect_gguf(const std::string& path) {
    GgufFile g(path);
    nlohmann::json j = {{"format", "gguf"}, {"version", g.version()}, {"alignment", g.alignment()}};
    nlohmann::json meta = nlohmann::json::array();
    for (const auto& [key, v] : g.metadata()) {
        nlohmann::json m = {{"key", key}, {"type", v.type_str()}, {"value", gguf_value_json(v)}};
        if (v.type == GgufType::array) m["count"] = v.count;
        meta.push_back(m);
    }
    j["metadata"] = meta;
    nlohmann::json ts = nlohmann::json::array();
    for (const GgufTensor& t : g.tensors())
        ts.push_back({{"name", t.name}, {"type", ggml_type_name(t.type)}, {"shape", t.shape()}, {"bytes", t.nbytes}});
    j["tensors"] = ts;
    return j;
}

nlohmann::json inspect_safetensors(const std::string& path) {
    SafetensorsFile f(path);
    nlohmann::json j = {{"format", "safetensors"}};
    nlohmann::json meta = nlohmann::json::array();
    for (const auto& [key, value] : f.metadata()) meta.push_back({{"key", key}, {"type", "string"}, {"value", value}});
    j["metadata"] = meta;
    nlohmann::json ts = nlohmann::json::array();
    for (const auto& [name, e] : f.entries())
        ts.push_back({{"name", name}, {"type", e.dtype}, {"shape", e.shape}, {"bytes", e.end - e.begin}});
    j["tensors"] = ts;
    return j;
}

void print_table(const nlohmann::json& j) {
    std::printf("format: %s\n", j["format"].get<std::string>().c_str());
    std::printf("\nmetadata (%zu):\n", j["metadata"].size());
    for (const auto& m : j["metadata"]) {
        std::string value = m["value"].dump();
        if (m.contains("count") && m["count"].get<uint64_t>() > kShownElements)
            value += " ... (" + std::to_string(m["count"].get<uint64_t>()) + " total)";
        std::printf("  %-40s %-16s %s\n", m["key"].get<std::string>().c_str(), m["type"].get<std::string>().c_str(),
                    value.c_str());
    }
    uint64_t total = 0;
    std::printf("\ntensors (%zu):\n  %-48s %-8s %-24s %s\n", j["tensors"].size(), "name", "type", "shape", "bytes");
    for (const auto& t : j["tensors"]) {
        total += t["bytes"].get<uint64_t>();
        std::printf("  %-48s %-8s %-24s %llu\n", t["name"].get<std::string>().c_str(),
                    t["type"].get<std::string>().c_str(), t["shape"].dump().c_str(),
                    static_cast<unsigned long long>(t["bytes"].get<uint64_t>()));
    }
    std::printf("  total %llu bytes\n", static_cast<unsigned long long>(total));
}

}  // namespace

void register_inspect(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("inspect", "print the metadata and tensors of a .gguf or .safetensors file");
    struct Options {
        std::string path;
        bool json = false;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option("file", o->path, "a GGUF or safetensors file")->required();
    cmd->add_flag("--json", o->json, "one JSON object instead of a table");
    cmd->callback([o] {
        const nlohmann::json j = gguf_has_magic(o->path) ? inspect_gguf(o->path) : inspect_safetensors(o->path);
        if (o->json)
            std::printf("%s\n", j.dump().c_str());
        else
            print_table(j);
    });
}

}  // namespace moe::cli
