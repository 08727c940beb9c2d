// Token shards: what is written is mapped back; truncated, foreign or out-of-vocabulary files
// are refused with the file's name.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "layer_fixture.h"
#include "moe/files.h"
#include "moe/token_file.h"

using namespace moe;
using moe::test::error_of;

TEST(TokenFile, RoundTripsAndRefusesBadFiles) {
    const std::string path = (std::filesystem::temp_directory_path() / "moe_test.tokens").string();
    std::vector<int32_t> tokens = {0, 5, 299, 17, 42};
    token_file_write(path, tokens, 300, text_hash("In the beginning"));
    {
        TokenFile f(path);
        EXPECT_EQ(std::vector<int32_t>(f.data(), f.data() + f.size()), tokens);
        EXPECT_EQ(f.vocab_size(), 300);
        EXPECT_EQ(f.source_hash(), text_hash("In the beginning"));
        EXPECT_NE(f.source_hash(), text_hash("In the beginning."));
    }
    const std::string bytes = read_file(path, "test");
    auto write = [&](const std::string& b) { std::ofstream(path, std::ios::binary) << b; };
    write(bytes.substr(0, bytes.size() - 2));
    EXPECT_NE(error_of([&] { TokenFile f(path); }).find("is truncated or corrupt: its header says 5 tokens"), std::string::npos);
    write(bytes.substr(0, 20));
    EXPECT_NE(error_of([&] { TokenFile f(path); }).find("shorter than a token-file header"), std::string::npos);
    write("XXXXXXXX" + bytes.substr(8));
    EXPECT_NE(error_of([&] { TokenFile f(path); }).find("is not a moe token file"), std::string::npos);
    token_file_write(path, {1, 300}, 300, 0);
    EXPECT_NE(error_of([&] { TokenFile f(path); }).find("holds token 300 at 1, outside its vocabulary of 300"),
              std::string::npos);
    EXPECT_NE(error_of([&] { TokenFile f("/nonexistent.tokens"); }).find("cannot open /nonexistent.tokens"), std::string::npos);
    std::filesystem::remove(path);
}
