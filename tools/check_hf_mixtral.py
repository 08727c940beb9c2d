#!/usr/bin/env python3
"""Loads a model directory written by `moe train` (or `moe upcycle`) in Hugging Face
transformers' MixtralForCausalLM and compares its logits and greedy generation with moe's.

    python tools/check_hf_mixtral.py runs/kjv [--moe build/moe] [--prompt "And God said"]

Needs torch and transformers (a version with MixtralForCausalLM, >= 4.36), e.g.
    python3 -m venv --system-site-packages venv-hf && venv-hf/bin/pip install transformers==4.40.2
with Debian's python3-torch. Prints the max abs / relative logit error and whether the greedy
continuations agree; exits 1 when the logits differ by more than --tol (relative to max |logit|).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file
from transformers import MixtralForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run", help="model directory: config.json, model.safetensors, tokenizer.json")
    ap.add_argument("--moe", default="build/moe", help="the moe binary")
    ap.add_argument("--prompt", default="And God said unto Moses, ")
    ap.add_argument("-n", type=int, default=32, help="greedy tokens to compare")
    ap.add_argument("--tol", type=float, default=1e-4, help="max abs error / max |logit|")
    a = ap.parse_args()

    cfg = json.load(open(os.path.join(a.run, "config.json")))
    if cfg.get("architectures") != ["MixtralForCausalLM"]:
        sys.exit(f"{a.run}/config.json is {cfg.get('architectures')}: only Mixtral-style models "
                 "(topk router, renormalised, no shared experts or dense layers) load in MixtralForCausalLM")

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.safetensors")
        ours = subprocess.run([a.moe, "generate", "-m", a.run, "-p", a.prompt, "-n", str(a.n), "--temp", "0",
                               "-t", "1", "--logits-out", out], check=True, capture_output=True, text=True)
        ref = load_file(out)
    ids = ref["tokens"].long()
    moe_logits = ref["logits"]

    model = MixtralForCausalLM.from_pretrained(a.run, torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        hf_logits = model(ids[None]).logits[0]
        # An explicit mask: generate() would otherwise treat prompt tokens equal to pad_token_id as padding.
        gen = model.generate(ids[None], attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=a.n,
                             do_sample=False, pad_token_id=0)[0, len(ids):]

    err = (hf_logits - moe_logits).abs().max().item()
    scale = hf_logits.abs().max().item()
    print(f"prompt tokens: {len(ids)}, vocab {hf_logits.shape[1]}")
    print(f"logits: max abs error {err:.3e}, max |logit| {scale:.3f}, relative {err / scale:.3e}")
    print(f"argmax equal at {int((hf_logits.argmax(1) == moe_logits.argmax(1)).sum())} / {len(ids)} positions")

    # moe generate prints the prompt and the continuation; decode transformers' tokens with the
    # run's own tokenizer through moe's output is not possible, so compare the text.
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(a.run, "tokenizer.json"))
    hf_text = a.prompt + tok.decode(gen.tolist())
    ours_text = ours.stdout.rstrip("\n")
    same = hf_text == ours_text
    print(f"greedy {a.n} tokens identical: {same}")
    if not same:
        print(f"  transformers: {hf_text!r}\n  moe:          {ours_text!r}")
    ok = err / scale <= a.tol and same
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
