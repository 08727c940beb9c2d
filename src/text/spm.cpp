// SentencePiece-style BPE (Llama, Mistral, Mixtral), and choosing the kind of a tokenizer.json:
//   - from tokenizer.json, as Hugging Face `tokenizers` encodes it: text between added tokens gets
//     the meta-space (Prepend("▁") + Replace(" ", "▁") normalizer, or the Metaspace
//     pre-tokenizer), then BPE by merge rank with byte fallback; decoding by its decoder chain
//     (Replace "▁" -> " ", ByteFallback, Fuse, Strip) or the Metaspace decoder;
//   - from a GGUF with tokenizer.ggml.model = "llama", as llama.cpp's SPM tokenizer encodes it: a
//     space before the first text and after each special token, spaces as "▁", then adjacent
//     symbols merged while their concatenation is a token, highest score first (leftmost on a
//     tie), and symbols that are no token written as <0xXX> byte tokens.
// docs/tokenizers.md has the details and the cases where the two differ.
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>

#include "moe/error.h"
#include "moe/files.h"
#include "moe/pretokenize.h"
#include "moe/tokenizer.h"
#include "utf8.h"

namespace moe {

void read_bpe_model(const nlohmann::json& m, const std::string& path, std::vector<std::string>& tokens,
                    std::vector<std::string>& merges_l, std::vector<std::string>& merges_r);  // bpe.cpp

namespace {

using text::kMetaSpace;
using text::next_cp;

constexpr const char* kOp = "tokenizer";

bool is_byte_token(const std::string& s) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
    return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

bool starts_with_meta(const std::string& s) { return s.compare(0, kMetaSpace.size(), kMetaSpace) == 0; }

// The content of a tokenizer_config.json special token entry: "<s>" or {"content": "<s>", ...}.
std::string config_token(const nlohmann::json& c, const char* key) {
    if (!c.contains(key)) return "";
    const nlohmann::json& v = c[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return "";
}

bool has_byte_level(const nlohmann::json& pre) {
    if (!pre.is_object()) return false;
    if (pre.value("type", "") == "ByteLevel") return true;
    if (pre.value("type", "") != "Sequence" || !pre.contains("pretokenizers") || !pre["pretokenizers"].is_array()) return false;
    for (const nlohmann::json& p : pre["pretokenizers"])
        if (has_byte_level(p)) return true;
    return false;
}

}  // namespace

BpeTokenizer BpeTokenizer::load(const std::string& path) {
    const std::string text = read_file(path, kOp);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
        throw Error(std::string("[") + kOp + "] " + path + " is not valid JSON: " + e.what());
    }
    MOE_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), kOp,
              path + ": expected a BPE model (\"model\": {\"type\": \"BPE\"}); the file has no \"model\" object");
    const std::string type = j["model"].value("type", std::string(j["model"].contains("merges") ? "BPE" : ""));
    MOE_CHECK(type == "BPE", kOp,
              path + ": expected a BPE model (\"model\": {\"type\": \"BPE\"}), got model type \"" + type +
                  "\"; supported: byte-level BPE (GPT-2, Qwen) and SentencePiece-style BPE with byte_fallback "
                  "(Llama, Mistral, Mixtral)");
    // Byte-level when a ByteLevel pre-tokenizer maps bytes to GPT-2's alphabet, alone or in a Sequence.
    const nlohmann::json pre = j.value("pre_tokenizer", nlohmann::json());
    const bool byte_level = has_byte_level(pre);
    BpeTokenizer t = byte_level ? load_byte_level(path, &j) : load_spm(path, &j);
    if (t.kind_ == Kind::sentencepiece) t.source_json_ = text;
    t.read_post_processor(path, &j);

    // Special tokens: <s> / </s> as Llama files name them, then tokenizer_config.json when present.
    if (t.bos_ < 0) t.bos_ = t.special_id("<s>");
    if (t.eos_ < 0) t.eos_ = t.special_id("</s>");
    const std::filesystem::path config = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
    if (std::filesystem::exists(config)) {
        const nlohmann::json c = read_json_file(config.string(), kOp);
        auto id_of = [&](const std::string& content) {
            const int32_t id = t.special_id(content);
            if (id >= 0) return id;
            auto it = t.ids_.find(content);
            return it == t.ids_.end() ? int32_t(-1) : it->second;
        };
        if (c.contains("bos_token")) t.bos_ = c["bos_token"].is_null() ? -1 : id_of(config_token(c, "bos_token"));
        if (c.contains("eos_token")) {
            const int32_t eos = id_of(config_token(c, "eos_token"));
            if (eos >= 0) t.eos_ = eos;
        }
        if (c.contains("add_bos_token") && c["add_bos_token"].is_boolean()) t.add_bos_ = c["add_bos_token"].get<bool>();
    }
    return t;
}

