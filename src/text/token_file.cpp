// Token shards, written once and memory-mapped (include/moe/token_file.h).
#include "moe/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "moe/error.h"
#include "moe/files.h"

namespace moe {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'T', 'O', 'K', '1', '\0'};
constexpr size_t kHeader = 32;

}  // namespace

uint64_t text_hash(const std::string& text) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    return h;
}

void token_file_write(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab_size,
                      uint64_t source_hash) {
    std::string bytes(kHeader + tokens.size() * sizeof(int32_t), '\0');
    const uint64_t header[3] = {uint64_t(tokens.size()), uint64_t(vocab_size), source_hash};
    std::memcpy(bytes.data(), kMagic, 8);
    std::memcpy(bytes.data() + 8, header, sizeof(header));
    std::memcpy(bytes.data() + kHeader, tokens.data(), tokens.size() * sizeof(int32_t));
    write_file_atomic(path, bytes, "token_file");
}

TokenFile::TokenFile(const std::string& path) {
    const char* op = "token_file";
    const int fd = ::open(path.c_str(), O_RDONLY);
    MOE_CHECK(fd >= 0, op, "cannot open " + path);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_size < off_t(kHeader)) {
        ::close(fd);
        fail(op, path + " is shorter than a token-file header (" + std::to_string(kHeader) +
                     " bytes); delete it and it is written again");
    }
    map_bytes_ = size_t(st.st_size);
    map_ = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    MOE_CHECK(map_ != MAP_FAILED, op, "cannot map " + path);
    const char* p = static_cast<const char*>(map_);
    uint64_t header[3];
    std::memcpy(header, p + 8, sizeof(header));
    count_ = int64_t(header[0]);
    vocab_ = int64_t(header[1]);
    hash_ = header[2];
    auto bad = [&](const std::string& why) {
        ::munmap(map_, map_bytes_);
        fail(op, path + " " + why + "; delete it and it is written again");
    };
    if (std::memcmp(p, kMagic, 8) != 0) bad("is not a moe token file (no MOETOK1 magic)");
    if (header[0] != (map_bytes_ - kHeader) / sizeof(int32_t) || (map_bytes_ - kHeader) % sizeof(int32_t) != 0)
        bad("is truncated or corrupt: its header says " + std::to_string(header[0]) + " tokens, the file holds " +
            std::to_string(map_bytes_ - kHeader) + " bytes of them");
    data_ = reinterpret_cast<const int32_t*>(p + kHeader);
    for (int64_t i = 0; i < count_; ++i)
        if (data_[i] < 0 || data_[i] >= vocab_)
            bad("holds token " + std::to_string(data_[i]) + " at " + std::to_string(i) + ", outside its vocabulary of " +
                std::to_string(vocab_));
}

TokenFile::~TokenFile() {
    if (map_ && map_ != MAP_FAILED) ::munmap(map_, map_bytes_);
}

}  // namespace moe
