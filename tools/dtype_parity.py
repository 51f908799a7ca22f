#!/usr/bin/env python3
"""Image differences of tlcm-serve's reduced-precision paths against diffusers (developer tooling).

For each model folder and precision variant, one image (4 steps, 256x256, seed 1) from tlcm-generate
and one from diffusers 0.31.0 (loaded as tools/bench_diffusers.py does), compared in uint8 levels:
  fp32           tlcm-serve float32          vs diffusers float32
  fp32-vae-bf16  tlcm-serve --vae_dtype bf16 vs diffusers float32
  bf16           tlcm-serve bfloat16         vs diffusers bfloat16, and vs diffusers float32
Prints one JSON line per comparison: mean and max absolute difference over all channels.

Usage
  tools/dtype_parity.py --generate build/src/cli/tlcm-generate --models /work/bench-models \
      [--configs sdxl-medium flux-medium] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import bench_diffusers as bd  # noqa: E402
import make_goldens as mg  # noqa: E402

PROMPT = "a red fox in the snow"
STEPS, SIZE, SEED = 4, 256, 1


def diffusers_image(family: str, model: Path, lora: Path, dtype: torch.dtype) -> np.ndarray:
    pipe = bd.load_pipeline(family, model, str(lora), dtype, "cpu")
    gens = mg.cpu_generators([SEED])
    kwargs = dict(prompt=PROMPT, num_inference_steps=STEPS, width=SIZE, height=SIZE, generator=gens)
    with torch.no_grad():
        if family == "sdxl":
            image = pipe(guidance_scale=0.0, **kwargs).images[0]
        else:
            pipe.scheduler.attach_generators(gens)
            image = pipe(guidance_scale=7.0, max_sequence_length=512, **kwargs).images[0]
    return np.asarray(image, dtype=np.int32)


def ours_image(generate: str, model: Path, lora: Path, flags: list[str]) -> np.ndarray:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([generate, "--base_model_path", str(model), "--lora_path", str(lora), "--prompt", PROMPT,
                        "--threads", str(torch.get_num_threads()),
                        "--infer-steps", str(STEPS), "--resolution", str(SIZE), "--seed", str(SEED),
                        "--output_dir", out, *flags], check=True, capture_output=True)
        (png,) = Path(out).rglob("*.png")
        return np.asarray(Image.open(png).convert("RGB"), dtype=np.int32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generate", required=True)
    p.add_argument("--models", required=True, type=Path)
    p.add_argument("--configs", nargs="+", default=["sdxl-medium", "flux-medium"])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for config in args.configs:
        model, lora = args.models / config / "model", args.models / config / "lora"
        family = bd.family_of(model)
        theirs = {"fp32": diffusers_image(family, model, lora, torch.float32),
                  "bf16": diffusers_image(family, model, lora, torch.bfloat16)}
        ours = {"fp32": ours_image(args.generate, model, lora, ["--dtype", "fp32"]),
                "fp32-vae-bf16": ours_image(args.generate, model, lora, ["--dtype", "fp32", "--vae_dtype", "bf16"]),
                "bf16": ours_image(args.generate, model, lora, ["--dtype", "bf16"])}
        for variant, against in (("fp32", "fp32"), ("fp32-vae-bf16", "fp32"), ("bf16", "bf16"), ("bf16", "fp32")):
            diff = np.abs(ours[variant] - theirs[against])
            print(json.dumps({"config": config, "tlcm_serve": variant, "diffusers": against,
                              "mean_levels": round(float(diff.mean()), 3), "max_levels": int(diff.max())}), flush=True)
        diff = np.abs(theirs["bf16"] - theirs["fp32"])
        print(json.dumps({"config": config, "tlcm_serve": None, "diffusers": "bf16 vs fp32",
                          "mean_levels": round(float(diff.mean()), 3), "max_levels": int(diff.max())}), flush=True)


if __name__ == "__main__":
    main()
