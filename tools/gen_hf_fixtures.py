#!/usr/bin/env python3
"""Tiny random-weight Hugging Face models saved by transformers itself (save_pretrained), with
the logits of a fixed token sequence and 32 greedy tokens, for tests/test_model_io.cpp and
tests/test_arch.cpp: moe must load a directory transformers wrote and compute the same numbers.

    venv/bin/python tools/gen_hf_fixtures.py [NAME ...]   # writes tests/fixtures/hf_<NAME>_tiny/

NAME: mixtral (transformers >= 4.36; the committed one was made with 4.40.2), qwen2_moe,
qwen3_moe, olmoe, deepseek_v2, deepseek_v3 (transformers >= 4.51, DeepSeek >= 4.56: the committed
ones with 4.56.2 and torch 2.5.1, /work/venv-hf2). No NAME: all of them. See tools/check_hf_mixtral.py.
"""
import copy
import os
import sys

import torch
from safetensors.torch import save_file
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures")


def mixtral_tiny():
    torch.manual_seed(7)
    cfg = transformers.MixtralConfig(vocab_size=96, hidden_size=32, intermediate_size=24, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                        num_experts_per_tok=2, max_position_embeddings=64, rope_theta=10000.0,
                        rms_norm_eps=1e-5, sliding_window=None, tie_word_embeddings=False)
    save_with_reference(transformers.MixtralForCausalLM(cfg), "hf_mixtral_tiny")


