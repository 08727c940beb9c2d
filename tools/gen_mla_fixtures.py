#!/usr/bin/env python3
"""transformers' own DeepSeek-V2 / V3 attention as the reference for multi-head latent attention
(include/moe/mla.h, tests/test_mla.cpp): tiny one-layer random DeepseekV2Model / DeepseekV3Model
(eager attention), a hook on layers[0].self_attn records its input (the RMS-normed hidden states)
and its output for a 12-token causal sequence. Writes tests/fixtures/mla_<case>.safetensors with
the attention weights under their Hugging Face names (self_attn. dropped), x (12, D), out (12, D),
the rotary module's inv_freq, and the configuration as metadata.

    /work/venv-hf2/bin/python tools/gen_mla_fixtures.py

Needs torch and transformers 4.56 (DeepseekV2Model and DeepseekV3Model; the semantics differ
between versions: in 4.56 V2 applies no yarn mscale to the softmax scale, V3 does).
"""
import json
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import DeepseekV2Config, DeepseekV2Model, DeepseekV3Config, DeepseekV3Model

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures")
T = 12

# name: (model family, attention sizes, rope_scaling, extra config)
CASES = {
    # V2-Lite style: q_proj directly (q_lora_rank null), plain RoPE.
    "v2_lite": ("v2", dict(hidden_size=32, num_attention_heads=4, q_lora_rank=None, kv_lora_rank=32,
                           qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8), None, {}),
    # V2 with the low-rank q and yarn as DeepSeek-V2 configures it (mscale != mscale_all_dim here so
    # that the cos / sin factor is not 1).
    "v2_yarn": ("v2", dict(hidden_size=64, num_attention_heads=4, q_lora_rank=32, kv_lora_rank=32,
                           qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16),
                dict(type="yarn", factor=4.0, original_max_position_embeddings=16, beta_fast=32.0, beta_slow=1.0,
                     mscale=1.0, mscale_all_dim=0.707), dict(max_position_embeddings=64)),
    # V3 as DeepSeek-V3 configures it (mscale = mscale_all_dim = 1: cos / sin unscaled, softmax
    # scale times mscale^2), interleaved RoPE (rope_interleave true, the default).
    "v3_yarn": ("v3", dict(hidden_size=64, num_attention_heads=2, q_lora_rank=32, kv_lora_rank=64,
                           qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32),
                dict(type="yarn", factor=8.0, original_max_position_embeddings=32, beta_fast=32.0, beta_slow=1.0,
                     mscale=1.0, mscale_all_dim=1.0), dict(max_position_embeddings=256, rope_theta=500.0)),
    # V3 without q_lora, rotate_half RoPE (rope_interleave false), yarn with only a factor:
    # cos / sin times 0.1 ln(factor) + 1, no softmax mscale.
    "v3_half": ("v3", dict(hidden_size=32, num_attention_heads=4, q_lora_rank=None, kv_lora_rank=32,
                           qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8),
                dict(type="yarn", factor=4.0, original_max_position_embeddings=16),
                dict(max_position_embeddings=64, rope_interleave=False)),
}


def build(family, sizes, rope_scaling, extra):
    common = dict(vocab_size=64, intermediate_size=48, moe_intermediate_size=16, num_hidden_layers=1,
                  num_key_value_heads=sizes["num_attention_heads"], rms_norm_eps=1e-5, rope_theta=10000.0,
                  max_position_embeddings=64, n_routed_experts=4, n_shared_experts=1, num_experts_per_tok=2,
                  first_k_dense_replace=1, rope_scaling=rope_scaling, attn_implementation="eager")
    common.update(sizes)
    common.update(extra)
    if family == "v2":
        cfg = DeepseekV2Config(**common)
        model = DeepseekV2Model(cfg)
    else:
        cfg = DeepseekV3Config(n_group=1, topk_group=1, **common)
        model = DeepseekV3Model(cfg)
    return cfg, model.eval()


def gen(name, family, sizes, rope_scaling, extra, seed):
    torch.manual_seed(seed)
    cfg, model = build(family, sizes, rope_scaling, extra)
    attn = model.layers[0].self_attn
    with torch.no_grad():  # transformers' init (std 0.02) makes near-uniform attention; widen it
        for p in attn.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5)
            else:
                p.uniform_(0.5, 1.5)  # q_a_layernorm, kv_a_layernorm
        model.embed_tokens.weight.normal_(0.0, 1.0)
    seen = {}

    def hook(module, args, kwargs, output):
        seen["x"] = kwargs["hidden_states"][0].detach().clone()
        seen["out"] = output[0][0].detach().clone()

    attn.register_forward_hook(hook, with_kwargs=True)
    g = torch.Generator().manual_seed(seed + 100)
    tokens = torch.randint(0, cfg.vocab_size, (1, T), generator=g)
    with torch.no_grad():
        model(tokens)
    tensors = {k.replace("self_attn.", ""): v.detach().contiguous()
               for k, v in model.layers[0].named_parameters() if k.startswith("self_attn.")}
    tensors["x"] = seen["x"].contiguous()
    tensors["out"] = seen["out"].contiguous()
    tensors["inv_freq"] = model.rotary_emb.inv_freq.float().contiguous()
    rs = cfg.rope_scaling or {}
    meta = {
        "family": family, "transformers": transformers.__version__, "T": str(T),
        "hidden_size": str(cfg.hidden_size), "num_attention_heads": str(cfg.num_attention_heads),
        "q_lora_rank": str(cfg.q_lora_rank or 0), "kv_lora_rank": str(cfg.kv_lora_rank),
        "qk_nope_head_dim": str(cfg.qk_nope_head_dim), "qk_rope_head_dim": str(cfg.qk_rope_head_dim),
        "v_head_dim": str(cfg.v_head_dim), "rope_theta": repr(float(cfg.rope_theta)),
        "max_position_embeddings": str(cfg.max_position_embeddings),
        "rope_interleave": "1" if (family == "v2" or cfg.rope_interleave) else "0",
        "rope_scaling": json.dumps(rs), "attention_scaling": repr(float(model.rotary_emb.attention_scaling)),
        "softmax_scale": repr(float(attn.scaling)),
        # rope_scaling flattened for the test (0: absent)
        "yarn_factor": repr(float(rs.get("factor", 1.0))),
        "yarn_original_max_position_embeddings": str(int(rs.get("original_max_position_embeddings", 0))),
        "yarn_beta_fast": repr(float(rs.get("beta_fast", 0.0))), "yarn_beta_slow": repr(float(rs.get("beta_slow", 0.0))),
        "yarn_mscale": repr(float(rs.get("mscale", 0.0))), "yarn_mscale_all_dim": repr(float(rs.get("mscale_all_dim", 0.0))),
    }
    path = os.path.join(FIX, f"mla_{name}.safetensors")
    save_file(tensors, path, metadata=meta)
    print(f"wrote {path}: max|out| {seen['out'].abs().max():.4f}, scaling {attn.scaling:.6f}, "
          f"attention_scaling {model.rotary_emb.attention_scaling:.6f}")


if __name__ == "__main__":
    for i, (name, (family, sizes, rs, extra)) in enumerate(CASES.items()):
        gen(name, family, sizes, rs, extra, seed=11 + i)
