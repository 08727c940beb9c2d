#!/usr/bin/env python3
"""Reference fixtures for the C++ SentencePiece-style BPE tokenizer (tooling only: CI never runs this).

Real Llama / Mistral / Mixtral tokenizer.json files are SentencePiece BPE models converted by
transformers (LlamaConverter): a BPE model with byte_fallback, the vocab laid out as <unk> <s> </s>,
the 256 byte tokens <0x00>..<0xFF>, then the pieces in score order; the merges are *every* split
(left, right) of a piece whose halves are both in the vocab, ordered by the piece's score (then by
the halves' ids), as transformers' SentencePieceExtractor writes them; normalizer
Prepend("▁") + Replace(" ", "▁") (newer files: Metaspace pre-tokenizer instead), decoder
Replace("▁", " ") + ByteFallback + Fuse + Strip(1 leading space); post-processor adding <s>.

This script builds a small tokenizer of exactly that shape with Hugging Face `tokenizers`: a BPE
(byte_fallback, Metaspace-split words as SentencePiece does) is trained on
tests/fixtures/kjv_genesis.txt plus a few lines of other scripts, its pieces keep their training
order as scores, and the file is assembled as the converter would. Then it records, with
`tokenizers` as the reference:

  - for three front ends of the same vocab (the legacy Prepend+Replace normalizer, the Metaspace
    pre-tokenizer with prepend_scheme "first" and split=false, and Metaspace "always" with
    split=true), the ids of ~35 test strings (unicode, newlines, leading / inner / trailing
    spaces, digits, emoji, CJK, special tokens inside the text), with and without the <s> that
    the post-processor adds, and decode(ids);
  - decode() of 40 random id sequences (byte tokens that do and do not form UTF-8, specials);
  - a fingerprint of the whole corpus file encoded line by line (count and FNV-1a of the ids).

Writes
    tests/fixtures/tokenizer_spm.json        the tokenizer (legacy normalizer form)
    tests/fixtures/tokenizer_spm_cases.json  the expected ids and strings

    python3 -m pip install tokenizers && python3 tools/gen_spm_tokenizer_fixtures.py
"""
import json
import os
import random

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
SP = "\u2581"  # ▁
TRAIN_PIECES = 620  # pieces learned (characters + merges), besides the 3 specials and 256 bytes
SPECIALS = ["<unk>", "<s>", "</s>"]

# A little text in other scripts, so that some non-ASCII letters become pieces and the rarer ones
# (one occurrence) stay out and go through byte fallback.
EXTRA = """\
Au commencement, Dieu créa les cieux et la terre. La terre était informe et vide.
Im Anfang schuf Gott Himmel und Erde. Und die Erde war wüst und leer, und es war finster.
Dieu dit: Que la lumière soit! Et la lumière fut. Dieu vit que la lumière était bonne.
Und Gott sprach: Es werde Licht! Und es ward Licht. Und Gott sah, daß das Licht gut war.
Ἐν ἀρχῇ ἐποίησεν ὁ θεὸς τὸν οὐρανὸν καὶ τὴν γῆν.
В начале сотворил Бог небо и землю.
"""

CASES = [
    "",
    "In the beginning God created the heaven and the earth.",
    "Ge1:1 In the beginning God created the heaven and the earth.",
    "And God said, Let there be light: and there was light.",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "  two leading spaces",
    "trailing space ",
    "   three leading, two  inner,   three trailing   ",
    "line one\nline two\n\nline four\n",
    "\n",
    "\nstarts with a newline",
    "tab\tseparated\t\tcolumns\t",
    " \n \t\r\n  mixed whitespace\t \n",
    "3:16 and 2026 and 1234567890 and 0.5",
    "It's the LORD's; thou'rt here; we're; I'm.",
    "Wait... what?! Really?!? ... !!! ???",
    "\"Quoted\" (parenthesised) [bracketed] {braced} <angled> #hash @at $5 %d ^ & * _ - = +",
    "Au commencement, Dieu créa les cieux et la terre.",
    "Und die Erde war wüst und leer.",
    "naïve café Zoë façade",
    "Ἐν ἀρχῇ ἦν ὁ λόγος",
    "В начале было Слово",
    "Peace be with you \U0001F54A\uFE0F and joy \U0001F600!",
    "\u4E2D God is love \u795E\u7231\u4E16\u4EBA",
    "\u2581 a literal meta-space \u2581\u2581 twice",
    "<s>",
    "<s>In the beginning",
    "In the beginning</s>",
    "Hello</s><s>World",
    " <s> spaced <s> specials </s> ",
    "<unk> and <0x41> as text",
    "[INST] What is the first day? [/INST] The light.",
    "<s>[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]",
    "a",
    "  ",
    "\u00e9",
]


def corpus_text():
    with open(os.path.join(FIX, "kjv_genesis.txt"), encoding="utf-8") as f:
        return f.read()


