#!/usr/bin/env python3
"""Trains the SentencePiece models that the T5 tokenizer tests use (developer tooling, not run by CI).

Writes two tokenizer folders under tests/data/:

* t5-spm/: a T5-like unigram model (16000 pieces, nmt_nfkc normalization with its precompiled
  charsmap, <pad>=0 </s>=1 <unk>=2, no BOS, byte_fallback off, character_coverage 0.9995 so that
  rare characters stay unknown) with the tokenizer_config.json / special_tokens_map.json /
  added_tokens.json that transformers 4.39 writes for FLUX.1-dev's tokenizer_2 (legacy=True,
  add_prefix_space=True, extra_ids=100 with lstrip/rstrip sentinels).
* t5-spm-variant/: a small unigram model that exercises the other SentencePiece options: identity
  normalization (no charsmap), user-defined symbols, remove_extra_whitespaces=False; its
  tokenizer_config.json is the old (pre-4.34) kind without added_tokens_decoder, with 5 extra ids.
  Two more variants reuse its spiece.model: t5-spm-variant-added (+ added_tokens.json) and
  t5-spm-variant-fast (+ a tokenizer.json holding only `added_tokens`), which take transformers'
  legacy loading branches.

Corpus (all offline): docstrings of Python's standard library, the README / NEWS / FAQ / markdown
files under /usr/share/doc, image-prompt style sentences and multilingual samples written for this
purpose.

Usage: /work/venv/bin/python tools/train_t5_test_spm.py
"""
import ast
import gzip
import io
import json
import os
import random
import re
import shutil
import sys

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")

MULTILINGUAL = """\
Le chat dort sur le canapé pendant que la pluie tombe doucement sur les toits de Paris.
Une photographie d'un phare au coucher du soleil, éclairage cinématographique, très détaillée.
Où est la bibliothèque ? Elle se trouve à côté de l'église, près du marché aux fleurs.
Der schnelle braune Fuchs springt über den faulen Hund. Größe, Straße, Übermäßig, Äpfel.
Ein Ölgemälde einer Berglandschaft im Winter, mit schneebedeckten Gipfeln und einem zugefrorenen See.
El niño pequeño come una manzana roja en el jardín. ¿Dónde está la estación de tren? ¡Qué día!
Una pintura al óleo de un barco navegando en un mar tormentoso, con olas enormes y relámpagos.
O gato preto está dormindo na janela. Ação, coração, informação, não, são, irmã.
Il gatto nero dorme sulla finestra mentre fuori nevica. Perché, città, più, così.
De kat slaapt op de bank terwijl het buiten regent. Één, twee, drie, ijsbeer.
Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig. Łódź, Kraków, Gdańsk.
Příliš žluťoučký kůň úpěl ďábelské ódy. Čeština, řeka, šťastný, ůl.
Pijamalı hasta yağız şoföre çabucak güvendi. İstanbul, ışık, çiçek, öğretmen.
Tiếng Việt có dấu: Hà Nội, Thành phố Hồ Chí Minh, phở bò, cà phê sữa đá.
Съешь же ещё этих мягких французских булок, да выпей чаю. Москва, Санкт-Петербург.
Картина маслом: зимний лес на закате, снег искрится, тени длинные и синие.
Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів! Київ, Львів, Одеса.
Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.
نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق.
דג סקרן שט בים מאוכזב ולפתע מצא חברה. ירושלים, תל אביב, חיפה.
ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम।
いろはにほへと ちりぬるを わかよたれそ つねならむ。東京の夜景、ネオンが輝く雨の街角。
富士山の上に浮かぶ満月、浮世絵風のイラスト、柔らかな色彩。猫が窓辺で眠っている。
我能吞下玻璃而不伤身体。一只可爱的熊猫在竹林里吃竹子，水墨画风格，高清细节。
北京、上海、广州和深圳是中国的大城市。春天来了，花开了，鸟儿在唱歌。
我能吞下玻璃而不傷身體。臺灣的夜市非常熱鬧，有很多好吃的小吃。
다람쥐 헌 쳇바퀴에 타고파. 서울의 밤거리, 네온사인, 비 오는 골목길, 영화 같은 분위기.
เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กรุงเทพมหานคร ตลาดน้ำ วัดพระแก้ว
"""

PROMPTS = """\
a photograph of an astronaut riding a horse on the moon, highly detailed, 8k
a paper lantern floating on a dark lake, soft light, long exposure
a cozy cabin in a snowy forest at night, warm windows, digital art
portrait of an old fisherman with a white beard, dramatic lighting, 85mm lens
a bowl of ramen with a soft-boiled egg, studio photography, shallow depth of field
an isometric illustration of a tiny island with a lighthouse and palm trees
a watercolor painting of a fox in an autumn forest, muted colors
a futuristic city skyline at sunset, flying cars, neon signs, cyberpunk style
a red vintage car parked in front of a blue wall, film grain, 35mm
a macro shot of a dewdrop on a green leaf, bokeh background, morning light
a cat wearing a tiny wizard hat, reading a spell book, fantasy illustration
an oil painting of a stormy sea with a sailing ship, by a romantic-era painter
a minimalist poster of a mountain range, flat colors, geometric shapes
a close-up of a vintage pocket watch on an old map, warm tones, still life
"""


def stdlib_docstrings():
    """Yields the docstrings of the standard library's modules, classes and functions."""
    base = os.path.dirname(os.__file__)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in ("test", "tests", "site-packages", "idlelib"))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    if doc:
                        yield doc


