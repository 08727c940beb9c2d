// SentencePiece-style BPE (Llama / Mistral / Mixtral tokenizer.json) against Hugging Face
// `tokenizers` (tests/fixtures/tokenizer_spm*.json from tools/gen_spm_tokenizer_fixtures.py):
// ids of 37 strings for three front ends (Prepend + Replace normalizer, Metaspace "first",
// Metaspace "always" with split), with and without BOS, decode() of those and of 40 random id
// sequences, and the whole Genesis corpus line by line; the same vocabulary through GGUF
// (tokenizer.ggml.model = "llama", llama.cpp's merge-by-score) encodes the corpus identically.
// Also: added tokens in byte-level files, streaming pieces, and clear errors for unsupported files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "layer_fixture.h"
#include "text_fixture.h"
#include "moe/error.h"
#include "moe/files.h"
#include "moe/gguf.h"
#include "moe/gguf_model.h"
#include "moe/gguf_write.h"
#include "moe/tokenizer.h"

using namespace moe;
using moe::test::corpus_lines;
using moe::test::fixture_json;
using moe::test::error_of;

namespace {

const std::string kDir = MOE_FIXTURE_DIR;


std::string temp_dir(const std::string& name) {
    const std::string d = ::testing::TempDir() + "/moe_spm_" + name;
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}

// The fixture tokenizer with another front end (normalizer / pre-tokenizer), written to a file.
std::string variant_file(const std::string& variant, const nlohmann::json& normalizer, const nlohmann::json& pre) {
    nlohmann::json j = fixture_json("tokenizer_spm.json");
    j["normalizer"] = normalizer;
    j["pre_tokenizer"] = pre;
    const std::string path = temp_dir(variant) + "/tokenizer.json";
    std::ofstream(path) << j.dump();
    return path;
}


uint64_t fnv1a(const std::vector<int32_t>& ids, uint64_t h) {
    for (int32_t id : ids)
        for (int k = 0; k < 4; ++k) {
            h ^= (uint32_t(id) >> (8 * k)) & 0xFF;
            h *= 0x100000001B3ull;
        }
    return h;
}

// A GGUF holding only the tokenizer metadata that `moe convert` writes for tokenizer_json.
std::string tokenizer_gguf(const std::string& tokenizer_json, int64_t vocab_size, const std::string& name) {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    gguf_write_tokenizer(w, tokenizer_json, vocab_size);
    const std::string path = temp_dir(name) + "/tok.gguf";
    w.write(path);
    return path;
}

}  // namespace

TEST(SpmTokenizer, EncodesLikeHuggingFaceTokenizers) {
    const nlohmann::json cases = fixture_json("tokenizer_spm_cases.json");
    ASSERT_EQ(cases["variants"].size(), 3u);
    for (auto it = cases["variants"].begin(); it != cases["variants"].end(); ++it) {
        const std::string path = variant_file(it.key(), it.value()["normalizer"], it.value()["pre_tokenizer"]);
        const BpeTokenizer t = BpeTokenizer::load(path);
        EXPECT_EQ(t.kind(), BpeTokenizer::Kind::sentencepiece);
        EXPECT_EQ(t.vocab_size(), cases["vocab_size"].get<int64_t>());
        EXPECT_EQ(t.bos_id(), 1);
        EXPECT_EQ(t.eos_id(), 2);
        EXPECT_EQ(t.unk_id(), 0);
        EXPECT_TRUE(t.add_bos());
        ASSERT_GE(it.value()["cases"].size(), 30u);
        for (const auto& c : it.value()["cases"]) {
            const std::string text = c["text"].get<std::string>();
            const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
            const std::vector<int32_t> got = t.encode(text);
            EXPECT_EQ(got, want) << it.key() << " text: " << nlohmann::json(text).dump();
            std::vector<int32_t> with_bos = got;
            with_bos.insert(with_bos.begin(), t.bos_id());
            EXPECT_EQ(with_bos, c["ids_bos"].get<std::vector<int32_t>>()) << it.key() << " " << nlohmann::json(text).dump();
            EXPECT_EQ(t.decode(want), c["decoded"].get<std::string>()) << it.key() << " " << nlohmann::json(text).dump();
        }
    }
}

