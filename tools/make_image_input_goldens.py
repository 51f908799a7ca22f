#!/usr/bin/env python3
"""Golden data for image inputs (img2img, inpainting): what diffusers 0.31 computes from the tiny cases that
tools/make_goldens.py builds (run that first; this script reads tests/data/<case>/model and lora).

Developer tooling, not run by CI. Everything is seeded; re-running rewrites the same files.

Usage
  tools/make_image_input_goldens.py [--out tests/data] [--cases CASE ...]

Writes
  <case>/golden/vae_encoder.safetensors  image [2,3,H,W] in [-1,1], moments [2,2C,h,w] (AutoencoderKL.encode's
      latent_dist.parameters: mean then log-variance), for sdxl-tiny, flux-tiny, flux-rich.
  <case>/golden/image_inputs/runs.json + PNGs  end-to-end runs through StableDiffusionXLImg2ImgPipeline /
      StableDiffusionXLInpaintPipeline (LCMScheduler) and FluxImg2ImgPipeline / FluxInpaintPipeline (the TLCM
      flow-matching scheduler of make_goldens.py, with diffusers' set_begin_index / scale_noise added): per run
      the prompts, seeds, steps, size, strength, the input image and mask files of every image (one input per
      image, so that image i draws only from generator i) and diffusers' output images.
  sdxl-tiny-inpaint/model  sdxl-tiny's model with a 9-channel inpainting UNet (unet/config.json in_channels 9:
      sdxl-tiny's UNet with conv_in widened by 5 seeded input channels, as inpainting checkpoints are made); the
      other components are links to sdxl-tiny's. Its golden/image_inputs runs go through
      StableDiffusionXLInpaintPipeline (LCMScheduler, no LoRA), which feeds the UNet concat(latents, mask,
      masked-image latents).
  image-inputs/resize/cases.json + PNGs  Pillow's LANCZOS resize (RGB and "L") and convert("L") of seeded
      pictures, for the byte-exact resampler (src/image/pil_resample.h).
"""
import argparse
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from PIL import Image
from diffusers import (FluxImg2ImgPipeline, FluxInpaintPipeline, LCMScheduler, StableDiffusionXLImg2ImgPipeline,
                       StableDiffusionXLInpaintPipeline, UNet2DConditionModel)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_goldens as mg  # noqa: E402  (the shared helpers: case loading, generators, PNG writing)


class FlowMatchTLCMImageScheduler(mg.FlowMatchEulerTLCMScheduler):
    """The TLCM flow-matching scheduler with what diffusers' image pipelines call on FlowMatchEulerDiscreteScheduler:
    set_begin_index (the first step run) and scale_noise (sigma * noise + (1 - sigma) * sample at the current step
    index: the begin index before the first step, the next step's after each step)."""

    def set_begin_index(self, begin_index: int = 0):
        self._index = begin_index

    def scale_noise(self, sample, timestep, noise=None):
        sigma = self.sigmas[self._index].to(sample.dtype)
        return sigma * noise + (1.0 - sigma) * sample


@dataclass
class ImageRun:
    name: str
    kind: str  # "img2img" | "inpaint"
    prompts: List[str]
    seeds: List[int]
    steps: int
    width: int
    height: int
    strength: float
    input_size: Optional[tuple] = None  # (W, H) of the input pictures; default the run's size
    guidance_scale: float = 0.0
    inputs: List[str] = field(default_factory=list)  # filled in: input picture files
    masks: List[str] = field(default_factory=list)


def picture(seed: int, width: int, height: int) -> Image.Image:
    """A smooth seeded picture with a few hard edges (gradients, a disc, a bar)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.zeros((height, width, 3))
    for c in range(3):
        a, b, p = rng.uniform(-1, 1, 3)
        img[..., c] = 0.5 + 0.35 * np.sin(a * x / 6 + b * y / 5 + p * 3)
    cx, cy, r = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height, 0.25 * min(width, height)
    img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 1, 3)
    img[int(height * 0.8):int(height * 0.9), :] = rng.uniform(0, 1, 3)
    img += rng.normal(0, 0.03, img.shape)
    return Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8), "RGB")


def mask_picture(seed: int, width: int, height: int) -> Image.Image:
    """White (repaint) inside a seeded rectangle and a disc, black elsewhere, grey anti-aliased rims, as RGB."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    m = np.zeros((height, width))
    x0, y0 = rng.uniform(0.1, 0.4) * width, rng.uniform(0.1, 0.4) * height
    m[(x >= x0) & (x < x0 + width / 3) & (y >= y0) & (y < y0 + height / 2)] = 1.0
    cx, cy = rng.uniform(0.5, 0.8) * width, rng.uniform(0.5, 0.8) * height
    d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) - 0.2 * min(width, height)
    m = np.maximum(m, np.clip(0.5 - d / 2, 0, 1))
    g = (m * 255).round().astype(np.uint8)
    return Image.fromarray(np.stack([g, g, g], -1), "RGB")


