// safetensors files (Hugging Face): 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data. Every size and offset is checked before anything is read.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "moe/files.h"
#include "moe/tensor.h"

namespace moe {

struct SafetensorsEntry {
    std::string dtype;           // "F32", "BF16", "I32", "F16", ...
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0; // byte offsets into the data section
};

class SafetensorsFile {
public:
    // Maps the file (read-only) and validates its header; throws moe::Error naming the file and
    // the problem. Tensor data is read from the mapping, paged in when first used.
    explicit SafetensorsFile(const std::string& path);
    // The same checks on the bytes of a whole file in memory (copied); `name` stands for the
    // file in error messages.
    static SafetensorsFile from_bytes(std::span<const uint8_t> bytes, const std::string& name = "<memory>");

    const std::string& path() const { return path_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
    bool has(const std::string& name) const { return entries_.count(name) != 0; }
    // Metadata value, or throws naming the key.
    const std::string& meta(const std::string& key) const;

    // Copies of a tensor's values; throws if absent or of another dtype (f32 also converts
    // F16 and BF16, exactly).
    std::vector<float> f32(const std::string& name) const;
    std::vector<int32_t> i32(const std::string& name) const;
    std::vector<int64_t> shape(const std::string& name) const;
    // A tensor's entry and its bytes where they lie (valid while this file, or a copy of it, lives).
    const SafetensorsEntry& info(const std::string& name) const;
    const uint8_t* tensor_data(const SafetensorsEntry& e) const { return data_ + e.begin; }

private:
    SafetensorsFile() = default;
    void parse_header(const std::string& header, uint64_t data_size);
    const SafetensorsEntry& entry(const std::string& name, const char* dtype) const;
    std::string path_;
    std::shared_ptr<const MappedFile> map_;           // the file (a path)
    std::shared_ptr<const std::vector<uint8_t>> owned_;  // or a copy of its data (from_bytes)
    const uint8_t* data_ = nullptr;                    // the data section
    std::map<std::string, std::string> metadata_;
    std::map<std::string, SafetensorsEntry> entries_;
};

// Writes f32 / i32 tensors and string metadata as a safetensors file, atomically: a temporary file
// in the same directory, fsync, rename over `path`, fsync of the directory. A crash leaves
// either the old file or the new one, never a half-written one.
void safetensors_write(const std::string& path,
                       const std::vector<std::pair<std::string, TensorView>>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace moe