TEST(SpmTokenizer, DecodesLikeHuggingFaceTokenizers) {
    const BpeTokenizer t = BpeTokenizer::load(kDir + "/tokenizer_spm.json");
    const nlohmann::json cases = fixture_json("tokenizer_spm_cases.json");
    ASSERT_GE(cases["decode"].size(), 40u);
    for (const auto& c : cases["decode"])
        EXPECT_EQ(t.decode(c["ids"].get<std::vector<int32_t>>()), c["text"].get<std::string>()) << c["ids"].dump();
    EXPECT_NE(error_of([&] { t.decode({int32_t(t.vocab_size())}); }).find("outside the vocabulary"), std::string::npos);
}

TEST(SpmTokenizer, CorpusMatchesHuggingFaceAndGgufMatchesTokenizerJson) {
    const std::string json_path = kDir + "/tokenizer_spm.json";
    const BpeTokenizer t = BpeTokenizer::load(json_path);
    const nlohmann::json want = fixture_json("tokenizer_spm_cases.json")["corpus"];
    const std::vector<std::string> lines = corpus_lines();
    ASSERT_EQ(int64_t(lines.size()), want["lines"].get<int64_t>());
    // Through GGUF: tokens, scores from the merge ranks, token types, padded by 5 (unused).
    const std::string gguf_path = tokenizer_gguf(json_path, t.vocab_size() + 5, "corpus");
    GgufFile f(gguf_path);
    EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), "llama");
    EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), 1);
    EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), 2);
    EXPECT_EQ(f.get_int("tokenizer.ggml.unknown_token_id"), 0);
    EXPECT_TRUE(f.get<bool>("tokenizer.ggml.add_bos_token"));
    EXPECT_TRUE(f.get<bool>("tokenizer.ggml.add_space_prefix"));
    const std::vector<int32_t> types = f.get_array<int32_t>("tokenizer.ggml.token_type");
    const std::vector<float> scores = f.get_array<float>("tokenizer.ggml.scores");
    ASSERT_EQ(int64_t(types.size()), t.vocab_size() + 5);
    EXPECT_EQ(types[0], BpeTokenizer::kUnknown);
    EXPECT_EQ(types[1], BpeTokenizer::kControl);
    EXPECT_EQ(types[3], BpeTokenizer::kByte);  // <0x00>
    EXPECT_EQ(types[300], BpeTokenizer::kNormal);
    EXPECT_EQ(types.back(), BpeTokenizer::kUnused);
    EXPECT_EQ(scores.back(), -1000.0f);
    const BpeTokenizer g = gguf_tokenizer(f);
    EXPECT_EQ(g.kind(), BpeTokenizer::Kind::sentencepiece);
    EXPECT_EQ(g.vocab_size(), t.vocab_size() + 5);
    EXPECT_EQ(g.bos_id(), 1);
    EXPECT_TRUE(g.add_bos());

    int64_t count = 0, differ = 0;
    uint64_t h = 0xCBF29CE484222325ull;
    for (const std::string& line : lines) {
        const std::vector<int32_t> ids = t.encode(line);
        count += int64_t(ids.size());
        h = fnv1a(ids, h);
        if (g.encode(line) != ids) ++differ;
        EXPECT_EQ(g.decode(ids), t.decode(ids));
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    EXPECT_EQ(count, want["tokens"].get<int64_t>());
    EXPECT_EQ(std::string(hex), want["fnv1a"].get<std::string>());
    EXPECT_EQ(differ, 0) << "lines the GGUF tokenizer encodes differently";
    // The whole file at once (one long text) and the test strings: the same ids too.
    const std::string all = read_file(kDir + "/kjv_genesis.txt", "test");
    EXPECT_EQ(g.encode(all), t.encode(all));
    const nlohmann::json cases = fixture_json("tokenizer_spm_cases.json");
    for (const auto& c : cases["variants"]["prepend"]["cases"])
        EXPECT_EQ(g.encode(c["text"].get<std::string>()), c["ids"].get<std::vector<int32_t>>()) << c["text"].dump();
    std::filesystem::remove_all(std::filesystem::path(gguf_path).parent_path());
}