def train_pieces():
    """Pieces in training order (SentencePiece's score order) from a BPE trained on words split
    at the meta-space, as SentencePiece's BPE trainer splits them."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", SP)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SP, prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=len(SPECIALS) + TRAIN_PIECES, special_tokens=SPECIALS,
                                  min_frequency=2, limit_alphabet=110, show_progress=False)
    lines = (corpus_text() + EXTRA).splitlines()
    tok.train_from_iterator(lines, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    by_id = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    pieces = [t for t, _ in by_id if t not in SPECIALS]
    assert len(pieces) == TRAIN_PIECES, len(pieces)
    return pieces


def llama_style_json(pieces, front_end):
    """tokenizer.json as transformers' LlamaConverter writes a SentencePiece BPE model."""
    vocab = {}
    for t in SPECIALS + ["<0x%02X>" % b for b in range(256)] + pieces:
        assert t not in vocab, t
        vocab[t] = len(vocab)
    # Scores: the piece order (first piece highest), as SentencePiece's BPE scores are -rank.
    score = {t: -i for i, t in enumerate(pieces)}
    merges = []
    for t in pieces:
        local = [(t[:i], t[i:]) for i in range(1, len(t)) if t[:i] in vocab and t[i:] in vocab]
        local.sort(key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
        merges.extend((l, r, score[t]) for l, r in local)
    merges.sort(key=lambda m: m[2], reverse=True)  # stable: keeps the per-piece order
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(SPECIALS)]
    if front_end == "prepend":
        normalizer = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SP},
            {"type": "Replace", "pattern": {"String": " "}, "content": SP}]}
        pre = None
    elif front_end == "metaspace_first":
        normalizer = None
        pre = {"type": "Metaspace", "replacement": SP, "prepend_scheme": "first", "split": False}
    elif front_end == "metaspace_always_split":
        normalizer = None
        pre = {"type": "Metaspace", "replacement": SP, "prepend_scheme": "always", "split": True}
    else:
        raise ValueError(front_end)
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SP}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab, "merges": [[l, r] for l, r, _ in merges],
        },
    }


def fnv1a(ids, h=0xCBF29CE484222325):
    for i in ids:
        for b in int(i).to_bytes(4, "little", signed=True):
            h ^= b
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    pieces = train_pieces()
    variants = {}
    main_path = os.path.join(FIX, "tokenizer_spm.json")
    for front_end in ("prepend", "metaspace_first", "metaspace_always_split"):
        j = llama_style_json(pieces, front_end)
        text = json.dumps(j, ensure_ascii=False, indent=None, separators=(",", ":"))
        if front_end == "prepend":
            with open(main_path, "w", encoding="utf-8") as f:
                f.write(text)
            tok = Tokenizer.from_file(main_path)
        else:
            tok = Tokenizer.from_str(text)
        cases = []
        for s in CASES:
            ids = tok.encode(s, add_special_tokens=False).ids
            with_bos = tok.encode(s).ids
            cases.append({"text": s, "ids": ids, "ids_bos": with_bos, "decoded": tok.decode(ids, skip_special_tokens=False)})
        variants[front_end] = {"normalizer": j["normalizer"], "pre_tokenizer": j["pre_tokenizer"], "cases": cases}

    ref = Tokenizer.from_file(main_path)
    n = ref.get_vocab_size()
    rng = random.Random(20261124)
    decode_cases = []
    byte_ids = list(range(3, 259))
    for k in range(40):
        ln = rng.randint(1, 12)
        ids = []
        for _ in range(ln):
            r = rng.random()
            ids.append(rng.choice(byte_ids) if r < 0.35 else rng.randrange(0, 3) if r < 0.45 else rng.randrange(259, n))
        if k < 4:  # whole UTF-8 sequences as bytes, and a truncated one
            ids = [[0xE2 + 3, 0x96 + 3, 0x81 + 3], [0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3], [0xE2 + 3, 0x96 + 3], [0xC3 + 3, 0xA9 + 3, 0x41 + 3]][k]
        decode_cases.append({"ids": ids, "text": ref.decode(ids, skip_special_tokens=False)})

    lines = corpus_text().split("\n")
    count, h = 0, 0xCBF29CE484222325
    for line in lines:
        ids = ref.encode(line, add_special_tokens=False).ids
        count += len(ids)
        h = fnv1a(ids, h)
    out = {
        "tokenizers_version": tokenizers.__version__,
        "vocab_size": n,
        "variants": variants,
        "decode": decode_cases,
        "corpus": {"file": "kjv_genesis.txt", "split": "\\n", "lines": len(lines), "tokens": count, "fnv1a": "%016x" % h},
    }
    cases_path = os.path.join(FIX, "tokenizer_spm_cases.json")
    with open(cases_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    nbytes = sum(1 for c in ref.encode(corpus_text(), add_special_tokens=False).tokens if c.startswith("<0x"))
    for p in (main_path, cases_path):
        print(f"{os.path.relpath(p, ROOT)}: {os.path.getsize(p)} bytes")
    print(f"tokenizers {tokenizers.__version__}: vocab {n}, merges {len(json.load(open(main_path))['model']['merges'])}, "
          f"{len(CASES)} cases x 3 front ends, corpus {len(lines)} lines -> {count} tokens "
          f"({nbytes} byte-fallback tokens in the whole file)")


if __name__ == "__main__":
    main()
