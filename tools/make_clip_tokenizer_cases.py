#!/usr/bin/env python3
"""Writes tests/data/tokenizers/clip_cases.json: CLIP tokenizer cases from transformers' slow tokenizer.

For every text, each tokenizer folder of a suite gives
  tokens     tokenizer.encode(text, add_special_tokens=False)   (no truncation)
  input_ids  tokenizer(text, padding="max_length", max_length=model_max_length, truncation=True)
             .input_ids                                          (what diffusers feeds the encoders)
Suites: the real CLIP vocabulary (tests/data/clip-vocab/tokenizer: pad "<|endoftext|>";
tokenizer_2: pad "!", as SDXL's two tokenizers) on all texts, and the truncated 1500-merge
vocabulary of tests/data/reference/sdxl/case-1/model on a handful.

Run with transformers 4.39 and WITHOUT ftfy installed (the slow tokenizer then uses BERT's
BasicTokenizer, which is what the C++ tokenizer reproduces):
    /work/venv/bin/python tools/make_clip_tokenizer_cases.py
"""

import json
import os
import random
import sys
import unicodedata

import transformers
from transformers import CLIPTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")

PROMPTS = [
    "a photo of an astronaut riding a horse on mars",
    "A cinematic shot of a baby racoon wearing an intricate italian priest robe.",
    "portrait of a young woman, highly detailed, digital painting, artstation, concept art, sharp focus",
    "an oil painting of a lighthouse at dusk, waves crashing, dramatic lighting",
    "cute corgi puppy sitting in a field of sunflowers, golden hour, bokeh",
    "isometric view of a tiny cozy cabin in the woods, low poly, 3d render",
    "a bowl of ramen with a soft boiled egg, steam rising, food photography",
    "cyberpunk city street at night, neon signs, rain, reflections, blade runner style",
    "watercolor illustration of a fox in the snow",
    "the Eiffel Tower made of cheese, surreal, 8k",
    "studio ghibli style landscape with rolling hills and a windmill",
    "macro photograph of a dew drop on a spider web",
    "ultra realistic close-up of a tiger's eye",
    "a robot painting a self-portrait in the style of Van Gogh",
    "vintage poster: 'Visit Mars!' retro-futurism, 1950s",
    "astronaut cat floating in space, earth in background, 4k wallpaper",
    "minimalist logo of a mountain and a sun, flat vector, white background",
    "a medieval knight in shining armor, fantasy art by greg rutkowski",
    "Pixel art of a dragon breathing fire, 16-bit, SNES",
    "an ancient library with endless bookshelves, volumetric light, dust particles",
    "photo of a red sports car drifting on a mountain road, motion blur",
    "children's book illustration: a bear and a rabbit having a picnic",
    "a steampunk airship above Victorian London, brass and copper, clouds",
    "underwater coral reef with colorful fish and a sea turtle",
    "black and white street photography, Tokyo, 1970s",
    "a futuristic kitchen designed by Zaha Hadid, architectural digest",
    "a single red rose on a piano, shallow depth of field",
    "hyperrealistic portrait of an old fisherman, wrinkles, weathered skin",
    "a cozy coffee shop interior, warm lighting, plants, people reading",
    "epic matte painting of a floating island with waterfalls",
    "1girl, solo, long hair, looking at viewer, smile, (masterpiece:1.2), [best quality]",
    "((extremely detailed)), (((intricate))), sharp:1.5, --ar 16:9 --v 5",
    "low quality, blurry, jpeg artifacts, watermark, text, signature",
    "Shot on Canon EOS R5, 85mm f/1.4, ISO 100, 1/200s",
    "A painting of Mona Lisa, but she's wearing sunglasses and holding a smartphone",
    "TLCM: few-step text-to-image (2-8 steps) with SDXL & FLUX.1-dev",
    "a sign that says \"Hello, World!\"",
    "a diagram of E = mc^2 on a chalkboard",
    "the word 'CLIP' written in neon letters",
    "Nike Air Jordan 1 sneakers, product shot, #hypebeast @nike",
]

PUNCTUATION = [
    "3.14159 is pi", "2024-01-01T12:00:00Z", "$100 and 50% off!", "#hashtag @user", "C++ & C# & F#",
    "a/b\\c|d", "~!@#$%^&*()_+{}:\"<>?`-=[];',./", ":) :-( ;P :D <3", "...", "!!!", "?!?!", "!",
    "!!", "hello!world", "wow!!! great!", "¡hola! ¿qué tal?", "«quotes» „low“ “curly” ‘single’",
    "em—dash en–dash ‒ figure", "bullet • point · middle", "1,000,000.00", "007 James Bond",
    "2x2=4, 3*3=9, 10/2=5", "A+ B- C*", "x^2 + y^2 = z^2", "100°C = 212°F", "☆★☆ stars ✦✧",
    "→ ← ↑ ↓ ⇒ arrows", "©®™ symbols", "§1.2 ¶3", "1st 2nd 3rd 4th", "0x1F600 0b1010",
    "(((nested))) [[brackets]] {{braces}}", "under_score_names and-hyphen-names",
    "trailing punctuation.", ".leading punctuation", "..", "a...b", "...!!!???",
    "“smart quotes” and ‘apostrophes’", "it’s with a curly apostrophe", "''", "'", "'''s",
]

