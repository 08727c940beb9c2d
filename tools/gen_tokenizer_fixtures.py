#!/usr/bin/env python3
"""Reference fixtures for the C++ byte-level BPE tokenizer (tooling only: CI never runs this).

Hugging Face's `tokenizers` is the independent reference: a plain GPT-2 style byte-level BPE
(ByteLevelBPETokenizer: no normalizer, ByteLevel pre-tokenizer with add_prefix_space=False and
the GPT-2 regex, ByteLevel decoder, no special tokens) is trained on the small King James style
corpus below (vocab_size=400, min_frequency=2) and saved in the standard tokenizer.json format.
Then ~25 test strings are encoded with it and written with their ids; every case is checked to
round-trip (decode(ids) == text) before anything is written. Writes

    tests/fixtures/tokenizer_bpe.json     the trained tokenizer (tokenizer.save)
    tests/fixtures/tokenizer_cases.json   [{"text": ..., "ids": [...]}, ...]

    python3 -m pip install tokenizers && python3 tools/gen_tokenizer_fixtures.py
"""
import json
import os

import tokenizers
from tokenizers import ByteLevelBPETokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures")

VOCAB_SIZE = 400
MIN_FREQUENCY = 2

# King James style text (written / paraphrased for this fixture), with verse references, numbers,
# apostrophes, double spaces and a few non-ASCII letters.
CORPUS = """\
Ge1:1 In the beginning God created the heaven and the earth.
Ge1:2 And the earth was without form, and void; and darkness was upon the face of the deep.
Ge1:3 And God said, Let there be light: and there was light.
Ge1:4 And God saw the light, that it was good: and God divided the light from the darkness.
Ge1:5 And God called the light Day, and the darkness he called Night.
Ge1:6 And the evening and the morning were the first day.
Ge1:7 And God made the firmament, and divided the waters which were under the firmament.
Ge1:8 And God called the firmament Heaven.  And the evening and the morning were the second day.
Ge1:9 And God said, Let the waters under the heaven be gathered together unto one place.
Ge1:10 And God called the dry land Earth; and the gathering together of the waters called he Seas.
Ge2:7 And the LORD God formed man of the dust of the ground.
Ge2:8 And the LORD God planted a garden eastward in Eden; and there he put the man.
Ge3:9 And the LORD God called unto Adam, and said unto him, Where art thou?
Ge3:10 And he said, I heard thy voice in the garden, and I was afraid, because I was naked.
Ex3:14 And God said unto Moses, I AM THAT I AM.
Ex20:3 Thou shalt have no other gods before me.
Ex20:13 Thou shalt not kill.
Ex20:15 Thou shalt not steal.
Ps23:1 The LORD is my shepherd; I shall not want.
Ps23:2 He maketh me to lie down in green pastures: he leadeth me beside the still waters.
Ps23:4 Yea, though I walk through the valley of the shadow of death, I will fear no evil.
Ps23:6 Surely goodness and mercy shall follow me all the days of my life.
Ps24:1 The earth is the LORD's, and the fulness thereof; the world, and they that dwell therein.
Ps90:10 The days of our years are threescore years and ten.
Pr3:5 Trust in the LORD with all thine heart; and lean not unto thine own understanding.
Ec1:2 Vanity of vanities, saith the Preacher; all is vanity.
Ec3:1 To every thing there is a season, and a time to every purpose under the heaven.
Is40:31 But they that wait upon the LORD shall renew their strength.
Mt5:3 Blessed are the poor in spirit: for theirs is the kingdom of heaven.
Mt5:9 Blessed are the peacemakers: for they shall be called the children of God.
Mt6:9 Our Father which art in heaven, Hallowed be thy name.
Mt6:10 Thy kingdom come, Thy will be done in earth, as it is in heaven.
Mt6:11 Give us this day our daily bread.
Mt7:7 Ask, and it shall be given you; seek, and ye shall find.
Jn1:1 In the beginning was the Word, and the Word was with God, and the Word was God.
Jn3:16 For God so loved the world, that he gave his only begotten Son.
Jn11:35 Jesus wept.
Jn14:6 I am the way, the truth, and the life.
Ro8:28 And we know that all things work together for good to them that love God.
1Co13:4 Charity suffereth long, and is kind; charity envieth not.
1Co13:13 And now abideth faith, hope, charity, these three; but the greatest of these is charity.
Re21:4 And God shall wipe away all tears from their eyes; and there shall be no more death.
Re22:21 The grace of our Lord Jesus Christ be with you all. Amen.
Thou'rt the LORD's servant, and thou'rt blessed; it's the LORD's doing.
Who's there?  It's I; I'm the servant; we're here, we've come, we'll stay, he'd go.
They'll say, "Thou'rt weary..."  What?!  Nay, we're not weary!
In the year 1611 the King's translators set forth 66 books; in 2026 men read them still.
Chapter 3, verse 16; chapter 23, verse 1; chapter 119, verse 105.
The naïve servant sat in the café with Zoë; Zoë's café was naïve.
Zoë said unto the naïve man: Come to the café, and eat bread.
And the LORD said unto Noah, Come thou and all thy house into the ark.
And it came to pass, when men began to multiply on the face of the earth.
And the flood was forty days upon the earth; and the waters increased.
And Abraham said, My son, God will provide himself a lamb.
And Jacob said, Surely the LORD is in this place; and I knew it not.
And Moses stretched out his hand over the sea; and the LORD caused the sea to go back.
And David said to Saul, Let no man's heart fail because of him.
And Solomon's wisdom excelled the wisdom of all the children of the east country.
Hear, O Israel: The LORD our God is one LORD.
Praise ye the LORD.  Praise God in his sanctuary.
"""

