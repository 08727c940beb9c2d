// Byte-level BPE (GPT-2 / Hugging Face `tokenizers` ByteLevel + BPE): trained on a corpus by
// the project, saved and loaded as Hugging Face tokenizer.json, encode / decode identical to
// `tokenizers` (tests/fixtures/tokenizer_cases.json, from tools/gen_tokenizer_fixtures.py).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace moe {

class BpeTokenizer {
public:
    // Learns merges on `text` until `vocab_size` tokens (256 bytes + merges) or until the best
    // pair occurs fewer than `min_frequency` times. `progress(done, total)` is called per merge.
    static BpeTokenizer train(const std::string& text, int64_t vocab_size, int64_t min_frequency = 2,
                              const std::function<void(int64_t, int64_t)>& progress = nullptr);
    // A Hugging Face tokenizer.json with a BPE model and the ByteLevel pre-tokenizer; throws
    // naming the file and the problem otherwise.
    static BpeTokenizer load(const std::string& path);
    // From the vocab (id -> token) and merges ("left right", in rank order) as tokenizer.json
    // spells them (GPT-2's byte-to-unicode form), e.g. a GGUF's tokenizer.ggml.tokens / merges.
    // `path` names the source in errors.
    static BpeTokenizer from_vocab(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
                                   const std::string& path);
    // Writes tokenizer.json atomically (temp file + rename).
    void save(const std::string& path) const;

    std::vector<int32_t> encode(const std::string& text) const;
    std::string decode(const std::vector<int32_t>& ids) const;  // throws on an unknown id
    int64_t vocab_size() const { return int64_t(tokens_.size()); }
    const std::string& token_bytes(int32_t id) const { return tokens_[size_t(id)]; }

    // GPT-2's pre-tokenization (the ByteLevel regex) of UTF-8 text into pieces.
    static std::vector<std::string> pre_tokenize(const std::string& text);

private:
    std::vector<std::string> tokens_;                   // id -> raw bytes
    std::unordered_map<std::string, int32_t> ids_;      // raw bytes -> id
    std::vector<std::pair<int32_t, int32_t>> merges_;   // in rank order
    std::map<std::pair<int32_t, int32_t>, int32_t> rank_;  // pair -> rank
    int32_t byte_id_[256] = {};

    void index();  // rebuilds ids_, rank_ and byte_id_ from tokens_ / merges_
    std::vector<int32_t> encode_piece(const std::string& piece) const;
};

}  // namespace moe
