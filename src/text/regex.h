// The regular expressions of tokenizer.json pre-tokenizers (Split patterns, GPT-2's ByteLevel
// regex), run with PCRE2 the way Hugging Face `tokenizers` runs them with Oniguruma (src/text/regex.cpp).
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace moe::text {

class Regex {
public:
    // `pattern` as tokenizer.json writes it (Oniguruma's Ruby syntax; a String pattern when
    // `literal`). Constructs whose meaning differs between Oniguruma and PCRE2 (\w, \b, \h, POSIX
    // and nested classes, script properties, (?m)) are refused; `where` names the pattern in errors.
    Regex(const std::string& pattern, bool literal, const std::string& where);
    // The matches in s, as (begin, end) byte offsets: leftmost first, each search starting at the
    // previous match's end; an empty match right at that end is skipped by one character
    // (`tokenizers`' find_iter). Bytes that are not UTF-8 match nothing.
    std::vector<std::pair<size_t, size_t>> find_all(const std::string& s) const;
    const std::string& pattern() const { return pattern_; }
    bool literal() const { return literal_; }

private:
    struct Code;
    std::shared_ptr<const Code> code_;
    std::string pattern_;
    bool literal_ = false;
};

// The pattern PCRE2 compiles for an Oniguruma pattern: \s and \S become Unicode's White_Space
// list (PCRE2's \s also takes U+180E). Throws naming `where` for the refused constructs above.
std::string regex_for_pcre2(const std::string& pattern, const std::string& where);

}  // namespace moe::text