ACCENTS = [
    "café", "cafe\u0301", "naïve", "nai\u0308ve", "Ångström", "\u212bngstr\u00f6m", "A\u030angstro\u0308m",
    "ñ vs n\u0303", "q\u0303 has no precomposed form", "a\u0328\u0301", "a\u0301\u0328",
    "e\u0301\u0327", "e\u0327\u0301", "\u1e0b\u0323", "d\u0307\u0323", "d\u0323\u0307",
    "Tiếng Việt có dấu", "Tie\u0302\u0301ng Vie\u0323\u0302t", "\u01c4 \u01c5 \u01c6 \u01c7 \u01c8",
    "Œuvre, Æsir, Ø", "straße STRASSE", "İstanbul", "ISTANBUL ıi", "ΣΊΣΥΦΟΣ", "ΌΣΟΣ", "Σ", "aΣ",
    "ΑΣ.Β", "ΑΣ'", "ΑΣ'Α", "ΑΣ\u0301", "ΑΣ\u0301Α", "ΑΣ ΣΑ", "ΑΣΣ", "1Σ", "Σ1", "ΑΣ\u00ad",
    "crème brûlée", "Zürich, München, Köln", "São Paulo", "Dvořák", "Łódź", "Ærøskøbing",
    "ﬁ ligature ﬂ", "Ǆemal", "\u0041\u030a\u0301", "\u00c5\u0301", "\u0292\u030c", "e\u0308\u0304",
    "\u0915\u093c", "\u0958", "\u2126 ohm", "\u212a kelvin", "\u00b5 micro", "\u1e9e capital sharp s",
    "\u0130\u0307", "\u03a3\u0345", "x\u0345y", "\u1f80\u0345", "\u0345",
]

HANGUL_CJK = [
    "한국어 텍스트", "\u1100\u1161\u11a8", "\u1100\u1161", "\uac00\u11a8", "\u1100\u1161\u11a8\u11a8",
    "\u1112\u1161\u11ab\u1100\u1173\u11af", "\u110b\u1175", "日本語のテキスト", "中文提示词：一只猫",
    "漢字かな交じり文", "𠀀𠀁 extension B", "\uf900\uf901 compatibility", "\u2f00 \U0002f800",
    "猫cat猫", "東京タワー at night", "ひらがな カタカナ ｶﾀｶﾅ", "一二三四五六七八九十",
    "中" * 40, "「引用」『二重』", "の写真", "ㄱㄴㄷ compatibility jamo", "\u3400\u4dbf\u9fff",
    "\U0002a700\U0002b740\U0002b820", "\U00030000 ext G",
]

EMOJI = [
    "🐱‍👤 ninja cat", "👩‍👩‍👧‍👦 family", "❤️ love", "❤\ufe0f", "👍🏽 thumbs", "🇯🇵 🇺🇸 flags",
    "🎉🎉🎉 party", "1️⃣ keycap", "a cat 🐈 and a dog 🐕", "🔥" * 30, "☕ coffee", "⚡️ zap",
    "🏳️‍🌈", "🧑‍🚀 astronaut", "😀😃😄😁", "🫠 melting", "\U0001fae8 newer emoji",
]

SCRIPTS = [
    "Привет мир", "ПРИВЕТ МИР", "Ёлка и ёж", "Καλημέρα κόσμε", "ΚΑΛΗΜΈΡΑ ΚΌΣΜΕ", "مرحبا بالعالم",
    "اَلْعَرَبِيَّةُ", "שלום עולם", "שָׁלוֹם", "नमस्ते दुनिया", "हिन्दी", "สวัสดีครับ", "Բարեւ",
    "გამარჯობა", "ሰላም", "ᏣᎳᎩ", "𝐀𝐁𝐂 𝟏𝟐𝟑", "𝔄𝔅ℭ", "ＡＢＣ１２３ fullwidth", "Ⅻ ⅻ Ⅳ", "x² + y³",
    "½ ¼ ¾", "ⓐⒶ①⑳", "१२३ devanagari digits", "١٢٣ arabic digits", "۱۲۳ persian", "๑๒๓ thai",
    "Ⅰ love ⅰ", "ꙮ", "ᚠᚢᚦ runes", "𓀀 hieroglyph", "Ⓜ️etro", "Ωmega ω", "ǅungla", "ꞵ ꞷ",
]