TEST(SpmTokenizer, StreamsPiecesAndSpecials) {
    const BpeTokenizer t = BpeTokenizer::load(kDir + "/tokenizer_spm.json");
    const std::vector<int32_t> ids = t.encode("In the beginning\n");
    std::string streamed;
    for (int32_t id : ids) streamed += t.token_bytes(id);
    EXPECT_EQ(streamed, " In the beginning\n");  // the leading space is the prefix "▁"
    EXPECT_EQ(t.token_bytes(3 + '\n'), "\n");      // <0x0A>
    EXPECT_EQ(t.token_text(3 + '\n'), "<0x0A>");
    EXPECT_EQ(t.token_bytes(1), "");               // <s> is not printed
    EXPECT_TRUE(t.is_special(1));
    EXPECT_TRUE(t.is_special(2));
    EXPECT_FALSE(t.is_special(300));
    EXPECT_EQ(t.special_id("</s>"), 2);
    EXPECT_EQ(t.special_id("[INST]"), -1);
    // parse_special = false: "<s>" in the text is text.
    const std::vector<int32_t> as_text = t.encode("<s>", false);
    EXPECT_GT(as_text.size(), 1u);
    EXPECT_EQ(t.encode("<s>"), std::vector<int32_t>{1});
    // A tokenizer.json read from disk writes back unchanged.
    const std::string copy = temp_dir("save") + "/tokenizer.json";
    t.save(copy);
    EXPECT_EQ(read_file(copy, "test"), read_file(kDir + "/tokenizer_spm.json", "test"));
    std::filesystem::remove_all(std::filesystem::path(copy).parent_path());
}

TEST(SpmTokenizer, TokenizerConfigBesideSetsSpecialTokens) {
    const std::string dir = temp_dir("config");
    std::filesystem::copy_file(kDir + "/tokenizer_spm.json", dir + "/tokenizer.json");
    std::ofstream(dir + "/tokenizer_config.json") << R"({"bos_token": "<s>", "eos_token": {"content": "<unk>"}, "add_bos_token": false})";
    const BpeTokenizer t = BpeTokenizer::load(dir + "/tokenizer.json");
    EXPECT_EQ(t.bos_id(), 1);
    EXPECT_EQ(t.eos_id(), 0);
    EXPECT_FALSE(t.add_bos());
    std::filesystem::remove_all(dir);
}

TEST(SpmTokenizer, ByteLevelAddedTokensAreFoundInTheText) {
    std::string corpus;
    for (int i = 0; i < 20; ++i) corpus += "And God said, Let there be light: and there was light.\n";
    BpeTokenizer base = BpeTokenizer::train(corpus, 300, 2);
    const int32_t n = int32_t(base.vocab_size());  // the merges stop early on this small corpus
    const std::string dir = temp_dir("added");
    base.save(dir + "/base.json");
    nlohmann::json j = nlohmann::json::parse(read_file(dir + "/base.json", "test"));
    j["added_tokens"] = {{{"id", n}, {"content", "<|im_start|>"}, {"special", true}},
                         {{"id", n + 1}, {"content", "<|im_end|>"}, {"special", true}},
                         {{"id", n + 2}, {"content", "<\xEF\xBD\x9C" "User\xEF\xBD\x9C>"}, {"special", false}}};
    std::ofstream(dir + "/tokenizer.json") << j.dump();
    std::ofstream(dir + "/tokenizer_config.json") << R"({"bos_token": null, "eos_token": "<|im_end|>"})";
    const BpeTokenizer t = BpeTokenizer::load(dir + "/tokenizer.json");
    EXPECT_EQ(t.kind(), BpeTokenizer::Kind::byte_level);
    EXPECT_EQ(t.vocab_size(), n + 3);
    EXPECT_EQ(t.eos_id(), n + 1);
    EXPECT_EQ(t.bos_id(), -1);
    EXPECT_FALSE(t.add_bos());
    const std::string text = "<|im_start|>user\nLet there be light<|im_end|>\n<\xEF\xBD\x9C" "User\xEF\xBD\x9C>";
    const std::vector<int32_t> ids = t.encode(text);
    EXPECT_EQ(ids.front(), n);
    EXPECT_NE(std::find(ids.begin(), ids.end(), n + 1), ids.end());
    EXPECT_EQ(ids.back(), n + 2);
    EXPECT_EQ(t.decode(ids), text);
    const std::string body = "user\nLet there be light";
    std::vector<int32_t> inner(ids.begin() + 1, ids.begin() + 1 + long(base.encode(body).size()));
    EXPECT_EQ(inner, base.encode(body));  // the text between added tokens encodes as before
    EXPECT_EQ(t.token_bytes(n + 1), "");   // control tokens are not streamed
    // Saved and reloaded: the same added tokens; through GGUF (gpt2): the same ids.
    t.save(dir + "/again.json");
    EXPECT_EQ(BpeTokenizer::load(dir + "/again.json").encode(text), ids);
    const std::string gguf_path = tokenizer_gguf(dir + "/tokenizer.json", 310, "added_gguf");
    GgufFile f(gguf_path);
    EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(f.get_array<std::string>("tokenizer.ggml.tokens")[size_t(n + 1)], "<|im_end|>");
    EXPECT_EQ(f.get_array<int32_t>("tokenizer.ggml.token_type")[size_t(n + 1)], BpeTokenizer::kControl);
    EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), n + 1);
    EXPECT_FALSE(f.get<bool>("tokenizer.ggml.add_bos_token"));
    const BpeTokenizer g = gguf_tokenizer(f);
    EXPECT_EQ(g.encode(text), ids);
    EXPECT_EQ(g.eos_id(), n + 1);
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(std::filesystem::path(gguf_path).parent_path());
}

