// Byte-level BPE: GPT-2's pre-tokenizer, merge training on word counts, encode by lowest-rank
// merges, and Hugging Face tokenizer.json in and out.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/files.h"
#include "moe/tokenizer.h"

namespace moe {
namespace {

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n.
struct ByteLevelAlphabet {
    uint32_t to_cp[256];
    std::unordered_map<uint32_t, uint8_t> to_byte;
    ByteLevelAlphabet() {
        int n = 0;
        for (int b = 0; b < 256; ++b) {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            to_cp[b] = printable ? uint32_t(b) : uint32_t(256 + n++);
            to_byte[to_cp[b]] = uint8_t(b);
        }
    }
};
const ByteLevelAlphabet& alphabet() {
    static const ByteLevelAlphabet a;
    return a;
}

void append_utf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
        s += char(cp);
    } else if (cp < 0x800) {
        s += char(0xC0 | (cp >> 6));
        s += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        s += char(0xE0 | (cp >> 12));
        s += char(0x80 | ((cp >> 6) & 0x3F));
        s += char(0x80 | (cp & 0x3F));
    } else {
        s += char(0xF0 | (cp >> 18));
        s += char(0x80 | ((cp >> 12) & 0x3F));
        s += char(0x80 | ((cp >> 6) & 0x3F));
        s += char(0x80 | (cp & 0x3F));
    }
}

// The code point at s[i] and its length in bytes; an invalid byte counts as one code point
// (U+FFFD class "other"), so any byte string scans.
uint32_t next_cp(const std::string& s, size_t i, size_t& len) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + size_t(n) > s.size()) {
        len = 1;
        return 0xFFFD;
    }
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < n; ++k) {
        const unsigned char d = static_cast<unsigned char>(s[i + size_t(k)]);
        if ((d >> 6) != 2) {
            len = 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (d & 0x3F);
    }
    len = size_t(n);
    return cp;
}

enum class Cls { letter, number, space, other };

// Unicode classes as the GPT-2 regex sees them: exact for ASCII; for other code points the
// common letter blocks (Latin, Greek, Cyrillic, Hebrew, Arabic, CJK, kana, Hangul) are letters,
// the Unicode spaces are spaces, everything else (punctuation, symbols, emoji) is "other".
Cls classify(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return Cls::letter;
        if (cp >= '0' && cp <= '9') return Cls::number;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return Cls::space;
        return Cls::other;
    }
    if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
        return Cls::space;
    if (cp == 0xAA || cp == 0xB5 || cp == 0xBA || (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) ||
        (cp >= 0x370 && cp <= 0x3FF && cp != 0x37E && cp != 0x387) || (cp >= 0x400 && cp <= 0x52F) ||
        (cp >= 0x5D0 && cp <= 0x5EA) || (cp >= 0x620 && cp <= 0x64A) || (cp >= 0x3041 && cp <= 0x30FF) ||
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3))
        return Cls::letter;
    if (cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || (cp >= 0xBC && cp <= 0xBE)) return Cls::number;
    return Cls::other;
}

std::string token_to_json(const std::string& bytes) {
    std::string s;
    for (unsigned char b : bytes) append_utf8(s, alphabet().to_cp[b]);
    return s;
}

std::string token_from_json(const std::string& s, const std::string& path) {
    std::string bytes;
    for (size_t i = 0; i < s.size();) {
        size_t len;
        uint32_t cp = next_cp(s, i, len);
        auto it = alphabet().to_byte.find(cp);
        MOE_CHECK(it != alphabet().to_byte.end(), "tokenizer",
                  path + ": token '" + s + "' is not in the byte-level alphabet; only ByteLevel BPE tokenizers are supported");
        bytes += char(it->second);
        i += len;
    }
    return bytes;
}

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

}  // namespace

std::vector<std::string> BpeTokenizer::pre_tokenize(const std::string& s) {
    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    std::vector<std::string> out;
    const size_t n = s.size();
    auto cls_at = [&](size_t i, size_t& len) { return classify(next_cp(s, i, len)); };
    auto run = [&](size_t i, Cls c) {  // end of the run of class c starting at i
        size_t len;
        while (i < n && cls_at(i, len) == c) i += len;
        return i;
    };
    size_t i = 0;
    while (i < n) {
        size_t len;
        if (s[i] == '\'') {
            static const char* suffixes[] = {"s", "t", "re", "ve", "m", "ll", "d"};
            size_t matched = 0;
            for (const char* suf : suffixes) {
                size_t l = std::char_traits<char>::length(suf);
                if (i + 1 + l <= n && s.compare(i + 1, l, suf) == 0) {
                    matched = 1 + l;
                    break;
                }
            }
            if (matched) {
                out.push_back(s.substr(i, matched));
                i += matched;
                continue;
            }
        }
        size_t j = i + (s[i] == ' ' ? 1 : 0);  // the optional leading space of " ?X+"
        if (j < n) {
            Cls c = cls_at(j, len);
            if (c != Cls::space) {
                size_t end = run(j, c);
                out.push_back(s.substr(i, end - i));
                i = end;
                continue;
            }
        }
        // Whitespace. \s+(?!\S): a run followed by a non-space leaves its last code point to
        // the next piece (" word"); a single one is then taken by the final \s+.
        size_t end = run(i, Cls::space);
        if (end < n) {
            size_t k = i, last = i;
            while (k < end) {
                last = k;
                next_cp(s, k, len);
                k += len;
            }
            if (last > i) end = last;
        }
        if (end == i) {  // not a space either (cannot happen: every class is handled above)
            next_cp(s, i, len);
            end = i + len;
        }
        out.push_back(s.substr(i, end - i));
        i = end;
    }
    return out;
}