WHITESPACE = [
    "  leading and trailing  ", "a\t\tb", "line1\nline2\r\nline3", "a\u00a0b", "a\u3000b", "a\u2028b",
    "a\u2029b", "a\u200bb", "a\u000bb", "a\u000cb", "a\u0085b", "a\u001fb", "a\u001cb", "a\u180eb",
    "\u2003em space\u2002en", "a \u200d b", "a\u200db", "many     spaces    between", "\t\ttabs",
    "\n\nnewlines\n\n", " ", "\n\t", "\r", "a\r\nb", "\u2009thin\u200aspaces\u202f", "\u205f\u3000",
    "word\u00a0\u00a0word", "x \u2028 y \u2029 z",
]

CONTROL = [
    "", "\x00", "a\x00b", "\x07bell", "\x1b[31mred\x1b[0m", "\x7f", "a\ufffdb", "\ufeffbom", "soft\u00adhyphen",
    "\ue000private use", "\U000e0001\U000e0041 tags", "\U0010ffff", "\ufffe", "\u0378 unassigned",
    "\u200e\u200f marks", "\u2060word\u2061joiner", "\u202eRTL override", "\x01\x02\x03",
    "\U000f0000 plane 15", "a\u0600b arabic number sign", "\u00ad", "\u0000\u0000x",
]

CONTRACTIONS = [
    "it's", "IT'S", "It'S", "we're", "WE'RE", "I've", "I'm", "you'll", "he'd", "don't", "can't",
    "rock'n'roll", "'s'", "'re're", "'S", "it'ſ", "'ſtart", "<|ſtartoftext|>", "O'Neil",
    "'ll've'd'm", "'t'", "Ma'am", "'90s", "y'all'd've", "'", "' s", "'d", "L'Oréal", "'ss",
]

SPECIAL_TEXT = [
    "<|startoftext|>", "<|endoftext|>", "a photo<|endoftext|>of a cat", "<|ENDOFTEXT|>", "<|EndOfText|>",
    "!<|endoftext|>!", "<|endoftext|><|endoftext|>", "<|endoftext", "<|startoftext|>hello<|endoftext|>",
    "<|endof\x00text|>", "<| endoftext |>", "<|endoftext|>\u0338", ">\u0338", "x<|endoftext|>y",
    "<|startoftext|><|startoftext|>", "<|endoftext|>!", "!<|ENDOFTEXT|>x", "<<|endoftext|>>",
    "<|endoftext|>'s", "text <|endoftext|> more text", "<|endoftext|>" * 5, "<|startoftext|> ! <|endoftext|>",
    "<|unknown|>", "<|", "|>", "<|endoftext|>\u0301",
]

URLS = [
    "https://example.com/path?query=1&b=2#frag", "www.google.com", "user@example.com", "C:\\Users\\name",
    "file:///tmp/x.png", "http://localhost:8080/api/v1/generate", "ftp://ftp.example.org/pub/",
    "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0",
    "mailto:a.b+c@d-e.f", "<a href=\"x\">link</a>", "{\"key\": [1, 2, 3]}", "SELECT * FROM t;",
]

UPPER = [
    "A PHOTO OF A CAT", "McDonald's", "iPhone 15 Pro Max", "ΑΒΓΔΕ", "ÀÉÎÕÜ", "NASA JPL", "HeLLo WoRLD",
    "CamelCaseWords", "ALLCAPSWORDWITHOUTSPACES", "ǲ ǳ Ǳ", "ᾼ ᾳ", "ꟶ", "Ⴀ ⴀ",
]

LONG = [
    "masterpiece, best quality, " * 20,
    "a" * 500,
    "supercalifragilisticexpialidocious" * 10,
    "1234567890" * 30,
    " ".join(["word"] * 100),
    "a photo of " + "a very " * 60 + "big cat",
    "!" * 200,
    "日本" * 60,
    "🔥🐱" * 50,
    ("The quick brown fox jumps over the lazy dog. " * 8).strip(),
    "hyper-detailed, " * 40 + "final",
    "é" * 200,
    "<|endoftext|>" * 80,
    "ab" * 300,
    "'s" * 100,
]


