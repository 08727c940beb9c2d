// The safetensors writer (the reader is safetensors.cpp): header JSON padded to 8 bytes, data in
// the order given, written to a temporary file and renamed into place.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/safetensors.h"

namespace moe {
namespace {

void write_all(int fd, const void* data, size_t n, const std::string& path) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            ::close(fd);
            throw Error("[safetensors] writing '" + path + "' failed (disk full?)");
        }
        p += w;
        n -= size_t(w);
    }
}

}  // namespace

void safetensors_write(const std::string& path,
                       const std::vector<std::pair<std::string, TensorView>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    nlohmann::ordered_json header;
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        MOE_CHECK(t.dtype == DType::f32 || t.dtype == DType::i32, "safetensors",
                  "'" + name + "': only f32 and i32 tensors are written");
        std::vector<int64_t> shape(t.shape.dims, t.shape.dims + t.shape.ndim);
        const uint64_t bytes = uint64_t(t.numel()) * 4;
        header[name] = {{"dtype", t.dtype == DType::f32 ? "F32" : "I32"}, {"shape", shape},
                        {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    MOE_CHECK(fd >= 0, "safetensors", "cannot create '" + tmp + "': check the directory exists and is writable");
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((uint64_t(h.size()) >> (8 * i)) & 0xFF);
    write_all(fd, len, 8, tmp);
    write_all(fd, h.data(), h.size(), tmp);
    for (const auto& [name, t] : tensors) write_all(fd, t.data, size_t(t.numel()) * 4, tmp);
    MOE_CHECK(::fsync(fd) == 0, "safetensors", "fsync of '" + tmp + "' failed");
    ::close(fd);
    MOE_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "safetensors", "cannot rename '" + tmp + "' to '" + path + "'");
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace moe
