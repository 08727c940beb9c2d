// Whole-file reads and atomic writes, with errors that name the file and the fix.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

// The bytes of `path`; throws "[op] cannot open WHAT PATH; HINT" when it cannot be read
// (`what` names the file's role, e.g. "the corpus").
std::string read_file(const std::string& path, const char* op, const std::string& hint = "",
                      const std::string& what = "");
// read_file, parsed as JSON; throws "[op] PATH is not valid JSON: ..." otherwise.
nlohmann::json read_json_file(const std::string& path, const char* op, const std::string& hint = "");
// Writes `content` to a temporary file beside `path`, fsyncs it, renames it over `path` and
// fsyncs the directory: a crash leaves the old file or the new one, never half of one.
void write_file_atomic(const std::string& path, const std::string& content, const char* op);
// The same with the content in pieces, written one after another (no concatenated copy).
void write_file_atomic_parts(const std::string& path, const std::vector<std::string_view>& parts, const char* op);

// The same for content made while it is written (it need not be in memory at once): append()
// the pieces in order, then commit() (fsync, rename over `path`, fsync of the directory).
// Destroyed without commit() (an exception while writing), it removes the temporary file and
// leaves `path` as it was.
class AtomicFile {
public:
    AtomicFile(const std::string& path, const char* op);  // creates PATH.tmp; throws when it cannot
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    void append(std::string_view bytes);
    void commit();
    uint64_t size() const { return size_; }  // bytes appended so far

private:
    std::string path_, tmp_;
    const char* op_;
    int fd_ = -1;
    uint64_t size_ = 0;
};

// A whole file mapped read-only (mmap, MAP_PRIVATE): the weights of a GGUF or safetensors file
// are used where they lie, paged in when first read. Throws "[op] cannot open / map PATH: why".
class MappedFile {
public:
    MappedFile(const std::string& path, const char* op);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    // Drops the whole pages inside [p, p + bytes) from this process's memory (madvise
    // MADV_DONTNEED): the file is unchanged and a later read pages them in again. For bytes
    // copied elsewhere (packed weights) that would otherwise count twice in the resident memory.
    // Ranges outside the mapping are ignored.
    void release(const void* p, uint64_t bytes) const;

private:
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

}  // namespace moe
