#!/usr/bin/env python3
"""GGUF fixtures from gguf-py (llama.cpp's own Python package), the reference for src/io/gguf.cpp
and the dequantizers of src/kernels.

Writes, under tests/fixtures/:
  gguf_types.gguf          GGUFWriter: metadata of every value type (arrays of each numeric type,
                           of bools and of strings) and one tensor of each type moe dequantizes,
                           plus a Q2_K tensor it does not; default alignment (32).
  gguf_align64.gguf        GGUFWriter with general.alignment = 64, two tensors.
  gguf_ref.json            what GGUFReader reads back from both: every key's type and value, every
                           tensor's type, ggml dims (ne order), byte size and data offset.
  gguf_ref.safetensors     gguf.quants.dequantize of every tensor, f32, in PyTorch order,
                           named "<file>/<tensor>".

Quantized tensors are gguf.quants.quantize of random data where gguf-py can quantize the type
(Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, BF16); the K-quants (Q4_K, Q5_K, Q6_K, Q2_K) are random bytes with
the f16 scales made finite. Deterministic (fixed seed).

  python3 -m pip install gguf numpy && python3 tools/gen_gguf_fixtures.py
"""
import json
import math
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFValueType as V, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
rng = np.random.default_rng(20240605)


def finite_half(n):
    """n random finite float16 values' bytes (exponent < 31), as uint8 pairs."""
    h = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
    h = np.where((h & 0x7C00) == 0x7C00, h & 0xBFFF, h)  # clear an exponent bit of inf/NaN
    return h.astype("<u2").view(np.uint8).reshape(n, 2)


def random_blocks(qtype, shape):
    """Random bytes for a K-quant tensor of the given (PyTorch-order) shape, scales finite."""
    block_size, block_bytes = GGML_QUANT_SIZES[qtype]
    n_blocks = int(np.prod(shape)) // block_size
    b = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    if qtype in (Q.Q4_K, Q.Q5_K):  # d, dmin at bytes 0..3
        b[:, 0:2] = finite_half(n_blocks)
        b[:, 2:4] = finite_half(n_blocks)
    elif qtype == Q.Q6_K:  # d at bytes 208..209
        b[:, 208:210] = finite_half(n_blocks)
    elif qtype == Q.Q2_K:  # d, dmin at bytes 80..83
        b[:, 80:82] = finite_half(n_blocks)
        b[:, 82:84] = finite_half(n_blocks)
    byte_shape = list(shape[:-1]) + [shape[-1] // block_size * block_bytes]
    return b.reshape(byte_shape)


# (name, type, PyTorch-order shape)
TENSORS = [
    ("t.f32", Q.F32, (3, 5)),
    ("t.f32_4d", Q.F32, (2, 1, 3, 4)),
    ("t.f16", Q.F16, (2, 4, 8)),
    ("t.bf16", Q.BF16, (4, 16)),
    ("t.q8_0", Q.Q8_0, (4, 64)),
    ("t.q4_0", Q.Q4_0, (2, 96)),
    ("t.q4_1", Q.Q4_1, (2, 64)),
    ("t.q5_0", Q.Q5_0, (2, 64)),
    ("t.q5_1", Q.Q5_1, (2, 64)),
    ("t.q4_k", Q.Q4_K, (2, 512)),
    ("t.q5_k", Q.Q5_K, (1, 256)),
    ("t.q6_k", Q.Q6_K, (3, 256)),
    ("t.q2_k", Q.Q2_K, (1, 256)),  # a type moe lists but does not dequantize
]


def tensor_data(qtype, shape):
    if qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q2_K):
        return random_blocks(qtype, shape)
    x = rng.normal(0.0, 2.0, size=shape).astype(np.float32)
    if qtype == Q.F32:
        return x
    if qtype == Q.F16:
        return x.astype(np.float16)
    return quantize(x, qtype)  # uint8, byte shape


