#!/usr/bin/env python3
"""moe against llama.cpp on the same GGUF: the logits of a prompt of token ids at every
position, and a greedy continuation. llama.cpp comes from llama-cpp-python built from source
(not a dependency of moe; run this with the Python that has it). Works on files without a
vocabulary (tokenizer.ggml.model = "no_vocab"), e.g. the random-weight benchmark shapes.

    python tools/check_llamacpp_logits.py mm-q4_k_m.gguf --moe build/moe -p 32 -n 16

Prints one JSON line: scaled max error per position (max |moe - llama.cpp| / max |llama.cpp|)
as median and max, and how many greedy tokens agree before the first difference. Both engines
use an f32 KV cache.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

import numpy as np
from llama_cpp import Llama
from safetensors.numpy import load_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--moe", default="build/moe")
    ap.add_argument("-p", type=int, default=32, help="prompt tokens")
    ap.add_argument("-n", type=int, default=16, help="greedy tokens")
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-b", type=int, default=0, help="moe's prompt chunk (1: decode path, activations quantized "
                    "as llama.cpp does; 0: one batch, dequantize + f32 GEMM, or packed Q4_0's integer kernel)")
    ap.add_argument("--moe-arg", action="append", default=[], help="an extra argument for moe generate (e.g. --no-repack)")
    a = ap.parse_args()
    llm = Llama(model_path=a.model, n_ctx=a.p + a.n + 8, n_batch=a.p, n_threads=a.t, n_threads_batch=a.t,
                type_k=0, type_v=0, logits_all=True, verbose=False)
    V = llm.n_vocab()
    prompt = [(i * 7919 + 11) % V for i in range(a.p)]
    llm.eval(prompt)
    ref = np.array(llm.scores[: a.p], dtype=np.float32)
    greedy_ref = []
    for _ in range(a.n):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        greedy_ref.append(nxt)
        llm.eval([nxt])
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "logits.safetensors")
        r = subprocess.run([a.moe, "generate", "-m", a.model, "--prompt-ids", ",".join(map(str, prompt)),
                            "--logits-out", out, "-b", str(a.b), "--temp", "0", "-n", str(a.n), "-t", str(a.t),
                            "-c", str(a.p + a.n + 8)] + a.moe_arg, check=True, capture_output=True, text=True)
        got = load_file(out)["logits"]
    ids = [int(x) for x in r.stdout.split()][a.p:]
    errs = [float(np.abs(got[i] - ref[i]).max() / np.abs(ref[i]).max()) for i in range(a.p)]
    if os.environ.get("VERBOSE"): print(" ".join(f"{e:.2g}" for e in errs))
    agree = next((i for i, (x, y) in enumerate(zip(ids, greedy_ref)) if x != y), min(len(ids), len(greedy_ref)))
    print(json.dumps({"model": a.model, "prompt_tokens": a.p, "moe_batch": a.b, "scaled_error_median": statistics.median(errs),
                      "scaled_error_max": max(errs), "greedy_tokens": a.n, "greedy_agree": agree,
                      "argmax_agree_positions": int(sum(int(np.argmax(got[i]) == np.argmax(ref[i])) for i in range(a.p)))}))


if __name__ == "__main__":
    main()
