// Token shards: a corpus split encoded once and stored beside the run (train.tokens,
// val.tokens), memory-mapped when read, so resuming or re-running does not re-encode. Layout
// (little-endian): "MOETOK1\0", u64 count, u64 vocab_size, u64 source_hash (FNV-1a of the text
// it encodes), then count int32 token ids.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

// FNV-1a 64 of `text`: which text a shard encodes.
uint64_t text_hash(const std::string& text);

// Writes the shard atomically (temporary file, fsync, rename).
void token_file_write(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab_size,
                      uint64_t source_hash);

class TokenFile {
public:
    // Maps `path` read-only; throws naming the file when it is missing, truncated, not a shard,
    // or holds an id >= its vocab_size.
    explicit TokenFile(const std::string& path);
    ~TokenFile();
    TokenFile(const TokenFile&) = delete;
    TokenFile& operator=(const TokenFile&) = delete;

    const int32_t* data() const { return data_; }
    int64_t size() const { return count_; }
    int64_t vocab_size() const { return vocab_; }
    uint64_t source_hash() const { return hash_; }

private:
    void* map_ = nullptr;
    size_t map_bytes_ = 0;
    const int32_t* data_ = nullptr;
    int64_t count_ = 0, vocab_ = 0;
    uint64_t hash_ = 0;
};

}  // namespace moe