BpeTokenizer BpeTokenizer::load_spm(const std::string& path, const void* json) {
    const nlohmann::json& j = *static_cast<const nlohmann::json*>(json);
    const nlohmann::json& m = j["model"];
    auto unsupported = [&](const std::string& what) {
        fail(kOp, path + ": " + what + " is not supported; supported are byte-level BPE (the ByteLevel pre-tokenizer, "
                  "alone or in a Sequence with Split and Digits) and SentencePiece-style BPE (Llama / Mistral: byte_fallback, the Prepend(\"\xE2\x96\x81\") + "
                  "Replace(\" \", \"\xE2\x96\x81\") normalizer or the Metaspace pre-tokenizer)");
    };
    auto non_empty = [&](const char* key) { return m.contains(key) && !m[key].is_null() && m[key] != ""; };
    if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() != 0.0)
        unsupported("model.dropout " + m["dropout"].dump() + " (BPE-dropout)");
    if (non_empty("continuing_subword_prefix")) unsupported("model.continuing_subword_prefix " + m["continuing_subword_prefix"].dump());
    if (non_empty("end_of_word_suffix")) unsupported("model.end_of_word_suffix " + m["end_of_word_suffix"].dump());

    BpeTokenizer t;
    t.kind_ = Kind::sentencepiece;
    t.byte_fallback_ = m.value("byte_fallback", false);
    t.fuse_unk_ = m.value("fuse_unk", false);
    t.ignore_merges_ = m.value("ignore_merges", false);

    // Normalizer: Prepend("▁") and Replace(" ", "▁"), alone or in a Sequence.
    const nlohmann::json norm = j.value("normalizer", nlohmann::json());
    std::vector<nlohmann::json> norms;
    if (norm.is_object() && norm.value("type", "") == "Sequence")
        for (const nlohmann::json& n : norm.value("normalizers", nlohmann::json::array())) norms.push_back(n);
    else if (norm.is_object())
        norms.push_back(norm);
    else if (!norm.is_null())
        unsupported("normalizer " + norm.dump());
    for (const nlohmann::json& n : norms) {
        const std::string type = n.value("type", "");
        if (type == "Prepend" && n.value("prepend", "") == kMetaSpace) {
            t.prefix_ = Prefix::prepend;
        } else if (type == "Replace" && n.contains("pattern") && n["pattern"].is_object() &&
                   n["pattern"].value("String", "") == " " && n.value("content", "") == kMetaSpace) {
            t.replace_spaces_ = true;
        } else {
            unsupported("normalizer " + n.dump());
        }
    }
    // Pre-tokenizer: none, or Metaspace (prepend_scheme always / first / never, or the older
    // add_prefix_space; split).
    const nlohmann::json pre = j.value("pre_tokenizer", nlohmann::json());
    if (pre.is_object() && pre.value("type", "") == "Metaspace") {
        if (pre.value("replacement", kMetaSpace) != kMetaSpace) unsupported("Metaspace replacement " + pre["replacement"].dump());
        if (t.prefix_ != Prefix::none) unsupported("a Prepend normalizer together with the Metaspace pre-tokenizer");
        std::string scheme = pre.value("prepend_scheme", std::string(pre.value("add_prefix_space", true) ? "always" : "never"));
        if (scheme == "always") t.prefix_ = Prefix::metaspace_always;
        else if (scheme == "first") t.prefix_ = Prefix::metaspace_first;
        else if (scheme != "never") unsupported("Metaspace prepend_scheme \"" + scheme + "\"");
        t.replace_spaces_ = true;
        t.split_ = pre.value("split", true);
    } else if (!pre.is_null()) {
        unsupported("pre_tokenizer " + pre.dump());
    }
    if (!t.byte_fallback_ && !t.replace_spaces_ && t.prefix_ == Prefix::none)
        unsupported("a BPE model without a pre-tokenizer, a \xE2\x96\x81 normalizer or byte_fallback");

    // Decoder.
    const nlohmann::json dec = j.value("decoder", nlohmann::json());
    std::vector<nlohmann::json> decs;
    if (dec.is_object() && dec.value("type", "") == "Sequence")
        for (const nlohmann::json& d : dec.value("decoders", nlohmann::json::array())) decs.push_back(d);
    else if (dec.is_object())
        decs.push_back(dec);
    else
        unsupported("decoder " + dec.dump());
    for (const nlohmann::json& d : decs) {
        const std::string type = d.value("type", "");
        if (type == "Replace" && d.contains("pattern") && d["pattern"].is_object() &&
            d["pattern"].value("String", "") == kMetaSpace && d.value("content", "") == " ") {
            t.dec_replace_ = true;
        } else if (type == "ByteFallback") {
            t.dec_byte_fallback_ = true;
        } else if (type == "Fuse") {
        } else if (type == "Strip" && d.value("content", " ") == " " && d.value("stop", 0) == 0) {
            t.dec_strip_ = d.value("start", 0);
        } else if (type == "Metaspace" && d.value("replacement", kMetaSpace) == kMetaSpace) {
            t.dec_metaspace_ = true;
            const std::string scheme =
                d.value("prepend_scheme", std::string(d.value("add_prefix_space", true) ? "always" : "never"));
            t.dec_strip_ = scheme == "never" ? 0 : 1;
        } else {
            unsupported("decoder " + d.dump());
        }
    }

    // Vocabulary, merges and added tokens.
    std::vector<std::string> tokens, left, right;
    read_bpe_model(m, path, tokens, left, right);
    t.model_vocab_ = int64_t(tokens.size());
    std::vector<int32_t> types(tokens.size(), kNormal);
    for (size_t id = 0; id < tokens.size(); ++id)
        if (is_byte_token(tokens[id])) types[id] = kByte;
    std::vector<Added> added;
    for (const nlohmann::json& a : j.value("added_tokens", nlohmann::json::array())) {
        MOE_CHECK(a.contains("id") && a["id"].is_number_integer() && a.contains("content") && a["content"].is_string(),
                  kOp, path + ": an added token needs an integer id and a string content: " + a.dump());
        const int64_t id = a["id"].get<int64_t>();
        MOE_CHECK(id >= 0 && id < (int64_t(1) << 24), kOp, path + ": added token id " + std::to_string(id) + " is out of range");
        if (size_t(id) >= tokens.size()) tokens.resize(size_t(id) + 1), types.resize(size_t(id) + 1, kUnused);
        const std::string content = a["content"].get<std::string>();
        MOE_CHECK(size_t(id) >= size_t(t.model_vocab_) || tokens[size_t(id)] == content, kOp,
                  path + ": added token " + std::to_string(id) + " '" + content + "' differs from model.vocab's '" +
                      tokens[size_t(id)] + "'");
        tokens[size_t(id)] = content;
        const bool special = a.value("special", false);
        types[size_t(id)] = special ? kControl : kUserDefined;
        added.push_back({int32_t(id), content, special, a.value("lstrip", false), a.value("rstrip", false)});
    }
    for (size_t id = 0; id < types.size(); ++id)
        MOE_CHECK(types[id] != kUnused, kOp, path + ": token id " + std::to_string(id) + " is neither in model.vocab nor an added token");
    if (m.contains("unk_token") && m["unk_token"].is_string()) {
        const std::string unk = m["unk_token"].get<std::string>();
        for (size_t id = 0; id < tokens.size(); ++id)
            if (tokens[id] == unk) t.unk_ = int32_t(id);
        MOE_CHECK(t.unk_ >= 0, kOp, path + ": model.unk_token '" + unk + "' is not in the vocabulary");
        if (types[size_t(t.unk_)] == kControl) types[size_t(t.unk_)] = kUnknown;
    }
    t.tokens_ = tokens;
    t.types_ = types;
    t.index();
    for (size_t r = 0; r < left.size(); ++r) {
        auto ia = t.ids_.find(left[r]), ib = t.ids_.find(right[r]), iab = t.ids_.find(left[r] + right[r]);
        MOE_CHECK(ia != t.ids_.end() && ib != t.ids_.end() && iab != t.ids_.end(), kOp,
                  path + ": merge '" + left[r] + " " + right[r] + "' uses or makes a token missing from the vocab");
        t.merges_.push_back({ia->second, ib->second});
    }
    t.index();
    t.set_added(added);
    return t;
}