SDXL_RUNS = [
    ImageRun("img2img-lcm-4-s05", "img2img", [mg.PROMPT_A], [7], 4, 64, 64, 0.5),
    ImageRun("img2img-lcm-4-s075-pair", "img2img", [mg.PROMPT_B, mg.PROMPT_C], [8, 9], 4, 64, 48, 0.75),
    ImageRun("img2img-lcm-3-s1", "img2img", [mg.PROMPT_C], [3], 3, 48, 64, 1.0),
    ImageRun("img2img-lcm-8-s03", "img2img", [mg.PROMPT_A], [12], 8, 64, 64, 0.3),
    ImageRun("inpaint-lcm-4-s1", "inpaint", [mg.PROMPT_B], [5], 4, 64, 64, 1.0),
    ImageRun("inpaint-lcm-4-s07-pair", "inpaint", [mg.PROMPT_A, mg.PROMPT_B], [21, 4], 4, 64, 64, 0.7),
    ImageRun("inpaint-lcm-3-s09-resize", "inpaint", [mg.PROMPT_C], [6], 3, 64, 48, 0.9, input_size=(70, 90)),
]
FLUX_TINY_RUNS = [
    ImageRun("img2img-flow-4-s06", "img2img", [mg.PROMPT_A], [3], 4, 32, 32, 0.6),
    ImageRun("img2img-flow-2-s1-pair", "img2img", [mg.PROMPT_B, mg.PROMPT_C], [10, 11], 2, 32, 32, 1.0),
    ImageRun("img2img-flow-4-s05-resize", "img2img", [mg.PROMPT_C], [2], 4, 48, 32, 0.5, input_size=(61, 37)),
    ImageRun("inpaint-flow-4-s08", "inpaint", [mg.PROMPT_B], [8], 4, 32, 32, 0.8),
    ImageRun("inpaint-flow-3-s1-pair", "inpaint", [mg.PROMPT_A, mg.PROMPT_B], [1, 2], 3, 32, 40, 1.0),
]
FLUX_RICH_RUNS = [
    ImageRun("img2img-flow-4-s07", "img2img", [mg.PROMPT_C], [44], 4, 48, 48, 0.7, guidance_scale=3.5),
    ImageRun("img2img-flow-8-s04", "img2img", [mg.PROMPT_A], [5], 8, 64, 48, 0.4, guidance_scale=7.0),
    ImageRun("inpaint-flow-4-s06-resize", "inpaint", [mg.PROMPT_B], [9], 4, 48, 32, 0.6, guidance_scale=5.0,
             input_size=(40, 56)),
]
SDXL_INPAINT_RUNS = [
    ImageRun("inpaint9-lcm-4-s1", "inpaint", [mg.PROMPT_B], [5], 4, 64, 64, 1.0),
    ImageRun("inpaint9-lcm-4-s06-pair", "inpaint", [mg.PROMPT_A, mg.PROMPT_C], [21, 4], 4, 64, 48, 0.6),
    ImageRun("inpaint9-lcm-3-s09-resize", "inpaint", [mg.PROMPT_C], [6], 3, 48, 64, 0.9, input_size=(70, 90)),
]
CASES = {"sdxl-tiny": SDXL_RUNS, "flux-tiny": FLUX_TINY_RUNS, "flux-rich": FLUX_RICH_RUNS,
         "sdxl-tiny-inpaint": SDXL_INPAINT_RUNS}
MAX_SEQUENCE_LENGTH = {"flux-tiny": 24, "flux-rich": 32}


