// Chat templates against transformers' apply_chat_template (tests/fixtures/chat_templates.json
// from tools/gen_chat_template_fixtures.py): 72 renderings of 6 families' Jinja templates, the
// templates recognised from their Jinja text, and the choice from a model's metadata.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "layer_fixture.h"
#include "moe/chat.h"
#include "moe/files.h"
#include "moe/gguf_write.h"

using namespace moe;
using moe::test::error_of;

namespace {

nlohmann::json fixture() {
    return nlohmann::json::parse(read_file(std::string(MOE_FIXTURE_DIR) + "/chat_templates.json", "test"));
}

std::vector<ChatMessage> messages(const nlohmann::json& j) {
    std::vector<ChatMessage> m;
    for (const auto& x : j) m.push_back({x["role"].get<std::string>(), x["content"].get<std::string>()});
    return m;
}

}  // namespace

TEST(Chat, RendersLikeTransformersApplyChatTemplate) {
    const nlohmann::json f = fixture();
    ASSERT_GE(f["cases"].size(), 70u);
    int errors = 0;
    for (const auto& c : f["cases"]) {
        const ChatTemplate t = chat_template_from_name(c["template"].get<std::string>());
        auto render = [&] {
            return chat_render(t, messages(c["messages"]), c["add_generation_prompt"].get<bool>(),
                               c["bos"].get<std::string>(), c["eos"].get<std::string>());
        };
        if (c.contains("error")) {  // the Jinja template raised; so do we
            EXPECT_NE(error_of([&] { render(); }), "") << c.dump();
            ++errors;
        } else {
            EXPECT_EQ(render(), c["text"].get<std::string>()) << c.dump();
        }
    }
    EXPECT_EQ(errors, 4);  // mistral has no system role
}

TEST(Chat, RecognisesTheFamiliesJinjaTemplates) {
    const nlohmann::json f = fixture();
    for (auto it = f["templates"].begin(); it != f["templates"].end(); ++it) {
        ChatTemplate t;
        ASSERT_TRUE(chat_template_detect(it.value().get<std::string>(), &t)) << it.key();
        EXPECT_EQ(chat_template_name(t), it.key());
    }
    ChatTemplate t;
    EXPECT_FALSE(chat_template_detect("{{ messages }}", &t));
    ASSERT_TRUE(chat_template_for_arch("qwen2moe", &t));
    EXPECT_EQ(t, ChatTemplate::qwen2);
    ASSERT_TRUE(chat_template_for_arch("mixtral", &t));
    EXPECT_EQ(t, ChatTemplate::mistral);
    EXPECT_FALSE(chat_template_for_arch("gpt2", &t));
    EXPECT_NE(error_of([] { chat_template_from_name("vicuna"); })
                  .find("unknown chat template \"vicuna\"; known: mistral, chatml, qwen, qwen2, olmoe, deepseek2"),
              std::string::npos);
    EXPECT_EQ(chat_end_of_turn(ChatTemplate::qwen, "<|endoftext|>"), "<|im_end|>");
    EXPECT_EQ(chat_end_of_turn(ChatTemplate::mistral, "</s>"), "</s>");
}

TEST(Chat, ChosenFromTheModelsMetadata) {
    const nlohmann::json f = fixture();
    const std::string dir = ::testing::TempDir() + "/moe_chat_model";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/config.json") << R"({"model_type": "mixtral"})";
    std::string how;
    EXPECT_EQ(chat_template_for_model(dir, &how), ChatTemplate::mistral);
    EXPECT_EQ(how, "config.json model_type \"mixtral\"");
    std::ofstream(dir + "/tokenizer_config.json") << nlohmann::json({{"chat_template", f["templates"]["olmoe"]}}).dump();
    EXPECT_EQ(chat_template_for_model(dir, &how), ChatTemplate::olmoe);
    EXPECT_EQ(how, "tokenizer_config.json chat_template");
    std::ofstream(dir + "/config.json") << R"({"model_type": "bert"})";
    std::ofstream(dir + "/tokenizer_config.json") << R"({"chat_template": "{{ messages }}"})";
    EXPECT_NE(error_of([&] { chat_template_for_model(dir); }).find("cannot tell its chat template"), std::string::npos);
    // GGUF: tokenizer.chat_template, else general.architecture.
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_string("tokenizer.chat_template", f["templates"]["deepseek2"].get<std::string>());
    w.write(dir + "/a.gguf");
    EXPECT_EQ(chat_template_for_model(dir + "/a.gguf", &how), ChatTemplate::deepseek2);
    GgufWriter w2;
    w2.add_string("general.architecture", "llama");
    w2.write(dir + "/b.gguf");
    EXPECT_EQ(chat_template_for_model(dir + "/b.gguf", &how), ChatTemplate::mistral);
    EXPECT_EQ(how, "general.architecture \"llama\"");
    std::filesystem::remove_all(dir);
}