// BOS as the post-processor adds it: TemplateProcessing (alone, or in a Sequence as Llama-3's
// ByteLevel + TemplateProcessing) whose single sequence starts with a special token.
void BpeTokenizer::read_post_processor(const std::string& path, const void* json) {
    const nlohmann::json& j = *static_cast<const nlohmann::json*>(json);
    const nlohmann::json post = j.value("post_processor", nlohmann::json());
    std::vector<nlohmann::json> procs;
    if (post.is_object() && post.value("type", "") == "Sequence" && post.contains("processors") && post["processors"].is_array())
        for (const nlohmann::json& p : post["processors"]) procs.push_back(p);
    else
        procs.push_back(post);
    for (const nlohmann::json& p : procs) {
        if (!(p.is_object() && p.value("type", "") == "TemplateProcessing" && p.contains("single") &&
              p["single"].is_array() && !p["single"].empty() && p["single"][0].contains("SpecialToken")))
            continue;
        const std::string name = p["single"][0]["SpecialToken"].value("id", "");
        const nlohmann::json st = p.value("special_tokens", nlohmann::json::object());
        if (st.contains(name) && st[name].contains("ids") && st[name]["ids"].size() == 1) {
            bos_ = st[name]["ids"][0].get<int32_t>();
            MOE_CHECK(bos_ >= 0 && bos_ < int32_t(tokens_.size()), kOp,
                      path + ": the post-processor's " + name + " has id " + std::to_string(bos_) + ", outside the vocabulary");
            add_bos_ = true;
        }
    }
}

