// tokenizer.json regexes on PCRE2. Hugging Face `tokenizers` compiles Split patterns with
// Oniguruma in its Ruby syntax (onig::Regex::new); what that means, and how PCRE2 is set up to
// mean the same (checked code point by code point in tests/test_tokenizer_pretok.cpp):
//   - UTF-8 with Unicode properties: PCRE2_UTF | PCRE2_UCP, so \p{L}, \p{N}, \d and (?i:...)
//     (Unicode case folding: (?i:'s) also takes "'ſ") mean what they mean in Oniguruma;
//   - ^ and $ are line anchors in Ruby syntax: PCRE2_MULTILINE, and "\n" is the only newline
//     (so "." takes "\r", as in Oniguruma);
//   - \s is Unicode's White_Space in Oniguruma; PCRE2's \s also takes U+180E (MONGOLIAN VOWEL
//     SEPARATOR), so \s and \S are written out as the White_Space list;
//   - refused, because the two engines differ on them: \w \W \b \B (PCRE2 leaves out marks and
//     takes some numbers), \h \H (hex digits in Oniguruma, horizontal space in PCRE2), POSIX
//     classes, nested classes and && set operations, \p{...} other than general categories
//     (PCRE2's \p{Han} follows Script_Extensions), and (?m) (dot-all in Ruby, multi-line in PCRE2);
//   - text that is not UTF-8 can still be split (PCRE2_MATCH_INVALID_UTF): its bad bytes match
//     nothing. Hugging Face only ever sees valid UTF-8.
// PCRE2 10.42 (Debian 12) knows Unicode 14.0; the Oniguruma inside `tokenizers` 0.23 knows 16.0:
// characters assigned since (CJK extensions H and I, ...) are in no class here.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>

#include <cctype>
#include <cstring>

#include "moe/error.h"
#include "utf8.h"

