#!/usr/bin/env python3
"""The peer of `moe bench run`: llama.cpp (through llama-cpp-python, built from source; not a
dependency of moe) timing prompt processing (pp) and greedy generation (tg) of a GGUF on the
same token ids, one JSON line, medians of --reps after one warm-up.

    python bench/llamacpp_run.py mm-q8_0.gguf -p 512 -n 128 -t 2

llama-bench reports the same two figures; this script exists because a Python build of
llama.cpp is what a pip install gives. It uses an f32 KV cache (type_k = type_v = 0), as moe does.
"""
import argparse
import json
import statistics
import time

import llama_cpp
import numpy as np
from llama_cpp import Llama


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", "--reps", type=int, default=3)
    a = ap.parse_args()
    llm = Llama(model_path=a.model, n_ctx=a.p + a.n, n_batch=a.p, n_ubatch=a.p, n_threads=a.t,
                n_threads_batch=a.t, type_k=0, type_v=0, verbose=False)
    V = llm.n_vocab()
    prompt = [(i * 7919) % V for i in range(a.p)]  # the ids moe bench run feeds
    pp, tg = [], []
    for r in range(a.reps + 1):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        for _ in range(a.n):
            last = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)  # the last token's logits
            nxt = int(np.argmax(np.ctypeslib.as_array(last, shape=(V,))))
            llm.eval([nxt])
        t2 = time.perf_counter()
        if r > 0:
            pp.append(t1 - t0)
            tg.append(t2 - t1)
    print(json.dumps({"bench": "llama.cpp run", "model": a.model, "threads": a.t, "pp_tokens": a.p,
                      "pp_tokens_per_s": a.p / statistics.median(pp), "tg_tokens": a.n,
                      "tg_tokens_per_s": a.n / statistics.median(tg), "reps": a.reps}))


if __name__ == "__main__":
    main()
