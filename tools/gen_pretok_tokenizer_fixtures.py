#!/usr/bin/env python3
"""Reference fixtures for the regex pre-tokenizers of byte-level BPE (tooling only: CI never runs this).

Qwen2 / Qwen1.5-MoE / Qwen3-MoE, Llama-3 and DeepSeek-V3 tokenizer.json files are byte-level BPEs
whose pre_tokenizer is a Sequence of Split (a Regex, Isolated), sometimes Digits, and
ByteLevel(use_regex=false); Qwen2's has the NFC normalizer. The pre_tokenizer / normalizer JSON
below is written as those files have it (Llama-3 and DeepSeek-V3 also checked against copies
quoted in public repositories). Hugging Face `tokenizers` is the reference:

  - for each of the three, a small BPE is trained with BpeTrainer on the multilingual text below
    with that pre-tokenizer, saved, and its front end replaced by the literal JSON (Llama-3 also
    gets `ignore_merges` with a few whole-word tokens no merge makes, and its TemplateProcessing
    post-processor with <|begin_of_text|>); the file is reloaded and encodes ~35 strings
    (English, long numbers, code, whitespace runs, newlines, "DON'T", accents, combining
    characters, Greek, Cyrillic, CJK, emoji, Unicode spaces, ChatML tokens): pieces of the
    pre-tokenizer, ids, ids with BOS, decode(ids);
  - the same vocabulary (Qwen2's) with four other front ends: DeepSeek LLM / V2, GPT-NeoX / OLMo
    (NFC + ByteLevel regex), GPT-2 (ByteLevel regex), Llama-3 without ignore_merges;
  - tests/fixtures/kjv_genesis.txt line by line with each tokenizer (count and FNV-1a of the ids);
  - Split / Digits on their own: every behavior with and without invert, String patterns (also
    empty), ^ and $ (line anchors in Oniguruma's Ruby syntax), patterns that match empty, (?i:)
    case folding, "." and "\\r", Unicode spaces;
  - the Unicode classes the patterns use (\\s, \\S, \\p{L}, \\p{N}, \\p{M}, \\p{P}, \\p{S}, \\d, the
    class of GPT-2's punctuation branch, (?i:s), (?i:k)) over every code point, as ranges.

Writes
    tests/fixtures/tokenizer_pretok_{qwen2,llama3,deepseek_v3}.json   the tokenizers
    tests/fixtures/tokenizer_pretok_cases.json                        the expected pieces / ids / strings
    tests/fixtures/tokenizer_pretok_classes.json                      the classes

    python3 -m pip install tokenizers && python3 tools/gen_pretok_tokenizer_fixtures.py
"""
import json
import os

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
VOCAB_SIZE = 1000
GENESIS_LINES = 120  # of tests/fixtures/kjv_genesis.txt, trained on besides CORPUS


def split(regex):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def byte_level(use_regex, trim_offsets=True):
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": trim_offsets, "use_regex": use_regex}


QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
# DeepSeek-V3: "\r\n" here are the characters themselves, as in the file.
DEEPSEEK_V3 = {"type": "Sequence", "pretokenizers": [
    split(r"\p{N}{1,3}"),
    split("[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+"),
    split("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
          "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
    byte_level(False)]}
DEEPSEEK_LLM_LETTERS = (
    "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373"
    "\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F"
    "\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77"
    "\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D"
    "\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4"
    "\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139"
    "\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D"
    "\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A"
    "\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2"
    "\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943]+")
DEEPSEEK_LLM = {"type": "Sequence", "pretokenizers": [
    split("[\r\n]"), split(DEEPSEEK_LLM_LETTERS),
    split("\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+"), split("\\s+$"),
    split("[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+"), {"type": "Digits", "individual_digits": True},
    byte_level(False)]}
EMPTY_NORMALIZER = {"type": "Sequence", "normalizers": []}


def llama3_post(bos_id):
    return {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos_id],
                                                  "tokens": ["<|begin_of_text|>"]}}}]}


