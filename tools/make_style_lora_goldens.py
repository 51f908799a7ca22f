#!/usr/bin/env python3
"""Golden data for per-request style LoRAs: small random style adapters for the tiny SDXL and FLUX cases and the
images diffusers 0.31 makes with them on top of the TLCM LoRA.

Developer tooling, not run by CI; reuses tools/make_goldens.py (its models, runs and image code). Run after
make_goldens.py has written the cases:
  tools/make_style_lora_goldens.py [--cases sdxl-tiny,flux-tiny] [--out tests/data]

Per case, tests/data/<case>/styles/ holds the adapters, in two of the key layouts load_lora_weights accepts:
  SDXL  ink.safetensors   diffusers' own save (unet.<module>.lora_A.weight / .lora_B.weight), r 4, no alphas
                          (scale 1); attention projections, feed-forward out, every resnet's conv1 (3x3 conv LoRA)
        clay.safetensors  kohya (lora_unet_<module with _>.lora_down.weight / .lora_up.weight / .alpha), r 8,
                          alpha 4 (scale 1/2); attention projections, proj_in, every resnet's conv2
  FLUX  ink.safetensors   diffusers' own save (transformer.<module>.lora_A.weight ...), r 4, no alphas; attention
                          projections of both streams, ff.net.2, proj_mlp
        clay.safetensors  the same layout with transformer.<module>.alpha = 4 at r 8 (scale 1/2); to_q/k/v,
                          norm1.linear, the single blocks' proj_out, x_embedder, context_embedder
A ~ N(0, 1/fan_in), B ~ N(0, b^2), stored float32.

The images (golden/styles/runs.json + golden/styles/images/*.png): the pipeline as make_goldens.py loads it with
the TLCM LoRA, merged into the weights (PEFT merge_and_unload: "fused as the server does"), then
pipe.load_lora_weights(styles/<name>.safetensors, adapter_name=<name>) for each style and
pipe.set_adapters([names], adapter_weights=[scales]); then make_goldens.py's image code for the run. Each record
is make_goldens.py's run record plus "loras": [{"name", "scale"}].
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_goldens as mg  # noqa: E402

# (module-name suffixes it targets, rank, alpha (None: no alpha keys), B std, layout)
STYLES = {
    "sdxl": {
        "ink": ([".to_q", ".to_k", ".to_v", ".to_out.0", "ff.net.2", "conv1"], 4, None, 0.15, "diffusers"),
        "clay": ([".to_q", ".to_k", ".to_v", ".to_out.0", "proj_in", "conv2"], 8, 4.0, 0.2, "kohya"),
    },
    "flux": {
        "ink": ([".to_q", ".to_k", ".to_v", ".to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out",
                 "ff.net.2", "proj_mlp"], 4, None, 0.15, "diffusers"),
        "clay": ([".to_q", ".to_k", ".to_v", "norm1.linear", "single_transformer_blocks.0.proj_out", "x_embedder",
                  "context_embedder"], 8, 4.0, 0.2, "diffusers"),
    },
}

# (run name, [(style, scale)...]) on top of one make_goldens Run of the case.
STYLE_RUNS = [
    ("ink-1.0", [("ink", 1.0)]),
    ("ink-0.6", [("ink", 0.6)]),
    ("clay-1.4", [("clay", 1.4)]),
    ("ink-clay", [("ink", 0.8), ("clay", 0.5)]),
]


def targets(model: torch.nn.Module, suffixes):
    out = []
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) and any(name.endswith(s) for s in suffixes):
            out.append((name, module))
    return out


def make_style(model: torch.nn.Module, family: str, spec, seed: int):
    suffixes, rank, alpha, b_std, layout = spec
    gen = torch.Generator().manual_seed(seed)
    prefix = "unet" if family == "sdxl" else "transformer"
    tensors = {}
    found = targets(model, suffixes)
    assert found, suffixes
    for name, module in found:
        if isinstance(module, torch.nn.Conv2d):
            a_shape = (rank, module.in_channels, *module.kernel_size)
            b_shape = (module.out_channels, rank, 1, 1)
        else:
            a_shape, b_shape = (rank, module.in_features), (module.out_features, rank)
        a = torch.randn(a_shape, generator=gen) / math.sqrt(np.prod(a_shape[1:]))
        b = torch.randn(b_shape, generator=gen) * b_std
        if layout == "kohya":
            key = "lora_unet_" + name.replace(".", "_")
            tensors[f"{key}.lora_down.weight"], tensors[f"{key}.lora_up.weight"] = a, b
            tensors[f"{key}.alpha"] = torch.tensor(alpha)
        else:
            tensors[f"{prefix}.{name}.lora_A.weight"], tensors[f"{prefix}.{name}.lora_B.weight"] = a, b
            if alpha is not None:
                tensors[f"{prefix}.{name}.alpha"] = torch.tensor(alpha)
    return tensors, len(found)


def base_run(case: mg.Case) -> mg.Run:
    """The first run of the case made with the TLCM LoRA: its prompt, seed, size and schedule."""
    return next(r for r in case.runs if r.lora_scale != 0.0 and len(r.seeds) == 1)


def load_fused(family: str, model_dir: Path, lora_dir: Path):
    pipe = (mg.load_sdxl if family == "sdxl" else mg.load_flux)(model_dir, lora_dir)
    if family == "sdxl":
        pipe.unet = pipe.unet.merge_and_unload()
    else:
        pipe.transformer = pipe.transformer.merge_and_unload()
    return pipe


def lora_layers(pipe, family: str, adapter: str) -> int:
    denoiser = pipe.unet if family == "sdxl" else pipe.transformer
    return sum(1 for _, m in denoiser.named_modules() if hasattr(m, "lora_A") and adapter in m.lora_A)


def make_case(name: str, out: Path) -> None:
    case = mg.CASES[name]()
    root = out / name
    styles_dir, gdir = root / "styles", root / "golden" / "styles"
    styles_dir.mkdir(parents=True, exist_ok=True)
    pipe = load_fused(case.family, root / "model", root / "lora")
    denoiser = pipe.unet if case.family == "sdxl" else pipe.transformer
    counts = {}
    for i, (style, spec) in enumerate(STYLES[case.family].items()):
        tensors, counts[style] = make_style(denoiser, case.family, spec, case.seed + 10 + i)
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(styles_dir / f"{style}.safetensors"),
                  metadata={"format": "pt"})
    for style in STYLES[case.family]:
        pipe.load_lora_weights(str(styles_dir / f"{style}.safetensors"), adapter_name=style)
        # Every module of the file must have become a LoRA layer of the denoiser.
        assert lora_layers(pipe, case.family, style) == counts[style], (style, counts[style])
    run = base_run(case)
    make = mg.sdxl_images if case.family == "sdxl" else mg.flux_images
    records, stats = [], {}
    plain = np.asarray(make(_with_adapters(pipe, []), run)[0]).astype(np.float64)
    for suffix, loras in STYLE_RUNS:
        styled = mg.Run(**dict(vars(run), name=f"{run.name}-{suffix}"))
        rec = mg.run_record(styled, case.family)
        rec["loras"] = [{"name": n, "scale": s} for n, s in loras]
        images = make(_with_adapters(pipe, loras), styled)
        for img, rel in zip(images, rec["images"]):
            mg.write_png(img, gdir / rel)
            a = np.asarray(img).astype(np.float64)
            stats[rel] = {"std": round(a.std(), 1), "mean_change_vs_no_style": round(np.abs(a - plain).mean(), 1)}
        records.append(rec)
    (gdir / "runs.json").write_text(json.dumps(records, indent=1) + "\n")
    print(json.dumps({name: {"modules": counts, "images": stats}}, indent=1))


def _with_adapters(pipe, loras):
    if loras:
        pipe.set_adapters([n for n, _ in loras], adapter_weights=[s for _, s in loras])
    else:
        pipe.disable_lora()
        return pipe
    pipe.enable_lora()
    return pipe


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="sdxl-tiny,flux-tiny")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests" / "data"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.cases.split(","):
        make_case(name, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