def widen(model):
    """transformers' init (std 0.02) makes near-uniform logits; widen it."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5)
            elif name.endswith(".bias"):
                p.normal_(0.0, 0.5)
            else:
                p.uniform_(0.5, 1.5)  # the RMSNorm weights
        model.model.embed_tokens.weight.normal_(0.0, 1.0)


def save_with_reference(model, name, after_widen=None):
    model = model.eval()
    cfg = model.config
    widen(model)
    if after_widen:
        after_widen(model)
    out = os.path.join(FIX, name)
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


COMMON = dict(vocab_size=96, hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=64, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
              attn_implementation="eager")


def qwen2_moe_tiny(name="hf_qwen2_moe_tiny", mlp_only_layers=(1,)):
    """Shared expert with its sigmoid gate, q/k/v biases, un-normalised top-k weights, and a
    dense layer (mlp_only_layers) of intermediate_size between MoE layers."""
    torch.manual_seed(8)
    cfg = transformers.Qwen2MoeConfig(num_hidden_layers=3, intermediate_size=40, moe_intermediate_size=24,
                                      shared_expert_intermediate_size=20, num_experts=4, num_experts_per_tok=2,
                                      norm_topk_prob=False, decoder_sparse_step=1,
                                      mlp_only_layers=list(mlp_only_layers), **COMMON)
    save_with_reference(transformers.Qwen2MoeForCausalLM(cfg), name)


def qwen3_moe_tiny(name="hf_qwen3_moe_tiny", decoder_sparse_step=2):
    """Per-head q/k RMSNorm, head_dim (16) unlike hidden_size / heads (8), normalised top-k
    weights, every other layer MoE (decoder_sparse_step 2)."""
    torch.manual_seed(9)
    cfg = transformers.Qwen3MoeConfig(num_hidden_layers=2, head_dim=16, intermediate_size=40,
                                      moe_intermediate_size=24, num_experts=4, num_experts_per_tok=2,
                                      norm_topk_prob=True, decoder_sparse_step=decoder_sparse_step, **COMMON)
    save_with_reference(transformers.Qwen3MoeForCausalLM(cfg), name)


def olmoe_tiny(name="hf_olmoe_tiny", clip_qkv=1.5, num_key_value_heads=2):
    """q/k RMSNorm over the whole projection, clip_qkv (set here so that it clips), softmax
    top-k weights not normalised."""
    torch.manual_seed(10)
    common = dict(COMMON, num_key_value_heads=num_key_value_heads)
    cfg = transformers.OlmoeConfig(num_hidden_layers=2, intermediate_size=24, num_experts=4, num_experts_per_tok=2,
                                   norm_topk_prob=False, clip_qkv=clip_qkv, **common)
    save_with_reference(transformers.OlmoeForCausalLM(cfg), name)


DEEPSEEK = dict(vocab_size=96, hidden_size=32, num_attention_heads=4, num_key_value_heads=4, num_hidden_layers=3,
                intermediate_size=40, moe_intermediate_size=24, kv_lora_rank=16, qk_nope_head_dim=8,
                qk_rope_head_dim=8, v_head_dim=8, first_k_dense_replace=1, max_position_embeddings=64,
                rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, attn_implementation="eager")


def deepseek_v2_tiny():
    """DeepSeek-V2-Lite's shape: q_proj without the low-rank q (q_lora_rank null), greedy softmax
    top-k with routed_scaling_factor (not 1, so it matters) and no renormalisation, two shared
    experts merged into one MLP, a dense first layer (first_k_dense_replace 1). Then DeepSeek-V2's:
    the low-rank q, group-limited routing (top 3 of 8 experts in the best 2 of 4 groups, group
    score = max), yarn."""
    torch.manual_seed(11)
    cfg = transformers.DeepseekV2Config(q_lora_rank=None, n_routed_experts=4, n_shared_experts=2,
                                        num_experts_per_tok=2, topk_method="greedy", n_group=1, topk_group=1,
                                        routed_scaling_factor=1.5, norm_topk_prob=False, **DEEPSEEK)
    save_with_reference(transformers.DeepseekV2ForCausalLM(cfg), "hf_deepseek_v2_lite_tiny")
    torch.manual_seed(12)
    # top_k > topk_group: with the group's max as its score, the limit only binds then.
    cfg = transformers.DeepseekV2Config(q_lora_rank=16, n_routed_experts=8, n_shared_experts=1,
                                        num_experts_per_tok=3, topk_method="group_limited_greedy", n_group=4,
                                        topk_group=2, routed_scaling_factor=2.0, norm_topk_prob=False,
                                        rope_scaling=dict(type="yarn", factor=4.0, original_max_position_embeddings=16,
                                                          beta_fast=32.0, beta_slow=1.0, mscale=0.707,
                                                          mscale_all_dim=0.707),
                                        **DEEPSEEK)
    save_with_reference(transformers.DeepseekV2ForCausalLM(cfg), "hf_deepseek_v2_group_tiny")


def deepseek_v3_tiny():
    """DeepSeek-V3's routing: sigmoid scores, noaux_tc selection by score + e_score_correction_bias
    in the best topk_group of n_group groups (group score = sum of its two largest), weights the
    unbiased scores normalised (norm_topk_prob) times routed_scaling_factor 2.5; the low-rank q,
    interleaved RoPE with yarn (mscale = mscale_all_dim: the softmax scale takes mscale^2).
    widen() leaves the bias buffer at 0: it is drawn after, non-negative (transformers masks the
    other groups with 0, DeepSeek's code with -inf: the same while s + b > 0)."""
    torch.manual_seed(13)
    cfg = transformers.DeepseekV3Config(q_lora_rank=16, n_routed_experts=8, n_shared_experts=1,
                                        num_experts_per_tok=2, n_group=2, topk_group=1, routed_scaling_factor=2.5,
                                        norm_topk_prob=True,
                                        rope_scaling=dict(type="yarn", factor=4.0, original_max_position_embeddings=16,
                                                          beta_fast=32.0, beta_slow=1.0, mscale=1.0, mscale_all_dim=1.0),
                                        **DEEPSEEK)

    def bias(model):
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name.endswith("e_score_correction_bias"):
                    b.uniform_(0.0, 0.4)

    save_with_reference(transformers.DeepseekV3ForCausalLM(cfg), "hf_deepseek_v3_tiny", after_widen=bias)


def gguf_variants():
    """The same models in the form llama.cpp's graphs compute (every layer MoE; OLMoE without
    clip_qkv and with as many KV heads as heads), for tests/test_arch_gguf.cpp."""
    qwen2_moe_tiny("hf_qwen2_moe_allmoe", mlp_only_layers=())
    qwen3_moe_tiny("hf_qwen3_moe_allmoe", decoder_sparse_step=1)
    olmoe_tiny("hf_olmoe_mha_noclip", clip_qkv=None, num_key_value_heads=4)


def qwen3_moe_bf16_sharded():
    """The Qwen3-MoE fixture saved as transformers saves real checkpoints: bfloat16, in shards
    with model.safetensors.index.json. The reference is the same model with its weights rounded
    to bfloat16 and computed in float32 (moe widens bf16 weights to f32 exactly)."""
    torch.manual_seed(9)
    cfg = transformers.Qwen3MoeConfig(num_hidden_layers=2, head_dim=16, intermediate_size=40,
                                      moe_intermediate_size=24, num_experts=4, num_experts_per_tok=2,
                                      norm_topk_prob=True, decoder_sparse_step=2, **COMMON)
    model = transformers.Qwen3MoeForCausalLM(cfg).eval()
    widen(model)
    out = os.path.join(FIX, "hf_qwen3_moe_tiny_bf16_sharded")
    copy.deepcopy(model).to(torch.bfloat16).save_pretrained(out, safe_serialization=True, max_shard_size="40KB")
    # Round the parameters only: .to(bfloat16) and back would also round RoPE's inv_freq buffer.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, cfg.vocab_size, (12,), generator=g)
    with torch.no_grad():
        logits = model(tokens[None]).logits[0]
    save_file({"tokens": tokens.to(torch.int32).contiguous(), "logits": logits.contiguous()},
              os.path.join(out, "reference.safetensors"))
    gc = os.path.join(out, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)
    print(f"wrote {out}: {sorted(os.listdir(out))}")


MAKERS = {"mixtral": mixtral_tiny, "qwen2_moe": qwen2_moe_tiny, "qwen3_moe": qwen3_moe_tiny, "olmoe": olmoe_tiny,
          "qwen3_moe_bf16_sharded": qwen3_moe_bf16_sharded, "gguf_variants": gguf_variants,
          "deepseek_v2": deepseek_v2_tiny, "deepseek_v3": deepseek_v3_tiny}

if __name__ == "__main__":
    for name in sys.argv[1:] or MAKERS:
        MAKERS[name]()
