#!/usr/bin/env python3
"""Writes tests/data/tokenizers/t5_cases.json: what transformers' slow T5Tokenizer and
sentencepiece produce for a few hundred strings (developer tooling, not run by CI).

For each tokenizer folder (the models of tools/train_t5_test_spm.py and the FLUX reference case's
tokenizer_2) and each string:
  "tokenize": T5Tokenizer.from_pretrained(folder).encode(text, add_special_tokens=False)
  "encode":   {L: tokenizer(text, padding="max_length", truncation=True, max_length=L).input_ids
               without the trailing pad ids (the test pads back to L)}
and, for the SentencePiece models alone (no added-token handling), sentencepiece's own
normalize(text), encode(text, out_type=str) and encode(text).

Usage: /work/venv/bin/python tools/make_t5_tokenizer_cases.py
"""
import json
import os
import random

import sentencepiece as spm
import transformers
from transformers import T5Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(DATA, "tokenizers", "t5_cases.json")

BASE = [
    "", " ", "   ", "\t", "\n", "\r\n", " \t\n ", "a", "A", "1", ".", "▁", "▁▁", " ▁ ", "a▁", "▁a",
    "hello", "Hello World", "hello world", "  hello   world  ", "hello\tworld\n", "hello\n\nworld",
    "a paper lantern floating on a dark lake",
    "a photograph of an astronaut riding a horse on the moon, highly detailed, 8k",
    "A cat holding a sign that says hello world",
    "portrait of an old fisherman with a white beard, dramatic lighting, 85mm lens",
    "an isometric illustration of a tiny island with a lighthouse and palm trees",
    "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "tHe QuIcK bRoWn FoX",
    "Don't stop believing!", "it's a dog's life, isn't it?", "\"quoted\" and 'single' and `tick`",
    "(parentheses) [brackets] {braces} <angles>", "a/b\\c|d", "semi;colon:colon", "...", "?!?!",
    "e-mail: someone@example.com", "https://example.com/path?query=1&x=2#frag", "#hashtag @mention",
    "$100.00 + 20% = ???", "1234567890", "3.14159", "1,000,000", "-42", "1e-10", "0x1F", "2024-01-31",
    "12:30pm", "10/10", "v1.2.3", "C++ and C#", "snake_case and camelCase and kebab-case",
    "UPPER_CASE_CONSTANT", "x^2 + y^2 = z^2", "a*b", "~tilde~", "under_score", "=====", "-----",
    "café", "naïve façade", "résumé", "Ünïcödé", "São Paulo", "Zürich", "Kraków", "Ærøskøbing",
    "Straße", "ﬁnancial ﬂower", "Ⅻ", "Ⅳ", "½ ¼ ¾", "x²", "H₂O", "™ © ®", "℃ ℉", "№ 5", "…", "—",
    "–", "‘curly’ “quotes”", "«guillemets»", "„German“", "¿Qué?", "¡Hola!",
    "ｈｅｌｌｏ", "ＡＢＣ", "１２３", "ｆｕｌｌ　ｗｉｄｔｈ", "（括弧）", "！？", "ｶﾀｶﾅ", "ﾊﾟﾋﾟﾌﾟ",
    "Ａ　Ｂ", "＜/s＞", "\u3000leading ideographic space", "trailing ideographic space\u3000",
    "no\u00a0break\u00a0space", "zero\u200bwidth", "soft\u00adhyphen", "\ufeffBOM", "a\u2028b",
    "a\u2029b", "a\x85b", "thin\u2009space", "a\u0301", "e\u0301", "n\u0303", "\u00c5", "A\u030a",
    "control\x01chars\x7f", "nul\x00byte", "tab\tand\vvtab\fform", "bell\x07",
    "東京", "東京の夜景、ネオンが輝く雨の街角。", "富士山", "猫が窓辺で眠っている", "ひらがな", "カタカナ",
    "一只可爱的熊猫在竹林里吃竹子", "北京", "我能吞下玻璃而不傷身體", "臺灣", "中文 English 混合",
    "서울의 밤거리", "다람쥐 헌 쳇바퀴에 타고파", "한국어",
    "Съешь же ещё этих мягких французских булок", "Москва", "Київ", "Ξεσκεπάζω την ψυχοφθόρα",
    "Αθήνα", "نص حكيم له سر قاطع", "שלום עולם", "ऋषियों को सताने वाले", "नमस्ते", "กรุงเทพมหานคร",
    "Tiếng Việt có dấu", "Pijamalı hasta yağız şoföre", "Zażółć gęślą jaźń", "Příliš žluťoučký kůň",
    "ქართული", "Հայերեն", "አማርኛ", "ᚠᚢᚦᚨᚱᚲ", "𓀀𓀁", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝐁𝐨𝐥𝐝", "ℌ𝔢𝔩𝔩𝔬",
    "😀", "😀😀😀", "a 😀 b", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "☕ coffee", "★★★", "★ star ★",
    "♠♥♦♣", "→ ← ↑ ↓", "∑∫∂√∞", "≤ ≥ ≠ ≈", "°C", "µm", "\u2126", "\u212b", "ß", "ẞ", "ŉ", "ǅ",
    "</s>", "<pad>", "<unk>", "<s>", "</s></s>", "x</s>", "x </s>", "x </s> ", "</s> x", "a</s>b",
    "<pad><pad>", "a <pad> b", "<unk>x", "x<unk>", "<extra_id_0>", "<extra_id_99>", "<extra_id_100>",
    "<extra_id_4>", "<extra_id_5>", "a <extra_id_0> b", "a<extra_id_0>b", "a  <extra_id_1>  b",
    "a\t<extra_id_2>\nb", "a\u3000<extra_id_3>\u00a0b", "<extra_id_0><extra_id_1>",
    " <extra_id_0> ", "<extra_id_0> </s>", "<extra_id_0></s> x", "x <extra_id_1>", "<extra_id_1> x",
    "<extra_id_", "<extra_id_1", "extra_id_1>", "< extra_id_1>", "<EXTRA_ID_1>", "<extra_id_01>",
    "<<extra_id_0>>", "<</s>>", "<sep>", "a<sep>b", "[IMG] token", "hello world<sep>", "★★",
    "hello world hello world", "<sep><sep>", "[IMG][IMG]", "★★★★★",
]