FAMILIES = {
    "qwen2": {"normalizer": {"type": "NFC"},
              "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(QWEN2_REGEX), byte_level(False, False)]},
              "decoder": byte_level(False, False), "post_processor": byte_level(False, False),
              "specials": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]},
    "llama3": {"normalizer": None,
               "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(LLAMA3_REGEX), byte_level(False)]},
               "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
               "specials": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                            "<|eot_id|>"],
               # whole words no merge makes: ignore_merges takes them as they are
               "extra_words": [" Quixote", " Jerusalem", "Zebra", " zebras"]},
    "deepseek_v3": {"normalizer": EMPTY_NORMALIZER, "pre_tokenizer": DEEPSEEK_V3,
                    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                    "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                                       "use_regex": True},
                    "specials": ["<\uFF5Cbegin\u2581of\u2581sentence\uFF5C>", "<\uFF5Cend\u2581of\u2581sentence\uFF5C>"]},
}

# Other front ends on Qwen2's vocabulary: (normalizer, pre_tokenizer, ignore_merges).
VARIANTS = {
    "deepseek_llm": (EMPTY_NORMALIZER, DEEPSEEK_LLM, False),
    "gpt_neox": ({"type": "NFC"}, byte_level(True), False),
    "gpt2": (None, byte_level(True), False),
    "llama3_merges": (None, FAMILIES["llama3"]["pre_tokenizer"], False),
}

CORPUS = """\
In the beginning God created the heaven and the earth. And the earth was without form, and void.
And God said, Let there be light: and there was light. And God saw the light, that it was good.
It's the LORD's doing; DON'T fear, they'll say, we're here, we've come, I'm glad, he'd go.
In 1611 the King's translators set forth 66 books; in 2026 we read 1,234,567 words at 3.14 per line.
def square(x):\n    return x * x  # the square\n\nfor i in range(10):\n    print(i, square(i))
int main() { std::vector<int> v{1, 2, 3}; return v[0] != 0 ? -1 : 0; }
The naïve servant sat in the café with Zoë; Ærøskøbing, Straße, São Paulo, résumé, Ångström.
Ἐν ἀρχῇ ἐποίησεν ὁ θεὸς τὸν οὐρανὸν καὶ τὴν γῆν. Καὶ εἶπεν ὁ θεός· γενηθήτω φῶς.
В начале сотворил Бог небо и землю. И сказал Бог: да будет свет. И стал свет.
起初，神创造天地。地是空虚混沌，渊面黑暗；神的灵运行在水面上。神说：要有光，就有了光。
はじめに神は天と地とを創造された。地は形なく、むなしく、やみが淵のおもてにあり。
태초에 하나님이 천지를 창조하시니라. 땅이 혼돈하고 공허하며 흑암이 깊음 위에 있고.
Peace 🕊️ and joy 😀 to the world 🌍! Thumbs up 👍 — “quoted” text… and ‘single’ quotes.
   indented line\twith\ttabs   and trailing spaces   
Numbers 12345678901234567890 and 000 and 42 and 7; x = y + 2 * (z - 1) / 3; a[i] = b[j];
"""

