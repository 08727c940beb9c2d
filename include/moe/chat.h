// Chat templates of the supported model families, as fixed renderers that give the same text as
// transformers' apply_chat_template with the family's Jinja template (tests/fixtures/
// chat_templates.json, from tools/gen_chat_template_fixtures.py). No Jinja engine: a model's
// template is recognised (as llama.cpp's llm_chat_detect_template does, by what it contains) or
// named with `moe run --chat-template NAME`. docs/tokenizers.md lists them.
#pragma once
#include <string>
#include <vector>

namespace moe {

enum class ChatTemplate {
    mistral,    // Mixtral-8x7B-Instruct-v0.1: <s>[INST] user [/INST]answer</s>; no system role
    chatml,     // ChatML: <|im_start|>role\ncontent<|im_end|>\n
    qwen,       // ChatML with Qwen1.5(-MoE)'s default system message "You are a helpful assistant"
    qwen2,      // ChatML with Qwen2(-MoE)'s default system message "You are a helpful assistant."
    olmoe,      // OLMoE-1B-7B-0924-Instruct (Tulu): <|user|>\ncontent\n<|assistant|>\n
    deepseek2,  // DeepSeek-V2(-Lite)-Chat: User: content\n\nAssistant: answer<eos>
};

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

// "mistral", "chatml", "qwen", "qwen2", "olmoe", "deepseek2"; throws listing them otherwise.
ChatTemplate chat_template_from_name(const std::string& name);
const char* chat_template_name(ChatTemplate t);
std::string chat_template_names();  // "mistral, chatml, ..."

// The family of a Jinja chat_template (tokenizer_config.json, GGUF tokenizer.chat_template) by
// what it contains; false when it is none of the supported ones.
bool chat_template_detect(const std::string& jinja, ChatTemplate* out);
// The family of an architecture: GGUF general.architecture or config.json model_type
// (llama / mixtral -> mistral, qwen2moe / qwen2_moe -> qwen2, olmoe, deepseek2 / deepseek_v2).
bool chat_template_for_arch(const std::string& arch, ChatTemplate* out);
// The template of a model (a .gguf or a model directory): its chat template if it has one (GGUF
// tokenizer.chat_template, tokenizer_config.json chat_template), else its architecture. `how`
// (optional) says which. Throws naming the model when neither tells.
ChatTemplate chat_template_for_model(const std::string& path, std::string* how = nullptr);

// The conversation as the family's template renders it; add_generation_prompt appends the start
// of the assistant's turn. bos / eos: the tokenizer's special tokens as text ("<s>", "</s>").
// Throws where the template raises (mistral: a system message, roles not alternating).
std::string chat_render(ChatTemplate t, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const std::string& bos, const std::string& eos);
// The text that ends an assistant's turn: eos, or "<|im_end|>" for ChatML.
std::string chat_end_of_turn(ChatTemplate t, const std::string& eos);

}  // namespace moe