PROMPT_WORDS = (
    "a an the of on in with under over beautiful detailed cinematic lighting portrait landscape "
    "photograph painting illustration city forest mountain river ocean sunset sunrise night "
    "neon rain snow fog glowing ancient futuristic tiny giant red blue green golden silver cat "
    "dog fox owl dragon robot astronaut castle lighthouse bridge garden market street window "
    "highly intricate sharp focus soft warm cold vibrant muted 8k 4k 35mm 85mm bokeh volumetric"
).split()


def long_prompts():
    rng = random.Random(7)
    out = []
    for n in (60, 76, 100, 520):
        out.append(" ".join(rng.choice(PROMPT_WORDS) for _ in range(n)) + ".")
    out.append(", ".join(["a very long prompt"] * 150))
    out.append("東京の夜景 " * 120)
    out.append("😀" * 600)
    return out


def random_strings(count):
    """Random mixes of letters, digits, punctuation, whitespace, accents, CJK, emoji, tokens."""
    rng = random.Random(1234)
    alphabets = [
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", ".,;:!?'\"()-_/",
        " ", "  \t\n\u3000\u00a0", "éèêëàâäôöûüçñåøæœß", "ｈｅｌｏ１２３！", "東京猫犬山川日本語中文",
        "한국어서울", "ДоброутрмиЖЪ", "😀👍★♥→∑", "ﬁﬂ½²™Ⅻ", "▁",
    ]
    tokens = ["</s>", "<pad>", "<unk>", "<extra_id_0>", "<extra_id_3>", "<sep>", "[IMG]"]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.08:
                parts.append(rng.choice(tokens))
            else:
                alphabet = rng.choice(alphabets)
                parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))))
        out.append("".join(parts))
    return out