TEXTS = [
    "",
    "Hello world",
    "In the beginning God created the heaven and the earth.",
    "DON'T you SEE it's the LORD'S? They'LL say we'VE, I'M, he'D, you'RE; 'tis o'clock ''",
    "Numbers: 1 12 123 1234 12345 1234567890 3.14159 -42 1,000,000 007 10000000000000000000",
    "def f(x):\n    return x**2 + 1  # square\n\nif __name__ == \"__main__\":\n\tprint(f(3))\n",
    "int main() { std::vector<int> v{1, 2, 3}; return v[0] != 0 ? -1 : 0; }",
    "  two leading, three   inner,\ttab\t\tdouble tab   \n\n\n  trailing  ",
    "line1\r\nline2\rline3\n\n  \n\t\nend\n",
    "Café naïve résumé Zoë Ærøskøbing Straße São Paulo Ångström",
    "Cafe\u0301 nai\u0308ve Ange\u0301lique \u212B \u1100\u1161\u11A8 e\u0301\u0302 A\u030A \u00C5",
    "Ἐν ἀρχῇ ἐποίησεν ὁ θεὸς τὸν οὐρανὸν καὶ τὴν γῆν.",
    "В начале сотворил Бог небо и землю. ЁЖИК и ёжик",
    "起初，神创造天地。地是空虚混沌，渊面黑暗。",
    "はじめに神は天と地とを創造された。カタカナ ひらがな",
    "태초에 하나님이 천지를 창조하시니라",
    "Peace 🕊️ and joy 😀👍🏽 family 👨\u200d👩\u200d👧 flags 🇫🇷🇯🇵",
    "GPT-4o costs $20/month — that's 💸! (50% off) #AI @user https://example.com/a?b=c&d=e",
    "'ſ 'S 'K \u212A \u017F 'ſt",
    "a\u00A0b\u2003c\u3000d\u180Ee\u0085f\u200Bg\u2028h\u2029i\u000Bj\u000Ck",
    "٣٤٥ ४५६ ²³ ½ Ⅻ ①② x²",
    "Wait... what?!?! — “quoted” «guillemets» ‘single’ (paren) [bracket] {brace}",
    "foo.bar(baz) !Hello ?World x.y_z A-Za-z: 'quote' \"dq\" $var",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nCafe\u0301?<|im_end|>\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>",
    "<\uFF5Cbegin\u2581of\u2581sentence\uFF5C>User: 12345\n\nAssistant:",
    " Quixote met Zebra and zebras in Jerusalem; Quixote",
    "\n",
    " ",
    "a",
    "'",
    "   ",
    "\t\n \r\n",
    "🕊",
    "Ὅ Ώ ᾼ Ω Ω K K ℃ ﬁ ｆｕｌｌ ＡＢＣ 𐐀𐐨",
    "ascii only: the quick brown fox jumps over the lazy dog 0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
]

# Split / Digits alone: (pre_tokenizer, text).
SPLIT_TEXT = "-a-bxx--c-"
SPLIT_CASES = []
for behavior in ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]:
    for invert in [False, True]:
        SPLIT_CASES.append(({"type": "Split", "pattern": {"Regex": "-+|x"}, "behavior": behavior, "invert": invert},
                            SPLIT_TEXT))
        SPLIT_CASES.append(({"type": "Split", "pattern": {"String": "ab"}, "behavior": behavior, "invert": invert},
                            "xabyababz ab"))
SPLIT_CASES += [
    ({"type": "Split", "pattern": {"String": ""}, "behavior": "Isolated", "invert": False}, "xab"),
    ({"type": "Split", "pattern": {"String": "."}, "behavior": "Isolated", "invert": False}, "a.b..c"),
    ({"type": "Split", "pattern": {"Regex": "a$"}, "behavior": "Isolated", "invert": False}, "a\nba\na"),
    ({"type": "Split", "pattern": {"Regex": "^b"}, "behavior": "Isolated", "invert": False}, "b\nbab"),
    ({"type": "Split", "pattern": {"Regex": "\\s+$"}, "behavior": "Isolated", "invert": False}, "x  \n  y  "),
    ({"type": "Split", "pattern": {"Regex": "(?=x)"}, "behavior": "Isolated", "invert": False}, "axbxx"),
    ({"type": "Split", "pattern": {"Regex": "x*"}, "behavior": "Isolated", "invert": False}, "axbxx"),
    ({"type": "Split", "pattern": {"Regex": "\\b"}, "behavior": "Isolated", "invert": False}, None),  # refused
    ({"type": "Split", "pattern": {"Regex": "(?i:'s|'t)"}, "behavior": "Isolated", "invert": False}, "'S'\u017F'T'\u212A"),
    ({"type": "Split", "pattern": {"Regex": "."}, "behavior": "Removed", "invert": False}, "a\nb\rc\u2028d"),
    ({"type": "Split", "pattern": {"Regex": "\\s"}, "behavior": "Isolated", "invert": False},
     "a\u180Eb\u0085c\u200Bd\u00A0e"),
    ({"type": "Split", "pattern": {"Regex": "\\S+"}, "behavior": "Isolated", "invert": False}, "ab\u180Ecd\u3000ef"),
    ({"type": "Split", "pattern": {"Regex": "[^\\s\\p{L}]+"}, "behavior": "Isolated", "invert": False},
     "ab12\u180E!\u2003cd"),
    ({"type": "Digits", "individual_digits": True}, "a12b3456c\u00B2\u0663\u2167"),
    ({"type": "Digits", "individual_digits": False}, "a12b3456c\u00B2\u0663\u2167"),
    ({"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": False},
        {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": " "}, "behavior": "Removed",
                                                "invert": False}]}]}, "ab 123 c4 5"),
]

