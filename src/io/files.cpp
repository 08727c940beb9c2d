#include "moe/files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "moe/error.h"

namespace moe {

std::string read_file(const std::string& path, const char* op, const std::string& hint,
                      const std::string& what) {
    std::ifstream f(path, std::ios::binary);
    MOE_CHECK(f.good(), op, "cannot open " + (what.empty() ? "" : what + " ") + path + (hint.empty() ? "" : "; " + hint));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

nlohmann::json read_json_file(const std::string& path, const char* op, const std::string& hint) {
    const std::string text = read_file(path, op, hint);
    try {
        return nlohmann::json::parse(text);
    } catch (const std::exception& e) {
        throw Error(std::string("[") + op + "] " + path + " is not valid JSON: " + e.what());
    }
}

void write_file_atomic(const std::string& path, const std::string& content, const char* op) {
    write_file_atomic_parts(path, {std::string_view(content)}, op);
}

void write_file_atomic_parts(const std::string& path, const std::vector<std::string_view>& parts, const char* op) {
    AtomicFile f(path, op);
    for (std::string_view part : parts) f.append(part);
    f.commit();
}

AtomicFile::AtomicFile(const std::string& path, const char* op) : path_(path), tmp_(path + ".tmp"), op_(op) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    MOE_CHECK(fd_ >= 0, op, "cannot create " + tmp_ + "; check the directory exists and is writable");
}

AtomicFile::~AtomicFile() {
    if (fd_ < 0) return;  // committed
    ::close(fd_);
    ::unlink(tmp_.c_str());
}

void AtomicFile::append(std::string_view bytes) {
    MOE_CHECK(fd_ >= 0, op_, "writing " + tmp_ + " after it was committed");
    const char* p = bytes.data();
    size_t n = bytes.size();
    while (n > 0) {
        const ssize_t w = ::write(fd_, p, n);
        MOE_CHECK(w >= 0, op_, "writing " + tmp_ + " failed (disk full?)");
        p += w;
        n -= size_t(w);
    }
    size_ += bytes.size();
}

void AtomicFile::commit() {
    MOE_CHECK(fd_ >= 0, op_, tmp_ + " was already committed");
    const bool synced = ::fsync(fd_) == 0;
    ::close(fd_);
    fd_ = -1;
    if (!synced || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
        ::unlink(tmp_.c_str());
        MOE_CHECK(synced, op_, "fsync of " + tmp_ + " failed");
        fail(op_, "cannot rename " + tmp_ + " to " + path_);
    }
    const std::filesystem::path dir = std::filesystem::path(path_).parent_path();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

MappedFile::MappedFile(const std::string& path, const char* op) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    MOE_CHECK(fd >= 0, op, "cannot open '" + path + "': " + std::strerror(errno) + "; check the path");
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (!regular || st.st_size == 0) {
        ::close(fd);
        MOE_CHECK(regular, op, "'" + path + "' is not a regular file");
        return;  // empty: nothing to map (the reader reports it as too short)
    }
    void* addr = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    MOE_CHECK(addr != MAP_FAILED, op, "cannot map '" + path + "': " + std::strerror(err));
    data_ = static_cast<const uint8_t*>(addr);
    size_ = uint64_t(st.st_size);
}

void MappedFile::release(const void* p, uint64_t bytes) const {
    const auto page = uint64_t(::sysconf(_SC_PAGESIZE));
    const auto begin = uint64_t(reinterpret_cast<uintptr_t>(p)), base = uint64_t(reinterpret_cast<uintptr_t>(data_));
    if (!data_ || begin < base || begin + bytes > base + size_) return;
    const uint64_t first = (begin + page - 1) / page * page, last = (begin + bytes) / page * page;
    if (last > first) ::madvise(reinterpret_cast<void*>(first), size_t(last - first), MADV_DONTNEED);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_t(size_));
}

}  // namespace moe