def metadata(w):
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 3.14159)
    w.add_bool("test.bool", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "h\u00e9llo w\u00f6rld \u2713")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62) - 7)
    w.add_float64("test.f64", math.pi)
    w.add_key_value("test.arr.u8", [0, 1, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.arr.i8", [-128, 0, 127], V.ARRAY, sub_type=V.INT8)
    w.add_key_value("test.arr.u16", [0, 65535], V.ARRAY, sub_type=V.UINT16)
    w.add_key_value("test.arr.i16", [-32768, 32767], V.ARRAY, sub_type=V.INT16)
    w.add_key_value("test.arr.u32", [1, 4294967295], V.ARRAY, sub_type=V.UINT32)
    w.add_key_value("test.arr.i32", [-5, 0, 7, 2147483647], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("test.arr.u64", [0, 2**64 - 1], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("test.arr.i64", [-(2**63), 2**63 - 1], V.ARRAY, sub_type=V.INT64)
    w.add_key_value("test.arr.f32", [0.5, -1.25, 1e-8, 3.4e38], V.ARRAY, sub_type=V.FLOAT32)
    w.add_key_value("test.arr.f64", [math.e, -1e300], V.ARRAY, sub_type=V.FLOAT64)
    w.add_key_value("test.arr.bool", [True, False, True], V.ARRAY, sub_type=V.BOOL)
    w.add_array("test.arr.string", ["", "a", "tokens", "\u00fcn\u00ef", "x" * 40])
    w.add_uint32("llama.context_length", 4096)


def write(path, tensors, alignment=None, with_metadata=True):
    w = GGUFWriter(path, "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    if with_metadata:
        metadata(w)
    data = {}
    for name, qtype, shape in tensors:
        d = tensor_data(qtype, shape)
        data[name] = (qtype, d)
        raw = None if qtype in (Q.F32, Q.F16) else qtype
        w.add_tensor(name, d, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return data


def read_back(path):
    """Everything GGUFReader sees in the file, for the C++ test to compare with."""
    r = GGUFReader(path)
    kv = {}
    for key, f in r.fields.items():
        if key.startswith("GGUF."):
            continue  # the reader's pseudo-fields for the header
        t = f.types[0]
        tname = V(t).name.lower()
        if t == V.ARRAY:
            tname = "array[" + V(f.types[-1]).name.lower() + "]"
        value = f.contents()
        if isinstance(value, float) and not math.isfinite(value):
            raise SystemExit("non-finite metadata value")
        kv[key] = {"type": tname, "value": value}
    tensors = {}
    for t in r.tensors:
        tensors[t.name] = {"type": Q(t.tensor_type).name, "ne": [int(x) for x in t.shape],
                           "n_bytes": int(t.n_bytes), "data_offset": int(t.data_offset)}
    return {"alignment": int(r.alignment), "data_offset": int(r.data_offset), "kv": kv, "tensors": tensors}, r


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    files = {
        "types": write(os.path.join(OUT, "gguf_types.gguf"), TENSORS),
        "align64": write(os.path.join(OUT, "gguf_align64.gguf"),
                         [("a.f32", Q.F32, (3, 7)), ("a.q8_0", Q.Q8_0, (1, 32))], alignment=64, with_metadata=False),
    }
    ref_json, ref_values = {}, {}
    for fname, data in files.items():
        info, reader = read_back(os.path.join(OUT, f"gguf_{fname}.gguf"))
        ref_json[fname] = info
        for t in reader.tensors:
            qtype, written = data[t.name]
            if qtype == Q.Q2_K:
                continue  # moe does not dequantize it; the test checks the error
            raw = np.asarray(t.data)
            # What gguf-py dequantizes from the bytes it reads back, which must be the bytes written.
            assert raw.tobytes() == np.ascontiguousarray(written).tobytes(), t.name
            shape = tuple(int(x) for x in reversed(t.shape))
            if qtype in (Q.F32, Q.F16):
                values = dequantize(raw.reshape(-1).view(np.uint8), qtype)
            else:
                values = dequantize(raw.reshape(-1, raw.shape[-1]), qtype)
            values = np.asarray(values, dtype=np.float32).reshape(shape)
            assert np.all(np.isfinite(values)), t.name
            ref_values[f"{fname}/{t.name}"] = values
    with open(os.path.join(OUT, "gguf_ref.json"), "w") as f:
        json.dump(ref_json, f, indent=1, ensure_ascii=False)
        f.write("\n")
    write_safetensors(os.path.join(OUT, "gguf_ref.safetensors"), ref_values)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in
                ("gguf_types.gguf", "gguf_align64.gguf", "gguf_ref.json", "gguf_ref.safetensors"))
    print(f"wrote {len(ref_values)} reference tensors; fixtures {total} bytes")


if __name__ == "__main__":
    main()