DOC_NAMES = re.compile(r"^(README|NEWS|FAQ|TODO|.*\.md|.*\.txt|.*\.rst)(\.gz)?$")


def doc_files(limit_chars=6_000_000):
    """Yields the text of /usr/share/doc's prose files (no changelogs or copyright notices)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk("/usr/share/doc"):
        dirnames.sort()
        for name in sorted(filenames):
            if not DOC_NAMES.match(name):
                continue
            path = os.path.join(dirpath, name)
            try:
                opener = gzip.open if name.endswith(".gz") else open
                with opener(path, "rt", encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            total += len(text)
            if total > limit_chars:
                return
            yield text


def corpus_lines():
    lines = []
    for doc in list(stdlib_docstrings()) + list(doc_files()):
        for line in doc.splitlines():
            line = line.strip()
            if len(line) > 3:
                lines.append(line)
    # The prompts and multilingual lines are few: repeat them so that their characters pass the
    # character coverage and their words become pieces.
    lines += PROMPTS.splitlines() * 30
    lines += MULTILINGUAL.splitlines() * 12
    random.Random(0).shuffle(lines)
    return lines


def train(lines, prefix, **options):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, byte_fallback=False, num_threads=2,
        shuffle_input_sentence=False, minloglevel=2, **options)
    os.makedirs(prefix, exist_ok=True)
    with open(os.path.join(prefix, "spiece.model"), "wb") as f:
        f.write(model.getvalue())
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def token_entry(content, strip):
    return {"content": content, "lstrip": strip, "normalized": False, "rstrip": strip,
            "single_word": False, "special": True}


def write_flux_like_config(folder, sp_size, extra_ids=100):
    """The three JSON files transformers 4.39 save_pretrained writes for FLUX's tokenizer_2."""
    extra = [f"<extra_id_{i}>" for i in range(extra_ids)]
    decoder = {"0": token_entry("<pad>", False), "1": token_entry("</s>", False),
               "2": token_entry("<unk>", False)}
    for i in reversed(range(extra_ids)):
        decoder[str(sp_size - 1 + extra_ids - i)] = token_entry(extra[i], True)
    write_json(os.path.join(folder, "tokenizer_config.json"), {
        "add_prefix_space": True, "added_tokens_decoder": decoder, "additional_special_tokens": extra,
        "clean_up_tokenization_spaces": True, "eos_token": "</s>", "extra_ids": extra_ids,
        "legacy": True, "model_max_length": 512, "pad_token": "<pad>", "sp_model_kwargs": {},
        "tokenizer_class": "T5Tokenizer", "unk_token": "<unk>"})
    plain = {"content": None, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    write_json(os.path.join(folder, "special_tokens_map.json"), {
        "additional_special_tokens": extra,
        "eos_token": dict(plain, content="</s>"), "pad_token": dict(plain, content="<pad>"),
        "unk_token": dict(plain, content="<unk>")})
    write_json(os.path.join(folder, "added_tokens.json"),
               {t: sp_size - 1 + extra_ids - i for i, t in enumerate(extra)})


def write_old_style_config(folder, extra_ids):
    """A pre-4.34 T5 folder: tokenizer_config.json without added_tokens_decoder."""
    write_json(os.path.join(folder, "tokenizer_config.json"), {
        "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "extra_ids": extra_ids,
        "model_max_length": 512, "tokenizer_class": "T5Tokenizer"})
    write_json(os.path.join(folder, "special_tokens_map.json"),
               {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"})


def main():
    lines = corpus_lines()
    print(f"corpus: {len(lines)} lines, {sum(map(len, lines))} characters", file=sys.stderr)

    main_dir = os.path.join(DATA, "t5-spm")
    sp = train(lines, main_dir, vocab_size=16000, normalization_rule_name="nmt_nfkc",
               character_coverage=0.9995)
    write_flux_like_config(main_dir, sp.get_piece_size())

    variant_dir = os.path.join(DATA, "t5-spm-variant")
    sp = train(lines[:20000] + MULTILINGUAL.splitlines() * 3, variant_dir, vocab_size=1000,
               normalization_rule_name="identity", remove_extra_whitespaces=False,
               user_defined_symbols=["<sep>", "[IMG]", "★★", "hello world"], character_coverage=0.995)
    write_old_style_config(variant_dir, extra_ids=5)

    # The same model loaded through transformers' legacy branches (no added_tokens_decoder).
    size = sp.get_piece_size()
    added_dir = os.path.join(DATA, "t5-spm-variant-added")
    os.makedirs(added_dir, exist_ok=True)
    shutil.copy(os.path.join(variant_dir, "spiece.model"), added_dir)
    write_old_style_config(added_dir, extra_ids=5)
    write_json(os.path.join(added_dir, "added_tokens.json"),
               {f"<extra_id_{i}>": size - 1 + 5 - i for i in range(5)})

    fast_dir = os.path.join(DATA, "t5-spm-variant-fast")
    os.makedirs(fast_dir, exist_ok=True)
    shutil.copy(os.path.join(variant_dir, "spiece.model"), fast_dir)
    write_old_style_config(fast_dir, extra_ids=5)
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in enumerate(["<pad>", "</s>", "<unk>"])]
    added += [{"id": size - 1 + 5 - i, "content": f"<extra_id_{i}>", "single_word": False,
               "lstrip": i % 2 == 0, "rstrip": i % 3 == 0, "normalized": False, "special": True}
              for i in range(5)]
    write_json(os.path.join(fast_dir, "tokenizer.json"), {"added_tokens": added})

    for d in (main_dir, variant_dir):
        print(d, os.path.getsize(os.path.join(d, "spiece.model")), "bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