void BpeTokenizer::encode_spm(const std::string& text, const std::vector<Segment>& segs, std::vector<int32_t>& out) const {
    for (const Segment& seg : segs) {
        if (seg.token >= 0) {
            out.push_back(seg.token);
            continue;
        }
        std::string s = text.substr(seg.begin, seg.end - seg.begin);
        if (replace_spaces_) s = text::replace_all(s, " ", kMetaSpace);
        // Prepend (Hugging Face's legacy normalizer, llama.cpp's add_space_prefix): every text
        // segment, i.e. the first one and each one after an added token; Metaspace: unless it
        // already starts with "▁", "first" only at the start of the input.
        if (prefix_ == Prefix::prepend ||
            ((prefix_ == Prefix::metaspace_always || (prefix_ == Prefix::metaspace_first && seg.begin == 0)) &&
             !starts_with_meta(s)))
            s = kMetaSpace + s;
        auto word = [&](const std::string& w) { by_score_ ? encode_spm_score(w, out) : encode_spm_word(w, out); };
        if (!split_) {
            word(s);
            continue;
        }
        size_t start = 0;  // Metaspace split, MergedWithNext: each "▁" starts a word
        for (size_t at = s.find(kMetaSpace, 1); at != std::string::npos; at = s.find(kMetaSpace, at + 1)) {
            if (at > start) word(s.substr(start, at - start));
            start = at;
        }
        if (start < s.size()) word(s.substr(start));
    }
}

// Hugging Face's BPE on one word: its characters (absent ones as <0xXX> byte tokens with
// byte_fallback, else <unk>), then merges by rank.
void BpeTokenizer::encode_spm_word(const std::string& word, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (ignore_merges_) {
        auto it = ids_.find(word);
        if (it != ids_.end() && it->second < model_vocab_) {
            out.push_back(it->second);
            return;
        }
    }
    std::vector<int32_t> w;
    w.reserve(word.size());
    bool last_unk = false;
    for (size_t i = 0; i < word.size();) {
        size_t len;
        next_cp(word, i, len);
        auto it = ids_.find(word.substr(i, len));
        if (it != ids_.end() && it->second < model_vocab_) {
            w.push_back(it->second);
            last_unk = false;
        } else {
            bool bytes = byte_fallback_;
            for (size_t k = i; k < i + len && bytes; ++k) bytes = byte_id_[static_cast<unsigned char>(word[k])] >= 0;
            if (bytes) {
                for (size_t k = i; k < i + len; ++k) w.push_back(byte_id_[static_cast<unsigned char>(word[k])]);
                last_unk = false;
            } else {
                MOE_CHECK(unk_ >= 0, kOp, "the character '" + word.substr(i, len) +
                                              "' has no token, no byte fallback and the vocabulary has no unk_token");
                if (!(fuse_unk_ && last_unk)) w.push_back(unk_);
                last_unk = true;
            }
        }
        i += len;
    }
    merge_by_rank(w);
    out.insert(out.end(), w.begin(), w.end());
}