def fuzz_cases(rng, count):
    """Random strings over characters that stress normalization, casing and the regex classes."""
    pools = {
        "combining": [chr(c) for c in list(range(0x300, 0x370)) + [0x1dc0, 0x20d0, 0x302a, 0x0591, 0x05b0, 0x093c, 0x0e31, 0x1ab0]],
        "latin": [chr(c) for c in range(0x41, 0x7b) if chr(c).isalpha()] + [chr(c) for c in range(0xc0, 0x250)],
        "greek": [chr(c) for c in range(0x386, 0x3d0) if unicodedata.category(chr(c)) != "Cn"] + ["\u03a3"] * 8 + ["\u1f00", "\u1f88", "\u1fbc"],
        "hangul": [chr(c) for c in list(range(0x1100, 0x1113)) + list(range(0x1161, 0x1176)) + list(range(0x11a8, 0x11c3))] + ["\uac00", "\ud7a3", "\uac1c"],
        "space": [" ", "\t", "\n", "\u00a0", "\u2028", "\u3000", "\u200b", "\x0b", "\x85"],
        "punct": list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + ["\u00a1", "\u00bf", "\u2019", "\u3001", "\uff01"],
        "digits": list("0123456789") + ["\u0661", "\u0967", "\u00b2", "\u2167", "\u2460", "\uff11"],
        "special": ["<|endoftext|>", "<|startoftext|>", "'s", "'re", "'ll", "\u017f"],
    }
    assigned = [c for c in range(0x20, 0x30000) if unicodedata.category(chr(c)) not in ("Cs", "Cn", "Co")]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(4, 20)):
            r = rng.random()
            if r < 0.25:
                parts.append(chr(rng.choice(assigned)))
            elif r < 0.35:
                cp = rng.randrange(0x80, 0x110000)  # anything but surrogates, unassigned included
                parts.append(chr(cp if not 0xD800 <= cp <= 0xDFFF else cp + 0x800))
            else:
                parts.append(rng.choice(pools[rng.choice(list(pools))]))
        out.append("".join(parts))
    return out


def run(tokenizer, text):
    tokens = tokenizer.encode(text, add_special_tokens=False)
    ids = tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids
    return {"tokens": tokens, "input_ids": ids}


def suite(name, folders, texts):
    toks = {key: CLIPTokenizer.from_pretrained(os.path.join(DATA, path)) for key, path in folders.items()}
    if any(t.fix_text is not None for t in toks.values()):
        sys.exit("ftfy is installed: the slow CLIPTokenizer would use it; uninstall it first")
    cases = []
    for text in texts:
        case = {"text": text}
        for key, tok in toks.items():
            case[key] = run(tok, text)
        cases.append(case)
    return {"name": name, "tokenizers": folders, "cases": cases}


def main():
    rng = random.Random(20240607)
    texts = (PROMPTS + PUNCTUATION + ACCENTS + HANGUL_CJK + EMOJI + SCRIPTS + WHITESPACE + CONTROL
             + CONTRACTIONS + SPECIAL_TEXT + URLS + UPPER + LONG + fuzz_cases(rng, 60))
    seen = set()
    texts = [t for t in texts if not (t in seen or seen.add(t))]
    reference_texts = [PROMPTS[0], PROMPTS[30], "wow!!! great!", "Café <|endoftext|> 日本", "it's", "",
                       "ΌΣΟΣ x\u0345y İstanbul", LONG[0], "a" * 100, "zebra quixotic jukebox"]
    data = {
        "generator": "tools/make_clip_tokenizer_cases.py",
        "transformers": transformers.__version__,
        "python_unicode": unicodedata.unidata_version,
        "suites": [
            suite("clip-vocab", {"tokenizer": "clip-vocab/tokenizer", "tokenizer_2": "clip-vocab/tokenizer_2"},
                  texts),
            suite("reference-sdxl", {"tokenizer": "reference/sdxl/case-1/model/tokenizer",
                                     "tokenizer_2": "reference/sdxl/case-1/model/tokenizer_2"},
                  reference_texts),
        ],
    }
    out = os.path.join(DATA, "tokenizers", "clip_cases.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    # One case per line keeps the file reviewable and diffs small.
    with open(out, "w", encoding="utf-8") as f:
        f.write("{\n")
        for key in ("generator", "transformers", "python_unicode"):
            f.write(f"  {json.dumps(key)}: {json.dumps(data[key])},\n")
        f.write('  "suites": [\n')
        for si, s in enumerate(data["suites"]):
            f.write(f'    {{"name": {json.dumps(s["name"])}, "tokenizers": {json.dumps(s["tokenizers"])}, "cases": [\n')
            for ci, case in enumerate(s["cases"]):
                sep = "," if ci + 1 < len(s["cases"]) else ""
                f.write("      " + json.dumps(case, ensure_ascii=False, separators=(",", ":")) + sep + "\n")
            f.write("    ]}" + ("," if si + 1 < len(data["suites"]) else "") + "\n")
        f.write("  ]\n}\n")
    json.load(open(out, encoding="utf-8"))  # well-formed
    print(f"wrote {out}: " + ", ".join(f"{s['name']} {len(s['cases'])} cases" for s in data["suites"]))


if __name__ == "__main__":
    main()
