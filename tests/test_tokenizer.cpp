// Byte-level BPE against Hugging Face `tokenizers` (tests/fixtures/tokenizer_*.json from
// tools/gen_tokenizer_fixtures.py): the same ids for 27 strings (contractions, spaces, digits,
// non-ASCII letters, emoji, CJK); and our own training, saving and loading.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "layer_fixture.h"
#include "moe/error.h"
#include "moe/tokenizer.h"

using namespace moe;
using moe::test::error_of;

TEST(Tokenizer, EncodesLikeHuggingFaceTokenizers) {
    const std::string dir = MOE_FIXTURE_DIR;
    BpeTokenizer t = BpeTokenizer::load(dir + "/tokenizer_bpe.json");
    EXPECT_EQ(t.vocab_size(), 400);
    std::ifstream f(dir + "/tokenizer_cases.json");
    std::stringstream ss;
    ss << f.rdbuf();
    nlohmann::json cases = nlohmann::json::parse(ss.str());
    ASSERT_GE(cases.size(), 20u);
    for (const auto& c : cases) {
        const std::string text = c["text"].get<std::string>();
        const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
        EXPECT_EQ(t.encode(text), want) << "text: " << nlohmann::json(text).dump();
        EXPECT_EQ(t.decode(want), text);
    }
}

TEST(Tokenizer, TrainsSavesAndReloads) {
    std::string corpus;
    for (int i = 0; i < 40; ++i)
        corpus += "Ge1:" + std::to_string(i + 1) + " And God said, Let there be light: and there was light.\n"
                  "And the LORD's word came unto thee, saying, Thou shalt not fear.\n";
    BpeTokenizer t = BpeTokenizer::train(corpus, 320, 2);
    EXPECT_EQ(t.vocab_size(), 320);
    const std::string unseen = "And there was evening; the LORD's light, 42 days.\n\tcafé ☃";
    std::vector<int32_t> ids = t.encode(unseen);
    EXPECT_EQ(t.decode(ids), unseen);  // byte-level: anything round-trips
    EXPECT_LT(t.encode(corpus).size(), corpus.size() / 3);  // the merges compress the corpus
    const std::string path = ::testing::TempDir() + "/moe_tokenizer_test.json";
    t.save(path);
    BpeTokenizer r = BpeTokenizer::load(path);
    EXPECT_EQ(r.encode(unseen), ids);
    EXPECT_EQ(r.encode(corpus), t.encode(corpus));
    std::remove(path.c_str());
}

TEST(Tokenizer, BadInputGetsAClearError) {
    const std::string path = ::testing::TempDir() + "/moe_tokenizer_bad.json";
    {
        std::ofstream f(path);
        f << R"({"model": {"type": "WordPiece"}})";
    }
    EXPECT_NE(error_of([&] { BpeTokenizer::load(path); }).find("expected a BPE model"), std::string::npos);
    {
        std::ofstream f(path);
        f << "{not json";
    }
    EXPECT_NE(error_of([&] { BpeTokenizer::load(path); }).find("is not valid JSON"), std::string::npos);
    std::remove(path.c_str());
    BpeTokenizer t = BpeTokenizer::train("aaa bbb", 256, 2);
    EXPECT_NE(error_of([&] { t.decode({999}); }).find("token id 999 is outside the vocabulary [0, 256)"), std::string::npos);
}
