// The GGUF reader against gguf-py (tests/fixtures/gguf_* from tools/gen_gguf_fixtures.py): every
// metadata value and type as GGUFReader reads it, every tensor's type, dims, size and offset, and
// every dequantized value bit for bit, on every CPU path. Corrupt files: test_gguf_errors.cpp.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/gguf.h"
#include "moe/safetensors.h"

using namespace moe;

namespace {

const std::string kDir = MOE_FIXTURE_DIR;

nlohmann::json reference() {
    std::ifstream f(kDir + "/gguf_ref.json");
    return nlohmann::json::parse(f);
}

std::vector<uint8_t> file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// The value of `key` as JSON, read through the typed getter its type calls for.
nlohmann::json value_json(const GgufFile& g, const std::string& key) {
    const GgufValue& v = g.value(key);
    switch (v.type) {
        case GgufType::u8: return g.get<uint8_t>(key);
        case GgufType::i8: return g.get<int8_t>(key);
        case GgufType::u16: return g.get<uint16_t>(key);
        case GgufType::i16: return g.get<int16_t>(key);
        case GgufType::u32: return g.get<uint32_t>(key);
        case GgufType::i32: return g.get<int32_t>(key);
        case GgufType::u64: return g.get<uint64_t>(key);
        case GgufType::i64: return g.get<int64_t>(key);
        case GgufType::f32: return double(g.get<float>(key));
        case GgufType::f64: return g.get<double>(key);
        case GgufType::boolean: return g.get<bool>(key);
        case GgufType::string: return g.get<std::string>(key);
        case GgufType::array: break;
    }
    switch (v.elem_type) {
        case GgufType::u8: return g.get_array<uint8_t>(key);
        case GgufType::i8: return g.get_array<int8_t>(key);
        case GgufType::u16: return g.get_array<uint16_t>(key);
        case GgufType::i16: return g.get_array<int16_t>(key);
        case GgufType::u32: return g.get_array<uint32_t>(key);
        case GgufType::i32: return g.get_array<int32_t>(key);
        case GgufType::u64: return g.get_array<uint64_t>(key);
        case GgufType::i64: return g.get_array<int64_t>(key);
        case GgufType::f32: {
            nlohmann::json a = nlohmann::json::array();
            for (float f : g.get_array<float>(key)) a.push_back(double(f));
            return a;
        }
        case GgufType::f64: return g.get_array<double>(key);
        case GgufType::boolean: return g.get_array<bool>(key);
        case GgufType::string: return g.get_array<std::string>(key);
        case GgufType::array: break;
    }
    return nullptr;
}

void expect_matches_reference(const GgufFile& g, const nlohmann::json& ref) {
    EXPECT_EQ(g.version(), 3u);
    EXPECT_EQ(g.alignment(), ref["alignment"].get<uint64_t>());
    EXPECT_EQ(g.data_offset(), ref["data_offset"].get<uint64_t>());
    ASSERT_EQ(g.metadata().size(), ref["kv"].size());
    for (const auto& [key, v] : g.metadata()) {
        ASSERT_TRUE(ref["kv"].contains(key)) << key;
        const auto& want = ref["kv"][key];
        EXPECT_EQ(v.type_str(), want["type"].get<std::string>()) << key;
        EXPECT_EQ(value_json(g, key), want["value"]) << key;
    }
    ASSERT_EQ(g.tensors().size(), ref["tensors"].size());
    for (const GgufTensor& t : g.tensors()) {
        ASSERT_TRUE(ref["tensors"].contains(t.name)) << t.name;
        const auto& want = ref["tensors"][t.name];
        EXPECT_STREQ(ggml_type_name(t.type), want["type"].get<std::string>().c_str()) << t.name;
        std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
        EXPECT_EQ(ne, want["ne"].get<std::vector<int64_t>>()) << t.name;
        EXPECT_EQ(t.nbytes, want["n_bytes"].get<uint64_t>()) << t.name;
        EXPECT_EQ(g.data_offset() + t.offset, want["data_offset"].get<uint64_t>()) << t.name;
    }
}

}  // namespace