CASES = [
    "",
    "In the beginning God created the heaven and the earth.",
    "Ge1:1 In the beginning God created the heaven and the earth.",
    "Jn3:16 For God so loved the world, that he gave his only begotten Son.",
    "The quick brown fox jumps over the lazy dog.",
    "Behold, a zebra named Quixote walked to Jerusalem by 5pm.",
    " leading space",
    "trailing space ",
    "   three leading, two  inner,   three trailing   ",
    "line one\nline two\n\nline four\n",
    "tab\tseparated\t\tcolumns\t",
    " \n \t\r\n  mixed whitespace\t \n",
    "3:16 and 2026 and 1234567890",
    "It's the LORD's; thou'rt here; it 't; we're; we've; I'm; we'll; he'd.",
    "IT'S THE LORD'S; I'M; WE'RE; YOU'LL; HE'D; 'S alone",
    "don't can't won't shouldn't y'all o'clock",
    "Wait... what?! Really?!? ... !!! ???",
    "\"Quoted\" (parenthesised) [bracketed] {braced} <angled> #hash @at $5 %d ^ & * _ - = +",
    "The naïve servant sat in the café with Zoë.",
    "NAÏVE ZOË CAFÉ naïveté Zoë's",
    "Peace be with you \U0001F54A\uFE0F and joy \U0001F600!",
    "\u4E2D God is love \u795E\u7231\u4E16\u4EBA",
    "Ps23:1 The LORD is my shepherd; I shall not want.",
    "Who's there?  It's I; I'm the servant; we're here, we've come, we'll stay, he'd go.",
    "a",
    "  ",
    "\n",
]


def build_tokenizer():
    tok = ByteLevelBPETokenizer(add_prefix_space=False, lowercase=False, trim_offsets=False)
    lines = CORPUS.splitlines(keepends=True)
    assert 55 <= len(lines) <= 70, len(lines)
    tok.train_from_iterator(lines, vocab_size=VOCAB_SIZE, min_frequency=MIN_FREQUENCY,
                            show_progress=False, special_tokens=[])
    return tok


def check_config(path):
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    assert cfg["normalizer"] is None, cfg["normalizer"]
    assert cfg["added_tokens"] == [], cfg["added_tokens"]
    pre = cfg["pre_tokenizer"]
    assert pre["type"] == "ByteLevel" and pre["add_prefix_space"] is False and pre["use_regex"] is True, pre
    assert cfg["decoder"]["type"] == "ByteLevel", cfg["decoder"]
    assert cfg["model"]["type"] == "BPE", cfg["model"]["type"]
    assert len(cfg["model"]["vocab"]) <= VOCAB_SIZE
    return cfg


def main():
    os.makedirs(OUT, exist_ok=True)
    tok = build_tokenizer()
    bpe_path = os.path.join(OUT, "tokenizer_bpe.json")
    tok.save(bpe_path)
    cfg = check_config(bpe_path)

    # Encode with the tokenizer as reloaded from the saved file (what the C++ side will read).
    ref = tokenizers.Tokenizer.from_file(bpe_path)
    cases = []
    for text in CASES:
        ids = ref.encode(text).ids
        assert ids == tok.encode(text).ids, text
        back = ref.decode(ids)
        assert back == text, (text, back)
        cases.append({"text": text, "ids": ids})

    cases_path = os.path.join(OUT, "tokenizer_cases.json")
    with open(cases_path, "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]\n")

    for p in (bpe_path, cases_path):
        size = os.path.getsize(p)
        assert size < 60 * 1024, (p, size)
        print(f"{os.path.relpath(p, ROOT)}: {size} bytes")
    print(f"tokenizers {tokenizers.__version__}: vocab {len(cfg['model']['vocab'])}, "
          f"merges {len(cfg['model']['merges'])}, {len(cases)} cases")


if __name__ == "__main__":
    main()