def write_inputs(run: ImageRun, folder: Path, salt: int) -> tuple:
    """Input pictures (and masks) of `run`, one per image; returns (images, masks) as PIL."""
    w, h = run.input_size or (run.width, run.height)
    images, masks = [], []
    for i, seed in enumerate(run.seeds):
        img = picture(salt * 1000 + seed, w, h)
        rel = f"inputs/{run.name}-{i}.png"
        mg.write_png(img, folder / rel)
        run.inputs.append(rel)
        images.append(img)
        if run.kind == "inpaint":
            m = mask_picture(salt * 1000 + seed + 500, w, h)
            rel = f"inputs/{run.name}-{i}-mask.png"
            mg.write_png(m, folder / rel)
            run.masks.append(rel)
            masks.append(m)
    return images, masks


@torch.no_grad()
def make_inpaint_model(source: Path, root: Path) -> None:
    """sdxl-tiny's model folder with a 9-channel UNet: links to every other component, the UNet's weights copied
    with conv_in taking 9 input channels (the 4 latent ones as before, then mask and masked-image latents with
    small seeded weights)."""
    model = root / "model"
    shutil.rmtree(model, ignore_errors=True)
    model.mkdir(parents=True)
    for entry in sorted((source / "model").iterdir()):
        if entry.name != "unet":
            (model / entry.name).symlink_to(Path("..", "..", source.name, "model", entry.name))
    unet4 = UNet2DConditionModel.from_pretrained(str(source / "model" / "unet"))
    unet9 = UNet2DConditionModel.from_config({**unet4.config, "in_channels": 9})
    state = unet4.state_dict()
    weight = state["conv_in.weight"]
    gen = torch.Generator().manual_seed(909)
    extra = torch.randn((weight.shape[0], 5) + tuple(weight.shape[2:]), generator=gen) * weight.std()
    state["conv_in.weight"] = torch.cat([weight, extra], 1)
    unet9.load_state_dict(state)
    unet9.save_pretrained(str(model / "unet"))


@torch.no_grad()
def sdxl_image_runs(root: Path, runs: List[ImageRun], lora: Optional[Path]) -> list:
    base = mg.load_sdxl(root / "model", lora)
    base.scheduler = LCMScheduler.from_config(base.scheduler.config)
    parts = dict(vae=base.vae, text_encoder=base.text_encoder, text_encoder_2=base.text_encoder_2,
                 tokenizer=base.tokenizer, tokenizer_2=base.tokenizer_2, unet=base.unet, scheduler=base.scheduler)
    img2img = StableDiffusionXLImg2ImgPipeline(**parts, requires_aesthetics_score=False, add_watermarker=False)
    inpaint = StableDiffusionXLInpaintPipeline(**parts, requires_aesthetics_score=False, add_watermarker=False)
    for p in (img2img, inpaint):
        p.set_progress_bar_config(disable=True)
    folder = root / "golden" / "image_inputs"
    records = []
    for k, run in enumerate(runs):
        images, masks = write_inputs(run, folder, k)
        common = dict(prompt=list(run.prompts), image=images, strength=run.strength,
                      num_inference_steps=run.steps, guidance_scale=0.0, generator=mg.cpu_generators(run.seeds),
                      output_type="pil")
        if run.kind == "img2img":
            # The img2img pipeline takes the picture's own size: the inputs have the run's size.
            assert images[0].size == (run.width, run.height)
            out = img2img(**common).images
        else:
            out = inpaint(**common, mask_image=masks, width=run.width, height=run.height).images
        records.append(record(run, out, folder))
    return records


@torch.no_grad()
def flux_image_runs(case: str, root: Path, runs: List[ImageRun]) -> list:
    base = mg.load_flux(root / "model", root / "lora")
    scheduler = FlowMatchTLCMImageScheduler.from_config(base.scheduler.config)
    parts = dict(scheduler=scheduler, vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer,
                 text_encoder_2=base.text_encoder_2, tokenizer_2=base.tokenizer_2, transformer=base.transformer)
    img2img, inpaint = FluxImg2ImgPipeline(**parts), FluxInpaintPipeline(**parts)
    for p in (img2img, inpaint):
        p.set_progress_bar_config(disable=True)
    folder = root / "golden" / "image_inputs"
    records = []
    for k, run in enumerate(runs):
        images, masks = write_inputs(run, folder, 100 + k)
        gens = mg.cpu_generators(run.seeds)
        scheduler.attach_generators(gens)
        common = dict(prompt=list(run.prompts), image=images, strength=run.strength, width=run.width,
                      height=run.height, num_inference_steps=run.steps, guidance_scale=run.guidance_scale,
                      generator=gens, max_sequence_length=MAX_SEQUENCE_LENGTH[case], output_type="pil")
        out = img2img(**common).images if run.kind == "img2img" else inpaint(**common, mask_image=masks).images
        records.append(record(run, out, folder))
    return records


