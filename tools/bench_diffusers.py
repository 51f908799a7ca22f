#!/usr/bin/env python3
"""The diffusers side of bench/compare_diffusers.sh and bench/cpu_compare.sh: times whole diffusers pipeline runs of one model.

Developer tooling (not run by CI); run it with the venv that has diffusers 0.31.0 / transformers 4.39.3
/ peft 0.13.2. Takes the flags of pipeline_bench (tlcm-generate's names) that matter for the cost and
prints one JSON line with the same fields as pipeline_bench: median wall time of a whole run and the
median of each stage, in milliseconds.

The model is loaded as the TLCM authors do and as tools/make_goldens.py does for the goldens: the
diffusers folder, the adapter loaded into a fresh LoraConfig(r=64) PEFT adapter (scale 8/64 = 0.125),
then merged into the weights (merge_and_unload), as tlcm-serve fuses it at load time. SDXL runs
StableDiffusionXLPipeline with LCMScheduler and guidance_scale 0; FLUX runs FluxPipeline with the
FlowMatch TLCM scheduler (make_goldens.FlowMatchEulerTLCMScheduler) and guidance 7 unless given.
Images i = 0..batch-1 use torch.Generator("cpu").manual_seed(seed + i), one prompt encoded once
(num_images_per_prompt = batch), output_type "pil" - the same work tlcm-serve does per run.

--device cuda runs on the GPU (with --dtype fp16 or bf16; the pipeline is loaded in that dtype and
CUDA is synchronized at each stage mark); --steps_list 2,4,8 times several step counts on one loaded
pipeline and prints one line each. --compile MODE runs the denoiser and the VAE decoder through
torch.compile (impl "diffusers-compile"; give --warmup 2 or more so that compilation and, for
reduce-overhead, CUDA graph recording happen before the timed runs).

Stages (wall clock, torch.set_num_threads(--threads)):
  encode_ms     pipe.encode_prompt (FLUX: CLIP + T5)
  encode_t5_ms  FLUX: pipe._get_t5_prompt_embeds inside encode_ms (tokenizing + T5 forward); 0 for SDXL
  denoise_ms    from the end of encode_prompt to the start of vae.decode (latents, denoising loop)
  decode_ms     from the start of vae.decode to the end of the call (VAE, postprocessing to PIL)
  median_ms     the whole pipe(...) call
  cpu_ms        process CPU time of the call (all threads), as pipeline_bench reports it
  gpu_*_gib     on CUDA: torch.cuda.memory_allocated / max_memory_allocated after the runs (else -1)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from diffusers import LCMScheduler  # noqa: E402

import make_goldens as mg  # noqa: E402


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base_model_path", required=True)
    p.add_argument("--lora_path", default="")
    p.add_argument("--prompt", required=True)
    p.add_argument("--infer-steps", "--infer_steps", dest="steps", type=int, default=4)
    p.add_argument("--resolution", type=int, default=1024)
    p.add_argument("--width", type=int, default=0)
    p.add_argument("--height", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scheduler", default="")
    p.add_argument("--guidance_scale", type=float, default=None)
    p.add_argument("--max_sequence_length", type=int, default=512)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--dtype", default="fp32", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps_list", default="", help="comma-separated step counts (default: --infer-steps)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--compile", default="", choices=["", "default", "max-autotune-no-cudagraphs", "reduce-overhead"],
                   help="torch.compile the denoiser and the VAE decoder in this mode (impl diffusers-compile); "
                        "the warm-up runs pay for the compilation")
    args = p.parse_args(argv)
    args.width = args.width or args.resolution
    args.height = args.height or args.resolution
    args.steps_list = [int(s) for s in args.steps_list.split(",")] if args.steps_list else [args.steps]
    return args


def family_of(model_dir: Path) -> str:
    cls = json.loads((model_dir / "model_index.json").read_text())["_class_name"]
    if cls == "StableDiffusionXLPipeline":
        return "sdxl"
    if cls == "FluxPipeline":
        return "flux"
    raise SystemExit(f"{model_dir}/model_index.json: unsupported _class_name {cls}")


def load_pipeline(family: str, model_dir: Path, lora_dir: str, dtype: torch.dtype, device: str):
    lora = Path(lora_dir) if lora_dir else None
    # Without a LoRA to merge in float32, load straight into `dtype` (full-size FLUX in float32 takes 67 GB).
    load_dtype = torch.float32 if lora is not None else dtype
    if family == "sdxl":
        pipe = mg.load_sdxl(model_dir, lora, load_dtype)
        if lora is not None:
            pipe.unet = pipe.unet.merge_and_unload()
        pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    else:
        pipe = mg.load_flux(model_dir, lora, load_dtype)
        if lora is not None:
            pipe.transformer = pipe.transformer.merge_and_unload()
    return pipe.to(device=device, dtype=dtype)


class StageClock:
    """Wraps pipeline methods to record when each stage starts and ends during one call."""

    def __init__(self, device: str) -> None:
        self.sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        self.marks: Dict[str, float] = {}
        self.t5_s = 0.0

    def reset(self) -> None:
        self.marks.clear()
        self.t5_s = 0.0

    def around(self, obj, name: str, on_start: Callable[[float], None], on_end: Callable[[float], None]) -> None:
        inner = getattr(obj, name)

        def timed(*args, **kwargs):
            self.sync()
            on_start(time.perf_counter())
            out = inner(*args, **kwargs)
            self.sync()
            on_end(time.perf_counter())
            return out

        setattr(obj, name, timed)


def main(argv: List[str]) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads if args.threads > 0 else os.cpu_count())
    model_dir = Path(args.base_model_path)
    family = family_of(model_dir)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.dtype, torch.float32)
    default_scheduler = "lcm" if family == "sdxl" else "flow_match_tlcm"
    if args.scheduler not in ("", default_scheduler):
        raise SystemExit(f"--scheduler {args.scheduler}: this benchmark runs only {default_scheduler} for {family}")
    load_start = time.perf_counter()
    pipe = load_pipeline(family, model_dir, args.lora_path, dtype, args.device)
    load_s = time.perf_counter() - load_start
    if args.compile:
        # What a user of diffusers would do for speed: compile the denoiser and the decoder (shapes
        # are fixed per run, so fullgraph compilation applies).
        denoiser = "unet" if family == "sdxl" else "transformer"
        setattr(pipe, denoiser, torch.compile(getattr(pipe, denoiser), mode=args.compile, fullgraph=True))
        pipe.vae.decode = torch.compile(pipe.vae.decode, mode=args.compile, fullgraph=True)

    clock = StageClock(args.device)
    clock.around(pipe, "encode_prompt", lambda t: clock.marks.setdefault("encode_start", t),
                 lambda t: clock.marks.__setitem__("encode_end", t))
    clock.around(pipe.vae, "decode", lambda t: clock.marks.setdefault("decode_start", t), lambda t: None)
    if family == "flux":
        t5_start = {}
        clock.around(pipe, "_get_t5_prompt_embeds", lambda t: t5_start.__setitem__("t", t),
                     lambda t: setattr(clock, "t5_s", clock.t5_s + t - t5_start["t"]))

    def one_run(steps: int) -> Dict[str, float]:
        clock.reset()
        gens = mg.cpu_generators([args.seed + i for i in range(args.batch_size)])
        kwargs = dict(prompt=args.prompt, num_images_per_prompt=args.batch_size, num_inference_steps=steps,
                      width=args.width, height=args.height, generator=gens, output_type="pil")
        cpu_start, start = time.process_time(), time.perf_counter()
        with torch.no_grad():
            if family == "sdxl":
                images = pipe(guidance_scale=0.0, **kwargs).images
            else:
                pipe.scheduler.attach_generators(gens)
                guidance = args.guidance_scale if args.guidance_scale is not None else 7.0
                images = pipe(guidance_scale=guidance, max_sequence_length=args.max_sequence_length,
                              **kwargs).images
        end, cpu_end = time.perf_counter(), time.process_time()
        assert len(images) == args.batch_size
        m = clock.marks
        return {"total": end - start, "cpu": cpu_end - cpu_start, "encode": m["encode_end"] - m["encode_start"],
                "encode_t5": clock.t5_s, "denoise": m["decode_start"] - m["encode_end"],
                "decode": end - m["decode_start"]}

    on_cuda = args.device.startswith("cuda")

    def gib(counter) -> float:
        return round(counter(args.device) / 2**30, 3)

    for steps in args.steps_list:
        samples: List[Dict[str, float]] = []
        for r in range(args.warmup + args.repeats):
            s = one_run(steps)
            if r >= args.warmup:
                samples.append(s)

        def median_ms(key: str) -> float:
            values = sorted(s[key] for s in samples)
            return round(values[len(values) // 2] * 1000.0, 3) if values else 0.0  # pipeline_bench's median

        print(json.dumps({
            "impl": "diffusers-compile" if args.compile else "diffusers", "compile_mode": args.compile,
            "family": family, "device": args.device, "dtype": args.dtype, "steps": steps,
            "width": args.width, "height": args.height, "batch": args.batch_size, "threads": torch.get_num_threads(),
            "load_s": round(load_s, 3), "median_ms": median_ms("total"), "cpu_ms": median_ms("cpu"),
            "encode_ms": median_ms("encode"), "encode_t5_ms": median_ms("encode_t5"),
            "denoise_ms": median_ms("denoise"), "decode_ms": median_ms("decode"),
            "gpu_allocated_gib": gib(torch.cuda.memory_allocated) if on_cuda else -1.0,
            "gpu_peak_gib": gib(torch.cuda.max_memory_allocated) if on_cuda else -1.0, "torch": torch.__version__,
        }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
