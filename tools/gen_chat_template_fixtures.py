#!/usr/bin/env python3
"""Reference renderings of the chat templates for the C++ renderers (tooling only: CI never runs this).

transformers' `apply_chat_template(tokenize=False)` renders each family's Jinja template (as its
model repository's tokenizer_config.json ships it, reproduced below) with that family's bos /
eos tokens, for a handful of conversations, with and without the generation prompt; a template
that raises (Mixtral: a system message) is recorded as an error. Writes
tests/fixtures/chat_templates.json.

    /work/venv-hf/bin/pip install jinja2   # transformers 4.40.2 there
    /work/venv-hf/bin/python tools/gen_chat_template_fixtures.py
"""
import json
import os

import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")

# name -> (chat_template as the model's tokenizer_config.json has it, bos_token, eos_token, model)
TEMPLATES = {
    "mistral": (
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
        "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
        "<s>", "</s>", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    "chatml": (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        None, "<|im_end|>", "ChatML (e.g. OpenHermes)"),
    "qwen": (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        None, "<|im_end|>", "Qwen/Qwen1.5-MoE-A2.7B-Chat"),
    "qwen2": (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        None, "<|im_end|>", "Qwen/Qwen2-57B-A14B-Instruct"),
    "olmoe": (
        "{{ bos_token }}{% for message in messages %}\n{% if message['role'] == 'system' %}\n"
        "{{ '<|system|>\n' + message['content'] }}\n{% elif message['role'] == 'user' %}\n"
        "{{ '<|user|>\n' + message['content'] }}\n{% elif message['role'] == 'assistant' %}\n"
        "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
        "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
        "<|endoftext|>", "<|endoftext|>", "allenai/OLMoE-1B-7B-0924-Instruct"),
    "deepseek2": (
        "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
        "{{ 'User: ' + message['content'] + '\n\n' }}{% elif message['role'] == 'assistant' %}"
        "{{ 'Assistant: ' + message['content'] + eos_token }}{% elif message['role'] == 'system' %}"
        "{{ message['content'] + '\n\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}",
        "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>", "deepseek-ai/DeepSeek-V2-Lite-Chat"),
}

CONVERSATIONS = [
    [{"role": "user", "content": "Hello"}],
    [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there! How can I help?"}],
    [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": " Hi there! "},
     {"role": "user", "content": "Who said \"Let there be light\"?\nAnswer in one line."}],
    [{"role": "system", "content": "You answer in the style of the King James Bible."},
     {"role": "user", "content": "What was made on the first day?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Caf\u00e9 \u2615 or tea?"},
     {"role": "assistant", "content": "Tea."}, {"role": "user", "content": "  Why?  "}],
    [{"role": "user", "content": ""}],
]


def main():
    specials = sorted({t for v in TEMPLATES.values() for t in v[1:3] if t})
    base = Tokenizer(models.WordLevel({t: i for i, t in enumerate(["<unk>"] + specials)}, unk_token="<unk>"))
    out = []
    for name, (template, bos, eos, model) in TEMPLATES.items():
        tok = PreTrainedTokenizerFast(tokenizer_object=base, bos_token=bos, eos_token=eos)
        for conv in CONVERSATIONS:
            for gen in (False, True):
                case = {"template": name, "bos": bos or "", "eos": eos, "messages": conv, "add_generation_prompt": gen}
                try:
                    case["text"] = tok.apply_chat_template(conv, chat_template=template, tokenize=False,
                                                           add_generation_prompt=gen)
                except Exception as e:  # the template's raise_exception
                    case["error"] = str(e)
                out.append(case)
    path = os.path.join(FIX, "chat_templates.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"transformers_version": transformers.__version__,
                   "models": {k: v[3] for k, v in TEMPLATES.items()},
                   "templates": {k: v[0] for k, v in TEMPLATES.items()},
                   "cases": out}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{os.path.relpath(path, ROOT)}: {len(out)} cases, {sum('error' in c for c in out)} errors, "
          f"transformers {transformers.__version__}")


if __name__ == "__main__":
    main()