def record(run: ImageRun, out: list, folder: Path) -> dict:
    rec = {"name": run.name, "kind": run.kind, "prompts": run.prompts, "seeds": run.seeds, "steps": run.steps,
           "width": run.width, "height": run.height, "strength": run.strength,
           "guidance_scale": run.guidance_scale, "inputs": run.inputs, "masks": run.masks, "images": []}
    assert len(out) == len(run.seeds)
    for i, img in enumerate(out):
        assert img.size == (run.width, run.height), (run.name, img.size)
        rel = f"images/{run.name}-{i}.png"
        mg.write_png(img, folder / rel)
        rec["images"].append(rel)
    return rec


@torch.no_grad()
def vae_encoder_golden(case: str, root: Path) -> None:
    vae = mg.load_sdxl(root / "model", None).vae if case.startswith("sdxl") else mg.load_flux(root / "model",
                                                                                             None).vae
    levels = len(vae.config.block_out_channels)
    s = 2 ** (levels - 1)
    gen = torch.Generator().manual_seed(77)
    image = torch.rand((2, 3, 6 * s * 2, 4 * s * 2), generator=gen) * 2 - 1
    moments = vae.encode(image).latent_dist.parameters
    mg.save_golden(root / "golden" / "vae_encoder.safetensors", {"image": image, "moments": moments})


def resize_goldens(out: Path) -> None:
    folder = out / "image-inputs" / "resize"
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    # (w, h, out_w, out_h, mode): up, down, mixed (both pass orders of Pillow), one side only, tiny.
    sizes = [(37, 29, 64, 48, "RGB"), (100, 90, 32, 40, "RGB"), (13, 11, 200, 3, "L"), (40, 40, 100, 10, "RGB"),
             (40, 40, 10, 100, "L"), (64, 64, 64, 48, "RGB"), (50, 70, 50, 20, "L"), (3, 2, 1, 1, "RGB"),
             (70, 90, 64, 48, "RGB"), (61, 37, 48, 32, "RGB")]
    for i, (w, h, ow, oh, mode) in enumerate(sizes):
        src = picture(900 + i, w, h)
        src_rel, out_rel = f"in-{i}.png", f"out-{i}.png"
        mg.write_png(src, folder / src_rel)
        img = src if mode == "RGB" else src.convert("L")
        res = img.resize((ow, oh), resample=Image.LANCZOS)
        mg.write_png(res.convert("RGB"), folder / out_rel)
        cases.append({"input": src_rel, "output": out_rel, "width": ow, "height": oh, "mode": mode})
    (folder / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=mg.REPO / "tests" / "data", help="folder holding the cases")
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), help="only these cases (default: all, and the "
                    "resize goldens)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if not args.cases:
        resize_goldens(args.out)
    for case, runs in CASES.items():
        if args.cases and case not in args.cases:
            continue
        root = args.out / case
        if case == "sdxl-tiny-inpaint":
            make_inpaint_model(args.out / "sdxl-tiny", root)
        else:
            vae_encoder_golden(case, root)
        folder = root / "golden" / "image_inputs"
        shutil.rmtree(folder, ignore_errors=True)
        if case == "sdxl-tiny-inpaint":
            records = sdxl_image_runs(root, runs, None)
        elif case.startswith("sdxl"):
            records = sdxl_image_runs(root, runs, root / "lora")
        else:
            records = flux_image_runs(case, root, runs)
        (folder / "runs.json").write_text(json.dumps(records, indent=1) + "\n")
        print(case, [r["name"] for r in records])
    return 0


if __name__ == "__main__":
    sys.exit(main())