// llama.cpp's SPM tokenizer (llm_tokenizer_spm) on one text: UTF-8 characters as symbols; the
// adjacent pairs whose concatenation is a token queue by that token's score (ties: leftmost);
// the best merges, its neighbours' pairs join the queue; finally each symbol is its token, or
// is split back along the merges that made it, or is written as byte tokens.
void BpeTokenizer::encode_spm_score(const std::string& word, std::vector<int32_t>& out) const {
    struct Sym {
        size_t off, n;
        int prev, next;
    };
    struct Bigram {
        int left, right;
        float score;
        size_t size;
        bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
    };
    static const uint8_t utf8_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    std::vector<Sym> sym;
    for (size_t off = 0; off < word.size();) {
        const size_t n = std::min<size_t>(utf8_len[static_cast<unsigned char>(word[off]) >> 4], word.size() - off);
        const int index = int(sym.size());
        sym.push_back({off, n, index - 1, off + n == word.size() ? -1 : index + 1});
        off += n;
    }
    if (sym.empty()) return;
    std::priority_queue<Bigram> q;
    std::map<std::string, std::pair<int, int>> rev_merge;
    auto try_add = [&](int l, int r) {
        if (l == -1 || r == -1) return;
        const std::string s = word.substr(sym[size_t(l)].off, sym[size_t(l)].n + sym[size_t(r)].n);
        auto it = ids_.find(s);
        if (it == ids_.end()) return;
        q.push({l, r, scores_[size_t(it->second)], s.size()});
        rev_merge[s] = {l, r};
    };
    for (int i = 1; i < int(sym.size()); ++i) try_add(i - 1, i);
    while (!q.empty()) {
        const Bigram b = q.top();
        q.pop();
        Sym& l = sym[size_t(b.left)];
        Sym& r = sym[size_t(b.right)];
        if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) sym[size_t(r.next)].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
    }
    std::function<void(const Sym&, int)> resegment = [&](const Sym& s, int depth) {
        const std::string piece = word.substr(s.off, s.n);
        auto it = ids_.find(piece);
        if (it != ids_.end()) {
            out.push_back(it->second);
            return;
        }
        auto rm = rev_merge.find(piece);
        if (rm != rev_merge.end() && depth < 64) {
            resegment(sym[size_t(rm->second.first)], depth + 1);
            resegment(sym[size_t(rm->second.second)], depth + 1);
            return;
        }
        for (size_t k = 0; k < s.n; ++k) {
            const unsigned char c = static_cast<unsigned char>(word[s.off + k]);
            int32_t id = byte_id_[c];
            if (id < 0) {
                auto single = ids_.find(std::string(1, char(c)));
                MOE_CHECK(single != ids_.end(), kOp,
                          "byte " + std::to_string(int(c)) + " has no token (no <0xXX> byte token, no single-byte token)");
                id = single->second;
            }
            out.push_back(id);
        }
    };
    for (int i = 0; i != -1; i = sym[size_t(i)].next) resegment(sym[size_t(i)], 0);
}

