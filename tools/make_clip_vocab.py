#!/usr/bin/env python3
"""Derives Hugging Face CLIPTokenizer files (vocab.json, merges.txt) from OpenAI CLIP's BPE file.

The merges ship as `open_clip/bpe_simple_vocab_16e6.txt.gz` in the open_clip_torch wheel:
    /work/venv/bin/pip download open_clip_torch --no-deps -d /tmp/oc
    cd /tmp/oc && unzip -o open_clip_torch-*.whl 'open_clip/bpe_simple_vocab_16e6.txt.gz'
    /work/venv/bin/python tools/make_clip_vocab.py \\
        --bpe /tmp/oc/open_clip/bpe_simple_vocab_16e6.txt.gz --out tests/data/clip-vocab/tokenizer

The vocabulary is built the way CLIP builds it: the 256 byte stand-in characters (GPT-2's
bytes_to_unicode order), the same with "</w>", one token per merge (the first 49152 - 256 - 2
merges, or the first --merges K), then "<|startoftext|>" and "<|endoftext|>". The files are written
as transformers' CLIPTokenizer.save_vocabulary writes them (sorted, indented vocab.json; merges.txt
with a "#version: 0.2" header), so that `--merges 1500` reproduces the truncated vocabularies of
tests/data/reference byte for byte.
"""

import argparse
import gzip
import json
import os

FULL_MERGES = 49152 - 256 - 2


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build(bpe_path, num_merges):
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:FULL_MERGES + 1]]
    if len(merges) != FULL_MERGES or any(len(m) != 2 for m in merges):
        raise SystemExit(f"{bpe_path}: expected {FULL_MERGES} merges of two symbols")
    merges = merges[:num_merges]
    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = {token: i for i, token in enumerate(vocab)}
    if len(encoder) != len(vocab):
        raise SystemExit("duplicate tokens in the derived vocabulary")
    # Every merge must combine symbols that exist by then (the byte alphabet or earlier merges):
    # BPE then never meets a pair whose parts it cannot form.
    known = set(chars) | {c + "</w>" for c in chars}
    for rank, (a, b) in enumerate(merges):
        if a not in known or b not in known:
            raise SystemExit(f"merge {rank} ({a} {b}) uses a symbol no earlier merge creates")
        known.add(a + b)
    return encoder, merges


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpe", required=True, help="bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--out", required=True, help="folder for vocab.json and merges.txt")
    parser.add_argument("--merges", type=int, default=FULL_MERGES, help="keep only the first K merges")
    args = parser.parse_args()
    if not 0 <= args.merges <= FULL_MERGES:
        raise SystemExit(f"--merges must be in [0, {FULL_MERGES}]")

    encoder, merges = build(args.bpe, args.merges)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "vocab.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(encoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    with open(os.path.join(args.out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    print(f"{args.out}: {len(encoder)} tokens, {len(merges)} merges, "
          f"<|startoftext|> = {encoder['<|startoftext|>']}, <|endoftext|> = {encoder['<|endoftext|>']}")


if __name__ == "__main__":
    main()
