#!/usr/bin/env python3
"""Independent check of `moe convert` with gguf-py (llama.cpp's own Python package): reads a
converted GGUF with gguf.GGUFReader and redoes the conversion from the model directory with
gguf-py's pieces, as convert_hf_to_gguf.py does for Mixtral:

  - names: gguf.get_tensor_name_map(MODEL_ARCH.LLAMA) maps every Hugging Face name (experts
    stacked as block_sparse_moe.experts.w1 / w2 / w3) to the GGUF name in the file, and every
    tensor is one of gguf.MODEL_TENSORS[LLAMA];
  - metadata: the llama.* keys llama.cpp reads, with gguf.Keys' names and the value types
    convert_hf_to_gguf.py writes (uint32 / float32 / string), values from config.json;
  - data: the file's bytes equal gguf.quants.quantize(permuted HF tensor, type), the permutation
    written here as LlamaModel.permute spells it (reshape (n_head, 2, rows / n_head / 2, ...),
    swapaxes(1, 2)); norms and router F32; F16 where rows are not whole blocks.

  moe convert -m DIR -o out.gguf --outtype q8_0
  python3 -m pip install gguf numpy && python3 tools/check_gguf_convert.py DIR out.gguf
"""
import json
import re
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize

FTYPE = {0: Q.F32, 1: Q.F16, 2: Q.Q4_0, 7: Q.Q8_0, 32: Q.BF16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype=np.float32).reshape(e["shape"])
    return out


def permute(w, n_head, n_head_kv):  # convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main(model_dir, path):
    cfg = json.load(open(f"{model_dir}/config.json"))
    hf = read_safetensors(f"{model_dir}/model.safetensors")
    r = gguf.GGUFReader(path)
    problems = []

    def check(cond, what):
        if not cond:
            problems.append(what)

    fields = {f.name: f for f in r.fields.values()}

    def value(key):
        f = fields[key]
        if f.types[0] == gguf.GGUFValueType.STRING:
            return bytes(f.parts[f.data[0]]).decode()
        return f.parts[f.data[0]][0]

    L = cfg["num_hidden_layers"]
    arch = "llama"
    K = gguf.Keys
    want_u32 = {
        K.LLM.CONTEXT_LENGTH: cfg["max_position_embeddings"], K.LLM.EMBEDDING_LENGTH: cfg["hidden_size"],
        K.LLM.BLOCK_COUNT: L, K.LLM.FEED_FORWARD_LENGTH: cfg["intermediate_size"],
        K.Attention.HEAD_COUNT: cfg["num_attention_heads"], K.Attention.HEAD_COUNT_KV: cfg["num_key_value_heads"],
        K.LLM.EXPERT_COUNT: cfg["num_local_experts"], K.LLM.EXPERT_USED_COUNT: cfg["num_experts_per_tok"],
        K.Rope.DIMENSION_COUNT: cfg["hidden_size"] // cfg["num_attention_heads"], K.LLM.VOCAB_SIZE: cfg["vocab_size"],
    }
    check(value(K.General.ARCHITECTURE) == arch, "general.architecture")
    for key, v in want_u32.items():
        key = key.format(arch=arch)
        check(key in fields, f"missing {key}")
        if key in fields:
            check(fields[key].types[0] == gguf.GGUFValueType.UINT32, f"{key} is not uint32")
            check(int(value(key)) == v, f"{key} = {value(key)}, want {v}")
    for key, v in ((K.Rope.FREQ_BASE, cfg["rope_theta"]), (K.Attention.LAYERNORM_RMS_EPS, cfg["rms_norm_eps"])):
        key = key.format(arch=arch)
        check(fields[key].types[0] == gguf.GGUFValueType.FLOAT32, f"{key} is not float32")
        check(value(key) == np.float32(v), f"{key} = {value(key)}, want {v}")
    ftype = int(value(K.General.FILE_TYPE))
    qtype = FTYPE[ftype]
    check(K.Tokenizer.MODEL in fields, "missing tokenizer.ggml.model (llama.cpp requires it)")
    if K.Tokenizer.MODEL in fields and value(K.Tokenizer.MODEL) != "no_vocab":
        check(value(K.Tokenizer.MODEL) == "gpt2", "tokenizer.ggml.model")
        for key in (K.Tokenizer.PRE, K.Tokenizer.LIST, K.Tokenizer.TOKEN_TYPE, K.Tokenizer.MERGES):
            check(key in fields, f"missing {key}")
        check(len(fields[K.Tokenizer.LIST].data) == cfg["vocab_size"], "token count != vocab_size")

    # The HF tensors as convert_hf_to_gguf.py sees them for Mixtral: experts stacked.
    src = {}
    for name, t in hf.items():
        if ".experts." in name:
            continue
        src[name.removesuffix(".weight")] = t
    E = cfg["num_local_experts"]
    for l in range(L):
        for w in ("w1", "w2", "w3"):
            p = f"model.layers.{l}.block_sparse_moe.experts"
            src[f"{p}.{w}"] = np.stack([hf[f"{p}.{e}.{w}.weight"] for e in range(E)])
    nmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, L)
    allowed = {gguf.TENSOR_NAMES[t] for t in gguf.MODEL_TENSORS[gguf.MODEL_ARCH.LLAMA]}
    tensors = {t.name: t for t in r.tensors}
    check(len(tensors) == len(src), f"{len(tensors)} tensors in the file, {len(src)} expected")
    for name, data in src.items():
        gname = nmap.get_name(name) + ".weight"
        check(re.sub(r"^blk\.\d+\.", "blk.{bid}.", gname.removesuffix(".weight")) in allowed, f"{gname} not a llama tensor")
        if gname not in tensors:
            problems.append(f"{gname} (from {name}) missing")
            continue
        t = tensors[gname]
        if name.endswith("q_proj"):
            data = permute(data, cfg["num_attention_heads"], cfg["num_attention_heads"])
        elif name.endswith("k_proj"):
            data = permute(data, cfg["num_attention_heads"], cfg["num_key_value_heads"])
        check(list(t.shape) == list(reversed(data.shape)), f"{gname}: dims {list(t.shape)} vs HF {list(data.shape)}")
        keep_f32 = data.ndim <= 1 or gname.endswith("_norm.weight") or "ffn_gate_inp" in gname
        want_type = Q.F32 if keep_f32 else qtype
        if want_type not in (Q.F32, Q.F16, Q.BF16) and data.shape[-1] % gguf.GGML_QUANT_SIZES[want_type][0] != 0:
            want_type = Q.F16  # convert_hf_to_gguf.py's fallback
        check(t.tensor_type == want_type, f"{gname}: {t.tensor_type.name}, want {want_type.name}")
        want = quantize(np.ascontiguousarray(data), want_type)
        check(bytes(np.asarray(t.data).tobytes()) == bytes(want.tobytes()), f"{gname}: bytes differ from gguf-py's")
    print(f"{path}: {len(tensors)} tensors, file_type {ftype} ({qtype.name}), {len(fields)} keys")
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print("OK: names, dims, types, metadata and every tensor's bytes match gguf-py's conversion")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
