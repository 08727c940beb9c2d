// Byte-level BPE pre-tokenizers as Hugging Face `tokenizers` runs them (docs/tokenizers.md):
//   - the normalizer first (NFC, utf8proc), on each text segment between added tokens;
//   - then the pre-tokenizers of the Sequence in order, each on every piece the previous ones
//     left (so ^, $ and lookarounds see the piece, not the whole text). Split: the pattern's
//     matches and the text between them (tokenizers' NormalizedString::split); `invert` swaps the
//     two; the behavior keeps (isolated), drops (removed) or glues matches to the piece before
//     (merged_with_previous) or after (merged_with_next), or joins runs of the same kind
//     (contiguous); empty pieces are dropped. Digits is a Split on each \p{N} character
//     (individual_digits: isolated, else contiguous); ByteLevel with use_regex is a Split on
//     GPT-2's regex, isolated; the byte-to-unicode mapping itself is the tokenizer's.
#include "moe/pretokenize.h"

#include <utf8proc.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "regex.h"

namespace moe::text {
namespace {

constexpr const char* kOp = "tokenizer";
constexpr const char* kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
constexpr const char* kSupported =
    "supported for byte-level BPE: pre_tokenizer ByteLevel (add_prefix_space false), or a Sequence of "
    "Split (pattern Regex or String; behavior Removed, Isolated, MergedWithPrevious, MergedWithNext or "
    "Contiguous; invert), Digits (individual_digits) and ByteLevel; normalizer null, NFC or a Sequence of those";

struct Piece {
    size_t begin, end;
    bool match;
};

// tokenizers' split with a SplitDelimiterBehavior, on pieces that alternate text / matches.
std::vector<Piece> apply_behavior(std::vector<Piece> in, SplitBehavior b) {
    std::vector<Piece> out;
    switch (b) {
        case SplitBehavior::isolated:
            return in;
        case SplitBehavior::removed:
            for (const Piece& p : in)
                if (!p.match) out.push_back(p);
            return out;
        case SplitBehavior::merged_with_previous: {  // a match after text joins that text
            bool prev_match = false;
            for (const Piece& p : in) {
                if (p.match && !prev_match && !out.empty()) out.back().end = p.end;
                else out.push_back(p);
                prev_match = p.match;
            }
            return out;
        }
        case SplitBehavior::merged_with_next: {  // a match before text joins that text
            bool next_match = false;
            for (auto it = in.rbegin(); it != in.rend(); ++it) {
                if (it->match && !next_match && !out.empty()) out.back().begin = it->begin;
                else out.push_back(*it);
                next_match = it->match;
            }
            return {out.rbegin(), out.rend()};
        }
        case SplitBehavior::contiguous: {  // runs of matches (or of text) become one piece
            bool prev_match = false;
            for (const Piece& p : in) {
                if (p.match == prev_match && !out.empty()) out.back().end = p.end;
                else out.push_back(p);
                prev_match = p.match;
            }
            return out;
        }
    }
    return in;
}

void split_piece(const std::string& s, const PreTokenizer::Step& step, std::vector<std::string>& out) {
    std::vector<Piece> pieces;
    size_t prev = 0;
    for (const auto& [b, e] : step.re->find_all(s)) {
        if (b > prev) pieces.push_back({prev, b, false});
        pieces.push_back({b, e, true});
        prev = e;
    }
    if (prev < s.size() || pieces.empty()) pieces.push_back({prev, s.size(), false});
    if (step.invert)
        for (Piece& p : pieces) p.match = !p.match;
    for (const Piece& p : apply_behavior(std::move(pieces), step.behavior))
        if (p.end > p.begin) out.push_back(s.substr(p.begin, p.end - p.begin));
}

SplitBehavior behavior_of(const nlohmann::json& v, const std::string& where) {
    static const std::pair<const char*, SplitBehavior> names[] = {
        {"Removed", SplitBehavior::removed},
        {"Isolated", SplitBehavior::isolated},
        {"MergedWithPrevious", SplitBehavior::merged_with_previous},
        {"MergedWithNext", SplitBehavior::merged_with_next},
        {"Contiguous", SplitBehavior::contiguous}};
    if (v.is_string())
        for (const auto& [name, b] : names)
            if (v.get<std::string>() == name) return b;
    fail(kOp, where + ".behavior " + v.dump() +
                  " is not a split behavior; supported: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

const char* behavior_name(SplitBehavior b) {
    switch (b) {
        case SplitBehavior::removed: return "removed";
        case SplitBehavior::isolated: return "isolated";
        case SplitBehavior::merged_with_previous: return "merged_with_previous";
        case SplitBehavior::merged_with_next: return "merged_with_next";
        case SplitBehavior::contiguous: return "contiguous";
    }
    return "?";
}

class Builder {
public:
    explicit Builder(const std::string& path) : path_(path) {}
    std::vector<PreTokenizer::Step> steps;
    bool nfc = false;

    void normalizer(const nlohmann::json& n, const std::string& where) {
        if (n.is_null()) return;
        const std::string type = n.is_object() ? n.value("type", "") : "";
        if (type == "NFC") {
            nfc = true;
        } else if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
            for (size_t k = 0; k < n["normalizers"].size(); ++k)
                normalizer(n["normalizers"][k], where + ".normalizers[" + std::to_string(k) + "]");
        } else {
            unsupported(where, n);
        }
    }

    void pre_tokenizer(const nlohmann::json& p, const std::string& where) {
        const std::string type = p.is_object() ? p.value("type", "") : "";
        if (type == "Sequence" && p.contains("pretokenizers") && p["pretokenizers"].is_array()) {
            for (size_t k = 0; k < p["pretokenizers"].size(); ++k)
                pre_tokenizer(p["pretokenizers"][k], where + ".pretokenizers[" + std::to_string(k) + "]");
        } else if (type == "ByteLevel") {
            if (p.value("add_prefix_space", false))
                fail(kOp, path_ + ": " + where + " " + p.dump() +
                              " adds a prefix space, which is not supported; " + kSupported);
            if (p.value("use_regex", true))
                steps.push_back({std::make_shared<const Regex>(kGpt2Regex, false, path_ + ": " + where),
                                 SplitBehavior::isolated, false});
        } else if (type == "Split") {
            const nlohmann::json pat = p.value("pattern", nlohmann::json());
            const bool is_regex = pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string();
            const bool is_string = pat.is_object() && pat.contains("String") && pat["String"].is_string();
            if (!is_regex && !is_string)
                fail(kOp, path_ + ": " + where + ".pattern " + pat.dump() +
                              " is neither {\"Regex\": \"...\"} nor {\"String\": \"...\"}");
            const std::string text = is_regex ? pat["Regex"].get<std::string>() : pat["String"].get<std::string>();
            const nlohmann::json invert = p.value("invert", nlohmann::json(false));
            MOE_CHECK(invert.is_boolean(), kOp, path_ + ": " + where + ".invert " + invert.dump() + " is not a boolean");
            steps.push_back({std::make_shared<const Regex>(text, !is_regex, path_ + ": " + where + ".pattern"),
                             behavior_of(p.value("behavior", nlohmann::json()), path_ + ": " + where),
                             invert.get<bool>()});
        } else if (type == "Digits") {
            const bool individual = p.value("individual_digits", false);
            steps.push_back({std::make_shared<const Regex>("\\p{N}", false, path_ + ": " + where),
                             individual ? SplitBehavior::isolated : SplitBehavior::contiguous, false});
        } else {
            unsupported(where, p);
        }
    }

private:
    std::string path_;
    [[noreturn]] void unsupported(const std::string& where, const nlohmann::json& v) {
        fail(kOp, path_ + ": " + where + " " + v.dump() + " is not supported; " + kSupported);
    }
};

}  // namespace

std::shared_ptr<const PreTokenizer> PreTokenizer::gpt2() {
    static const std::shared_ptr<const PreTokenizer> p =
        from_json(nullptr, {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}, "GPT-2's ByteLevel");
    return p;
}

std::shared_ptr<const PreTokenizer> PreTokenizer::from_json(const nlohmann::json& normalizer, const nlohmann::json& pre,
                                                            const std::string& path) {
    Builder b(path);
    b.normalizer(normalizer, "normalizer");
    b.pre_tokenizer(pre, "pre_tokenizer");
    auto p = std::make_shared<PreTokenizer>();
    p->steps_ = std::move(b.steps);
    p->nfc_ = b.nfc;
    p->sign();
    return p;
}

void PreTokenizer::sign() {
    signature_ = nfc_ ? "nfc" : "none";
    for (const Step& s : steps_)
        signature_ += std::string("|") + (s.re->literal() ? "string:" : "regex:") + s.re->pattern() + "|" +
                      behavior_name(s.behavior) + (s.invert ? "|invert" : "");
}

std::string PreTokenizer::normalize(const std::string& text) const { return nfc_ ? text::nfc(text) : text; }

std::vector<std::string> PreTokenizer::split(const std::string& text) const {
    std::vector<std::string> pieces;
    if (text.empty()) return pieces;
    pieces.push_back(text);
    for (const Step& step : steps_) {
        std::vector<std::string> next;
        next.reserve(pieces.size() * 2);
        for (const std::string& p : pieces) split_piece(p, step, next);
        pieces = std::move(next);
    }
    return pieces;
}

std::string nfc(const std::string& text) {
    bool ascii = true;
    for (unsigned char c : text) ascii = ascii && c < 0x80;
    if (ascii) return text;  // NFC leaves ASCII alone
    std::string out;
    out.reserve(text.size());
    auto flush = [&](size_t begin, size_t end) {  // NFC of a valid run
        if (end == begin) return;
        utf8proc_uint8_t* dst = nullptr;
        const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + begin),
                                                utf8proc_ssize_t(end - begin), &dst, utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
        if (n < 0) {  // cannot happen on a run utf8proc_iterate accepted; keep the text
            out.append(text, begin, end - begin);
            return;
        }
        out.append(reinterpret_cast<const char*>(dst), size_t(n));
        std::free(dst);
    };
    const auto* s = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
    size_t run = 0;
    for (size_t i = 0; i < text.size();) {
        utf8proc_int32_t cp;
        const utf8proc_ssize_t len = utf8proc_iterate(s + i, utf8proc_ssize_t(text.size() - i), &cp);
        if (len > 0 && cp >= 0) {
            i += size_t(len);
            continue;
        }
        flush(run, i);  // a byte that is not UTF-8: kept, and the runs beside it normalized apart
        out += text[i];
        run = ++i;
    }
    flush(run, text.size());
    return out;
}

}  // namespace moe::text
