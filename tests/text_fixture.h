// What the tokenizer tests share: the fixtures' JSON files and the Genesis corpus by line.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "moe/files.h"

namespace moe::test {

inline const std::string kTextFixtureDir = MOE_FIXTURE_DIR;

inline nlohmann::json fixture_json(const std::string& name) {
    return nlohmann::json::parse(read_file(kTextFixtureDir + "/" + name, "test"));
}

// tests/fixtures/kjv_genesis.txt split at '\n' (the last line kept even without one).
inline std::vector<std::string> corpus_lines() {
    const std::string text = read_file(kTextFixtureDir + "/kjv_genesis.txt", "test");
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t at; (at = text.find('\n', start)) != std::string::npos; start = at + 1) lines.push_back(text.substr(start, at - start));
    lines.push_back(text.substr(start));
    return lines;
}

}  // namespace moe::test