TEST(Gguf, MetadataAndTensorInfosMatchGgufPy) {
    const auto ref = reference();
    for (const char* name : {"types", "align64"}) {
        SCOPED_TRACE(name);
        GgufFile g(kDir + "/gguf_" + name + ".gguf");
        expect_matches_reference(g, ref[name]);
        // The same bytes parsed from memory give the same result.
        const auto bytes = file_bytes(kDir + "/gguf_" + name + ".gguf");
        expect_matches_reference(GgufFile::from_bytes(bytes), ref[name]);
    }
}

TEST(Gguf, ShapesArePytorchOrder) {
    GgufFile g(kDir + "/gguf_types.gguf");
    EXPECT_EQ(g.tensor("t.f16").shape(), (std::vector<int64_t>{2, 4, 8}));
    EXPECT_EQ(g.tensor("t.f32_4d").shape(), (std::vector<int64_t>{2, 1, 3, 4}));
    EXPECT_EQ(g.tensor("t.q4_k").shape(), (std::vector<int64_t>{2, 512}));
    EXPECT_EQ(g.tensor("t.q4_k").ne[0], 512);
    EXPECT_EQ(g.tensor("t.q4_k").nbytes, 2u * 2u * 144u);
}

TEST(Gguf, DequantizedValuesEqualGgufPyOnEveryPath) {
    SafetensorsFile ref(kDir + "/gguf_ref.safetensors");
    int checked = 0;
    for (const char* name : {"types", "align64"}) {
        GgufFile g(kDir + "/gguf_" + name + ".gguf");
        for (const GgufTensor& t : g.tensors()) {
            const std::string key = std::string(name) + "/" + t.name;
            if (!ggml_type_info(t.type).dequantize) continue;
            ASSERT_TRUE(ref.has(key)) << key;
            EXPECT_EQ(ref.shape(key), t.shape()) << key;
            const std::vector<float> want = ref.f32(key);
            ASSERT_EQ(int64_t(want.size()), t.numel()) << key;
            for (CpuPath p : {CpuPath::scalar, CpuPath::avx2, CpuPath::avx512}) {
                const DequantTable* table = dequant_kernels_for(p);
                if (!table) continue;
                std::vector<float> got(want.size(), -7.0f);
                dequantize_row(*table, t.type, g.tensor_data(t), got.data(), t.numel());
                for (size_t i = 0; i < want.size(); ++i)
                    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
                        << key << " [" << cpu_path_name(p) << "] value " << i << ": " << got[i] << " vs " << want[i];
            }
            EXPECT_EQ(g.dequantize(t.name), want) << key;  // the active path, through the file API
            ++checked;
        }
    }
    EXPECT_EQ(checked, 14);  // every tensor but the Q2_K one
}

TEST(Gguf, TypedGettersNameTheKeyAndTheTypes) {
    GgufFile g(kDir + "/gguf_types.gguf");
    EXPECT_EQ(g.get<uint32_t>("llama.context_length"), 4096u);
    EXPECT_EQ(g.get_int("llama.context_length"), 4096);
    EXPECT_EQ(g.get_int("test.i8"), -100);
    EXPECT_EQ(g.get_int("test.u16"), 60000);
    EXPECT_EQ(g.get_array<std::string>("test.arr.string")[3], "\xc3\xbcn\xc3\xaf");
    auto expect_error = [&](auto&& fn, const std::string& want) {
        try {
            fn();
            ADD_FAILURE() << "expected an error containing: " << want;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("gguf_types.gguf"), std::string::npos) << e.what();
        }
    };
    expect_error([&] { g.get<uint32_t>("test.u8"); }, "key 'test.u8' is uint8, not uint32");
    expect_error([&] { g.get<std::string>("test.arr.string"); }, "key 'test.arr.string' is array[string], not string");
    expect_error([&] { g.get_array<int32_t>("test.arr.u32"); }, "key 'test.arr.u32' is array[uint32], not array[int32]");
    expect_error([&] { g.get<float>("no.such.key"); }, "has no metadata key 'no.such.key'");
    expect_error([&] { g.get_int("test.u64"); }, "key 'test.u64' = 9223372036854775813 does not fit in int64");
    expect_error([&] { g.get_int("test.f32"); }, "key 'test.f32' is float32, not an integer");
    expect_error([&] { g.tensor("t.missing"); }, "has no tensor 't.missing'");
    expect_error([&] { g.dequantize("t.q2_k"); }, "tensor 't.q2_k' is Q2_K, which moe cannot dequantize yet");
}