// Hugging Face's decoders on the token strings: Replace("▁", " ") or Metaspace, ByteFallback
// (a run of <0xXX> tokens becomes its bytes when they are UTF-8, else one U+FFFD per token), Fuse,
// Strip(leading spaces).
std::string BpeTokenizer::decode_spm(const std::vector<int32_t>& ids) const {
    std::vector<std::string> toks;
    toks.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
        const std::string& s = tokens_[size_t(ids[i])];
        if (dec_metaspace_)  // tokenizers' Metaspace decoder drops every "▁" of the first token
            toks.push_back(text::replace_all(s, kMetaSpace, i == 0 && dec_strip_ > 0 ? "" : " "));
        else
            toks.push_back(dec_replace_ ? text::replace_all(s, kMetaSpace, " ") : s);
    }
    std::string out, run;
    size_t run_tokens = 0;
    auto flush = [&] {
        if (run_tokens == 0) return;
        if (text::valid_utf8(run)) {
            out += run;
        } else {
            for (size_t k = 0; k < run_tokens; ++k) out += "\xEF\xBF\xBD";
        }
        run.clear();
        run_tokens = 0;
    };
    for (const std::string& s : toks) {
        if (dec_byte_fallback_ && is_byte_token(s)) {
            run += char(std::stoi(s.substr(3, 2), nullptr, 16));
            ++run_tokens;
            continue;
        }
        flush();
        out += s;
    }
    flush();
    if (!dec_metaspace_) {
        size_t k = 0;
        while (k < size_t(dec_strip_) && k < out.size() && out[k] == ' ') ++k;
        out.erase(0, k);
    }
    return out;
}

BpeTokenizer BpeTokenizer::from_gguf_vocab(const GgufTokenizerVocab& v, const std::string& path) {
    const size_t n = v.tokens.size();
    auto check_id = [&](int32_t id, const char* what) {
        MOE_CHECK(id < int32_t(n), kOp, path + ": the " + std::string(what) + " token id " + std::to_string(id) +
                                            " is outside the vocabulary of " + std::to_string(n));
        return id;
    };
    BpeTokenizer t;
    if (v.model == "gpt2") {
        t = from_vocab(v.tokens, v.merges, path, v.types);
        const text::GgufPreTokenizer pre = text::gguf_pre_tokenizer(v.pre.empty() ? "gpt-2" : v.pre, path);
        t.pre_ = pre.pre;
        t.ignore_merges_ = pre.ignore_merges;
    } else {
        MOE_CHECK(v.model == "llama", kOp,
                  path + ": tokenizer.ggml.model is \"" + v.model + "\"; supported: \"gpt2\" (byte-level BPE) and "
                         "\"llama\" (SentencePiece BPE)");
        MOE_CHECK(v.scores.empty() || v.scores.size() >= n, kOp, path + ": fewer tokenizer.ggml.scores than tokens");
        MOE_CHECK(v.types.empty() || v.types.size() >= n, kOp, path + ": fewer tokenizer.ggml.token_type than tokens");
        t.kind_ = Kind::sentencepiece;
        t.by_score_ = true;
        t.tokens_ = v.tokens;
        for (size_t id = 0; id < n; ++id)
            if (t.tokens_[id].empty()) t.tokens_[id] = "[EMPTY_" + std::to_string(id) + "]";  // as llama.cpp
        std::set<std::string> seen;
        for (size_t id = 0; id < n; ++id)
            MOE_CHECK(seen.insert(t.tokens_[id]).second, kOp,
                      path + ": token '" + t.tokens_[id] + "' appears twice (id " + std::to_string(id) + ")");
        t.types_ = v.types.empty() ? std::vector<int32_t>(n, kNormal) : std::vector<int32_t>(v.types.begin(), v.types.begin() + long(n));
        t.scores_ = v.scores.empty() ? std::vector<float>(n, 0.0f) : std::vector<float>(v.scores.begin(), v.scores.begin() + long(n));
        t.model_vocab_ = int64_t(n);
        t.prefix_ = v.add_space_prefix ? Prefix::prepend : Prefix::none;
        t.replace_spaces_ = true;
        t.byte_fallback_ = true;
        t.dec_replace_ = true;
        t.dec_byte_fallback_ = true;
        t.dec_strip_ = v.add_space_prefix ? 1 : 0;
        t.index();
        std::vector<Added> added;  // llama.cpp's special-token cache: control, user-defined, unknown
        for (size_t id = 0; id < n; ++id) {
            const int32_t type = t.types_[id];
            if (type == kControl || type == kUnknown || type == kUserDefined)
                added.push_back({int32_t(id), t.tokens_[id], type != kUserDefined, false, false});
        }
        t.set_added(added);
    }
    t.bos_ = check_id(v.bos, "BOS");
    t.eos_ = check_id(v.eos, "EOS");
    t.unk_ = check_id(v.unk, "unknown");
    t.add_bos_ = v.add_bos;
    return t;
}

}  // namespace moe
