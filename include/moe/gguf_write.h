// Writing GGUF v3 files (the layout of include/moe/gguf.h): metadata in the order added, tensor
// infos, then the data section, each tensor's bytes at an offset aligned to 32 (llama.cpp's
// default; general.alignment is not written) and padded with zeros. Written atomically:
// a temporary file beside the target, fsync, rename, fsync of the directory.
#pragma once
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "moe/quant.h"

namespace moe {

class GgufWriter {
public:
    static constexpr uint64_t kAlignment = 32;

    // Metadata; each key once (a repeat throws naming it).
    void add_u32(const std::string& key, uint32_t v);
    void add_i32(const std::string& key, int32_t v);
    void add_u64(const std::string& key, uint64_t v);
    void add_f32(const std::string& key, float v);
    void add_bool(const std::string& key, bool v);
    void add_string(const std::string& key, const std::string& v);
    void add_strings(const std::string& key, const std::vector<std::string>& v);
    void add_i32s(const std::string& key, const std::vector<int32_t>& v);
    void add_f32s(const std::string& key, const std::vector<float>& v);

    // A tensor of `type` with PyTorch-order `shape` (1 to 4 dims; the file stores them reversed,
    // ne[0] the contiguous one) whose bytes are `data`: exactly numel / block_size blocks,
    // rows (the last dim) a whole number of blocks. Throws naming the tensor otherwise.
    void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape, std::string data);
    // f32 values quantized to `type` row by row (quantize_row).
    void add_tensor_f32(const std::string& name, GgmlType type, const std::vector<int64_t>& shape, const float* values);
    // A tensor whose bytes are made when write() reaches it: fill(dst) writes exactly its byte
    // size (whole blocks, as add_tensor checks) into dst. write() holds one such tensor at a
    // time, so a file of any size is written with the memory of its largest lazy tensor.
    using Fill = std::function<void(char* dst)>;
    void add_tensor_lazy(const std::string& name, GgmlType type, const std::vector<int64_t>& shape, Fill fill);

    size_t n_tensors() const { return tensors_.size(); }
    uint64_t data_bytes() const { return data_bytes_; }  // the data section, padding included
    // Everything before the data section (metadata, tensor infos, padding to the alignment).
    std::string header() const;
    // The header, then each tensor's bytes (lazy ones filled now) and its padding, atomically.
    void write(const std::string& path) const;

private:
    struct Tensor {
        std::string name;
        GgmlType type;
        std::vector<int64_t> shape;  // PyTorch order
        uint64_t offset, nbytes;
        std::string data;  // the bytes, unless `fill` makes them at write()
        Fill fill;
    };
    void key(const std::string& k, uint32_t type);
    uint64_t check_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape);  // -> bytes
    void push(Tensor t);
    std::string kv_;  // serialized key-value pairs
    uint64_t n_kv_ = 0;
    std::set<std::string> keys_, names_;
    std::vector<Tensor> tensors_;
    uint64_t data_bytes_ = 0;  // each tensor padded to kAlignment
};

}  // namespace moe
