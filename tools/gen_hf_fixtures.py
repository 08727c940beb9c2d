#!/usr/bin/env python3
"""Tiny random-weight Hugging Face models saved by transformers itself (save_pretrained), with
the logits of a fixed token sequence and 32 greedy tokens, for tests/test_model_io.cpp: moe
must load a directory transformers wrote and compute the same numbers.

    venv-hf/bin/python tools/gen_hf_fixtures.py        # writes tests/fixtures/hf_*/

Needs torch and transformers >= 4.36 (MixtralForCausalLM); see tools/check_hf_mixtral.py.
"""
import os

import torch
from safetensors.torch import save_file
from transformers import MixtralConfig, MixtralForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures")


def mixtral_tiny():
    torch.manual_seed(7)
    cfg = MixtralConfig(vocab_size=96, hidden_size=32, intermediate_size=24, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                        num_experts_per_tok=2, max_position_embeddings=64, rope_theta=10000.0,
                        rms_norm_eps=1e-5, sliding_window=None, tie_word_embeddings=False)
    model = MixtralForCausalLM(cfg).eval()
    with torch.no_grad():  # transformers' init (std 0.02) makes near-uniform logits; widen it
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5)
            else:
                p.uniform_(0.5, 1.5)  # the RMSNorm weights
        model.model.embed_tokens.weight.normal_(0.0, 1.0)
    out = os.path.join(FIX, "hf_mixtral_tiny")
    model.save_pretrained(out, safe_serialization=True)
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, cfg.vocab_size, (12,), generator=g)
    with torch.no_grad():
        logits = model(tokens[None]).logits[0]
        # An explicit mask: generate() would otherwise treat prompt tokens equal to pad_token_id as padding.
        greedy = model.generate(tokens[None], attention_mask=torch.ones(1, 12, dtype=torch.long), max_new_tokens=32,
                                do_sample=False, pad_token_id=0)[0, 12:]
    save_file({"tokens": tokens.to(torch.int32).contiguous(), "logits": logits.contiguous(),
               "greedy": greedy.to(torch.int32).contiguous()},
              os.path.join(out, "reference.safetensors"))
    # generation_config.json is not needed by the test
    gc = os.path.join(out, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)
    print(f"wrote {out}: logits {tuple(logits.shape)}, greedy {greedy.tolist()[:8]}...")


if __name__ == "__main__":
    mixtral_tiny()
