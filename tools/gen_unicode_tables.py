#!/usr/bin/env python3
"""Writes src/text/unicode_tables.cc: the Unicode data the CLIP tokenizer needs, as Python sees it.

The reference is transformers' slow CLIPTokenizer running in Python (no ftfy), so every table comes
from the same place that tokenizer asks:
  - character classes of BERT's BasicTokenizer (`unicodedata.category`), `str.isspace`,
    `str.lower` (full mapping; the Cased / Case_Ignorable properties it uses for the final-sigma
    rule are read back from `str.lower`'s own behaviour), canonical decompositions, combining
    classes and primary composites for NFC (`unicodedata`);
  - the classes of the pre-tokenizer regex, which transformers compiles with the third-party
    `regex` module and re.IGNORECASE: which code points `[\\p{L}]`, `[\\p{N}]` and
    `[^\\s\\p{L}\\p{N}]` match case-insensitively (they are not plain categories: U+0345 matches
    none of them), and which code points match the ASCII letters of the literal alternatives
    (`'s`, `<|startoftext|>`, ...) case-insensitively (U+017F LATIN SMALL LETTER LONG S matches `s`).

Usage: /work/venv/bin/python tools/gen_unicode_tables.py [--out src/text/unicode_tables.cc]
Developer tooling: CI compiles the committed output and never runs this script.
"""

import argparse
import os
import sys
import unicodedata

import regex

MAX_CP = 0x110000
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3

# Flag bits; src/text/unicode_tables.h declares the same values.
DROP = 1            # removed by BasicTokenizer._clean_text (NUL, U+FFFD, category C* but \t \n \r)
BERT_SPACE = 2      # turned into ' ' by _clean_text (' ', \t, \n, \r, category Zs)
PY_SPACE = 4        # str.isspace() (what str.split() / str.strip() split on)
CASED = 8           # Unicode Cased (str.lower's final-sigma context)
CASE_IGNORABLE = 16 # Unicode Case_Ignorable (likewise)
RE_LETTER = 32      # regex [\p{L}] with IGNORECASE
RE_NUMBER = 64      # regex [\p{N}] with IGNORECASE
RE_OTHER = 128      # regex [^\s\p{L}\p{N}] with IGNORECASE

# The letters of the literal alternatives of CLIP's pre-tokenizer regex.
LITERAL_CHARS = sorted(set("<|startoftext|><|endoftext|>'s't're've'm'll'd"))


def cased(ch):
    return ch.islower() or ch.isupper() or ch.istitle()


def case_ignorable(ch):
    # str.lower() turns U+03A3 into final sigma when a cased letter precedes it, skipping
    # case-ignorable characters, and no cased letter follows it (again skipping them).
    before = ("A" + ch + "\u03a3").lower()[-1] == "\u03c2"  # ignorable or cased
    after = ("A\u03a3" + ch).lower()[1] == "\u03c2"         # ignorable or not cased
    return before and after


def flags_of(cp, re_letter, re_number, re_other):
    ch = chr(cp)
    cat = unicodedata.category(ch)
    f = 0
    if cp == 0 or cp == 0xFFFD or (cat.startswith("C") and ch not in "\t\n\r"):
        f |= DROP
    if ch in " \t\n\r" or cat == "Zs":
        f |= BERT_SPACE
    if ch.isspace():
        f |= PY_SPACE
    if cased(ch):
        f |= CASED
    if case_ignorable(ch):
        f |= CASE_IGNORABLE
    if re_letter.fullmatch(ch):
        f |= RE_LETTER
    if re_number.fullmatch(ch):
        f |= RE_NUMBER
    if re_other.fullmatch(ch):
        f |= RE_OTHER
    return f