CLASSES = ["\\s", "\\S", "\\p{L}", "\\p{N}", "\\p{M}", "\\p{P}", "\\p{S}", "\\d", "[^\\s\\p{L}\\p{N}]", "(?i:s)",
           "(?i:k)"]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()
U2B = {c: b for b, c in B2U.items()}


def to_byte_level(s):
    return "".join(B2U[b] for b in s.encode("utf-8"))


def from_byte_level(s):
    return bytes(U2B[c] for c in s).decode("utf-8")


def train(name, fam):
    tok = Tokenizer(models.BPE())
    tok.normalizer = Tokenizer.from_str(json.dumps(base_json(fam["normalizer"], fam["pre_tokenizer"]))).normalizer
    tok.pre_tokenizer = Tokenizer.from_str(json.dumps(base_json(fam["normalizer"], fam["pre_tokenizer"]))).pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, show_progress=False, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    with open(os.path.join(FIX, "kjv_genesis.txt"), encoding="utf-8") as f:
        genesis = f.read().splitlines(keepends=True)[:GENESIS_LINES]
    # CORPUS twice: its words in other scripts occur often enough to be merged too.
    tok.train_from_iterator(CORPUS.splitlines(keepends=True) * 2 + genesis, trainer=trainer)
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    for w in fam.get("extra_words", []):
        assert to_byte_level(w) not in vocab, w
        vocab[to_byte_level(w)] = len(vocab)
    n = len(vocab)
    j["added_tokens"] = [{"id": n + k, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for k, s in enumerate(fam["specials"])]
    j["normalizer"] = fam["normalizer"]
    j["pre_tokenizer"] = fam["pre_tokenizer"]
    j["decoder"] = fam["decoder"]
    j["post_processor"] = fam.get("post_processor") or llama3_post(n)
    if name == "llama3":
        j["model"]["ignore_merges"] = True
    return j


def base_json(normalizer, pre):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": normalizer,
            "pre_tokenizer": pre, "post_processor": None, "decoder": None,
            "model": {"type": "BPE", "vocab": {}, "merges": []}}


def pieces_of(tok, text):
    """The pre-tokenizer's pieces of the normalized text, as UTF-8 strings (the ByteLevel step undone)."""
    normalized = tok.normalizer.normalize_str(text) if tok.normalizer else text
    out = []
    for piece, _ in tok.pre_tokenizer.pre_tokenize_str(normalized):
        out.append(from_byte_level(piece))
    assert "".join(out) == normalized, (text, out)
    return out


def encode_cases(tok, family):
    """Per text: ids, and the pre-tokenizer's pieces (texts without added tokens); for the trained
    tokenizers also decode(ids), and the ids with the post-processor's BOS where it adds one."""
    cases = []
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=False).ids
        case = {"ids": ids}
        if "<|" not in text and "<\uFF5C" not in text:
            case["pieces"] = pieces_of(tok, text)
        if family:
            case["decoded"] = tok.decode(ids, skip_special_tokens=False)
            with_bos = tok.encode(text).ids
            if with_bos != ids:
                case["ids_bos"] = with_bos
        cases.append(case)
    return cases


