// The BPE tokenizers of the models this engine runs, encoding and decoding exactly as Hugging Face
// `tokenizers` does for the same tokenizer.json (docs/tokenizers.md):
//   - byte-level BPE (GPT-2; `moe train` trains these): the ByteLevel pre-tokenizer, tokens in
//     GPT-2's byte-to-unicode spelling (tests/fixtures/tokenizer_cases.json);
//   - SentencePiece-style BPE (Llama, Mistral, Mixtral): byte_fallback, the meta-space "▁" from
//     the Prepend + Replace normalizer or the Metaspace pre-tokenizer, <0xXX> byte tokens
//     (tests/fixtures/tokenizer_spm_cases.json).
// `load` picks the kind from the file. From a GGUF (gguf_tokenizer): tokenizer.ggml.model "gpt2"
// (merges) or "llama", which encodes as llama.cpp's SPM tokenizer does (merging by score).
// Byte-level files may also carry the regex pre-tokenizers of Qwen2, Llama-3 and DeepSeek (a
// Sequence of Split / Digits / ByteLevel) and the NFC normalizer (include/moe/pretokenize.h);
// GGUF names them with tokenizer.ggml.pre. Added / special tokens (<s>, <|im_end|>, ...) found in
// the text become their ids.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace moe {

namespace text {
class PreTokenizer;  // include/moe/pretokenize.h
}

// tokenizer.ggml.* of a GGUF file, as llama.cpp's converter writes them.
struct GgufTokenizerVocab {
    std::string model;                 // "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE)
    std::vector<std::string> tokens;   // by id, as spelled in tokenizer.json (gpt2: byte-to-unicode)
    std::vector<float> scores;         // llama: higher merges first; empty = all 0
    std::vector<int32_t> types;        // llama.cpp's token types (kNormal ...); empty = all normal
    std::vector<std::string> merges;   // gpt2: "left right" in rank order
    std::string pre;                   // gpt2: tokenizer.ggml.pre ("gpt-2", "qwen2", "llama-bpe", ...); "" = gpt-2
    int32_t bos = -1, eos = -1, unk = -1, pad = -1;
    bool add_bos = false, add_eos = false;
    bool add_space_prefix = true;      // llama: " " before the first text and after each special token
};

class BpeTokenizer {
public:
    enum class Kind { byte_level, sentencepiece };
    // llama.cpp's token types (tokenizer.ggml.token_type).
    static constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

    // Byte-level BPE: learns merges on `text` until `vocab_size` tokens (256 bytes + merges) or
    // until the best pair occurs fewer than `min_frequency` times. `progress(done, total)` is
    // called per merge.
    static BpeTokenizer train(const std::string& text, int64_t vocab_size, int64_t min_frequency = 2,
                              const std::function<void(int64_t, int64_t)>& progress = nullptr);
    // A Hugging Face tokenizer.json with a BPE model: byte-level (the ByteLevel pre-tokenizer, alone
    // or in a Sequence with Split / Digits; normalizer null or NFC) or SentencePiece-style
    // (byte_fallback / "▁" normalizer or Metaspace pre-tokenizer), chosen from the file. Special
    // tokens: added_tokens; BOS from the post-processor (TemplateProcessing, alone or in a Sequence);
    // bos_token / eos_token / add_bos_token from a tokenizer_config.json beside it when present.
    // Throws naming the file and what is unsupported otherwise.
    static BpeTokenizer load(const std::string& path);
    // Byte-level, from the vocab (id -> token) and merges ("left right", in rank order) as
    // tokenizer.json spells them (GPT-2's byte-to-unicode form), e.g. a GGUF's
    // tokenizer.ggml.tokens / merges. With `types` (tokenizer.ggml.token_type), control and
    // user-defined tokens are taken as written and matched in the text. `path` names the source
    // in errors.
    static BpeTokenizer from_vocab(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
                                   const std::string& path, const std::vector<int32_t>& types = {});
    // From GGUF metadata: "gpt2" (from_vocab, with the pre-tokenizer tokenizer.ggml.pre names) or
    // "llama" (llama.cpp's SPM tokenizer).
    static BpeTokenizer from_gguf_vocab(const GgufTokenizerVocab& v, const std::string& path);
    // The GGUF metadata of this tokenizer: "gpt2" for byte-level, "llama" for SentencePiece-style
    // (scores from the merge ranks: a token made by an earlier merge scores higher).
    GgufTokenizerVocab gguf_vocab() const;
    // Writes tokenizer.json atomically (temp file + rename): byte-level tokenizers are written
    // out; a SentencePiece-style one read from tokenizer.json is written back as it was read.
    void save(const std::string& path) const;

