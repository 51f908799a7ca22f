#!/usr/bin/env python3
"""Image differences of tlcm-serve's reduced-precision paths against diffusers (developer tooling).

For each model folder and precision variant, one image (4 steps, --size, seed 1) from tlcm-generate
and one from diffusers 0.31.0 (loaded as tools/bench_diffusers.py does), compared in uint8 levels.
--suite cpu (default):
  fp32           tlcm-serve float32          vs diffusers float32
  fp32-vae-bf16  tlcm-serve --vae_dtype bf16 vs diffusers float32
  bf16           tlcm-serve bfloat16         vs diffusers bfloat16, and vs diffusers float32
--suite gpu (--device cuda; what bench/gpu_bench.sh runs on full-size models):
  fp16           tlcm-serve float16 (VAE in bf16, the default) vs diffusers float16 (VAE upcast)
  fp16-vae-fp32  tlcm-serve float16, --vae_dtype fp32          vs diffusers float16 (VAE upcast)
  bf16           tlcm-serve bfloat16                           vs diffusers bfloat16
  fp32           both float32 (TF32 off on both sides)
Prints one JSON line per comparison: mean and max absolute difference over all channels.
A model folder is <models>/<config>/model with the TLCM LoRA in <config>/lora, or <models>/<config>
itself (no LoRA).

Usage
  tools/dtype_parity.py --generate build/src/cli/tlcm-generate --models /work/bench-models \
      [--configs sdxl-medium flux-medium] [--threads 2] [--suite cpu|gpu --device cuda --size 1024]
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
STEPS, SEED = 4, 1


def diffusers_image(family: str, model: Path, lora: str, dtype: torch.dtype, device: str,
                    size: int) -> np.ndarray:
    pipe = bd.load_pipeline(family, model, lora, dtype, device)
    gens = mg.cpu_generators([SEED])
    kwargs = dict(prompt=PROMPT, num_inference_steps=STEPS, width=size, height=size, generator=gens)
    with torch.no_grad():
        if family == "sdxl":
            image = pipe(guidance_scale=0.0, **kwargs).images[0]
        else:
            pipe.scheduler.attach_generators(gens)
            image = pipe(guidance_scale=7.0, max_sequence_length=512, **kwargs).images[0]
    return np.asarray(image, dtype=np.int32)


def ours_image(generate: str, model: Path, lora: str, device: str, size: int, flags: list[str]) -> np.ndarray:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([generate, "--base_model_path", str(model), "--lora_path", lora, "--prompt", PROMPT,
                        "--threads", str(torch.get_num_threads()), "--device", device,
                        "--infer-steps", str(STEPS), "--resolution", str(size), "--seed", str(SEED),
                        "--output_dir", out, *flags], check=True, capture_output=True)
        (png,) = Path(out).rglob("*.png")
        return np.asarray(Image.open(png).convert("RGB"), dtype=np.int32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generate", required=True)
    p.add_argument("--models", required=True, type=Path)
    p.add_argument("--configs", nargs="+", default=["sdxl-medium", "flux-medium"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--suite", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    # float32 means float32 on a GPU too: TF32 off for diffusers (tlcm-generate keeps LibTorch's
    # defaults, which allow TF32 in convolutions: the fp32 GPU line states what that costs).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if args.suite == "cpu":
        theirs_dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
        ours_flags = {"fp32": ["--dtype", "fp32"], "fp32-vae-bf16": ["--dtype", "fp32", "--vae_dtype", "bf16"],
                      "bf16": ["--dtype", "bf16"]}
        pairs = (("fp32", "fp32"), ("fp32-vae-bf16", "fp32"), ("bf16", "bf16"), ("bf16", "fp32"))
    else:
        theirs_dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
        ours_flags = {"fp16": ["--dtype", "fp16"], "fp16-vae-fp32": ["--dtype", "fp16", "--vae_dtype", "fp32"],
                      "bf16": ["--dtype", "bf16"], "fp32": ["--dtype", "fp32"]}
        pairs = (("fp16", "fp16"), ("fp16-vae-fp32", "fp16"), ("bf16", "bf16"), ("fp32", "fp32"))
    for config in args.configs:
        folder = args.models / config
        model = folder / "model" if (folder / "model").is_dir() else folder
        lora = str(folder / "lora") if (folder / "lora").is_dir() else ""
        family = bd.family_of(model)
        theirs = {name: diffusers_image(family, model, lora, dtype, args.device, args.size)
                  for name, dtype in theirs_dtypes.items()}
        ours = {name: ours_image(args.generate, model, lora, args.device, args.size, flags)
                for name, flags in ours_flags.items()}
        for variant, against in pairs:
            diff = np.abs(ours[variant] - theirs[against])
            print(json.dumps({"config": config, "device": args.device, "size": args.size, "tlcm_serve": variant,
                              "diffusers": against, "mean_levels": round(float(diff.mean()), 3),
                              "max_levels": int(diff.max())}), flush=True)
        if "bf16" in theirs and "fp32" in theirs:
            diff = np.abs(theirs["bf16"] - theirs["fp32"])
            print(json.dumps({"config": config, "device": args.device, "size": args.size, "tlcm_serve": None,
                              "diffusers": "bf16 vs fp32", "mean_levels": round(float(diff.mean()), 3),
                              "max_levels": int(diff.max())}), flush=True)

if __name__ == "__main__":
    main()