def dump(obj, f, depth=0):
    """JSON with one line per list element or key down to depth 4 (one line per case)."""
    if depth >= 4 or not isinstance(obj, (dict, list)) or not obj:
        f.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        return
    pad = "\n" + " " * (depth + 1)
    items = list(obj.items()) if isinstance(obj, dict) else list(enumerate(obj))
    f.write("{" if isinstance(obj, dict) else "[")
    for k, (key, value) in enumerate(items):
        f.write(("," if k else "") + pad)
        if isinstance(obj, dict):
            f.write(json.dumps(key, ensure_ascii=False) + ":")
        dump(value, f, depth + 1)
    f.write("\n" + " " * depth + ("}" if isinstance(obj, dict) else "]"))


def fnv1a(ids, h=0xCBF29CE484222325):
    for i in ids:
        for k in range(4):
            h ^= (i >> (8 * k)) & 0xFF
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def corpus_check(tok):
    with open(os.path.join(FIX, "kjv_genesis.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    h, count = 0xCBF29CE484222325, 0
    for line in lines:
        ids = tok.encode(line, add_special_tokens=False).ids
        count += len(ids)
        h = fnv1a(ids, h)
    return {"lines": len(lines), "tokens": count, "fnv1a": f"{h:016x}"}


def class_ranges(pattern):
    cps = [c for c in range(1, 0x110000) if not (0xD800 <= c <= 0xDFFF)]
    s = "".join(chr(c) for c in cps)
    kept = set()
    for piece, _ in pre_tokenizers.Split(Regex(pattern), behavior="removed").pre_tokenize_str(s):
        kept.update(ord(ch) for ch in piece)
    ranges = []
    for c in cps:
        if c in kept:
            continue
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


def main():
    cases = {"tokenizers_version": tokenizers.__version__, "texts": TEXTS, "tokenizers": {}, "variants": {}}
    for name, fam in FAMILIES.items():
        j = train(name, fam)
        path = os.path.join(FIX, f"tokenizer_pretok_{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False)
        tok = Tokenizer.from_file(path)
        for text in TEXTS:  # byte-level: everything but the normalizer's changes round-trips
            ids = tok.encode(text, add_special_tokens=False).ids
            normalized = tok.normalizer.normalize_str(text) if tok.normalizer else text
            assert tok.decode(ids, skip_special_tokens=False) == normalized, (name, text)
        cases["tokenizers"][name] = {"file": os.path.basename(path), "vocab_size": tok.get_vocab_size(),
                                     "cases": encode_cases(tok, True), "corpus": corpus_check(tok)}
        if name == "qwen2":
            base = j
    for name, (normalizer, pre, ignore_merges) in VARIANTS.items():
        j = json.loads(json.dumps(base))
        j["normalizer"], j["pre_tokenizer"] = normalizer, pre
        j["model"]["ignore_merges"] = ignore_merges
        tok = Tokenizer.from_str(json.dumps(j))
        cases["variants"][name] = {"base": "qwen2", "normalizer": normalizer, "pre_tokenizer": pre,
                                   "ignore_merges": ignore_merges, "cases": encode_cases(tok, False),
                                   "corpus": corpus_check(tok)}
    cases["splits"] = []
    for pre, text in SPLIT_CASES:
        entry = {"pre_tokenizer": pre}
        if text is not None:
            pt = Tokenizer.from_str(json.dumps(base_json(None, pre))).pre_tokenizer
            entry["text"] = text
            entry["pieces"] = [p for p, _ in pt.pre_tokenize_str(text)]
        cases["splits"].append(entry)
    with open(os.path.join(FIX, "tokenizer_pretok_cases.json"), "w", encoding="utf-8") as f:
        dump(cases, f)
        f.write("\n")
    classes = {"tokenizers_version": tokenizers.__version__, "classes": {p: class_ranges(p) for p in CLASSES}}
    with open(os.path.join(FIX, "tokenizer_pretok_classes.json"), "w", encoding="utf-8") as f:
        json.dump(classes, f, separators=(",", ":"))
    for name in [f"tokenizer_pretok_{n}.json" for n in FAMILIES] + ["tokenizer_pretok_cases.json",
                                                                    "tokenizer_pretok_classes.json"]:
        print(name, os.path.getsize(os.path.join(FIX, name)), "bytes")


if __name__ == "__main__":
    main()
