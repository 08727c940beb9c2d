// The normalizer and pre-tokenizer of byte-level BPE tokenizers: how text is cut into the pieces
// that BPE merges within, as Hugging Face `tokenizers` does for tokenizer.json (GPT-2's ByteLevel
// regex; Qwen2 / Llama-3 / DeepSeek `Sequence`s of `Split` regexes, `Digits` and `ByteLevel`; the
// NFC normalizer), and the same pipelines named by GGUF's tokenizer.ggml.pre. Not part of the
// public API: BpeTokenizer, the GGUF reader and writer and the tests use it. docs/tokenizers.md.
#pragma once
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace moe::text {

class Regex;  // src/text/regex.h (PCRE2)

// tokenizers' SplitDelimiterBehavior: what happens to the text a pattern matches.
enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

class PreTokenizer {
public:
    // ByteLevel(use_regex = true), no normalizer: GPT-2's regex
    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ (built once).
    static std::shared_ptr<const PreTokenizer> gpt2();
    // tokenizer.json's "normalizer" (null, NFC, a Sequence of those) and "pre_tokenizer" (ByteLevel
    // without add_prefix_space, or a Sequence of Split / Digits / ByteLevel). Throws naming `path`,
    // the JSON path of the part and what is supported.
    static std::shared_ptr<const PreTokenizer> from_json(const nlohmann::json& normalizer, const nlohmann::json& pre,
                                                         const std::string& path);

    // The normalized text (NFC when the normalizer says so; else the text itself).
    std::string normalize(const std::string& text) const;
    // The pieces of (normalized) text, in order; empty pieces are dropped.
    std::vector<std::string> split(const std::string& text) const;
    bool nfc() const { return nfc_; }
    // Equal for two pipelines that normalize and split the same way (the GGUF name is found by it).
    const std::string& signature() const { return signature_; }

    struct Step {                    // one Split (Digits and ByteLevel's regex are Splits too)
        std::shared_ptr<const Regex> re;
        SplitBehavior behavior = SplitBehavior::isolated;
        bool invert = false;
    };

private:
    std::vector<Step> steps_;
    bool nfc_ = false;
    std::string signature_;
    void sign();
};

// Unicode NFC of UTF-8 text (utf8proc); bytes that are not UTF-8 are kept as they are.
std::string nfc(const std::string& text);

// GGUF tokenizer.ggml.pre: the pipeline each name stands for (src/text/pretokenize_gguf.cpp).
struct GgufPreTokenizer {
    std::shared_ptr<const PreTokenizer> pre;
    bool ignore_merges = false;  // a piece that is a token is that token (llama.cpp: Llama-3)
    bool add_bos = false;        // llama.cpp's default when tokenizer.ggml.add_bos_token is absent
};
// Throws naming `path` and the known names for a name it does not know.
GgufPreTokenizer gguf_pre_tokenizer(const std::string& name, const std::string& path);
// The tokenizer.ggml.pre name of a pipeline (with the model's ignore_merges), "" when none fits.
std::string gguf_pre_name(const PreTokenizer& pre, bool ignore_merges);
// The names gguf_pre_tokenizer knows, comma separated (for messages).
std::string gguf_pre_names();

}  // namespace moe::text
