#!/usr/bin/env python3
"""Quantizer fixture from gguf-py (llama.cpp's own Python package): the reference for
src/kernels/ref/quantize_ref.cpp.

Writes tests/fixtures/quant_ref.gguf (GGUFWriter) with
  in      F32 (R, 64): the rows to quantize
  f16, bf16, q8_0, q4_0: gguf.quants.quantize(in, type), the bytes gguf-py produces
Rows: normal(0, 1) at several scales, all zeros, one huge value (1e30) among small ones, the
largest magnitude negative, values in f16's subnormal range, a row above f16's range (70000:
its f16 scale overflows), exact halves (x / d lands on .5: rounding ties) and a row of one
constant. Deterministic (fixed seed).

  python3 -m pip install gguf numpy && python3 tools/gen_quant_fixtures.py
"""
import os

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.quants import quantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "quant_ref.gguf")
rng = np.random.default_rng(20250105)
N = 64

rows = [rng.standard_normal(N) * s for s in (1.0, 1e-3, 30.0, 1e4)]
rows.append(np.zeros(N))
huge = rng.standard_normal(N) * 0.01
huge[5] = 1e30
rows.append(huge)
neg = rng.uniform(-1, 1, N)
neg[40] = -3.0  # the largest magnitude is negative (Q4_0's d takes its sign)
neg[7] = 3.0 - 1e-6
rows.append(neg)
rows.append(rng.standard_normal(N) * 1e-6)  # f16 subnormals (Q8_0's d, and F16 itself)
over = rng.standard_normal(N) * 100.0
over[9] = 7e6  # Q8_0's d = 7e6 / 127 overflows f16; F16 of 7e6 is inf
rows.append(over)
ties = np.arange(-N // 2, N // 2) * 0.5  # multiples of 0.5: many x / d on a .5 tie
rows.append(ties)
rows.append(np.full(N, -0.3))
data = np.stack(rows).astype(np.float32)

w = GGUFWriter(OUT, "quant_ref")
w.add_tensor("in", data)
for name, qt in (("f16", Q.F16), ("bf16", Q.BF16), ("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0)):
    w.add_tensor(name, quantize(data, qt), raw_dtype=qt)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", OUT, data.shape)