void BpeTokenizer::index() {
    ids_.clear();
    rank_.clear();
    for (size_t id = 0; id < tokens_.size(); ++id) ids_[tokens_[id]] = int32_t(id);
    for (int b = 0; b < 256; ++b) {
        auto it = ids_.find(std::string(1, char(b)));
        byte_id_[b] = it == ids_.end() ? -1 : it->second;
    }
    for (size_t r = 0; r < merges_.size(); ++r) rank_[merges_[r]] = int32_t(r);
}

std::vector<int32_t> BpeTokenizer::encode_piece(const std::string& piece) const {
    std::vector<int32_t> w;
    w.reserve(piece.size());
    for (unsigned char b : piece) {
        MOE_CHECK(byte_id_[b] >= 0, "tokenizer", "byte " + std::to_string(int(b)) + " has no token");
        w.push_back(byte_id_[b]);
    }
    while (w.size() > 1) {
        int32_t best_rank = INT32_MAX;
        size_t at = 0;
        for (size_t k = 0; k + 1 < w.size(); ++k) {
            auto it = rank_.find({w[k], w[k + 1]});
            if (it != rank_.end() && it->second < best_rank) {
                best_rank = it->second;
                at = k;
            }
        }
        if (best_rank == INT32_MAX) break;
        const auto pair = merges_[size_t(best_rank)];
        const int32_t merged = ids_.at(tokens_[size_t(pair.first)] + tokens_[size_t(pair.second)]);
        std::vector<int32_t> next;
        next.reserve(w.size());
        for (size_t k = 0; k < w.size();) {
            if (k >= at && k + 1 < w.size() && w[k] == pair.first && w[k + 1] == pair.second) {
                next.push_back(merged);
                k += 2;
            } else {
                next.push_back(w[k++]);
            }
        }
        w.swap(next);
    }
    return w;
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text) const {
    std::vector<int32_t> out;
    std::unordered_map<std::string, std::vector<int32_t>> cache;
    for (const std::string& piece : pre_tokenize(text)) {
        auto it = cache.find(piece);
        if (it == cache.end()) it = cache.emplace(piece, encode_piece(piece)).first;
        out.insert(out.end(), it->second.begin(), it->second.end());
    }
    return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string out;
    for (int32_t id : ids) {
        MOE_CHECK(id >= 0 && id < int32_t(tokens_.size()), "tokenizer",
                  "token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(tokens_.size()) + ")");
        out += tokens_[size_t(id)];
    }
    return out;
}

BpeTokenizer BpeTokenizer::train(const std::string& text, int64_t vocab_size, int64_t min_frequency,
                                 const std::function<void(int64_t, int64_t)>& progress) {
    MOE_CHECK(vocab_size >= 256, "tokenizer", "vocab_size must be >= 256 (the bytes), got " + std::to_string(vocab_size));
    BpeTokenizer t;
    for (int b = 0; b < 256; ++b) t.tokens_.push_back(std::string(1, char(b)));
    t.index();
    std::unordered_map<std::string, int64_t> counts;
    for (const std::string& piece : pre_tokenize(text)) ++counts[piece];
    std::vector<std::pair<std::string, int64_t>> words(counts.begin(), counts.end());
    std::sort(words.begin(), words.end());  // a fixed order: the result does not depend on hashing
    std::vector<std::vector<int32_t>> seqs;
    std::vector<int64_t> freq;
    for (auto& [w, c] : words) {
        std::vector<int32_t> s;
        for (unsigned char b : w) s.push_back(int32_t(b));
        seqs.push_back(std::move(s));
        freq.push_back(c);
    }
    const int64_t n_merges = vocab_size - 256;
    for (int64_t m = 0; m < n_merges; ++m) {
        std::unordered_map<uint64_t, int64_t> pairs;
        for (size_t w = 0; w < seqs.size(); ++w)
            for (size_t k = 0; k + 1 < seqs[w].size(); ++k) pairs[pair_key(seqs[w][k], seqs[w][k + 1])] += freq[w];
        uint64_t best = 0;
        int64_t best_count = -1;
        for (auto& [key, c] : pairs)  // highest count; ties to the smallest (left, right) ids
            if (c > best_count || (c == best_count && key < best)) best = key, best_count = c;
        if (best_count < std::max<int64_t>(1, min_frequency)) break;
        const int32_t a = int32_t(best >> 32), b = int32_t(best & 0xFFFFFFFFu);
        const int32_t id = int32_t(t.tokens_.size());
        t.tokens_.push_back(t.tokens_[size_t(a)] + t.tokens_[size_t(b)]);
        t.merges_.push_back({a, b});
        for (std::vector<int32_t>& s : seqs) {
            size_t out = 0;
            for (size_t k = 0; k < s.size();) {
                if (k + 1 < s.size() && s[k] == a && s[k + 1] == b) {
                    s[out++] = id;
                    k += 2;
                } else {
                    s[out++] = s[k++];
                }
            }
            s.resize(out);
        }
        if (progress) progress(m + 1, n_merges);
    }
    t.index();
    return t;
}

