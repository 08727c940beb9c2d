// GGUF tokenizer.ggml.pre names and the pipelines they stand for. llama.cpp (src/llama-vocab.cpp)
// maps each name to a list of regexes it splits with, one after the other, keeping matches and
// the text between them (Hugging Face's Split, Isolated); its lists are adaptations of the
// models' tokenizer.json pre-tokenizers to its own regex engine (e.g. (?i:'s|...) written as
// '[sS]|...). Here each name stands for the Hugging Face definition itself, as the models'
// tokenizer.json files write it, so a GGUF encodes as the tokenizer.json it was converted from
// (docs/tokenizers.md lists where llama.cpp's adaptations differ). Facts from llama.cpp and the
// models' files; no code taken.
#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/pretokenize.h"

namespace moe::text {
namespace {

using nlohmann::json;

json split(const std::string& regex) {
    return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
}
json byte_level(bool use_regex) {
    return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}
json sequence(std::vector<json> steps) { return {{"type", "Sequence"}, {"pretokenizers", steps}}; }

// Llama-3 (and cl100k): 1-3 digit numbers. Qwen2: single digits.
const std::string kLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
const std::string kQwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

// DeepSeek-V3 / R1 (its \r\n are the characters themselves, as in the file).
json deepseek_v3() {
    return sequence({split("\\p{N}{1,3}"), split("[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+"),
                     split("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
                           "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
                     byte_level(false)});
}

// DeepSeek LLM / V2: newlines, letters of cased scripts, ASCII and full-width punctuation,
// trailing spaces, CJK, then every digit alone.
json deepseek_llm() {
    const std::string letters =
        "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373"
        "\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F"
        "\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77"
        "\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D"
        "\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4"
        "\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139"
        "\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D"
        "\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A"
        "\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2"
        "\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943]+";
    return sequence({split("[\r\n]"), split(letters), split("\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+"),
                     split("\\s+$"), split("[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+"),
                     {{"type", "Digits"}, {"individual_digits", true}}, byte_level(false)});
}

// llama.cpp's own fallback for "default" (no Hugging Face file has it).
json llama_cpp_default() {
    return sequence({split("[\\p{P}\\$\\+<=>\\^~\\|]+"),
                     split("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"),
                     split("\\p{N}+"), split("[0-9][0-9][0-9]")});
}

struct Entry {
    std::vector<std::string> names;  // the first is what the GGUF writer writes
    json normalizer, pre;
    bool ignore_merges, add_bos;
    bool writable;                   // a tokenizer.json can be named by it
};

const std::vector<Entry>& entries() {
    static const std::vector<Entry> e = {
        {{"gpt-2", "phi-2"}, nullptr, byte_level(true), false, false, true},
        {{"olmo"}, {{"type", "NFC"}}, byte_level(true), false, false, true},  // GPT-NeoX-20B's tokenizer
        {{"llama-bpe", "llama3", "llama-v3"}, nullptr, sequence({split(kLlama3), byte_level(false)}), true, true, true},
        {{"dbrx", "smaug-bpe"}, nullptr, sequence({split(kLlama3), byte_level(false)}), false, false, true},
        {{"qwen2", "deepseek-r1-qwen"}, {{"type", "NFC"}}, sequence({split(kQwen2), byte_level(false)}), false, false, true},
        {{"deepseek-llm"}, nullptr, deepseek_llm(), false, false, true},
        {{"deepseek-v3"}, nullptr, deepseek_v3(), false, false, true},
        {{"default"}, nullptr, llama_cpp_default(), false, false, false},
    };
    return e;
}

}  // namespace

std::string gguf_pre_names() {
    std::string s;
    for (const Entry& e : entries())
        for (const std::string& n : e.names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

GgufPreTokenizer gguf_pre_tokenizer(const std::string& name, const std::string& path) {
    for (const Entry& e : entries())
        for (const std::string& n : e.names)
            if (n == name)
                return {PreTokenizer::from_json(e.normalizer, e.pre, "tokenizer.ggml.pre \"" + name + "\""),
                        e.ignore_merges, e.add_bos};
    fail("tokenizer", path + ": tokenizer.ggml.pre is \"" + name + "\", a pre-tokenizer moe does not know (it would split "
                             "the text differently); known: " + gguf_pre_names());
}

std::string gguf_pre_name(const PreTokenizer& pre, bool ignore_merges) {
    for (const Entry& e : entries()) {
        if (!e.writable || e.ignore_merges != ignore_merges) continue;
        if (PreTokenizer::from_json(e.normalizer, e.pre, e.names[0])->signature() == pre.signature()) return e.names[0];
    }
    return "";
}

}  // namespace moe::text