def full_canonical_decomposition(cp):
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return [cp]
    out = []
    for part in d.split():
        out.extend(full_canonical_decomposition(int(part, 16)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--out", default=os.path.join(root, "src", "text", "unicode_tables.cc"))
    args = parser.parse_args()

    re_letter = regex.compile(r"[\p{L}]", regex.IGNORECASE)
    re_number = regex.compile(r"[\p{N}]", regex.IGNORECASE)
    re_other = regex.compile(r"[^\s\p{L}\p{N}]", regex.IGNORECASE)

    # --- flags, run-length encoded as (first code point, flags) ---
    flag_runs = []
    prev = None
    mismatches = []
    for cp in range(MAX_CP):
        f = flags_of(cp, re_letter, re_number, re_other)
        if f != prev:
            flag_runs.append((cp, f))
            prev = f
        # Report where the regex module's Unicode data disagrees with unicodedata's categories for
        # characters that survive _clean_text (information only: the regex is what runs).
        if not f & DROP:
            cat = unicodedata.category(chr(cp))
            if bool(f & RE_LETTER) != cat.startswith("L") or bool(f & RE_NUMBER) != cat.startswith("N"):
                mismatches.append(cp)

    # --- lower-casing (str.lower, per code point; U+03A3 is handled by the final-sigma rule) ---
    lower_single = []
    lower_multi = []
    for cp in range(MAX_CP):
        low = chr(cp).lower()
        # clip_pretokenizer.cc relies on this: lower-casing never creates whitespace.
        assert chr(cp).isspace() or not any(c.isspace() for c in low), hex(cp)
        if low == chr(cp) or cp == 0x3A3:
            continue
        if len(low) == 1:
            lower_single.append((cp, ord(low)))
        else:
            lower_multi.append((cp, [ord(c) for c in low]))

    # --- NFC data ---
    ccc_runs = []  # (first, last, class) for non-zero classes
    for cp in range(MAX_CP):
        c = unicodedata.combining(chr(cp))
        if c == 0:
            continue
        if ccc_runs and ccc_runs[-1][1] == cp - 1 and ccc_runs[-1][2] == c:
            ccc_runs[-1] = (ccc_runs[-1][0], cp, c)
        else:
            ccc_runs.append((cp, cp, c))
    decomps = []     # (cp, full canonical decomposition), Hangul syllables excluded (algorithmic)
    compositions = []  # (first, second, composite): primary composites, Hangul excluded
    second_chars = set()
    for cp in range(MAX_CP):
        if HANGUL_FIRST <= cp <= HANGUL_LAST:
            continue
        full = full_canonical_decomposition(cp)
        if full != [cp]:
            decomps.append((cp, full))
        d = unicodedata.decomposition(chr(cp))
        if d and not d.startswith("<") and len(d.split()) == 2:
            if unicodedata.normalize("NFC", chr(cp)) == chr(cp):
                a, b = (int(x, 16) for x in d.split())
                compositions.append((a, b, cp))
                second_chars.add(b)
    compositions.sort()
    # Below this code point every character is NFC-stable, a starter and never the second half of
    # a composition, so a string made only of such characters is already NFC.
    quick_below = MAX_CP
    for cp in range(MAX_CP):
        ch = chr(cp)
        if (unicodedata.normalize("NFC", ch) != ch or unicodedata.combining(ch) != 0
                or cp in second_chars or 0x1100 <= cp <= 0x11FF):
            quick_below = cp
            break

    # --- literal letters of the regex, matched case-insensitively ---
    literal_folds = []
    for ch in LITERAL_CHARS:
        pat = regex.compile(regex.escape(ch), regex.IGNORECASE)
        for cp in range(MAX_CP):
            if cp != ord(ch) and pat.fullmatch(chr(cp)):
                literal_folds.append((cp, ord(ch)))
    literal_folds.sort()

    pool = []
    lower_multi_rows = []
    for cp, cps in lower_multi:
        lower_multi_rows.append((cp, len(pool), len(cps)))
        pool.extend(cps)
    decomp_rows = []
    for cp, cps in decomps:
        decomp_rows.append((cp, len(pool), len(cps)))
        pool.extend(cps)

    def rows(items, fmt, per_line):
        lines = []
        for i in range(0, len(items), per_line):
            lines.append("    " + " ".join(fmt(x) for x in items[i:i + per_line]))
        return "\n".join(lines)

    out = []
    out.append("// GENERATED by tools/gen_unicode_tables.py - do not edit.")
    out.append(f"// Unicode {unicodedata.unidata_version} (Python {sys.version.split()[0]} unicodedata) for "
               "categories, case mapping and NFC;")
    out.append(f"// the pre-tokenizer regex classes come from the `regex` module {regex.__version__} "
               "(what transformers runs).")
    out.append("// Contract: src/text/unicode_tables.h.")
    out.append('#include "text/unicode_tables.h"')
    out.append("")
    out.append("namespace tlcm::unicode_data {")
    out.append("")
    out.append(f'const char kUnicodeVersion[] = "{unicodedata.unidata_version}";')
    out.append(f"const char32_t kNfcStableBelow = 0x{quick_below:X};")
    out.append("")
    out.append(f"const FlagRun kFlagRuns[] = {{")
    out.append(rows(flag_runs, lambda r: f"{{0x{r[0]:X}, {r[1]}}},", 6))
    out.append("};")
    out.append(f"const size_t kFlagRunCount = {len(flag_runs)};")
    out.append("")
    out.append("const CodePointPair kLowerSingle[] = {")
    out.append(rows(lower_single, lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}}},", 6))
    out.append("};")
    out.append(f"const size_t kLowerSingleCount = {len(lower_single)};")
    out.append("")
    out.append("const PoolEntry kLowerMulti[] = {")
    out.append(rows(lower_multi_rows, lambda r: f"{{0x{r[0]:X}, {r[1]}, {r[2]}}},", 6))
    out.append("};")
    out.append(f"const size_t kLowerMultiCount = {len(lower_multi_rows)};")
    out.append("")
    out.append("const CombiningClassRun kCombiningClassRuns[] = {")
    out.append(rows(ccc_runs, lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}, {r[2]}}},", 5))
    out.append("};")
    out.append(f"const size_t kCombiningClassRunCount = {len(ccc_runs)};")
    out.append("")
    out.append("const PoolEntry kDecompositions[] = {")
    out.append(rows(decomp_rows, lambda r: f"{{0x{r[0]:X}, {r[1]}, {r[2]}}},", 5))
    out.append("};")
    out.append(f"const size_t kDecompositionCount = {len(decomp_rows)};")
    out.append("")
    out.append("const Composition kCompositions[] = {")
    out.append(rows(compositions, lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}, 0x{r[2]:X}}},", 4))
    out.append("};")
    out.append(f"const size_t kCompositionCount = {len(compositions)};")
    out.append("")
    out.append("const CodePointPair kLiteralFolds[] = {")
    out.append(rows(literal_folds, lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}}},", 6))
    out.append("};")
    out.append(f"const size_t kLiteralFoldCount = {len(literal_folds)};")
    out.append("")
    out.append("const char32_t kPool[] = {")
    out.append(rows(pool, lambda c: f"0x{c:X},", 10))
    out.append("};")
    out.append("")
    out.append("}  // namespace tlcm::unicode_data")
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.out}: {len(flag_runs)} flag runs, {len(lower_single)}+{len(lower_multi)} lower "
          f"mappings, {len(ccc_runs)} ccc runs, {len(decomps)} decompositions, {len(compositions)} "
          f"compositions, {len(literal_folds)} literal folds, NFC-stable below U+{quick_below:04X}")
    print(f"{len(mismatches)} kept code points where regex's L/N differ from unicodedata's category: "
          + " ".join(f"U+{cp:04X}" for cp in mismatches[:40]))


if __name__ == "__main__":
    main()