namespace moe::text {
namespace {

constexpr const char* kOp = "tokenizer";

// Unicode's White_Space property (PropList.txt), what Oniguruma's \s matches.
constexpr const char* kWhiteSpace =
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

bool general_category(const std::string& name) {
    static const char* names[] = {"L",  "Lu", "Ll", "Lt", "Lm", "Lo", "M",  "Mn", "Mc", "Me", "N",  "Nd", "Nl",
                                  "No", "P",  "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S",  "Sm", "Sc", "Sk",
                                  "So", "Z",  "Zs", "Zl", "Zp", "C",  "Cc", "Cf", "Co", "Cn"};
    const std::string n = !name.empty() && name[0] == '^' ? name.substr(1) : name;
    for (const char* g : names)
        if (n == g) return true;
    return false;
}

std::string pcre2_message(int code) {
    PCRE2_UCHAR buf[256];
    if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return "PCRE2 error " + std::to_string(code);
    return reinterpret_cast<const char*>(buf);
}

}  // namespace

std::string regex_for_pcre2(const std::string& p, const std::string& where) {
    auto refuse = [&](const std::string& what) {
        fail(kOp, where + ": the regex " + p + " uses " + what +
                      ", which Oniguruma (Hugging Face) and PCRE2 (moe) read differently; supported: literals, "
                      "classes [...] without nesting or &&, \\s \\S \\d \\D, \\p{..} of general categories (L, Lu, N, "
                      "Nd, M, P, S, Z, C, ...), groups, lookaround, quantifiers, (?i:...)");
    };
    std::string out;
    out.reserve(p.size() + 64);
    bool in_class = false;
    size_t i = 0;
    const size_t n = p.size();
    while (i < n) {
        const char c = p[i];
        if (c == '\\') {
            MOE_CHECK(i + 1 < n, kOp, where + ": the regex " + p + " ends with a lone backslash");
            const char e = p[i + 1];
            if (e == 's') {
                out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
            } else if (e == 'S') {
                if (in_class) refuse("\\S inside a character class");
                out += "[^" + std::string(kWhiteSpace) + "]";
            } else if (std::strchr("wWbBhH", e)) {
                refuse(std::string("\\") + e);
            } else if (e == 'p' || e == 'P') {
                std::string name;
                size_t end = i + 2;
                if (end < n && p[end] == '{') {
                    const size_t close = p.find('}', end);
                    MOE_CHECK(close != std::string::npos, kOp, where + ": the regex " + p + " has an unclosed \\p{");
                    name = p.substr(end + 1, close - end - 1);
                    end = close + 1;
                } else if (end < n) {
                    name = p.substr(end, 1);
                    end += 1;
                }
                if (!general_category(name)) refuse("the property \\" + std::string(1, e) + "{" + name + "}");
                out.append(p, i, end - i);
                i = end;
                continue;
            } else {
                out += c;
                out += e;  // any other escape: its remaining characters are plain text
            }
            i += 2;
            continue;
        }
        if (in_class) {
            if (c == '[') refuse(i + 1 < n && p[i + 1] == ':' ? "a POSIX class [:...:]" : "a nested character class");
            if (c == '&' && i + 1 < n && p[i + 1] == '&') refuse("&& (class intersection)");
            if (c == ']') in_class = false;
            out += c;
            ++i;
            continue;
        }
        if (c == '[') {
            in_class = true;
            out += c;
            ++i;
            if (i < n && p[i] == '^') out += p[i++];
            if (i < n && p[i] == ']') out += p[i++];  // a leading ']' is a literal
            continue;
        }
        if (c == '(' && i + 1 < n && p[i + 1] == '?') {  // inline options (?imx-imx) / (?imx-imx:...)
            for (size_t k = i + 2; k < n && (std::isalpha(static_cast<unsigned char>(p[k])) || p[k] == '-'); ++k)
                if (p[k] == 'm') refuse("the option (?m)");
        }
        out += c;
        ++i;
    }
    MOE_CHECK(!in_class, kOp, where + ": the regex " + p + " has an unclosed [");
    return out;
}

struct Regex::Code {
    pcre2_code* code = nullptr;
    ~Code() { pcre2_code_free(code); }
};

Regex::Regex(const std::string& pattern, bool literal, const std::string& where) : pattern_(pattern), literal_(literal) {
    const std::string compiled = literal ? pattern : regex_for_pcre2(pattern, where);
    const uint32_t options =
        literal ? (PCRE2_LITERAL | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF)
                : (PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | PCRE2_MATCH_INVALID_UTF);
    pcre2_compile_context* ctx = pcre2_compile_context_create(nullptr);
    MOE_CHECK(ctx, kOp, "out of memory compiling " + where);
    pcre2_set_newline(ctx, PCRE2_NEWLINE_LF);
    int err = 0;
    PCRE2_SIZE at = 0;
    auto code = std::make_shared<Code>();
    code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(), options, &err, &at, ctx);
    pcre2_compile_context_free(ctx);
    MOE_CHECK(code->code, kOp,
              where + ": the regex " + pattern + " does not compile: " + pcre2_message(err) + " at offset " +
                  std::to_string(at) + (compiled == pattern ? "" : " of " + compiled));
    pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE);  // without JIT (unsupported CPU) the interpreter runs
    code_ = code;
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(const std::string& s) const {
    std::vector<std::pair<size_t, size_t>> out;
    // Only the whole match is read: one ovector pair, one block per thread for every regex (a
    // Sequence runs its later steps on each piece). rc 0 = more groups matched than it holds.
    thread_local const std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> data(
        pcre2_match_data_create(1, nullptr), pcre2_match_data_free);
    pcre2_match_data* md = data.get();
    MOE_CHECK(md, kOp, "out of memory matching the regex " + pattern_);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    const size_t n = s.size();
    size_t start = 0;
    bool matched = false;  // a previous match ended at `start`
    while (start <= n) {
        int rc = pcre2_match(code_->code, subject, n, start, 0, md, nullptr);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // the interpreter keeps its backtracking on the heap
            rc = pcre2_match(code_->code, subject, n, start, PCRE2_NO_JIT, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0)
            fail(kOp, "the regex " + pattern_ + " failed on a text of " + std::to_string(n) + " bytes: " + pcre2_message(rc));
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t b = ov[0], e = ov[1];
        if (b == e && matched && e == start) {  // no empty match right after a match: step one character
            if (start >= n) break;
            size_t len;
            next_cp(s, start, len);
            start += len;
            matched = false;
            continue;
        }
        out.emplace_back(b, e);
        start = e;
        matched = true;
    }
    return out;
}

}  // namespace moe::text
