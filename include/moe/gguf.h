// GGUF files (llama.cpp), versions 2 and 3, little-endian, memory-mapped read-only:
//   "GGUF" | u32 version | u64 n_tensors | u64 n_kv | n_kv x (string key, u32 type, value)
//   | n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)
//   | padding to the alignment (general.alignment, default 32) | data section.
// A string is u64 length + bytes (no NUL); an array is u32 element type, u64 count, elements.
// ne[0] is the contiguous dimension (ggml order); shape() gives PyTorch order (ne reversed).
// Every count, length, dimension and offset is checked before it is used (docs/formats.md):
// a truncated or corrupt file throws moe::Error naming the file and the key or tensor.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "moe/files.h"
#include "moe/quant.h"

namespace moe {

enum class GgufType : uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8,
    array = 9, u64 = 10, i64 = 11, f64 = 12,
};
const char* gguf_type_name(GgufType t);  // "uint32", "string", "array", ...

// One metadata value. Scalars and numeric arrays point into the file's bytes (little-endian);
// strings are views of those bytes. Valid as long as the GgufFile lives.
struct GgufValue {
    GgufType type = GgufType::u8;
    GgufType elem_type = GgufType::u8;        // element type when type == array
    uint64_t count = 1;                       // number of elements when type == array
    const uint8_t* data = nullptr;            // a scalar, or the first element of a numeric array
    std::vector<std::string_view> strings;    // the string, or the elements of a string array

    std::string type_str() const;             // "uint32", "array[string]"
};

struct GgufTensor {
    std::string name;
    GgmlType type = GgmlType::f32;
    int n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] contiguous
    uint64_t offset = 0;           // from the start of the data section
    uint64_t nbytes = 0;

    int64_t numel() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    std::vector<int64_t> shape() const;  // PyTorch order: ne[n_dims-1], ..., ne[0]
};

class GgufFile {
public:
    // Maps and parses a file; throws naming the file and the problem.
    explicit GgufFile(const std::string& path);
    // Parses bytes in memory without copying them: they must outlive this object. `name` stands
    // for the file in error messages.
    static GgufFile from_bytes(std::span<const uint8_t> bytes, const std::string& name = "<memory>");
    // A temporary buffer would die before the views into it: not allowed.
    static GgufFile from_bytes(std::vector<uint8_t>&&, const std::string& = "") = delete;

    GgufFile(GgufFile&&) noexcept;
    GgufFile& operator=(GgufFile&&) noexcept;
    ~GgufFile();

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }  // start of the data section in the file

    // Metadata in file order, and lookup by key (throws naming the key when absent).
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
    bool has(const std::string& key) const { return kv_index_.count(key) != 0; }
    const GgufValue& value(const std::string& key) const;

    // Typed getters: the value must have exactly this type (T one of uint8_t, int8_t, uint16_t,
    // int16_t, uint32_t, int32_t, uint64_t, int64_t, float, double, bool, std::string);
    // otherwise they throw naming the key, the type asked for and the type found.
    template <class T> T get(const std::string& key) const;
    template <class T> std::vector<T> get_array(const std::string& key) const;
    // Any integer type whose value fits in int64 (llama.cpp's hyper-parameters vary in width).
    int64_t get_int(const std::string& key) const;

    const std::vector<GgufTensor>& tensors() const { return tensors_; }
    bool has_tensor(const std::string& name) const { return tensor_index_.count(name) != 0; }
    const GgufTensor& tensor(const std::string& name) const;  // throws naming the tensor
    const uint8_t* tensor_data(const GgufTensor& t) const { return base_ + data_offset_ + t.offset; }
    // The tensor's values as f32 (numel of them); throws for a type dequantize_row lacks.
    std::vector<float> dequantize(const std::string& name) const;
    // MappedFile::release on the file's mapping (nothing for from_bytes).
    void release(const void* p, uint64_t bytes) const;

private:
    GgufFile() = default;
    void parse();

    std::unique_ptr<MappedFile> map_;  // null for from_bytes
    const uint8_t* base_ = nullptr;
    uint64_t size_ = 0;
    std::string path_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::map<std::string, size_t, std::less<>> kv_index_;
    std::vector<GgufTensor> tensors_;
    std::map<std::string, size_t, std::less<>> tensor_index_;
};

// True when the file starts with the GGUF magic (for tools that accept several formats).
bool gguf_has_magic(const std::string& path);

}  // namespace moe