void BpeTokenizer::save(const std::string& path) const {
    nlohmann::ordered_json j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = nlohmann::json::array();
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    j["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
    for (size_t id = 0; id < tokens_.size(); ++id) vocab[token_to_json(tokens_[id])] = id;
    nlohmann::ordered_json merges = nlohmann::ordered_json::array();
    for (auto [a, b] : merges_) merges.push_back(token_to_json(tokens_[size_t(a)]) + " " + token_to_json(tokens_[size_t(b)]));
    j["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", merges}};
    write_file_atomic(path, j.dump(1), "tokenizer");
}

BpeTokenizer BpeTokenizer::load(const std::string& path) {
    const nlohmann::json j = read_json_file(path, "tokenizer");
    MOE_CHECK(j.contains("model") && j["model"].value("type", "") == "BPE", "tokenizer",
              path + ": expected a BPE model (\"model\": {\"type\": \"BPE\"})");
    const nlohmann::json& pre = j.value("pre_tokenizer", nlohmann::json());
    MOE_CHECK(pre.is_object() && pre.value("type", "") == "ByteLevel" && !pre.value("add_prefix_space", false), "tokenizer",
              path + ": only the ByteLevel pre-tokenizer without add_prefix_space is supported, got " + pre.dump());
    const nlohmann::json& m = j["model"];
    MOE_CHECK(m.contains("vocab") && m["vocab"].is_object() && m.contains("merges") && m["merges"].is_array(),
              "tokenizer", path + ": model.vocab (object) and model.merges (array) are required");
    std::vector<std::string> tokens(m["vocab"].size());
    std::vector<bool> seen(tokens.size(), false);
    for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
        MOE_CHECK(it.value().is_number_integer(), "tokenizer", path + ": vocab id of '" + it.key() + "' is not an integer");
        int64_t id = it.value().get<int64_t>();
        MOE_CHECK(id >= 0 && id < int64_t(tokens.size()) && !seen[size_t(id)], "tokenizer",
                  path + ": vocab ids must be 0..n-1 without repeats; '" + it.key() + "' has " + std::to_string(id));
        tokens[size_t(id)] = it.key();
        seen[size_t(id)] = true;
    }
    std::vector<std::string> merges;
    for (const nlohmann::json& mj : m["merges"]) {
        if (mj.is_string()) {
            merges.push_back(mj.get<std::string>());
        } else {
            MOE_CHECK(mj.is_array() && mj.size() == 2, "tokenizer", path + ": a merge must be \"a b\" or [\"a\", \"b\"]");
            merges.push_back(mj[0].get<std::string>() + " " + mj[1].get<std::string>());
        }
    }
    return from_vocab(tokens, merges, path);
}

BpeTokenizer BpeTokenizer::from_vocab(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
                                      const std::string& path) {
    BpeTokenizer t;
    t.tokens_.reserve(tokens.size());
    for (const std::string& tok : tokens) t.tokens_.push_back(token_from_json(tok, path));
    t.index();
    for (const std::string& s : merges) {
        const size_t sp = s.find(' ');
        MOE_CHECK(sp != std::string::npos, "tokenizer", path + ": merge '" + s + "' is not 'left right'");
        const std::string a = token_from_json(s.substr(0, sp), path), b = token_from_json(s.substr(sp + 1), path);
        auto ia = t.ids_.find(a), ib = t.ids_.find(b), iab = t.ids_.find(a + b);
        MOE_CHECK(ia != t.ids_.end() && ib != t.ids_.end() && iab != t.ids_.end(), "tokenizer",
                  path + ": merge '" + s + "' uses or makes a token missing from the vocab");
        t.merges_.push_back({ia->second, ib->second});
    }
    t.index();
    return t;
}

}  // namespace moe