TEST(SpmTokenizer, UnsupportedFilesNameTheFileAndTheProblem) {
    const std::string dir = temp_dir("bad");
    const std::string path = dir + "/tokenizer.json";
    auto error_for = [&](const nlohmann::json& j) {
        std::ofstream(path) << j.dump();
        return error_of([&] { BpeTokenizer::load(path); });
    };
    const nlohmann::json good = fixture_json("tokenizer_spm.json");
    auto with = [&](const char* key, const nlohmann::json& v) {
        nlohmann::json j = good;
        j[key] = v;
        return j;
    };
    std::string e = error_for({{"model", {{"type", "Unigram"}, {"vocab", nlohmann::json::array()}}}});
    EXPECT_NE(e.find(path), std::string::npos) << e;
    EXPECT_NE(e.find("got model type \"Unigram\""), std::string::npos) << e;
    e = error_for(with("pre_tokenizer", {{"type", "Whitespace"}}));
    EXPECT_NE(e.find(path + ": pre_tokenizer {\"type\":\"Whitespace\"} is not supported"), std::string::npos) << e;
    e = error_for(with("normalizer", {{"type", "NFKC"}}));
    EXPECT_NE(e.find("normalizer {\"type\":\"NFKC\"} is not supported"), std::string::npos) << e;
    e = error_for(with("decoder", {{"type", "WordPiece"}}));
    EXPECT_NE(e.find("decoder {\"type\":\"WordPiece\"} is not supported"), std::string::npos) << e;
    nlohmann::json j = good;
    j["model"]["dropout"] = 0.1;
    EXPECT_NE(error_for(j).find("model.dropout 0.1 (BPE-dropout) is not supported"), std::string::npos);
    j = good;
    j["model"]["merges"].push_back({"\xE2\x96\x81the", "zzz"});
    EXPECT_NE(error_for(j).find("uses or makes a token missing from the vocab"), std::string::npos);
    // A plain BPE with nothing that says how spaces are handled.
    j = good;
    j["normalizer"] = nullptr;
    j["model"]["byte_fallback"] = false;
    EXPECT_NE(error_for(j).find("a BPE model without a pre-tokenizer"), std::string::npos);
    // GGUF: another tokenizer model is named.
    GgufWriter w;
    w.add_string("tokenizer.ggml.model", "bert");
    w.add_strings("tokenizer.ggml.tokens", {"a"});
    w.write(dir + "/bert.gguf");
    e = error_of([&] { gguf_tokenizer(GgufFile(dir + "/bert.gguf")); });
    EXPECT_NE(e.find("bert.gguf: tokenizer.ggml.model is \"bert\"; supported: \"gpt2\""), std::string::npos) << e;
    std::filesystem::remove_all(dir);
}
