// Chat templates (include/moe/chat.h): fixed renderers of the supported families' Jinja templates.
#include "moe/chat.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/files.h"
#include "moe/gguf.h"

namespace moe {
namespace {

constexpr const char* kOp = "chat";

struct Named {
    ChatTemplate t;
    const char* name;
};
constexpr Named kNames[] = {{ChatTemplate::mistral, "mistral"}, {ChatTemplate::chatml, "chatml"},
                            {ChatTemplate::qwen, "qwen"},       {ChatTemplate::qwen2, "qwen2"},
                            {ChatTemplate::olmoe, "olmoe"},     {ChatTemplate::deepseek2, "deepseek2"}};

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

}  // namespace

ChatTemplate chat_template_from_name(const std::string& name) {
    for (const Named& n : kNames)
        if (name == n.name) return n.t;
    fail(kOp, "unknown chat template \"" + name + "\"; known: " + chat_template_names());
}

const char* chat_template_name(ChatTemplate t) {
    for (const Named& n : kNames)
        if (n.t == t) return n.name;
    return "?";
}

std::string chat_template_names() {
    std::string s;
    for (const Named& n : kNames) s += std::string(s.empty() ? "" : ", ") + n.name;
    return s;
}

bool chat_template_detect(const std::string& j, ChatTemplate* out) {
    ChatTemplate t;
    if (contains(j, "<|im_start|>")) {
        t = contains(j, "You are a helpful assistant.") ? ChatTemplate::qwen2
            : contains(j, "You are a helpful assistant") ? ChatTemplate::qwen
                                                         : ChatTemplate::chatml;
    } else if (contains(j, "[INST]")) {
        t = ChatTemplate::mistral;
    } else if (contains(j, "<|user|>") && contains(j, "<|assistant|>")) {
        t = ChatTemplate::olmoe;
    } else if (contains(j, "'Assistant: ' + message['content'] + eos_token")) {
        t = ChatTemplate::deepseek2;
    } else {
        return false;
    }
    *out = t;
    return true;
}

bool chat_template_for_arch(const std::string& a, ChatTemplate* out) {
    if (a == "llama" || a == "mixtral") *out = ChatTemplate::mistral;
    else if (a == "qwen2moe" || a == "qwen2_moe" || a == "qwen2") *out = ChatTemplate::qwen2;
    else if (a == "olmoe") *out = ChatTemplate::olmoe;
    else if (a == "deepseek2" || a == "deepseek_v2") *out = ChatTemplate::deepseek2;
    else return false;
    return true;
}

ChatTemplate chat_template_for_model(const std::string& path, std::string* how) {
    std::string jinja, jinja_src, arch, arch_src;
    if (std::filesystem::is_regular_file(path) && gguf_has_magic(path)) {
        const GgufFile f(path);
        if (f.has("tokenizer.chat_template")) jinja = f.get<std::string>("tokenizer.chat_template"), jinja_src = "tokenizer.chat_template";
        if (f.has("general.architecture")) arch = f.get<std::string>("general.architecture"), arch_src = "general.architecture";
    } else {
        const std::string tc = path + "/tokenizer_config.json", cfg = path + "/config.json";
        if (std::filesystem::exists(tc)) {
            const nlohmann::json c = read_json_file(tc, kOp);
            if (c.contains("chat_template") && c["chat_template"].is_string())
                jinja = c["chat_template"].get<std::string>(), jinja_src = "tokenizer_config.json chat_template";
        }
        if (std::filesystem::exists(cfg)) {
            const nlohmann::json c = read_json_file(cfg, kOp);
            if (c.contains("model_type") && c["model_type"].is_string())
                arch = c["model_type"].get<std::string>(), arch_src = "config.json model_type";
        }
    }
    ChatTemplate t;
    if (!jinja.empty() && chat_template_detect(jinja, &t)) {
        if (how) *how = jinja_src;
        return t;
    }
    if (!arch.empty() && chat_template_for_arch(arch, &t)) {
        if (how) *how = arch_src + " \"" + arch + "\"" + (jinja.empty() ? "" : " (its " + jinja_src + " is not one we know)");
        return t;
    }
    fail(kOp, path + ": cannot tell its chat template (" +
                  (jinja.empty() ? std::string("no chat template") : jinja_src + " not recognised") + ", " +
                  (arch.empty() ? std::string("no architecture") : "architecture \"" + arch + "\"") +
                  "); pass --chat-template NAME (" + chat_template_names() + ")");
}

std::string chat_render(ChatTemplate t, const std::vector<ChatMessage>& msgs, bool add_generation_prompt,
                        const std::string& bos, const std::string& eos) {
    std::string out;
    switch (t) {
        case ChatTemplate::mistral:
            out = bos;
            for (size_t i = 0; i < msgs.size(); ++i) {
                const ChatMessage& m = msgs[i];
                MOE_CHECK((m.role == "user") == (i % 2 == 0), kOp,
                          "the mistral template needs the roles to alternate user / assistant / user / ..., starting "
                          "with the user (it has no system role); message " + std::to_string(i) + " is \"" + m.role + "\"");
                if (m.role == "user") out += "[INST] " + m.content + " [/INST]";
                else if (m.role == "assistant") out += m.content + eos;
                else fail(kOp, "the mistral template supports only the user and assistant roles, got \"" + m.role + "\"");
            }
            break;
        case ChatTemplate::chatml:
        case ChatTemplate::qwen:
        case ChatTemplate::qwen2:
            for (size_t i = 0; i < msgs.size(); ++i) {
                if (i == 0 && t != ChatTemplate::chatml && msgs[0].role != "system")
                    out += std::string("<|im_start|>system\nYou are a helpful assistant") +
                           (t == ChatTemplate::qwen2 ? "." : "") + "<|im_end|>\n";
                out += "<|im_start|>" + msgs[i].role + "\n" + msgs[i].content + "<|im_end|>\n";
            }
            if (add_generation_prompt) out += "<|im_start|>assistant\n";
            break;
        case ChatTemplate::olmoe:
            out = bos;
            for (size_t i = 0; i < msgs.size(); ++i) {
                const ChatMessage& m = msgs[i];
                if (m.role == "system") out += "<|system|>\n" + m.content + "\n";
                else if (m.role == "user") out += "<|user|>\n" + m.content + "\n";
                else if (m.role == "assistant") out += "<|assistant|>\n" + m.content + eos + "\n";
                if (i + 1 == msgs.size() && add_generation_prompt) out += "<|assistant|>\n";
            }
            break;
        case ChatTemplate::deepseek2:
            out = bos;
            for (const ChatMessage& m : msgs) {
                if (m.role == "user") out += "User: " + m.content + "\n\n";
                else if (m.role == "assistant") out += "Assistant: " + m.content + eos;
                else if (m.role == "system") out += m.content + "\n\n";
            }
            if (add_generation_prompt) out += "Assistant:";
            break;
    }
    return out;
}

std::string chat_end_of_turn(ChatTemplate t, const std::string& eos) {
    return t == ChatTemplate::chatml || t == ChatTemplate::qwen || t == ChatTemplate::qwen2 ? "<|im_end|>" : eos;
}

}  // namespace moe
