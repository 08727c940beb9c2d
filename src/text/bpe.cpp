// BPE tokenizers, the parts both kinds share (added tokens, merging by rank as Hugging Face's BPE
// does, GGUF metadata) and the byte-level kind: merge training on word counts, Hugging Face
// tokenizer.json in and out. Its normalizer and pre-tokenizer (GPT-2's regex, Qwen2 / Llama-3 /
// DeepSeek Splits): src/text/pretokenize.cpp. The SentencePiece-style kind: src/text/spm.cpp.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <queue>

#include "moe/error.h"
#include "moe/files.h"
#include "moe/pretokenize.h"
#include "moe/tokenizer.h"
#include "utf8.h"

namespace moe {
namespace {

using text::append_utf8;
using text::next_cp;

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

std::vector<std::string> BpeTokenizer::pre_tokenize(const std::string& s) { return text::PreTokenizer::gpt2()->split(s); }

const text::PreTokenizer& BpeTokenizer::pre_tokenizer() const { return pre_ ? *pre_ : *text::PreTokenizer::gpt2(); }

void BpeTokenizer::index() {
    const size_t n = tokens_.size();
    types_.resize(n, kNormal);
    ids_.clear();
    merge_map_.clear();
    for (size_t id = 0; id < n; ++id) {
        // Byte-level: added tokens are found in the text, never made by merges.
        const int32_t t = types_[id];
        if (kind_ == Kind::byte_level && (t == kControl || t == kUserDefined || t == kUnknown)) continue;
        ids_[tokens_[id]] = int32_t(id);
    }
    for (int b = 0; b < 256; ++b) {
        static const char* hex = "0123456789ABCDEF";
        const std::string key = kind_ == Kind::byte_level ? std::string(1, char(b))
                                                          : std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
        auto it = ids_.find(key);
        byte_id_[b] = it == ids_.end() ? -1 : it->second;
    }
    for (size_t r = 0; r < merges_.size(); ++r) {
        const auto [a, b] = merges_[r];
        auto it = ids_.find(tokens_[size_t(a)] + tokens_[size_t(b)]);
        MOE_CHECK(it != ids_.end(), "tokenizer", "merge " + std::to_string(r) + " makes a token missing from the vocab");
        merge_map_[pair_key(a, b)] = {int32_t(r), it->second};  // a repeated pair keeps its last rank, as HF
    }
    pieces_.assign(n, std::string());
    for (size_t id = 0; id < n; ++id) {
        const int32_t t = types_[id];
        if (t == kControl || t == kUnknown) continue;  // printed as nothing, as llama.cpp
        if (kind_ == Kind::byte_level || t == kUserDefined) {
            pieces_[id] = tokens_[id];
        } else if (t == kByte && tokens_[id].size() == 6) {
            pieces_[id] = std::string(1, char(std::stoi(tokens_[id].substr(3, 2), nullptr, 16)));
        } else if (t == kNormal) {
            pieces_[id] = text::replace_all(tokens_[id], text::kMetaSpace, " ");
        }
    }
}

void BpeTokenizer::set_added(const std::vector<Added>& added) {
    added_ = added;
    std::stable_sort(added_.begin(), added_.end(),
                     [](const Added& a, const Added& b) { return a.content.size() > b.content.size(); });
    added_by_byte_.assign(256, {});
    for (size_t k = 0; k < added_.size(); ++k) {
        MOE_CHECK(!added_[k].content.empty(), "tokenizer", "added token " + std::to_string(added_[k].id) + " is empty");
        added_by_byte_[static_cast<unsigned char>(added_[k].content[0])].push_back(uint32_t(k));
    }
}

bool BpeTokenizer::is_special(int32_t id) const {
    if (id < 0 || size_t(id) >= types_.size()) return false;
    return types_[size_t(id)] == kControl || types_[size_t(id)] == kUnknown;
}

int32_t BpeTokenizer::special_id(const std::string& content) const {
    for (const Added& a : added_)
        if (a.content == content) return a.id;
    return -1;
}

// Hugging Face's AddedVocabulary: the leftmost match of any added token, the longest there; lstrip
// / rstrip take the whitespace beside it into the match.
std::vector<BpeTokenizer::Segment> BpeTokenizer::split_added(const std::string& text, bool parse_special) const {
    std::vector<Segment> out;
    size_t start = 0;  // of the pending text
    auto is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
    for (size_t i = 0; i < text.size() && !added_.empty();) {
        const Added* hit = nullptr;
        for (uint32_t k : added_by_byte_[static_cast<unsigned char>(text[i])]) {  // longest first
            const Added& a = added_[k];
            if (!parse_special && a.special) continue;
            if (text.compare(i, a.content.size(), a.content) == 0) {
                hit = &a;
                break;
            }
        }
        if (!hit) {
            ++i;
            continue;
        }
        size_t b = i, e = i + hit->content.size();
        if (hit->lstrip)
            while (b > start && is_ws(text[b - 1])) --b;
        if (hit->rstrip)
            while (e < text.size() && is_ws(text[e])) ++e;
        if (b > start) out.push_back({-1, start, b});
        out.push_back({hit->id, b, e});
        start = i = e;
    }
    if (start < text.size()) out.push_back({-1, start, text.size()});
    return out;
}

// Hugging Face's BPE merge loop (tokenizers' Word::merge_all): a queue of adjacent pairs ordered
// by merge rank, then position; a popped pair that no longer exists is skipped.
void BpeTokenizer::merge_by_rank(std::vector<int32_t>& w) const {
    if (w.size() < 2 || merge_map_.empty()) return;
    struct Cand {
        int32_t rank, pos, id;
        bool operator<(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    const int32_t n = int32_t(w.size());
    std::vector<int32_t> prev(w.size()), next(w.size());
    std::vector<char> alive(size_t(n), 1);
    for (int32_t i = 0; i < n; ++i) prev[size_t(i)] = i - 1, next[size_t(i)] = i + 1 < n ? i + 1 : -1;
    std::priority_queue<Cand> q;
    auto push = [&](int32_t pos) {
        const int32_t nx = next[size_t(pos)];
        if (nx < 0) return;
        auto it = merge_map_.find(pair_key(w[size_t(pos)], w[size_t(nx)]));
        if (it != merge_map_.end()) q.push({it->second.first, pos, it->second.second});
    };
    for (int32_t i = 0; i + 1 < n; ++i) push(i);
    while (!q.empty()) {
        const Cand c = q.top();
        q.pop();
        const size_t p = size_t(c.pos);
        if (!alive[p] || next[p] < 0) continue;
        const size_t nx = size_t(next[p]);
        auto it = merge_map_.find(pair_key(w[p], w[nx]));
        if (it == merge_map_.end() || it->second.second != c.id) continue;  // expired
        w[p] = c.id;
        alive[nx] = 0;
        next[p] = next[nx];
        if (next[nx] >= 0) prev[size_t(next[nx])] = c.pos;
        if (prev[p] >= 0) push(prev[p]);
        push(c.pos);
    }
    size_t k = 0;
    for (size_t i = 0; i < w.size(); ++i)
        if (alive[i]) w[k++] = w[i];
    w.resize(k);
}

std::vector<int32_t> BpeTokenizer::encode_piece(const std::string& piece) const {
    if (ignore_merges_) {  // a piece that is a token is that token (Llama-3)
        auto it = ids_.find(piece);
        if (it != ids_.end() && it->second < model_vocab_) return {it->second};
    }
    std::vector<int32_t> w;
    w.reserve(piece.size());
    for (unsigned char b : piece) {
        MOE_CHECK(byte_id_[b] >= 0, "tokenizer", "byte " + std::to_string(int(b)) + " has no token");
        w.push_back(byte_id_[b]);
    }
    merge_by_rank(w);
    return w;
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text, bool parse_special) const {
    std::vector<int32_t> out;
    const std::vector<Segment> segs = split_added(text, parse_special);
    if (kind_ == Kind::sentencepiece) {
        encode_spm(text, segs, out);
        return out;
    }
    const text::PreTokenizer& pre = pre_tokenizer();
    std::unordered_map<std::string, std::vector<int32_t>> cache;
    for (const Segment& s : segs) {
        if (s.token >= 0) {
            out.push_back(s.token);
            continue;
        }
        // Hugging Face: the normalizer runs on the text between added tokens, then the pre-tokenizer.
        for (const std::string& piece : pre.split(pre.normalize(text.substr(s.begin, s.end - s.begin)))) {
            auto it = cache.find(piece);
            if (it == cache.end()) it = cache.emplace(piece, encode_piece(piece)).first;
            out.insert(out.end(), it->second.begin(), it->second.end());
        }
    }
    return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
    for (int32_t id : ids)
        MOE_CHECK(id >= 0 && id < int32_t(tokens_.size()), "tokenizer",
                  "token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(tokens_.size()) + ")");
    if (kind_ == Kind::sentencepiece) return decode_spm(ids);
    std::string out;
    for (int32_t id : ids) out += tokens_[size_t(id)];
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
    t.model_vocab_ = int64_t(t.tokens_.size());
    t.index();
    return t;
}

void BpeTokenizer::save(const std::string& path) const {
    if (kind_ == Kind::sentencepiece) {
        MOE_CHECK(!source_json_.empty(), "tokenizer",
                  "cannot write " + path + ": this SentencePiece-style tokenizer was not read from a tokenizer.json");
        write_file_atomic(path, source_json_, "tokenizer");
        return;
    }
    nlohmann::ordered_json j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    nlohmann::ordered_json added = nlohmann::ordered_json::array();
    auto is_added = [&](size_t id) { return types_[id] == kControl || types_[id] == kUserDefined || types_[id] == kUnknown; };
    for (size_t id = 0; id < tokens_.size(); ++id)
        if (is_added(id))
            added.push_back({{"id", id}, {"content", tokens_[id]}, {"single_word", false}, {"lstrip", false},
                             {"rstrip", false}, {"normalized", false}, {"special", types_[id] != kUserDefined}});
    j["added_tokens"] = added;
    if (!pipeline_json_.empty()) {  // read from a tokenizer.json: its own front and back ends
        const nlohmann::ordered_json p = nlohmann::ordered_json::parse(pipeline_json_);
        for (const char* key : {"normalizer", "pre_tokenizer", "post_processor", "decoder"}) j[key] = p[key];
    } else {
        j["normalizer"] = nullptr;
        j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
        j["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
        j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    }
    nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
    for (size_t id = 0; id < size_t(model_vocab_) && id < tokens_.size(); ++id)
        vocab[is_added(id) ? tokens_[id] : token_to_json(tokens_[id])] = id;
    nlohmann::ordered_json merges = nlohmann::ordered_json::array();
    for (auto [a, b] : merges_) merges.push_back(token_to_json(tokens_[size_t(a)]) + " " + token_to_json(tokens_[size_t(b)]));
    j["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", ignore_merges_},
                  {"vocab", vocab}, {"merges", merges}};
    write_file_atomic(path, j.dump(1), "tokenizer");
}

// model.vocab (ids 0..n-1 without repeats) and model.merges of a tokenizer.json.
void read_bpe_model(const nlohmann::json& m, const std::string& path, std::vector<std::string>& tokens,
                    std::vector<std::string>& merges_l, std::vector<std::string>& merges_r) {
    MOE_CHECK(m.contains("vocab") && m["vocab"].is_object() && m.contains("merges") && m["merges"].is_array(),
              "tokenizer", path + ": model.vocab (object) and model.merges (array) are required");
    tokens.assign(m["vocab"].size(), std::string());
    std::vector<bool> seen(tokens.size(), false);
    for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
        MOE_CHECK(it.value().is_number_integer(), "tokenizer", path + ": vocab id of '" + it.key() + "' is not an integer");
        int64_t id = it.value().get<int64_t>();
        MOE_CHECK(id >= 0 && id < int64_t(tokens.size()) && !seen[size_t(id)], "tokenizer",
                  path + ": vocab ids must be 0..n-1 without repeats; '" + it.key() + "' has " + std::to_string(id));
        tokens[size_t(id)] = it.key();
        seen[size_t(id)] = true;
    }
    for (const nlohmann::json& mj : m["merges"]) {
        if (mj.is_string()) {
            const std::string s = mj.get<std::string>();
            const size_t sp = s.find(' ');
            MOE_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, "tokenizer",
                      path + ": merge '" + s + "' is not 'left right'");
            merges_l.push_back(s.substr(0, sp));
            merges_r.push_back(s.substr(sp + 1));
        } else {
            MOE_CHECK(mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string(), "tokenizer",
                      path + ": a merge must be \"a b\" or [\"a\", \"b\"]");
            merges_l.push_back(mj[0].get<std::string>());
            merges_r.push_back(mj[1].get<std::string>());
        }
    }
}

BpeTokenizer BpeTokenizer::load_byte_level(const std::string& path, const void* json) {
    const nlohmann::json& j = *static_cast<const nlohmann::json*>(json);
    const nlohmann::json& m = j["model"];
    auto non_empty = [&](const char* key) { return m.contains(key) && !m[key].is_null() && m[key] != "" && m[key] != 0.0; };
    for (const char* key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix"})
        MOE_CHECK(!non_empty(key), "tokenizer",
                  path + ": model." + key + " " + m[key].dump() + " is not supported in a byte-level BPE");
    const nlohmann::json normalizer = j.value("normalizer", nlohmann::json());
    const nlohmann::json pre = j.value("pre_tokenizer", nlohmann::json());
    std::shared_ptr<const text::PreTokenizer> pipeline = text::PreTokenizer::from_json(normalizer, pre, path);
    std::vector<std::string> tokens, left, right;
    read_bpe_model(j["model"], path, tokens, left, right);
    std::vector<std::string> merges;
    for (size_t i = 0; i < left.size(); ++i) merges.push_back(left[i] + " " + right[i]);
    std::vector<int32_t> types(tokens.size(), kNormal);
    std::vector<std::string> raw = tokens;  // added tokens: as written
    for (const nlohmann::json& a : j.value("added_tokens", nlohmann::json::array())) {
        MOE_CHECK(a.contains("id") && a["id"].is_number_integer() && a.contains("content") && a["content"].is_string(),
                  "tokenizer", path + ": an added token needs an integer id and a string content: " + a.dump());
        const int64_t id = a["id"].get<int64_t>();
        MOE_CHECK(id >= 0 && id < (int64_t(1) << 24), "tokenizer", path + ": added token id " + std::to_string(id) + " is out of range");
        if (size_t(id) >= raw.size()) raw.resize(size_t(id) + 1), types.resize(size_t(id) + 1, kUnused);
        raw[size_t(id)] = a["content"].get<std::string>();
        types[size_t(id)] = a.value("special", false) ? kControl : kUserDefined;
    }
    for (size_t id = 0; id < types.size(); ++id)
        MOE_CHECK(types[id] != kUnused, "tokenizer", path + ": token id " + std::to_string(id) + " is neither in model.vocab nor an added token");
    BpeTokenizer t = from_vocab(raw, merges, path, types);
    t.model_vocab_ = int64_t(tokens.size());
    t.pre_ = pipeline;
    t.ignore_merges_ = m.value("ignore_merges", false);
    t.pipeline_json_ = nlohmann::json{{"normalizer", normalizer}, {"pre_tokenizer", pre},
                                      {"post_processor", j.value("post_processor", nlohmann::json())},
                                      {"decoder", j.value("decoder", nlohmann::json())}}.dump();
    for (const nlohmann::json& a : j.value("added_tokens", nlohmann::json::array()))
        for (Added& x : t.added_)
            if (x.id == a["id"].get<int32_t>()) x.lstrip = a.value("lstrip", false), x.rstrip = a.value("rstrip", false);
    return t;
}

BpeTokenizer BpeTokenizer::from_vocab(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
                                      const std::string& path, const std::vector<int32_t>& types) {
    BpeTokenizer t;
    t.tokens_.reserve(tokens.size());
    t.types_.assign(tokens.size(), kNormal);
    std::vector<Added> added;
    for (size_t id = 0; id < tokens.size(); ++id) {
        const int32_t type = id < types.size() ? types[id] : kNormal;
        // Control and user-defined tokens (<|im_end|>, ...) are text as written; llama.cpp's gpt2
        // vocabularies also mark byte tokens BYTE, and unused ones UNUSED: byte-to-unicode like normal ones.
        if (type == kControl || type == kUserDefined || type == kUnknown) {
            t.tokens_.push_back(tokens[id]);
            t.types_[id] = type;
            added.push_back({int32_t(id), tokens[id], type != kUserDefined, false, false});
        } else {
            t.tokens_.push_back(token_from_json(tokens[id], path));
        }
    }
    t.model_vocab_ = int64_t(tokens.size());
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
    t.set_added(added);
    return t;
}

GgufTokenizerVocab BpeTokenizer::gguf_vocab() const {
    GgufTokenizerVocab v;
    v.types = types_;
    v.bos = bos_, v.eos = eos_, v.unk = unk_;
    v.add_bos = add_bos();
    if (kind_ == Kind::byte_level) {
        v.model = "gpt2";
        for (size_t id = 0; id < tokens_.size(); ++id)
            v.tokens.push_back(types_[id] == kControl || types_[id] == kUserDefined || types_[id] == kUnknown
                                   ? tokens_[id] : token_to_json(tokens_[id]));
        for (auto [a, b] : merges_) v.merges.push_back(token_to_json(tokens_[size_t(a)]) + " " + token_to_json(tokens_[size_t(b)]));
        v.pre = text::gguf_pre_name(pre_tokenizer(), ignore_merges_);  // "" when no GGUF name fits
        v.add_space_prefix = false;
        return v;
    }
    v.model = "llama";
    v.tokens = tokens_;
    v.add_space_prefix = prefix_ != Prefix::none;
    if (by_score_) {
        v.scores = scores_;
        return v;
    }
    // A token made by merge r scores -r (its first merge), as SentencePiece scores pieces by the
    // order they were learnt; tokens no merge makes (characters) score below every merge, byte
    // and special tokens 0 (llama.cpp never merges into those).
    const float below = -float(merges_.size() + 1);
    v.scores.assign(tokens_.size(), 0.0f);
    std::vector<bool> made(tokens_.size(), false);
    for (size_t r = 0; r < merges_.size(); ++r) {
        const auto [a, b] = merges_[r];
        const int32_t id = merge_map_.at(pair_key(a, b)).second;
        if (!made[size_t(id)]) v.scores[size_t(id)] = -float(r), made[size_t(id)] = true;
    }
    for (size_t id = 0; id < tokens_.size(); ++id)
        if (!made[id] && types_[id] == kNormal) v.scores[id] = below;
    return v;
}

}  // namespace moe
