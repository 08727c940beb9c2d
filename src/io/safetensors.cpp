#include "moe/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/files.h"
#include "moe/quant.h"

namespace moe {
namespace {

size_t safetensors_dtype_size(const std::string& d) {
    if (d == "F64" || d == "I64" || d == "U64") return 8;
    if (d == "F32" || d == "I32" || d == "U32") return 4;
    if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
    if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
    return 0;
}

// The 8-byte little-endian header length, checked against the file size.
uint64_t safetensors_header_len(const std::string& path, const unsigned char len_bytes[8], uint64_t file_size) {
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
    MOE_CHECK(header_len <= file_size - 8 && header_len <= (uint64_t(100) << 20), "safetensors",
              "'" + path + "': header length " + std::to_string(header_len) +
                  " exceeds the file size " + std::to_string(file_size) + " (truncated or not safetensors)");
    return header_len;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
    const char* op = "safetensors";
    map_ = std::make_shared<MappedFile>(path, op);
    const uint64_t file_size = map_->size();
    MOE_CHECK(file_size >= 8, op, "'" + path + "' is " + std::to_string(file_size) +
                                      " bytes, too short for a safetensors header (truncated?)");
    const uint64_t header_len = safetensors_header_len(path, map_->data(), file_size);
    parse_header(std::string(reinterpret_cast<const char*>(map_->data()) + 8, header_len), file_size - 8 - header_len);
    data_ = map_->data() + 8 + header_len;
}

SafetensorsFile SafetensorsFile::from_bytes(std::span<const uint8_t> bytes, const std::string& name) {
    SafetensorsFile f;
    f.path_ = name;
    MOE_CHECK(bytes.size() >= 8, "safetensors", "'" + name + "' is " + std::to_string(bytes.size()) +
                                                    " bytes, too short for a safetensors header (truncated?)");
    const uint64_t header_len = safetensors_header_len(name, bytes.data(), bytes.size());
    const uint64_t data_size = bytes.size() - 8 - header_len;
    f.parse_header(std::string(reinterpret_cast<const char*>(bytes.data()) + 8, header_len), data_size);
    auto owned = std::make_shared<std::vector<uint8_t>>(bytes.begin() + 8 + header_len, bytes.end());
    f.data_ = owned->data();
    f.owned_ = owned;
    return f;
}

void SafetensorsFile::parse_header(const std::string& header, uint64_t data_size) {
    const char* op = "safetensors";
    const std::string& path = path_;
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(header);
    } catch (const std::exception& e) {
        fail(op, "'" + path + "': header is not valid JSON: " + e.what());
    }
    MOE_CHECK(j.is_object(), op, "'" + path + "': header must be a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& name = it.key();
        const auto& v = it.value();
        if (name == "__metadata__") {
            MOE_CHECK(v.is_object(), op, "'" + path + "': __metadata__ must be an object");
            for (auto m = v.begin(); m != v.end(); ++m) {
                MOE_CHECK(m.value().is_string(), op, "'" + path + "': metadata '" + m.key() + "' is not a string");
                metadata_[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        std::string where = "'" + path + "' tensor '" + name + "'";
        MOE_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
                  op, where + ": needs dtype, shape and data_offsets");
        SafetensorsEntry e;
        MOE_CHECK(v["dtype"].is_string(), op, where + ": dtype is not a string");
        e.dtype = v["dtype"].get<std::string>();
        size_t esize = safetensors_dtype_size(e.dtype);
        MOE_CHECK(esize > 0, op, where + ": unknown dtype '" + e.dtype + "'");
        MOE_CHECK(v["shape"].is_array(), op, where + ": shape is not an array");
        uint64_t numel = 1;
        for (const auto& d : v["shape"]) {
            MOE_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0, op, where + ": bad dimension");
            uint64_t dim = d.get<uint64_t>();
            MOE_CHECK(dim == 0 || numel <= (uint64_t(1) << 48) / dim, op, where + ": shape too large");
            numel *= dim;
            e.shape.push_back(int64_t(dim));
        }
        const auto& off = v["data_offsets"];
        MOE_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                  op, where + ": data_offsets must be [begin, end]");
        e.begin = off[0].get<uint64_t>();
        e.end = off[1].get<uint64_t>();
        MOE_CHECK(e.begin <= e.end && e.end <= data_size, op,
                  where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                      "] outside the data section of " + std::to_string(data_size) + " bytes (truncated file?)");
        MOE_CHECK(e.end - e.begin == numel * esize, op,
                  where + ": " + std::to_string(e.end - e.begin) + " bytes for " + std::to_string(numel) +
                      " elements of " + e.dtype);
        entries_[name] = std::move(e);
    }
}

const std::string& SafetensorsFile::meta(const std::string& key) const {
    auto it = metadata_.find(key);
    MOE_CHECK(it != metadata_.end(), "safetensors", "'" + path_ + "' has no metadata key '" + key + "'");
    return it->second;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name, const char* dtype) const {
    auto it = entries_.find(name);
    MOE_CHECK(it != entries_.end(), "safetensors", "'" + path_ + "' has no tensor '" + name + "'");
    MOE_CHECK(it->second.dtype == dtype, "safetensors",
              "'" + path_ + "' tensor '" + name + "' is " + it->second.dtype + ", expected " + dtype);
    return it->second;
}

std::vector<float> SafetensorsFile::f32(const std::string& name) const {
    auto it = entries_.find(name);
    MOE_CHECK(it != entries_.end(), "safetensors", "'" + path_ + "' has no tensor '" + name + "'");
    const SafetensorsEntry& e = it->second;
    const GgmlType type = e.dtype == "F32" ? GgmlType::f32 : e.dtype == "F16" ? GgmlType::f16 : GgmlType::bf16;
    MOE_CHECK(e.dtype == "F32" || e.dtype == "F16" || e.dtype == "BF16", "safetensors",
              "'" + path_ + "' tensor '" + name + "' is " + e.dtype + "; weights must be F32, F16 or BF16");
    const int64_t n = int64_t(e.end - e.begin) / (type == GgmlType::f32 ? 4 : 2);
    std::vector<float> v(static_cast<size_t>(n));
    dequantize_row(type, data_ + e.begin, v.data(), n);
    return v;
}

std::vector<int32_t> SafetensorsFile::i32(const std::string& name) const {
    const SafetensorsEntry& e = entry(name, "I32");
    std::vector<int32_t> v((e.end - e.begin) / 4);
    std::memcpy(v.data(), data_ + e.begin, e.end - e.begin);
    return v;
}

const SafetensorsEntry& SafetensorsFile::info(const std::string& name) const {
    auto it = entries_.find(name);
    MOE_CHECK(it != entries_.end(), "safetensors", "'" + path_ + "' has no tensor '" + name + "'");
    return it->second;
}

std::vector<int64_t> SafetensorsFile::shape(const std::string& name) const {
    auto it = entries_.find(name);
    MOE_CHECK(it != entries_.end(), "safetensors", "'" + path_ + "' has no tensor '" + name + "'");
    return it->second.shape;
}

}  // namespace moe
