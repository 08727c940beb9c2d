// Regex pre-tokenizers of byte-level BPE (Qwen2, Llama-3, DeepSeek-V3 / V2, GPT-NeoX, GPT-2)
// against Hugging Face `tokenizers` (tests/fixtures/tokenizer_pretok_*.json from
// tools/gen_pretok_tokenizer_fixtures.py): the pieces and ids of 36 strings and of the Genesis
// corpus for three trained tokenizers and four other front ends, decode, BOS; Split / Digits
// behaviors on their own; the Unicode classes PCRE2 gives the patterns, code point by code point,
// against Oniguruma's; the GGUF tokenizer.ggml.pre names giving the same ids; clear errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "layer_fixture.h"
#include "text_fixture.h"
#include "moe/error.h"
#include "moe/files.h"
#include "moe/gguf.h"
#include "moe/gguf_model.h"
#include "moe/gguf_write.h"
#include "moe/pretokenize.h"
#include "moe/tokenizer.h"

using namespace moe;
using moe::test::corpus_lines;
using moe::test::fixture_json;
using moe::test::error_of;

namespace {

const std::string kDir = MOE_FIXTURE_DIR;


const nlohmann::json& cases() {
    static const nlohmann::json c = fixture_json("tokenizer_pretok_cases.json");
    return c;
}

std::string temp_dir(const std::string& name) {
    const std::string d = ::testing::TempDir() + "/moe_pretok_" + name;
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}

std::string dump(const std::string& s) { return nlohmann::json(s).dump(); }


// The corpus line by line: token count and FNV-1a of the ids (as the generator computes them).
std::pair<int64_t, std::string> corpus_fingerprint(const BpeTokenizer& t) {
    uint64_t h = 0xCBF29CE484222325ull;
    int64_t count = 0;
    for (const std::string& line : corpus_lines())
        for (int32_t id : t.encode(line)) {
            ++count;
            for (int k = 0; k < 4; ++k) {
                h ^= (uint32_t(id) >> (8 * k)) & 0xFF;
                h *= 0x100000001B3ull;
            }
        }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    return {count, hex};
}

// A tokenizer.json of a family (or a variant: the base family's file with another front end).
struct Pipeline {
    std::string name, path;
    nlohmann::json spec;  // cases()["tokenizers"][name] or cases()["variants"][name]
    bool family;
};

std::vector<Pipeline> pipelines() {
    std::vector<Pipeline> out;
    for (auto it = cases()["tokenizers"].begin(); it != cases()["tokenizers"].end(); ++it)
        out.push_back({it.key(), kDir + "/" + it.value()["file"].get<std::string>(), it.value(), true});
    for (auto it = cases()["variants"].begin(); it != cases()["variants"].end(); ++it) {
        const nlohmann::json& v = it.value();
        nlohmann::json j = fixture_json(cases()["tokenizers"][v["base"].get<std::string>()]["file"].get<std::string>());
        j["normalizer"] = v["normalizer"];
        j["pre_tokenizer"] = v["pre_tokenizer"];
        j["model"]["ignore_merges"] = v["ignore_merges"];
        const std::string path = temp_dir("variant_" + it.key()) + "/tokenizer.json";
        std::ofstream(path) << j.dump();
        out.push_back({it.key(), path, v, false});
    }
    return out;
}

// Every code point but the surrogates, in order, as UTF-8 (what the generator splits).
const std::string& all_code_points() {
    static const std::string s = [] {
        std::string r;
        for (uint32_t c = 1; c < 0x110000; ++c) {
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            if (c < 0x80) r += char(c);
            else if (c < 0x800) r += {char(0xC0 | (c >> 6)), char(0x80 | (c & 0x3F))};
            else if (c < 0x10000) r += {char(0xE0 | (c >> 12)), char(0x80 | ((c >> 6) & 0x3F)), char(0x80 | (c & 0x3F))};
            else
                r += {char(0xF0 | (c >> 18)), char(0x80 | ((c >> 12) & 0x3F)), char(0x80 | ((c >> 6) & 0x3F)),
                      char(0x80 | (c & 0x3F))};
        }
        return r;
    }();
    return s;
}

// The code points a one-character pattern matches: Split(pattern, Removed) keeps the others.
std::vector<bool> matched_by(const std::string& pattern) {
    const auto pre = text::PreTokenizer::from_json(
        nullptr, {{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Removed"}, {"invert", false}}, "test");
    std::vector<bool> m(0x110000, true);
    for (const std::string& piece : pre->split(all_code_points()))
        for (size_t i = 0; i < piece.size();) {
            const unsigned char c = static_cast<unsigned char>(piece[i]);
            const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
            for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(piece[i + k]) & 0x3F);
            m[cp] = false;
            i += n;
        }
    return m;
}

}  // namespace

TEST(PreTokenizer, SplitsLikeHuggingFace) {
    ASSERT_GE(cases()["splits"].size(), 30u);
    for (const nlohmann::json& c : cases()["splits"]) {
        if (!c.contains("text")) {  // a construct the two regex engines read differently
            const std::string e = error_of([&] { text::PreTokenizer::from_json(nullptr, c["pre_tokenizer"], "split.json"); });
            EXPECT_NE(e.find("split.json: pre_tokenizer.pattern: the regex"), std::string::npos) << e;
            EXPECT_NE(e.find("Oniguruma (Hugging Face) and PCRE2 (moe) read differently"), std::string::npos) << e;
            continue;
        }
        const auto pre = text::PreTokenizer::from_json(nullptr, c["pre_tokenizer"], "split.json");
        EXPECT_EQ(pre->split(c["text"].get<std::string>()), c["pieces"].get<std::vector<std::string>>())
            << c["pre_tokenizer"].dump() << " on " << c["text"].dump();
    }
}

TEST(PreTokenizer, UnicodeClassesAreOnigurumasUpToUnicode14) {
    const nlohmann::json classes = fixture_json("tokenizer_pretok_classes.json")["classes"];
    ASSERT_GE(classes.size(), 10u);
    // PCRE2 10.42 knows Unicode 14; characters assigned since are unassigned (Cn) to it and may
    // differ. Everything else must be the same.
    const std::vector<bool> unassigned = matched_by("\\p{Cn}");
    for (auto it = classes.begin(); it != classes.end(); ++it) {
        std::vector<bool> want(0x110000, false);
        for (const nlohmann::json& r : it.value())
            for (uint32_t c = r[0].get<uint32_t>(); c <= r[1].get<uint32_t>(); ++c) want[c] = true;
        const std::vector<bool> got = matched_by(it.key());
        int64_t newer = 0, differ = 0, matched = 0;
        std::string first;
        for (uint32_t c = 1; c < 0x110000; ++c) {
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            matched += got[c];
            if (got[c] == want[c]) continue;
            if (unassigned[c]) {
                ++newer;
                continue;
            }
            char hex[32];
            std::snprintf(hex, sizeof hex, " U+%04X(%s)", c, got[c] ? "pcre2" : "onig");
            if (++differ <= 5) first += hex;
        }
        EXPECT_EQ(differ, 0) << it.key() << " differs from Oniguruma at" << first;
        EXPECT_GT(matched, 0) << it.key();
        EXPECT_LT(newer, 12000) << it.key();  // the Unicode 15.0-16.0 additions only
    }
}

TEST(PretokTokenizer, EncodesLikeHuggingFaceTokenizers) {
    const std::vector<std::string> texts = cases()["texts"].get<std::vector<std::string>>();
    ASSERT_GE(texts.size(), 30u);
    const std::vector<Pipeline> all = pipelines();
    ASSERT_EQ(all.size(), 7u);
    for (const Pipeline& p : all) {
        SCOPED_TRACE(p.name);
        const BpeTokenizer t = BpeTokenizer::load(p.path);
        EXPECT_EQ(t.kind(), BpeTokenizer::Kind::byte_level);
        const nlohmann::json j = nlohmann::json::parse(read_file(p.path, "test"));
        const auto pre = text::PreTokenizer::from_json(j["normalizer"], j["pre_tokenizer"], p.path);
        const nlohmann::json& want = p.spec["cases"];
        ASSERT_EQ(want.size(), texts.size());
        for (size_t i = 0; i < texts.size(); ++i) {
            const std::string& text = texts[i];
            const nlohmann::json& c = want[i];
            if (c.contains("pieces")) {
                EXPECT_EQ(pre->split(pre->normalize(text)), c["pieces"].get<std::vector<std::string>>()) << dump(text);
            }
            const std::vector<int32_t> ids = t.encode(text);
            EXPECT_EQ(ids, c["ids"].get<std::vector<int32_t>>()) << dump(text);
            if (!p.family) continue;
            EXPECT_EQ(t.decode(ids), c["decoded"].get<std::string>()) << dump(text);  // NFC'd text for Qwen2
            std::vector<int32_t> with_bos = ids;  // as the post-processor adds it (even before a BOS in the text)
            if (t.add_bos()) with_bos.insert(with_bos.begin(), t.bos_id());
            EXPECT_EQ(with_bos, c.value("ids_bos", c["ids"]).get<std::vector<int32_t>>()) << dump(text);
        }
        if (p.family) {
            EXPECT_EQ(t.vocab_size(), p.spec["vocab_size"].get<int64_t>());
        }
        const auto [count, fnv] = corpus_fingerprint(t);
        EXPECT_EQ(count, p.spec["corpus"]["tokens"].get<int64_t>());
        EXPECT_EQ(fnv, p.spec["corpus"]["fnv1a"].get<std::string>());
    }
}

TEST(PretokTokenizer, FrontEndsMatter) {
    // The fixtures would not notice a front end that is ignored: on these texts they must differ
    // (NFC, digits one by one or in threes, case-insensitive 'S, ignore_merges).
    const nlohmann::json& t = cases()["tokenizers"];
    const nlohmann::json& v = cases()["variants"];
    const std::vector<std::string> texts = cases()["texts"].get<std::vector<std::string>>();
    auto field = [&](const nlohmann::json& spec, size_t text, const char* key) { return spec["cases"][text][key]; };
    ASSERT_EQ(texts[10].substr(0, 6), "Cafe\xCC\x81");  // decomposed
    EXPECT_NE(field(v["gpt_neox"], 10, "ids"), field(v["gpt2"], 10, "ids"));         // NFC or not
    EXPECT_NE(field(t["qwen2"], 4, "pieces"), field(v["llama3_merges"], 4, "pieces"));  // \p{N} vs \p{N}{1,3}
    EXPECT_NE(field(v["gpt2"], 3, "pieces"), field(v["llama3_merges"], 3, "pieces"));  // 's vs (?i:'s)
    const BpeTokenizer llama3 = BpeTokenizer::load(kDir + "/tokenizer_pretok_llama3.json");
    EXPECT_EQ(llama3.encode(" Quixote").size(), 1u);  // ignore_merges: a whole-word token no merge makes
    nlohmann::json j = fixture_json("tokenizer_pretok_llama3.json");
    j["model"]["ignore_merges"] = false;
    const std::string path = temp_dir("merges") + "/tokenizer.json";
    std::ofstream(path) << j.dump();
    EXPECT_GT(BpeTokenizer::load(path).encode(" Quixote").size(), 1u);
    EXPECT_TRUE(llama3.add_bos());
    EXPECT_EQ(llama3.bos_id(), llama3.special_id("<|begin_of_text|>"));
    std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST(PretokTokenizer, GgufPreNamesGiveTheSameIds) {
    const std::map<std::string, std::string> want_name = {
        {"qwen2", "qwen2"},       {"llama3", "llama-bpe"}, {"deepseek_v3", "deepseek-v3"}, {"deepseek_llm", "deepseek-llm"},
        {"gpt_neox", "olmo"},     {"gpt2", "gpt-2"},       {"llama3_merges", "dbrx"}};
    const std::vector<std::string> texts = cases()["texts"].get<std::vector<std::string>>();
    const std::string corpus = read_file(kDir + "/kjv_genesis.txt", "test");
    for (const Pipeline& p : pipelines()) {
        SCOPED_TRACE(p.name);
        const BpeTokenizer t = BpeTokenizer::load(p.path);
        GgufWriter w;
        w.add_string("general.architecture", "qwen2moe");
        gguf_write_tokenizer(w, p.path, t.vocab_size() + 3);
        const std::string path = temp_dir("gguf_" + p.name) + "/tok.gguf";
        w.write(path);
        GgufFile f(path);
        EXPECT_EQ(f.get<std::string>("tokenizer.ggml.pre"), want_name.at(p.name));
        const BpeTokenizer g = gguf_tokenizer(f);
        for (size_t i = 0; i < texts.size(); ++i)
            EXPECT_EQ(g.encode(texts[i]), p.spec["cases"][i]["ids"].get<std::vector<int32_t>>()) << dump(texts[i]);
        EXPECT_EQ(g.encode(corpus), t.encode(corpus));
        EXPECT_EQ(g.add_bos(), t.add_bos());
        EXPECT_EQ(g.bos_id(), t.bos_id());
        std::filesystem::remove_all(std::filesystem::path(path).parent_path());
    }
}

TEST(PretokTokenizer, GgufDefaultsAsLlamaCpp) {
    // Without tokenizer.ggml.add_bos_token: BOS for Llama-3's pre-tokenizer only; without
    // tokenizer.ggml.pre: GPT-2's regex (files from before llama.cpp named pre-tokenizers).
    const BpeTokenizer t = BpeTokenizer::load(kDir + "/tokenizer_pretok_llama3.json");
    const GgufTokenizerVocab v = t.gguf_vocab();
    const std::string dir = temp_dir("defaults");
    auto write = [&](const std::string& name, const char* pre) {
        GgufWriter w;
        w.add_string("tokenizer.ggml.model", "gpt2");
        if (pre) w.add_string("tokenizer.ggml.pre", pre);
        w.add_strings("tokenizer.ggml.tokens", v.tokens);
        w.add_i32s("tokenizer.ggml.token_type", v.types);
        w.add_strings("tokenizer.ggml.merges", v.merges);
        w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(t.bos_id()));
        w.write(dir + "/" + name);
        return gguf_tokenizer(GgufFile(dir + "/" + name));
    };
    EXPECT_TRUE(write("llama.gguf", "llama-bpe").add_bos());
    EXPECT_TRUE(write("llama3.gguf", "llama3").add_bos());
    EXPECT_FALSE(write("qwen.gguf", "qwen2").add_bos());
    const BpeTokenizer none = write("none.gguf", nullptr);
    EXPECT_FALSE(none.add_bos());
    const std::string text = "DON'T 12345 caf\xC3\xA9";
    EXPECT_EQ(none.encode(text), write("gpt2.gguf", "gpt-2").encode(text));
    EXPECT_NE(none.encode(text), write("llama2.gguf", "llama-bpe").encode(text));
    std::filesystem::remove_all(dir);
}

TEST(PretokTokenizer, SaveKeepsTheFrontEnd) {
    const std::string dir = temp_dir("save");
    const std::vector<std::string> texts = cases()["texts"].get<std::vector<std::string>>();
    for (const char* name : {"qwen2", "llama3", "deepseek_v3"}) {
        const std::string src = kDir + "/tokenizer_pretok_" + name + ".json";
        const BpeTokenizer t = BpeTokenizer::load(src);
        t.save(dir + "/tokenizer.json");
        const BpeTokenizer r = BpeTokenizer::load(dir + "/tokenizer.json");
        for (const std::string& text : texts) EXPECT_EQ(r.encode(text), t.encode(text)) << name << " " << dump(text);
        EXPECT_EQ(r.add_bos(), t.add_bos());
        const nlohmann::json a = nlohmann::json::parse(read_file(src, "test"));
        const nlohmann::json b = nlohmann::json::parse(read_file(dir + "/tokenizer.json", "test"));
        for (const char* key : {"normalizer", "pre_tokenizer", "post_processor", "decoder"}) EXPECT_EQ(a[key], b[key]) << key;
        EXPECT_EQ(a["model"].value("ignore_merges", false), b["model"]["ignore_merges"].get<bool>());
    }
    std::filesystem::remove_all(dir);
}

TEST(PretokTokenizer, TextThatIsNotUtf8StillSplitsAndRoundTrips) {
    const BpeTokenizer t = BpeTokenizer::load(kDir + "/tokenizer_pretok_qwen2.json");
    const std::string bad = "caf\xC3\xA9 \xFF\xFE ok e\xCC\x81 \xC3 12\x80";  // lone bytes, a cut sequence
    const std::vector<int32_t> ids = t.encode(bad);
    // NFC composes e + U+0301 into U+00E9 and keeps the bad bytes.
    EXPECT_EQ(t.decode(ids), "caf\xC3\xA9 \xFF\xFE ok \xC3\xA9 \xC3 12\x80");
    std::string joined;
    for (const std::string& p : BpeTokenizer::pre_tokenize(bad)) joined += p;
    EXPECT_EQ(joined, bad);
    EXPECT_EQ(text::nfc("A\xCC\x8A\xFF"), "\xC3\x85\xFF");
}

TEST(PretokTokenizer, UnsupportedPartsNameTheFileAndTheJsonPath) {
    const std::string dir = temp_dir("bad");
    const std::string path = dir + "/tokenizer.json";
    const nlohmann::json good = fixture_json("tokenizer_pretok_qwen2.json");
    auto error_for = [&](const char* key, const nlohmann::json& v) {
        nlohmann::json j = good;
        j[key] = v;
        std::ofstream(path) << j.dump();
        return error_of([&] { BpeTokenizer::load(path); });
    };
    const nlohmann::json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
    auto seq = [&](const nlohmann::json& step) { return nlohmann::json{{"type", "Sequence"}, {"pretokenizers", {step, bl}}}; };
    nlohmann::json split = {{"type", "Split"}, {"pattern", {{"Regex", "\\p{L}+"}}}, {"behavior", "Isolated"}, {"invert", false}};

    nlohmann::json s = split;
    s["behavior"] = "Glued";
    std::string e = error_for("pre_tokenizer", seq(s));
    EXPECT_NE(e.find(path + ": pre_tokenizer.pretokenizers[0].behavior \"Glued\" is not a split behavior; supported: Removed"),
              std::string::npos) << e;
    e = error_for("pre_tokenizer", seq({{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}}));
    EXPECT_NE(e.find(path + ": pre_tokenizer.pretokenizers[0] {\"replacement\":"), std::string::npos) << e;
    EXPECT_NE(e.find("is not supported; supported for byte-level BPE: pre_tokenizer ByteLevel"), std::string::npos) << e;
    e = error_for("normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "NFKC"}}}}});
    EXPECT_NE(e.find(path + ": normalizer.normalizers[1] {\"type\":\"NFKC\"} is not supported"), std::string::npos) << e;
    e = error_for("pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", true}});
    EXPECT_NE(e.find(path + ": pre_tokenizer {\"add_prefix_space\":true,\"type\":\"ByteLevel\"} adds a prefix space"),
              std::string::npos) << e;
    s = split;
    s["pattern"] = {{"Regex", "\\w+"}};
    e = error_for("pre_tokenizer", seq(s));
    EXPECT_NE(e.find(path + ": pre_tokenizer.pretokenizers[0].pattern: the regex \\w+ uses \\w"), std::string::npos) << e;
    s["pattern"] = {{"Regex", "\\p{Han}+"}};
    EXPECT_NE(error_for("pre_tokenizer", seq(s)).find("uses the property \\p{Han}"), std::string::npos);
    s["pattern"] = {{"Regex", "[[:alpha:]]"}};
    EXPECT_NE(error_for("pre_tokenizer", seq(s)).find("uses a POSIX class"), std::string::npos);
    s["pattern"] = {{"Regex", "(?m:a.b)"}};
    EXPECT_NE(error_for("pre_tokenizer", seq(s)).find("uses the option (?m)"), std::string::npos);
    s["pattern"] = {{"Regex", "(ab"}};
    e = error_for("pre_tokenizer", seq(s));
    EXPECT_NE(e.find(path + ": pre_tokenizer.pretokenizers[0].pattern: the regex (ab does not compile: missing closing"),
              std::string::npos) << e;
    s["pattern"] = {{"Glob", "*"}};
    EXPECT_NE(error_for("pre_tokenizer", seq(s)).find("pre_tokenizer.pretokenizers[0].pattern {\"Glob\":\"*\"} is neither"),
              std::string::npos);
    nlohmann::json j = good;
    j["model"]["dropout"] = 0.1;
    std::ofstream(path) << j.dump();
    EXPECT_NE(error_of([&] { BpeTokenizer::load(path); }).find(path + ": model.dropout 0.1 is not supported"), std::string::npos);

    // GGUF: a name moe does not know; a tokenizer.json no GGUF name fits.
    GgufWriter w;
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", "tekken");
    w.add_strings("tokenizer.ggml.tokens", {"a"});
    w.add_strings("tokenizer.ggml.merges", {});
    w.write(dir + "/tekken.gguf");
    e = error_of([&] { gguf_tokenizer(GgufFile(dir + "/tekken.gguf")); });
    EXPECT_NE(e.find("tekken.gguf: tokenizer.ggml.pre is \"tekken\", a pre-tokenizer moe does not know (it would split "
                     "the text differently); known: gpt-2, phi-2, olmo, llama-bpe"),
              std::string::npos) << e;
    j = good;
    j["pre_tokenizer"] = seq(split);
    std::ofstream(path) << j.dump();
    GgufWriter c;
    e = error_of([&] { gguf_write_tokenizer(c, path, 2000); });
    EXPECT_NE(e.find(path + ": its normalizer and pre_tokenizer match none of the GGUF pre-tokenizers"), std::string::npos) << e;
    std::filesystem::remove_all(dir);
}