def words_with_spacing():
    rng = random.Random(99)
    out = []
    spaces = [" ", "  ", "\t", "\n", " \n ", "\u3000", "\u00a0", "\u2009", "\r\n"]
    for _ in range(40):
        words = [rng.choice(PROMPT_WORDS) for _ in range(rng.randint(1, 8))]
        text = ""
        for w in words:
            text += rng.choice(spaces) + w
        if rng.random() < 0.5:
            text += rng.choice(spaces)
        out.append(text)
    return out


def strings():
    all_strings = BASE + long_prompts() + words_with_spacing() + random_strings(120)
    seen, unique = set(), []
    for s in all_strings:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


def tokenizer_cases(folder, texts, lengths):
    tok = T5Tokenizer.from_pretrained(folder)
    cases = []
    for text in texts:
        case = {"text": text, "tokenize": tok.encode(text, add_special_tokens=False), "encode": {}}
        for length in lengths:
            ids = tok(text, padding="max_length", truncation=True, max_length=length).input_ids
            assert len(ids) == length, (text, length)
            end = len(ids)
            while end > 0 and ids[end - 1] == tok.pad_token_id:
                end -= 1
            assert ids[end - 1] == tok.eos_token_id, (text, ids)
            case["encode"][str(length)] = ids[:end]
        cases.append(case)
    return {"dir": os.path.relpath(folder, DATA), "eos_id": tok.eos_token_id,
            "pad_id": tok.pad_token_id, "max_lengths": lengths, "cases": cases}


def sentencepiece_cases(folder, texts):
    sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "spiece.model"))
    cases = [{"text": t, "normalized": sp.normalize(t), "pieces": sp.encode(t, out_type=str),
              "ids": sp.encode(t)} for t in texts]
    return {"dir": os.path.relpath(folder, DATA), "cases": cases}


def dump(obj):
    """JSON with one case per line (short diffs, readable)."""
    lines = ["{", f'  "about": {json.dumps(obj["about"])},']
    for key in ("tokenizers", "sentencepiece"):
        lines.append(f'  "{key}": [')
        for i, group in enumerate(obj[key]):
            head = {k: v for k, v in group.items() if k != "cases"}
            lines.append("    " + json.dumps(head, ensure_ascii=False)[:-1] + ', "cases": [')
            cases = [json.dumps(c, ensure_ascii=False) for c in group["cases"]]
            lines.append(",\n".join("      " + c for c in cases))
            lines.append("    ]}" + ("," if i + 1 < len(obj[key]) else ""))
        lines.append("  ]" + ("," if key == "tokenizers" else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    texts = strings()
    short = [t for t in texts if len(t) < 200]
    # Strings where the added tokens' flags matter, for the variants that differ only in those.
    around_tokens = [t for t in short if "<" in t or ">" in t or t.strip() != t]
    main_dir = os.path.join(DATA, "t5-spm")
    variants = [os.path.join(DATA, d) for d in ("t5-spm-variant", "t5-spm-variant-added",
                                                "t5-spm-variant-fast")]
    reference = os.path.join(DATA, "reference", "flux", "case-1", "model", "tokenizer_2")
    obj = {
        "about": (f"transformers {transformers.__version__} slow T5Tokenizer and sentencepiece "
                  f"{spm.__version__} outputs, written by tools/make_t5_tokenizer_cases.py"),
        "tokenizers": [tokenizer_cases(main_dir, texts, [77, 512])]
                      + [tokenizer_cases(variants[0], short, [77])]
                      + [tokenizer_cases(v, around_tokens, [77]) for v in variants[1:]]
                      + [tokenizer_cases(reference, texts, [24])],
        "sentencepiece": [sentencepiece_cases(main_dir, short),
                          sentencepiece_cases(variants[0], short)],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(dump(obj))
    json.loads(open(OUT, encoding="utf-8").read())
    print(f"{OUT}: {len(texts)} strings, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