    // Token ids of `text`, without BOS (prepend bos_id() when add_bos()). Added tokens in the text
    // become their ids (parse_special = false: only non-special ones, as llama.cpp).
    std::vector<int32_t> encode(const std::string& text, bool parse_special = true) const;
    // Text of ids as Hugging Face decodes them (special tokens included); throws on an unknown id.
    std::string decode(const std::vector<int32_t>& ids) const;
    int64_t vocab_size() const { return int64_t(tokens_.size()); }
    // What the token adds to generated text, streamed one token at a time: its bytes ("▁" as a
    // space, <0xXX> as the byte); empty for control tokens (<s>, </s>), as llama.cpp prints them.
    const std::string& token_bytes(int32_t id) const { return pieces_[size_t(id)]; }
    // The token as the vocabulary spells it ("▁the", "<0x0A>", "<s>"; byte-level: its raw bytes).
    const std::string& token_text(int32_t id) const { return tokens_[size_t(id)]; }

    Kind kind() const { return kind_; }
    int32_t bos_id() const { return bos_; }  // -1: none
    int32_t eos_id() const { return eos_; }  // -1: none
    int32_t unk_id() const { return unk_; }  // -1: none
    bool add_bos() const { return add_bos_ && bos_ >= 0; }  // the model expects BOS first
    // Puts BOS first when the model expects it and ids do not already start with it (llama.cpp's
    // rule); returns whether it did.
    bool prepend_bos(std::vector<int32_t>& ids) const {
        if (!add_bos() || (!ids.empty() && ids[0] == bos_)) return false;
        ids.insert(ids.begin(), bos_);
        return true;
    }
    bool is_special(int32_t id) const;       // a control / unknown token (not printed when streamed)
    int32_t special_id(const std::string& content) const;  // an added token's id, or -1

    // GPT-2's pre-tokenization (the ByteLevel regex) of UTF-8 text into pieces (what `train` counts).
    static std::vector<std::string> pre_tokenize(const std::string& text);

private:
    struct Added {
        int32_t id;
        std::string content;
        bool special, lstrip, rstrip;
    };
    struct Segment {      // a piece of the input: an added token, or text between them
        int32_t token;    // -1 for text
        size_t begin, end;
    };
    enum class Prefix { none, prepend, metaspace_always, metaspace_first };

    Kind kind_ = Kind::byte_level;
    std::vector<std::string> tokens_;                   // id -> byte-level: raw bytes; SPM: vocab spelling
    std::vector<std::string> pieces_;                   // id -> streamed text (token_bytes)
    std::vector<int32_t> types_;                        // id -> kNormal ...
    std::unordered_map<std::string, int32_t> ids_;      // byte-level: raw bytes; SPM: spelling -> id
    std::vector<std::pair<int32_t, int32_t>> merges_;   // in rank order
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merge_map_;  // pair -> (rank, merged id)
    int32_t byte_id_[256] = {};                         // byte-level: byte -> id; SPM: <0xXX> -> id (-1)
    std::vector<Added> added_;                          // longest content first
    std::vector<std::vector<uint32_t>> added_by_byte_;  // first byte -> indices into added_
    int64_t model_vocab_ = 0;                           // ids below this are model.vocab
    int32_t bos_ = -1, eos_ = -1, unk_ = -1;
    bool add_bos_ = false;
    // SentencePiece-style options.
    Prefix prefix_ = Prefix::none;
    bool replace_spaces_ = false;  // " " -> "▁"
    bool split_ = false;           // Metaspace split: words start at each "▁"
    bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
    bool by_score_ = false;        // llama.cpp's SPM (GGUF "llama"): merge by score, not merge rank
    std::vector<float> scores_;
    bool dec_replace_ = false, dec_byte_fallback_ = false, dec_metaspace_ = false;
    int dec_strip_ = 0;            // leading spaces the decoder strips
    std::string source_json_;      // tokenizer.json as read (SPM save)
    // Byte-level: the normalizer and pre-tokenizer (null: GPT-2's ByteLevel regex), and, when read
    // from a tokenizer.json, its normalizer / pre_tokenizer / post_processor / decoder (save).
    std::shared_ptr<const text::PreTokenizer> pre_;
    std::string pipeline_json_;

    void index();  // rebuilds ids_, merge_map_, byte_id_, pieces_ from tokens_ / merges_ / types_
    static BpeTokenizer load_byte_level(const std::string& path, const void* json);
    static BpeTokenizer load_spm(const std::string& path, const void* json);
    void read_post_processor(const std::string& path, const void* json);  // BOS from TemplateProcessing
    const text::PreTokenizer& pre_tokenizer() const;
    void set_added(const std::vector<Added>& added);
    std::vector<Segment> split_added(const std::string& text, bool parse_special) const;
    void merge_by_rank(std::vector<int32_t>& w) const;
    std::vector<int32_t> encode_piece(const std::string& piece) const;          // byte-level
    void encode_spm_word(const std::string& word, std::vector<int32_t>& out) const;   // tokenizer.json
    void encode_spm_score(const std::string& word, std::vector<int32_t>& out) const;  // llama.cpp
    void encode_spm(const std::string& text, const std::vector<Segment>& segs, std::vector<int32_t>& out) const;
    std::string decode_spm(const std::vector<int32_t>& ids) const;
};

}  // namespace moe
