#!/usr/bin/env python3
"""What decoding in bfloat16 or float16 changes against float32 on the full-size SDXL VAE (developer tooling).

The SDXL VAE decoder at its published size (tools/make_full_size_models.py's configuration, random
weights drawn as that script draws them), diffusers 0.31.0's AutoencoderKL (tlcm-serve's decoder matches
it within 1e-4 of the output range in float32: tests/models/autoencoder_kl_test.cc). Random latents
N(0, 1) / scaling_factor, as the pipelines hand them over, decoded in float32, bfloat16 and float16;
the images as uint8 the way the pipelines postprocess them. Prints one JSON line per dtype: mean / max
absolute difference to the float32 image in uint8 levels, the share of saturated (0 or 255) values
in the float32 image (saturated values hide differences, so the figures are a lower bound there) and
whether the decode overflowed (non-finite values).

Usage: tools/vae_dtype_diff.py [--size 512] [--images 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_full_size_models as fs  # noqa: E402


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    return ((image.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    vae = AutoencoderKL(**fs.SDXL_VAE).eval()
    gen = torch.Generator().manual_seed(2406)
    vae.load_state_dict({k: fs.random_tensor(k, list(v.shape), torch.float32, gen, "cpu")
                         for k, v in vae.state_dict().items()})
    latent = args.size // 8
    latents = torch.randn((args.images, 4, latent, latent), generator=gen) / fs.SDXL_VAE["scaling_factor"]
    images = {}
    with torch.no_grad():
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            decoded = vae.to(dtype).decode(latents.to(dtype)).sample
            images[name] = (to_uint8(decoded), bool(torch.isfinite(decoded).all()))
    reference = images["fp32"][0].int()
    saturated = float(((reference == 0) | (reference == 255)).float().mean())
    for name in ("bf16", "fp16"):
        diff = (images[name][0].int() - reference).abs()
        print(json.dumps({"vae": "sdxl-full-size-random", "size": args.size, "images": args.images,
                          "dtype": name, "against": "fp32", "mean_levels": round(float(diff.float().mean()), 3),
                          "max_levels": int(diff.max()), "saturated_share_fp32": round(saturated, 3),
                          "finite": images[name][1]}), flush=True)


if __name__ == "__main__":
    main()
