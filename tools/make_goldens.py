#!/usr/bin/env python3
"""Golden test data for tlcm-serve: tiny random-weight diffusers pipelines and what the Python reference
stack (diffusers 0.31.0, transformers 4.39.3, peft 0.13.2, torch CPU float32) computes from them.

Developer tooling, not run by CI. The C++ tests read the files this script writes under tests/data/.

Usage
  tools/make_goldens.py [--cases sdxl-tiny,sdxl-rich,flux-tiny,flux-rich] [--out tests/data]
  tools/make_goldens.py --check-reference tests/data/reference   # reproduce the diffusers-made cases
  tools/make_goldens.py --cases sdxl-tiny --report               # how strongly each weight moves outputs
Everything is seeded: re-running rewrites the same cases (up to float noise of the torch build; the
committed files were made with torch 2.7.1 CPU, one thread).

Cases (tests/data/<case>/)
  sdxl-tiny  UNet block_out (4,8), layers_per_block 2, heads (2,4), transformer layers (1,2), groups 2;
             CLIP 16 (quick_gelu) + 24 (gelu, projection 16), 3 layers each; VAE (8,16) with quant convs;
             scheduler_config.json as diffusers saves an EulerDiscreteScheduler with SDXL's values;
             LoRA stored float16.
  sdxl-rich  UNet block_out (4,8,16), layers_per_block 1, Down/CrossAttnDown/CrossAttnDown, heads (1,2,4),
             transformer layers (1,1,2) (mid block 2), groups 2, conv_shortcut on channel changes,
             addition_time_embed_dim 4; UNet saved SHARDED (diffusion_pytorch_model.safetensors.index.json +
             diffusion_pytorch_model-0000k-of-0000n.safetensors); CLIP 16 (quick_gelu, 4 layers, 2 heads) +
             24 (gelu, 3 heads, projection 20); text_encoder_2 ALSO as model.fp16.safetensors (variant
             "fp16"); VAE 3 levels (8,8,16), layers_per_block 2; scheduler_config.json is SDXL's published file
             verbatim (legacy keys such as skip_prk_steps included); LoRA stored float16.
  flux-tiny  transformer in_channels 4 (VAE latent 1 channel x 2x2 packing), 1 double + 1 single block,
             2 heads x 16, axes_dims_rope (4,4,8), guidance_embeds FALSE; CLIP 16 (the very same
             text_encoder files as sdxl-tiny); T5 d_model 32, relu (non-gated), 4 layers, 8 buckets;
             VAE one level (4,), no quant convs, shift 0.0609,
             scaling 1.5035 (vae_scale_factor 2); FLUX.1-dev scheduler config; LoRA stored float16.
  flux-rich  transformer in_channels 16 (VAE latent 4), 2 double + 2 single blocks, 4 heads x 8,
             axes_dims_rope (2,2,4), guidance_embeds TRUE; CLIP 16 (2 heads) with eos_token_id 2013 (the
             non-legacy pooling branch); T5 gated-gelu, d_kv 6 x 4 heads (inner 24 != d_model 32), 16 buckets,
             max_distance 20; VAE (8,16), latent 4, no quant convs, shift 0.1159, scaling 0.3611
             (vae_scale_factor 4); scheduler config with base_image_seq_len 32, max_image_seq_len 512,
             base_shift 0.4, max_shift 1.2; LoRA stored bfloat16.
  Tokenizers are copies of tests/data/reference/{sdxl,flux}/case-1/model/tokenizer{,_2} (CLIP vocabulary
  truncated to 2014 ids: BOS <|startoftext|> = 2012, EOS <|endoftext|> = 2013; tokenizer pads with EOS,
  tokenizer_2 (SDXL) with "!" = 0; T5 SentencePiece with 500 ids, EOS 1, pad 0).

  model/  DiffusionPipeline.save_pretrained folder (model_index.json, one folder per component).
  lora/   adapter_model.safetensors (keys base_model.model.<module>.lora_A.weight / .lora_B.weight, PEFT's
          own save) + adapter_config.json (r 64, lora_alpha 8). Targets: SDXL_LORA_TARGETS / FLUX_LORA_TARGETS below.
          A and B are random and non-zero. Applied the TLCM way: get_peft_model(model, LoraConfig(r=64,
          target_modules=...)) then load_adapter(lora/, adapter_name="default"): scale = 8 / 64 = 0.125.
          The stored dtype (see cases) is converted to float32 on load; the goldens use those values.

Golden files (golden/*.safetensors): every tensor float32 (integer ids / timesteps / sizes stored as
float32). "2 samples" = two different prompts (case.prompts) and two different timesteps.

  text_encoder.safetensors / text_encoder_2.safetensors (CLIP):
    input_ids [2,77] (tokenizer of that encoder, padded to 77, truncated), hidden_states_penultimate
    [2,77,H] (hidden_states[-2], no final LN), last_hidden_state [2,77,H] (final LN), pooled [2,H]
    (final-LN state at the pooling position), text_embeds [2,P] (CLIPTextModelWithProjection only).
  text_encoder_2_fp16.safetensors (sdxl-rich): the same tensors computed in float32 from the fp16
    variant's weights (model.fp16.safetensors upcast), for variant-loading tests.
  text_encoder_2.safetensors (FLUX T5): input_ids [2,L] (L = max_sequence_length of the case: 24 tiny,
    32 rich; EOS 1 then pad 0, truncated), last_hidden_state [2,L,d_model] (no attention mask).
  unet.safetensors (SDXL): sample [2,4,8,12], timestep [2] = (999, 499), encoder_hidden_states [2,77,X]
    (the pipeline's prompt_embeds of the 2 prompts), text_embeds [2,P] (pooled_prompt_embeds), time_ids
    [2,6] = ((64,96,0,0,64,96), (80,48,8,16,48,64)) (non-zero crops on purpose), out [2,4,8,12] (eps).
  unet_lora.safetensors: the same inputs, out of the UNet with the LoRA at scale 0.125 (PEFT forward; the
    merged weights W + 0.125 * B @ A give the same output to ~1e-5 of the output scale, checked here).
  transformer.safetensors (FLUX): hidden_states [2,S,Cin] (packed, S = 6x4 grid tiny, 6x10 rich),
    encoder_hidden_states [2,L,J] (T5 prompt_embeds), pooled_projections [2,P] (CLIP pooled),
    timestep [2] = (1.0, 0.6) (sigma in [0,1]; the model multiplies by 1000 internally), guidance [2] =
    (7.0, 3.5) (flux-rich only; absent without guidance_embeds), img_ids [S,3] = (0, row, col) row-major,
    txt_ids [L,3] zeros (2-D, as FluxPipeline passes them), out [2,S,Cin] (velocity).
  transformer_lora.safetensors: the same inputs, out with the LoRA at scale 0.125.
  vae.safetensors: latents [2,C,8,6] = the decoder input (already divided by scaling_factor and, FLUX,
    shifted by shift_factor; post_quant_conv is applied inside when the VAE has it), image [2,3,h,w] =
    vae.decode(latents) in [-1,1] space BEFORE clamping (h = 8 * 2^(levels-1)).
  prompt_embeds.safetensors: the pipeline's encode_prompt for the prompts of the runs (golden/prompts.json
    lists them, in row order; one row per distinct prompt):
    SDXL: input_ids [N,77], input_ids_2 [N,77], prompt_embeds [N,77,H1+H2] (both penultimate states
    concatenated), pooled_prompt_embeds [N,P] (text_encoder_2's text_embeds).
    FLUX: input_ids [N,77] (CLIP), input_ids_2 [N,L] (T5), prompt_embeds [N,L,d_model] (T5),
    pooled_prompt_embeds [N,H] (CLIP pooled), text_ids [L,3] (zeros).
  latents.safetensors: RNG parity. image_hw [2] = (H, W) = (32, 48); for each seed s in
    0, 42, 4294967301 (2^32 + 5), 9223372036854775807 (2^63 - 1), with g = torch.Generator("cpu")
    .manual_seed(s): seed_<s> = torch.randn(latent shape, generator=g) (SDXL [1,4,H/f,W/f], f the
    pipeline's vae_scale_factor; FLUX [1,C,2*(H//f),2*(W//f)] with f = 2^len(vae block_out)), then
    seed_<s>_next = the NEXT draw from the same g in the step-noise shape (SDXL same shape; FLUX packed
    [1,S,4C]); FLUX also seed_<s>_packed = seed_<s> packed ([1,S,4C], what the pipeline denoises).
  scheduler.safetensors:
    SDXL: alphas_cumprod [1000]; timesteps_<N> [N] for N = 2..8 (LCMScheduler.from_config(the model's
      scheduler config), as TLCM does); tlcm_timesteps_<N> [N] for N = 1..8 (the seed sampler's
      evaluated timesteps, src/schedulers/tlcm_table_scheduler.h); one LCM step, N = 4, step index 0 at t = 999 (next 759):
      step_sample, step_model_output, step_noise (torch.randn from Generator.manual_seed(1234)),
      step_denoised, step_prev_sample [1,4,8,8]; last_denoised = the step at index 3 (t = 259) of the
      same inputs (the result of a last step is the denoised sample, no noise); tlcm_step_x0 and
      tlcm_step_prev_sample = the seed sampler's step at t = 999 -> 749 with the same inputs / noise.
    FLUX (FlowMatchEulerTLCMScheduler, src/schedulers/flow_match_tlcm_scheduler.h): for each size HxW in 512x512, 1024x1024 and the sizes
      of the runs, computed with THIS case's geometry (image_seq_len = (H//f) * (W//f), f =
      2^len(vae block_out)) and THIS case's scheduler config: image_seq_len_<H>x<W> [1], mu_<H>x<W> [1],
      sigmas_<N>_<H>x<W> [N+1] (trailing 0 included) for N = 2..8; sigmas_<N>_seq1024 / _seq4096
      [N+1]: image_seq_len 1024 / 4096 (what real FLUX uses at 512^2 / 1024^2). One step at N = 4, index
      0, first run's size: step_sample, step_model_output, step_noise (Generator.manual_seed(1234),
      packed shape [1,S,4C]), step_sigma [1], step_sigma_next [1], step_denoised = x - sigma * v,
      step_prev_sample = sigma_next * noise + (1 - sigma_next) * denoised; last_sigma [1] and
      last_prev_sample: the step at index 3 (sigma_next = 0, so the result is the denoised sample).

End-to-end runs: golden/runs.json (a JSON list) + golden/images/<run>-<i>.png. Each entry: name,
scheduler ("lcm" | "tlcm" | "flow_match_tlcm"), prompts (one per image), seeds (one per image: image i
used torch.Generator("cpu").manual_seed(seeds[i]) for its initial latent and every later noise draw),
steps, width, height, guidance_scale, max_sequence_length (FLUX only), lora_scale (0.125 = TLCM LoRA,
0.0 = no LoRA), num_images_per_prompt (how the diffusers call was made: >1 means one prompt with
num_images_per_prompt, else a list of prompts), images (paths relative to golden/).
  lcm:  StableDiffusionXLPipeline + LCMScheduler.from_config(model scheduler config), guidance_scale 0,
        no watermark, output_type "pil", generator = the list of per-image generators.
  tlcm: the authors' inference.py sampler (src/schedulers/tlcm_table_scheduler.h): the pipeline's encode_prompt and add_time_ids
        ((H,W,0,0,H,W)), x = randn per image, for each evaluated t: x0 = (x - sqrt(1-ac[t]) eps) /
        sqrt(ac[t]); between steps x = sqrt(ac[t']) x0 + sqrt(1-ac[t']) noise (noise per image from its
        generator, shape [1,4,h,w]); the image is vae.decode(x0 / scaling_factor), postprocessed like the
        pipeline ((x/2 + 0.5).clamp(0,1) * 255, ROUNDED). The timestep reaches the UNet as int64 [B].
  flow_match_tlcm: FluxPipeline with this file's FlowMatchEulerTLCMScheduler, whose step draws its noise
        (packed shape [1,S,4C] per image) from the same per-image generators; guidance = guidance_scale
        (used only with guidance_embeds). The pipeline passes timestep = (sigma*1000 as float32) / 1000.
Expected agreement: fp32 C++ images within a few uint8 levels of these PNGs (usually exact); component
outputs within ~1e-4 of the output scale. --check-reference with torch 2.7.1 reproduces every
tests/data/reference PNG exactly except one channel of one pixel of sdxl/case-1 (float value 69.49997,
rounded the other way by the torch 1.13 that made it).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import diffusers
import transformers
from diffusers import (AutoencoderKL, EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler, FluxPipeline,
                       FluxTransformer2DModel, LCMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel)
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from peft import LoraConfig, get_peft_model
from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer, T5Config,
                          T5EncoderModel, T5Tokenizer)

REPO = Path(__file__).resolve().parents[1]
REFERENCE_TOKENIZERS = REPO / "tests" / "data" / "reference"

SDXL_LORA_TARGETS = [
    "to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1", "conv2",
    "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj",
]
FLUX_LORA_TARGETS = [
    "to_k", "to_q", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "context_embedder",
    "x_embedder", "linear", "linear_1", "linear_2", "proj_mlp", "add_k_proj", "add_q_proj", "add_v_proj",
    "to_add_out", "ff_context.net.0.proj", "ff_context.net.2",
]
LORA_RANK = 64
TLCM_LORA_SCALE = 8.0 / LORA_RANK  # PEFT's default lora_alpha (8) over r: the TLCM loading path

# scheduler/scheduler_config.json of stabilityai/stable-diffusion-xl-base-1.0 (extra legacy keys included).
SDXL_SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}
# scheduler/scheduler_config.json of black-forest-labs/FLUX.1-dev.
FLUX_SCHEDULER_CONFIG = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "_diffusers_version": "0.30.0.dev0",
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
}

# The seed's own SDXL sampler (TLCM inference.py): a 9-point grid and the points visited per step count.
TLCM_GRID = [999, 874, 749, 624, 499, 374, 249, 124, 0]
TLCM_PICKS = {
    1: [0, 8], 2: [0, 4, 8], 3: [0, 4, 7, 8], 4: [0, 2, 4, 7, 8], 5: [0, 2, 4, 6, 7, 8],
    6: [0, 2, 4, 5, 6, 7, 8], 7: [0, 2, 3, 4, 5, 6, 7, 8], 8: [0, 1, 2, 3, 4, 5, 6, 7, 8],
}

LATENT_SEEDS = [0, 42, 2**32 + 5, 2**63 - 1]


def tlcm_timesteps(steps: int) -> List[int]:
    """Timesteps the seed's sampler evaluates the UNet at (the trailing 0 is never evaluated)."""
    return [TLCM_GRID[i] for i in TLCM_PICKS[steps][:-1]]


def cpu_generators(seeds: Sequence[int]) -> List[torch.Generator]:
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]


# ----------------------------------------------------------------------------------------------
# FLUX TLCM scheduler (src/schedulers/flow_match_tlcm_scheduler.h), written from its description.
# ----------------------------------------------------------------------------------------------
class FlowMatchEulerTLCMScheduler(SchedulerMixin, ConfigMixin):
    """Flow-matching sampler of the TLCM seed: each step jumps to the clean estimate and re-noises it.

    Schedule: sigmas = linspace(1, 1/N, N), shifted by exp(mu) / (exp(mu) + 1/sigma - 1) (dynamic shifting)
    or by shift * s / (1 + (shift - 1) * s), then a trailing 0. step(): x0 = x - sigma * v,
    x_next = sigma_next * noise + (1 - sigma_next) * x0 with noise drawn from `generator` (or from the
    generators attached with `attach_generators`, because stock FluxPipeline does not pass one).
    """

    order = 1
    _compatibles = []

    @register_to_config
    def __init__(self, num_train_timesteps: int = 1000, shift: float = 1.0, use_dynamic_shifting: bool = False,
                 base_shift: float = 0.5, max_shift: float = 1.15, base_image_seq_len: int = 256,
                 max_image_seq_len: int = 4096):
        self.sigmas = torch.ones(1)
        self.timesteps = torch.full((1,), float(num_train_timesteps))
        self.num_inference_steps = None
        self._index = 0
        self._generators = None

    def attach_generators(self, generators):
        """Generators used by step() when the caller passes none (FluxPipeline never does)."""
        self._generators = generators

    def set_timesteps(self, num_inference_steps: Optional[int] = None, device=None,
                      sigmas: Optional[Sequence[float]] = None, mu: Optional[float] = None):
        if sigmas is None:
            sigmas = np.linspace(1.0, 1.0 / num_inference_steps, num_inference_steps)
        sigmas = np.asarray(sigmas, dtype=np.float64)
        if self.config.use_dynamic_shifting:
            if mu is None:
                raise ValueError("dynamic shifting needs mu")
            sigmas = math.exp(mu) / (math.exp(mu) + (1.0 / sigmas - 1.0))
        else:
            s = self.config.shift
            sigmas = s * sigmas / (1.0 + (s - 1.0) * sigmas)
        sig = torch.from_numpy(sigmas).to(torch.float32)
        self.timesteps = (sig * self.config.num_train_timesteps).to(device)
        self.sigmas = torch.cat([sig, torch.zeros(1)])
        self.num_inference_steps = len(sig)
        self._index = 0

    def step(self, model_output, timestep, sample, generator=None, return_dict=True):
        if generator is None:
            generator = self._generators
        sigma = self.sigmas[self._index]
        sigma_next = self.sigmas[self._index + 1]
        x = sample.to(torch.float32)
        denoised = x - sigma * model_output
        noise = randn_tensor(denoised.shape, generator=generator, device=model_output.device,
                             dtype=model_output.dtype)
        prev = sigma_next * noise + (1 - sigma_next) * denoised
        self._index += 1
        prev = prev.to(model_output.dtype)
        if not return_dict:
            return (prev, denoised.to(model_output.dtype))
        return {"prev_sample": prev, "denoised": denoised}


def flux_mu(image_seq_len: int, cfg) -> float:
    """The pipeline's resolution-dependent shift (diffusers' calculate_shift)."""
    m = (cfg["max_shift"] - cfg["base_shift"]) / (cfg["max_image_seq_len"] - cfg["base_image_seq_len"])
    b = cfg["base_shift"] - m * cfg["base_image_seq_len"]
    return image_seq_len * m + b


# ----------------------------------------------------------------------------------------------
# Weight randomisation: make every part of the computation move the outputs.
# ----------------------------------------------------------------------------------------------
@dataclass
class Gain:
    """Weights whose name matches `pattern` get std gain/sqrt(fan_in) (matrices) or the given spreads."""
    pattern: str
    gain: float = 1.0
    norm_center: Optional[float] = None
    norm_spread: Optional[float] = None
    bias_std: Optional[float] = None
    embed_std: Optional[float] = None


def liven(model: torch.nn.Module, seed: int, gains: Sequence[Gain] = (), norm_center: float = 1.0,
          norm_spread: float = 0.25, bias_std: float = 0.2, embed_std: float = 1.0) -> None:
    """Redraws every parameter from a seeded generator.

    Matrices / kernels: N(0, gain^2 / fan_in); biases N(0, bias_std^2); 1-D scales (norm weights)
    norm_center + N(0, norm_spread^2); embedding tables N(0, embed_std^2). The first matching Gain
    (regex on the parameter name) overrides these.
    """
    gen = torch.Generator().manual_seed(seed)
    embedding_names = {name + ".weight" for name, mod in model.named_modules() if isinstance(mod, torch.nn.Embedding)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            rule = next((g for g in gains if re.search(g.pattern, name)), Gain(".*"))
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name in embedding_names:
                std = rule.embed_std if rule.embed_std is not None else embed_std
                p.copy_(noise * std)
            elif name.endswith("bias"):
                std = rule.bias_std if rule.bias_std is not None else bias_std
                p.copy_(noise * std)
            elif p.dim() == 1:
                center = rule.norm_center if rule.norm_center is not None else norm_center
                spread = rule.norm_spread if rule.norm_spread is not None else norm_spread
                p.copy_(center + spread * noise)
            else:
                fan_in = p[0].numel()
                p.copy_(noise * (rule.gain / math.sqrt(fan_in)))


def randomize_lora(peft_model: torch.nn.Module, seed: int, b_std: float) -> None:
    """lora_A ~ N(0, 1/fan_in), lora_B ~ N(0, b_std^2): a LoRA that visibly changes the outputs at scale 1/8."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if ".lora_A." in name:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))
            elif ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=gen) * b_std)


# ----------------------------------------------------------------------------------------------
# Case descriptions
# ----------------------------------------------------------------------------------------------
@dataclass
class Run:
    name: str
    scheduler: str  # "lcm" | "tlcm" | "flow_match_tlcm"
    prompts: List[str]  # one per image
    seeds: List[int]  # one per image
    steps: int
    width: int
    height: int
    guidance_scale: float = 0.0
    max_sequence_length: Optional[int] = None
    lora_scale: float = TLCM_LORA_SCALE
    num_images_per_prompt: int = 1  # >1: prompts[0] repeated, the diffusers call used num_images_per_prompt


@dataclass
class Case:
    name: str
    family: str  # "sdxl" | "flux"
    seed: int
    text_encoder: dict
    text_encoder_2: dict
    denoiser: dict  # UNet2DConditionModel or FluxTransformer2DModel kwargs
    vae: dict
    denoiser_gains: List[Gain]
    vae_gains: List[Gain]
    te_gains: List[Gain]
    te2_gains: List[Gain]
    runs: List[Run]
    unet_latent_hw: tuple = (8, 12)  # component goldens: latent grid (SDXL) / packed grid (FLUX)
    prompts: tuple = ()
    lora_dtype: torch.dtype = torch.float32
    lora_b_std: float = 0.3
    scheduler_config: Optional[dict] = None  # written verbatim as scheduler_config.json when given
    shard_unet: Optional[str] = None  # max_shard_size for the denoiser
    te2_fp16_variant: bool = False
    max_sequence_length: int = 24  # FLUX: T5 length of the component / prompt goldens
    latents_hw: tuple = (32, 48)  # image size (H, W) whose latent shape latents.safetensors uses
    te1_seed: Optional[int] = None  # seed of text_encoder's weights (default: case seed + 1)
    vae_out_gain: float = 1.0


CLIP_GAINS = [
    Gain(r"position_embedding", embed_std=0.5),
    Gain(r"out_proj\.weight", gain=1.5),
    Gain(r"fc2\.weight", gain=1.2),
    Gain(r"text_projection", gain=1.0),
]
T5_GAINS = [
    Gain(r"relative_attention_bias", embed_std=1.0),
    Gain(r"SelfAttention\.q\.weight", gain=0.35),
    Gain(r"SelfAttention\.o\.weight", gain=1.5),
]
UNET_GAINS = [
    Gain(r"time_emb_proj\.weight", gain=3.0),
    Gain(r"time_emb_proj\.bias", bias_std=0.3),
    Gain(r"attn2\.to_[kv]\.weight", gain=3.0),
    Gain(r"attn1\.to_[qk]\.weight", gain=1.5),
    Gain(r"add_embedding\.linear_1\.weight", gain=2.0),
    Gain(r"conv_out\.weight", gain=1.0),
]
SDXL_VAE_GAINS = [
    Gain(r"decoder\.conv_out\.weight", gain=0.8),
    Gain(r"attentions\.0\.to_[qk]\.weight", gain=1.5),
]
FLUX_GAINS = [
    # Keep the per-token-constant part of the output (AdaLN shift through proj_out, proj_out bias) small, so
    # that the image is not a fixed 2x2 pattern.
    Gain(r"^norm_out\.linear\.weight", gain=0.4),
    Gain(r"^norm_out\.linear\.bias", bias_std=0.05),
    Gain(r"^proj_out\.bias", bias_std=0.02),
    Gain(r"norm_added_k\.weight", norm_center=2.5, norm_spread=0.4),
    Gain(r"norm_(added_)?[qk]\.weight", norm_center=2.0, norm_spread=0.4),
    Gain(r"add_k_proj\.weight", gain=2.5),
    Gain(r"add_v_proj\.weight", gain=4.0),
    Gain(r"context_embedder\.weight", gain=2.0),
    Gain(r"time_text_embed\..*linear_1\.weight", gain=2.0),
    Gain(r"(norm1|norm1_context|norm|norm_out)\.linear\.weight", gain=0.8),
    Gain(r"^proj_out\.weight", gain=1.0),
]
FLUX_VAE_GAINS = [
    Gain(r"decoder\.conv_out\.weight", gain=0.6),
    Gain(r"attentions\.0\.to_[qk]\.weight", gain=1.5),
]

PROMPT_A = "a castle on a hill under a starry sky"
PROMPT_B = "A red fox, sitting in fresh snow!"
PROMPT_C = "photo of an old lighthouse at dawn, soft light"
PROMPT_LONG = ("an extremely detailed painting of a quiet harbor town at sunset, with fishing boats, gulls, "
               "wet cobblestone streets, warm lanterns in every window, children running along the pier, "
               "a lighthouse far away, mountains behind the town and a sky full of orange and purple clouds")


def sdxl_tiny() -> Case:
    te1 = dict(vocab_size=2014, hidden_size=16, intermediate_size=37, num_attention_heads=4, num_hidden_layers=3,
               hidden_act="quick_gelu", max_position_embeddings=77, projection_dim=16, bos_token_id=0,
               eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-5)
    te2 = dict(te1, hidden_size=24, intermediate_size=40, num_attention_heads=4, hidden_act="gelu",
               projection_dim=16)
    unet = dict(sample_size=32, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(4, 8),
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=2,
                attention_head_dim=(2, 4), transformer_layers_per_block=(1, 2), cross_attention_dim=16 + 24,
                use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
                projection_class_embeddings_input_dim=16 + 6 * 8)
    vae = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
               down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
               layers_per_block=1, norm_num_groups=4, sample_size=64, scaling_factor=0.13025, force_upcast=True)
    runs = [
        Run("lcm-2", "lcm", [PROMPT_A], [7], 2, 64, 64),
        Run("lcm-4-wide", "lcm", [PROMPT_B], [8], 4, 64, 48),
        Run("lcm-3-pair", "lcm", [PROMPT_A, PROMPT_A], [11, 12], 3, 48, 64, num_images_per_prompt=2),
        Run("lcm-4-mixed", "lcm", [PROMPT_C, PROMPT_B], [21, 5], 4, 64, 64),
        Run("lcm-2-nolora", "lcm", [PROMPT_A], [7], 2, 64, 64, lora_scale=0.0),
        Run("tlcm-4", "tlcm", [PROMPT_B], [5], 4, 64, 64),
        Run("tlcm-3-long", "tlcm", [PROMPT_LONG], [3], 3, 48, 64),
    ]
    return Case("sdxl-tiny", "sdxl", 1001, te1, te2, unet, vae, UNET_GAINS, SDXL_VAE_GAINS, CLIP_GAINS, CLIP_GAINS,
                runs, unet_latent_hw=(8, 12), prompts=(PROMPT_A, PROMPT_B), lora_dtype=torch.float16,
                scheduler_config=None)


def sdxl_rich() -> Case:
    te1 = dict(vocab_size=2014, hidden_size=16, intermediate_size=24, num_attention_heads=2, num_hidden_layers=4,
               hidden_act="quick_gelu", max_position_embeddings=77, projection_dim=16, bos_token_id=0,
               eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-5)
    te2 = dict(te1, hidden_size=24, intermediate_size=48, num_attention_heads=3, num_hidden_layers=3,
               hidden_act="gelu", projection_dim=20)
    unet = dict(sample_size=32, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(4, 8, 16),
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=2,
                attention_head_dim=(1, 2, 4), transformer_layers_per_block=(1, 1, 2), cross_attention_dim=16 + 24,
                use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=4,
                projection_class_embeddings_input_dim=20 + 6 * 4)
    vae = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16),
               down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
               layers_per_block=2, norm_num_groups=4, sample_size=64, scaling_factor=0.13025, force_upcast=True)
    runs = [
        Run("lcm-2", "lcm", [PROMPT_C], [1], 2, 64, 64),
        Run("lcm-4-tall", "lcm", [PROMPT_A], [99], 4, 48, 64),
        Run("lcm-8", "lcm", [PROMPT_B], [2024], 8, 64, 48),
        Run("lcm-2-pair", "lcm", [PROMPT_B, PROMPT_B], [30, 31], 2, 64, 64, num_images_per_prompt=2),
        Run("lcm-3-mixed", "lcm", [PROMPT_A, PROMPT_LONG], [4, 77], 3, 64, 64),
        Run("tlcm-2", "tlcm", [PROMPT_C], [6], 2, 64, 64),
        Run("tlcm-8", "tlcm", [PROMPT_A], [9], 8, 48, 64),
    ]
    return Case("sdxl-rich", "sdxl", 2002, te1, te2, unet, vae, UNET_GAINS, SDXL_VAE_GAINS, CLIP_GAINS, CLIP_GAINS,
                runs, unet_latent_hw=(8, 12), prompts=(PROMPT_C, PROMPT_LONG), lora_dtype=torch.float16,
                scheduler_config=SDXL_SCHEDULER_CONFIG, shard_unet="60KB", te2_fp16_variant=True)


def flux_tiny() -> Case:
    te1 = dict(vocab_size=2014, hidden_size=16, intermediate_size=37, num_attention_heads=4, num_hidden_layers=3,
               hidden_act="quick_gelu", max_position_embeddings=77, projection_dim=16, bos_token_id=0,
               eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-5)
    t5 = dict(vocab_size=512, d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=4, num_decoder_layers=1,
              feed_forward_proj="relu", relative_attention_num_buckets=8, relative_attention_max_distance=128,
              layer_norm_epsilon=1e-6, dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
              is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False)
    transformer = dict(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
                       num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=16,
                       guidance_embeds=False, axes_dims_rope=(4, 4, 8))
    vae = dict(in_channels=3, out_channels=3, latent_channels=1, block_out_channels=(4,),
               down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",), layers_per_block=1,
               norm_num_groups=1, sample_size=32, use_quant_conv=False, use_post_quant_conv=False,
               shift_factor=0.0609, scaling_factor=1.5035)
    runs = [
        Run("flow-2", "flow_match_tlcm", [PROMPT_A], [3], 2, 32, 32, guidance_scale=7.0, max_sequence_length=24),
        Run("flow-4-wide", "flow_match_tlcm", [PROMPT_B], [10], 4, 48, 32, guidance_scale=7.0,
            max_sequence_length=24),
        Run("flow-3-pair", "flow_match_tlcm", [PROMPT_C, PROMPT_C], [11, 12], 3, 32, 32, guidance_scale=7.0,
            max_sequence_length=24, num_images_per_prompt=2),
        Run("flow-4-mixed", "flow_match_tlcm", [PROMPT_B, PROMPT_LONG], [8, 1], 4, 32, 40, guidance_scale=7.0,
            max_sequence_length=24),
        Run("flow-2-nolora", "flow_match_tlcm", [PROMPT_A], [3], 2, 32, 32, guidance_scale=7.0,
            max_sequence_length=24, lora_scale=0.0),
    ]
    return Case("flux-tiny", "flux", 3003, te1, t5, transformer, vae, FLUX_GAINS, FLUX_VAE_GAINS, CLIP_GAINS,
                T5_GAINS, runs, unet_latent_hw=(6, 4), prompts=(PROMPT_A, PROMPT_LONG), lora_dtype=torch.float16,
                scheduler_config=FLUX_SCHEDULER_CONFIG, max_sequence_length=24, te1_seed=1002)


def flux_rich() -> Case:
    te1 = dict(vocab_size=2014, hidden_size=16, intermediate_size=40, num_attention_heads=2, num_hidden_layers=3,
               hidden_act="quick_gelu", max_position_embeddings=77, projection_dim=16, bos_token_id=2012,
               eos_token_id=2013, pad_token_id=2013, layer_norm_eps=1e-5)
    t5 = dict(vocab_size=512, d_model=32, d_ff=40, d_kv=6, num_heads=4, num_layers=3, num_decoder_layers=1,
              feed_forward_proj="gated-gelu", relative_attention_num_buckets=16, relative_attention_max_distance=20,
              layer_norm_epsilon=1e-6, dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
              is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False)
    transformer = dict(patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=8,
                       num_attention_heads=4, joint_attention_dim=32, pooled_projection_dim=16,
                       guidance_embeds=True, axes_dims_rope=(2, 2, 4))
    vae = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
               down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
               layers_per_block=1, norm_num_groups=4, sample_size=32, use_quant_conv=False,
               use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611)
    sched = dict(FLUX_SCHEDULER_CONFIG, base_image_seq_len=32, max_image_seq_len=512, base_shift=0.4,
                 max_shift=1.2)
    runs = [
        Run("flow-2", "flow_match_tlcm", [PROMPT_C], [3], 2, 32, 32, guidance_scale=7.0, max_sequence_length=32),
        Run("flow-4-tall", "flow_match_tlcm", [PROMPT_A], [44], 4, 32, 64, guidance_scale=3.5,
            max_sequence_length=32),
        Run("flow-8-wide", "flow_match_tlcm", [PROMPT_B], [5], 8, 64, 48, guidance_scale=7.0,
            max_sequence_length=32),
        Run("flow-3-pair", "flow_match_tlcm", [PROMPT_A, PROMPT_A], [11, 12], 3, 48, 48, guidance_scale=5.0,
            max_sequence_length=32, num_images_per_prompt=2),
        Run("flow-4-mixed", "flow_match_tlcm", [PROMPT_LONG, PROMPT_C], [2, 9], 4, 48, 32, guidance_scale=7.0,
            max_sequence_length=32),
    ]
    return Case("flux-rich", "flux", 4004, te1, t5, transformer, vae, FLUX_GAINS, FLUX_VAE_GAINS, CLIP_GAINS,
                T5_GAINS, runs, unet_latent_hw=(6, 10), prompts=(PROMPT_B, PROMPT_LONG), lora_dtype=torch.bfloat16,
                scheduler_config=sched, max_sequence_length=32)


CASES: Dict[str, Callable[[], Case]] = {
    "sdxl-tiny": sdxl_tiny, "sdxl-rich": sdxl_rich, "flux-tiny": flux_tiny, "flux-rich": flux_rich,
}


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------
def f32(t) -> torch.Tensor:
    return torch.as_tensor(t).detach().to(torch.float32).contiguous().clone()


def save_golden(path: Path, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes a golden file: every tensor float32, contiguous."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": "pt"}
    meta.update(metadata or {})
    save_file({k: f32(v) for k, v in tensors.items()}, str(path), metadata=meta)


def unique(seq):
    out = []
    for x in seq:
        if x not in out:
            out.append(x)
    return out


def diffusers_call_prompt(run: Run):
    """(prompt argument, num_images_per_prompt) of the diffusers call that produced `run`."""
    if run.num_images_per_prompt > 1:
        assert all(p == run.prompts[0] for p in run.prompts)
        assert len(run.prompts) == run.num_images_per_prompt
        return run.prompts[0], run.num_images_per_prompt
    return (run.prompts[0] if len(run.prompts) == 1 else list(run.prompts)), 1


def tlcm_lora(model: torch.nn.Module, targets: Sequence[str], lora_dir: Path) -> torch.nn.Module:
    """The seed's LoRA path: a fresh LoraConfig(r=64) adapter named "default", weights loaded into it (the
    adapter's own adapter_config.json is never read, so lora_alpha is PEFT's default 8: scale 1/8)."""
    peft_model = get_peft_model(model, LoraConfig(r=LORA_RANK, target_modules=list(targets)))
    peft_model.load_adapter(str(lora_dir), adapter_name="default")
    # Every stored tensor must have landed in the model.
    stored = load_file(str(lora_dir / "adapter_model.safetensors"))
    params = dict(peft_model.named_parameters())
    for key, value in stored.items():
        name = key.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight",
                                                                               ".lora_B.default.weight")
        assert name in params, f"adapter key {key} did not load"
        assert torch.equal(params[name].detach(), value.to(torch.float32)), key
    n_lora = sum(1 for n in params if ".lora_" in n)
    assert n_lora == len(stored), (n_lora, len(stored))
    peft_model.eval()
    return peft_model


def write_png(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(str(path), format="PNG", optimize=True)


# ----------------------------------------------------------------------------------------------
# Building the cases
# ----------------------------------------------------------------------------------------------
def copy_tokenizers(family: str, model_dir: Path) -> None:
    src = REFERENCE_TOKENIZERS / family / "case-1" / "model"
    for name in ("tokenizer", "tokenizer_2"):
        shutil.rmtree(model_dir / name, ignore_errors=True)
        shutil.copytree(src / name, model_dir / name)


def build_models(case: Case):
    """Random-weight components of `case` (float32, eval mode)."""
    torch.manual_seed(case.seed)
    if case.family == "sdxl":
        te1 = CLIPTextModel(CLIPTextConfig(**case.text_encoder))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(**case.text_encoder_2))
        denoiser = UNet2DConditionModel(**case.denoiser)
    else:
        te1 = CLIPTextModel(CLIPTextConfig(**case.text_encoder))
        te2 = T5EncoderModel(T5Config(**case.text_encoder_2))
        denoiser = FluxTransformer2DModel(**case.denoiser)
    vae = AutoencoderKL(**case.vae)
    liven(te1, case.te1_seed if case.te1_seed is not None else case.seed + 1, case.te_gains)
    liven(te2, case.seed + 2, case.te2_gains)
    liven(denoiser, case.seed + 3, case.denoiser_gains)
    liven(vae, case.seed + 4, case.vae_gains)
    for m in (te1, te2, denoiser, vae):
        m.eval()
    return te1, te2, denoiser, vae


def build_case(case: Case, root: Path) -> None:
    """Writes <root>/model (diffusers layout) and <root>/lora (PEFT adapter)."""
    model_dir, lora_dir = root / "model", root / "lora"
    shutil.rmtree(root, ignore_errors=True)
    te1, te2, denoiser, vae = build_models(case)
    tok_src = REFERENCE_TOKENIZERS / case.family / "case-1" / "model"
    tok1 = CLIPTokenizer.from_pretrained(str(tok_src / "tokenizer"))
    if case.family == "sdxl":
        tok2 = CLIPTokenizer.from_pretrained(str(tok_src / "tokenizer_2"))
        sched = EulerDiscreteScheduler.from_config(case.scheduler_config or SDXL_SCHEDULER_CONFIG)
        pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tok1,
                                         tokenizer_2=tok2, unet=denoiser, scheduler=sched, add_watermarker=False)
        denoiser_folder, targets = "unet", SDXL_LORA_TARGETS
    else:
        tok2 = T5Tokenizer.from_pretrained(str(tok_src / "tokenizer_2"))
        sched = FlowMatchEulerDiscreteScheduler.from_config(case.scheduler_config)
        pipe = FluxPipeline(scheduler=sched, vae=vae, text_encoder=te1, tokenizer=tok1, text_encoder_2=te2,
                            tokenizer_2=tok2, transformer=denoiser)
        denoiser_folder, targets = "transformer", FLUX_LORA_TARGETS
    pipe.save_pretrained(str(model_dir))
    copy_tokenizers(case.family, model_dir)
    if case.scheduler_config is not None:
        # Keep the published file verbatim (legacy keys included), as the real checkpoints ship it.
        (model_dir / "scheduler" / "scheduler_config.json").write_text(
            json.dumps(case.scheduler_config, indent=2, sort_keys=True) + "\n")
    if case.shard_unet:
        for f in (model_dir / denoiser_folder).glob("diffusion_pytorch_model*"):
            f.unlink()
        denoiser.save_pretrained(str(model_dir / denoiser_folder), max_shard_size=case.shard_unet)
        assert (model_dir / denoiser_folder / "diffusion_pytorch_model.safetensors.index.json").exists()
    if case.te2_fp16_variant:
        # fp16 weights beside the fp32 ones; config.json is written last by the fp32 save.
        copy.deepcopy(te2).to(torch.float16).save_pretrained(str(model_dir / "text_encoder_2"), variant="fp16")
        te2.save_pretrained(str(model_dir / "text_encoder_2"))
        assert (model_dir / "text_encoder_2" / "model.fp16.safetensors").exists()

    # The adapter: PEFT's own save of a LoraConfig(r=64) adapter with random non-zero A and B.
    peft_model = get_peft_model(copy.deepcopy(denoiser), LoraConfig(r=LORA_RANK, target_modules=list(targets)))
    randomize_lora(peft_model, case.seed + 5, case.lora_b_std)
    peft_model.save_pretrained(str(lora_dir))
    (lora_dir / "README.md").unlink(missing_ok=True)
    if case.lora_dtype != torch.float32:
        path = lora_dir / "adapter_model.safetensors"
        sd = load_file(str(path))
        save_file({k: v.to(case.lora_dtype).contiguous() for k, v in sd.items()}, str(path),
                  metadata={"format": "pt"})
    cfg = json.loads((lora_dir / "adapter_config.json").read_text())
    assert cfg["r"] == LORA_RANK and cfg["lora_alpha"] == 8, cfg
    # PEFT writes the targets as a set, and for 20+ targets (FLUX) replaces them by the minimal suffixes
    # that select the same modules ("proj", "2", ...). Store the configured list, in our order, as the
    # published adapters do; re-runs are then byte-identical.
    cfg["target_modules"] = list(targets)
    (lora_dir / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------------------------
# Loading pipelines from disk (what every golden is computed from)
# ----------------------------------------------------------------------------------------------
def load_sdxl(model_dir: Path, lora_dir: Optional[Path],
              torch_dtype: torch.dtype = torch.float32) -> StableDiffusionXLPipeline:
    pipe = StableDiffusionXLPipeline.from_pretrained(str(model_dir), add_watermarker=False, torch_dtype=torch_dtype)
    if lora_dir is not None:
        pipe.unet = tlcm_lora(pipe.unet, SDXL_LORA_TARGETS, lora_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_flux(model_dir: Path, lora_dir: Optional[Path], torch_dtype: torch.dtype = torch.float32) -> FluxPipeline:
    pipe = FluxPipeline.from_pretrained(str(model_dir), torch_dtype=torch_dtype)
    pipe.scheduler = FlowMatchEulerTLCMScheduler.from_config(pipe.scheduler.config)
    if lora_dir is not None:
        pipe.transformer = tlcm_lora(pipe.transformer, FLUX_LORA_TARGETS, lora_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ----------------------------------------------------------------------------------------------
# End-to-end runs
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def sdxl_images(pipe: StableDiffusionXLPipeline, run: Run) -> List[Image.Image]:
    prompt, per_prompt = diffusers_call_prompt(run)
    gens = cpu_generators(run.seeds)
    if run.scheduler == "lcm":
        pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
        return pipe(prompt=prompt, num_images_per_prompt=per_prompt, num_inference_steps=run.steps,
                    guidance_scale=0.0, width=run.width, height=run.height, generator=gens,
                    output_type="pil").images
    assert run.scheduler == "tlcm", run.scheduler
    # The authors' inference.py loop (src/schedulers/tlcm_table_scheduler.h) on top of the pipeline's prompt encoding and latents.
    prompt_embeds, _, pooled, _ = pipe.encode_prompt(prompt=prompt, device=torch.device("cpu"),
                                                     num_images_per_prompt=per_prompt,
                                                     do_classifier_free_guidance=False)
    batch = prompt_embeds.shape[0]
    time_ids = pipe._get_add_time_ids((run.height, run.width), (0, 0), (run.height, run.width),
                                      dtype=prompt_embeds.dtype,
                                      text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim)
    added = {"text_embeds": pooled, "time_ids": time_ids.repeat(batch, 1)}
    s = pipe.vae_scale_factor
    x = randn_tensor((batch, pipe.unet.config.in_channels, run.height // s, run.width // s), generator=gens,
                     dtype=prompt_embeds.dtype)
    ac = LCMScheduler.from_config(pipe.scheduler.config).alphas_cumprod
    ts = [TLCM_GRID[i] for i in TLCM_PICKS[run.steps]]
    x0 = None
    for j in range(len(ts) - 1):
        t = ts[j]
        eps = pipe.unet(x, torch.full((batch,), t, dtype=torch.long), encoder_hidden_states=prompt_embeds,
                        added_cond_kwargs=added).sample
        x0 = (x - torch.sqrt(1 - ac[t]) * eps) / torch.sqrt(ac[t])
        if j + 1 < len(ts) - 1:
            t_next = ts[j + 1]
            noise = randn_tensor(x0.shape, generator=gens, dtype=x0.dtype)
            x = ac[t_next] ** 0.5 * x0 + (1 - ac[t_next]) ** 0.5 * noise
    image = pipe.vae.decode(x0 / pipe.vae.config.scaling_factor, return_dict=False)[0]
    return pipe.image_processor.postprocess(image, output_type="pil")


@torch.no_grad()
def flux_images(pipe: FluxPipeline, run: Run) -> List[Image.Image]:
    assert run.scheduler == "flow_match_tlcm", run.scheduler
    prompt, per_prompt = diffusers_call_prompt(run)
    gens = cpu_generators(run.seeds)
    pipe.scheduler.attach_generators(gens)
    return pipe(prompt=prompt, num_images_per_prompt=per_prompt, num_inference_steps=run.steps,
                guidance_scale=run.guidance_scale, width=run.width, height=run.height, generator=gens,
                max_sequence_length=run.max_sequence_length, output_type="pil").images


def run_images(family: str, model_dir: Path, lora_dir: Path, runs: Sequence[Run]) -> Dict[str, List[Image.Image]]:
    """Images of every run, pipelines loaded from disk (with / without the LoRA as each run asks)."""
    out = {}
    load = load_sdxl if family == "sdxl" else load_flux
    make = sdxl_images if family == "sdxl" else flux_images
    for with_lora in (False, True):
        todo = [r for r in runs if (r.lora_scale != 0.0) == with_lora]
        if not todo:
            continue
        pipe = load(model_dir, lora_dir if with_lora else None)
        for r in todo:
            assert r.lora_scale in (0.0, TLCM_LORA_SCALE), r.lora_scale
            out[r.name] = make(pipe, r)
            assert len(out[r.name]) == len(r.seeds)
    return {r.name: out[r.name] for r in runs}


# ----------------------------------------------------------------------------------------------
# Component goldens
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def clip_golden(model, tokenizer, prompts: Sequence[str]) -> Dict[str, torch.Tensor]:
    ids = tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    out = model(ids, output_hidden_states=True)
    g = {"input_ids": ids, "hidden_states_penultimate": out.hidden_states[-2],
         "last_hidden_state": out.last_hidden_state}
    if isinstance(model, CLIPTextModelWithProjection):
        g["pooled"] = model.text_model(ids).pooler_output
        g["text_embeds"] = out.text_embeds
    else:
        g["pooled"] = out.pooler_output
    return g


@torch.no_grad()
def t5_golden(model, tokenizer, prompts: Sequence[str], length: int) -> Dict[str, torch.Tensor]:
    ids = tokenizer(list(prompts), padding="max_length", max_length=length, truncation=True,
                    return_tensors="pt").input_ids
    return {"input_ids": ids, "last_hidden_state": model(ids).last_hidden_state}


def check_fused(peft_model, call: Callable[[torch.nn.Module], torch.Tensor], expected: torch.Tensor) -> float:
    """Relative max difference between the PEFT forward and the same LoRA merged into the weights."""
    merged = copy.deepcopy(peft_model).merge_and_unload()
    with torch.no_grad():
        got = call(merged)
    rel = ((got - expected).abs().max() / expected.abs().max()).item()
    assert rel < 5e-5, rel
    return rel


def prompt_set(case: Case) -> List[str]:
    return unique(p for r in case.runs for p in r.prompts)


@torch.no_grad()
def sdxl_goldens(case: Case, root: Path) -> dict:
    model_dir, lora_dir, gdir = root / "model", root / "lora", root / "golden"
    pipe = load_sdxl(model_dir, None)
    gen = torch.Generator().manual_seed(case.seed + 100)
    prompts = list(case.prompts)
    stats = {}

    save_golden(gdir / "text_encoder.safetensors", clip_golden(pipe.text_encoder, pipe.tokenizer, prompts))
    save_golden(gdir / "text_encoder_2.safetensors", clip_golden(pipe.text_encoder_2, pipe.tokenizer_2, prompts))
    if case.te2_fp16_variant:
        te2h = CLIPTextModelWithProjection.from_pretrained(str(model_dir / "text_encoder_2"), variant="fp16",
                                                           torch_dtype=torch.float32).eval()
        assert all(torch.equal(p, p.half().float()) for p in te2h.parameters())
        save_golden(gdir / "text_encoder_2_fp16.safetensors", clip_golden(te2h, pipe.tokenizer_2, prompts))

    # UNet: two samples at different timesteps / time ids.
    prompt_embeds, _, pooled, _ = pipe.encode_prompt(prompts, device=torch.device("cpu"), num_images_per_prompt=1,
                                                     do_classifier_free_guidance=False)
    h, w = case.unet_latent_hw
    sample = torch.randn(2, pipe.unet.config.in_channels, h, w, generator=gen)
    timestep = torch.tensor([999, 499], dtype=torch.long)
    time_ids = torch.tensor([[64.0, 96.0, 0.0, 0.0, 64.0, 96.0], [80.0, 48.0, 8.0, 16.0, 48.0, 64.0]])

    def unet_call(unet):
        return unet(sample, timestep, encoder_hidden_states=prompt_embeds,
                    added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample

    inputs = {"sample": sample, "timestep": timestep, "encoder_hidden_states": prompt_embeds,
              "text_embeds": pooled, "time_ids": time_ids}
    out = unet_call(pipe.unet)
    save_golden(gdir / "unet.safetensors", dict(inputs, out=out))
    peft_unet = tlcm_lora(UNet2DConditionModel.from_pretrained(str(model_dir / "unet")).eval(), SDXL_LORA_TARGETS,
                          lora_dir)
    out_lora = unet_call(peft_unet)
    stats["unet_fused_rel"] = check_fused(peft_unet, unet_call, out_lora)
    save_golden(gdir / "unet_lora.safetensors", dict(inputs, out=out_lora))
    stats["unet_out_std"] = out.std().item()
    stats["unet_lora_rel_change"] = ((out_lora - out).abs().mean() / out.abs().mean()).item()

    # VAE decoder.
    vh, vw = 8, 6
    latents = torch.randn(2, pipe.vae.config.latent_channels, vh, vw, generator=gen) / pipe.vae.config.scaling_factor
    image = pipe.vae.decode(latents).sample
    save_golden(gdir / "vae.safetensors", {"latents": latents, "image": image})
    stats["vae_image_std"] = image.std().item()

    # Pipeline prompt encoding for the prompts of the runs.
    run_prompts = prompt_set(case)
    ids1 = pipe.tokenizer(run_prompts, padding="max_length", max_length=77, truncation=True,
                          return_tensors="pt").input_ids
    ids2 = pipe.tokenizer_2(run_prompts, padding="max_length", max_length=77, truncation=True,
                            return_tensors="pt").input_ids
    pe, _, pp, _ = pipe.encode_prompt(run_prompts, device=torch.device("cpu"), num_images_per_prompt=1,
                                      do_classifier_free_guidance=False)
    save_golden(gdir / "prompt_embeds.safetensors",
                {"input_ids": ids1, "input_ids_2": ids2, "prompt_embeds": pe, "pooled_prompt_embeds": pp})
    (gdir / "prompts.json").write_text(json.dumps(run_prompts, indent=1) + "\n")

    # Initial latents / noise streams.
    lh_img, lw_img = case.latents_hw
    s = pipe.vae_scale_factor
    shape = (1, pipe.unet.config.in_channels, lh_img // s, lw_img // s)
    lat = {"image_hw": torch.tensor([lh_img, lw_img])}
    for seed in LATENT_SEEDS:
        g = torch.Generator("cpu").manual_seed(seed)
        lat[f"seed_{seed}"] = torch.randn(shape, generator=g)
        lat[f"seed_{seed}_next"] = torch.randn(shape, generator=g)
    save_golden(gdir / "latents.safetensors", lat)

    # Schedulers: LCM (from the model's scheduler config, as TLCM does) and the seed's own grid.
    lcm = LCMScheduler.from_config(pipe.scheduler.config)
    sch = {"alphas_cumprod": lcm.alphas_cumprod}
    for n in range(2, 9):
        lcm.set_timesteps(n)
        sch[f"timesteps_{n}"] = lcm.timesteps
    for n in range(1, 9):
        sch[f"tlcm_timesteps_{n}"] = torch.tensor(tlcm_timesteps(n))
    step_shape = (1, pipe.unet.config.in_channels, 8, 8)
    step_sample = torch.randn(step_shape, generator=gen)
    step_model_output = torch.randn(step_shape, generator=gen)
    step_noise = torch.randn(step_shape, generator=torch.Generator("cpu").manual_seed(1234))
    lcm.set_timesteps(4)
    prev, denoised = lcm.step(step_model_output, lcm.timesteps[0], step_sample,
                              generator=torch.Generator("cpu").manual_seed(1234), return_dict=False)
    ac = lcm.alphas_cumprod
    t_next = int(lcm.timesteps[1])
    assert torch.allclose(prev, ac[t_next].sqrt() * denoised + (1 - ac[t_next]).sqrt() * step_noise, atol=1e-6)
    lcm.set_timesteps(4)
    last_prev, last_denoised = lcm.step(step_model_output, lcm.timesteps[3], step_sample, return_dict=False)
    assert torch.equal(last_prev, last_denoised)
    tl_x0 = (step_sample - (1 - ac[999]).sqrt() * step_model_output) / ac[999].sqrt()
    tl_prev = ac[749] ** 0.5 * tl_x0 + (1 - ac[749]) ** 0.5 * step_noise
    sch.update({"step_sample": step_sample, "step_model_output": step_model_output, "step_noise": step_noise,
                "step_denoised": denoised, "step_prev_sample": prev, "last_denoised": last_denoised,
                "tlcm_step_x0": tl_x0, "tlcm_step_prev_sample": tl_prev})
    save_golden(gdir / "scheduler.safetensors", sch)
    return stats


def pack_latents(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


@torch.no_grad()
def flux_goldens(case: Case, root: Path) -> dict:
    model_dir, lora_dir, gdir = root / "model", root / "lora", root / "golden"
    pipe = load_flux(model_dir, None)
    gen = torch.Generator().manual_seed(case.seed + 100)
    prompts = list(case.prompts)
    length = case.max_sequence_length
    stats = {}

    save_golden(gdir / "text_encoder.safetensors", clip_golden(pipe.text_encoder, pipe.tokenizer, prompts))
    save_golden(gdir / "text_encoder_2.safetensors", t5_golden(pipe.text_encoder_2, pipe.tokenizer_2, prompts,
                                                               length))

    # Transformer: two samples at different sigmas (and guidance values), a non-square packed grid.
    prompt_embeds, pooled, text_ids = pipe.encode_prompt(prompts, prompt_2=None, device=torch.device("cpu"),
                                                         max_sequence_length=length)
    cfg = pipe.transformer.config
    hp, wp = case.unet_latent_hw
    hidden = torch.randn(2, hp * wp, cfg.in_channels, generator=gen)
    timestep = torch.tensor([1.0, 0.6])
    guidance = torch.tensor([7.0, 3.5]) if cfg.guidance_embeds else None
    img_ids = pipe._prepare_latent_image_ids(1, 2 * hp, 2 * wp, torch.device("cpu"), torch.float32)

    def transformer_call(model):
        return model(hidden_states=hidden, timestep=timestep, guidance=guidance, pooled_projections=pooled,
                     encoder_hidden_states=prompt_embeds, txt_ids=text_ids, img_ids=img_ids).sample

    inputs = {"hidden_states": hidden, "encoder_hidden_states": prompt_embeds, "pooled_projections": pooled,
              "timestep": timestep, "img_ids": img_ids, "txt_ids": text_ids}
    if guidance is not None:
        inputs["guidance"] = guidance
    out = transformer_call(pipe.transformer)
    save_golden(gdir / "transformer.safetensors", dict(inputs, out=out))
    peft_tr = tlcm_lora(FluxTransformer2DModel.from_pretrained(str(model_dir / "transformer")).eval(),
                        FLUX_LORA_TARGETS, lora_dir)
    out_lora = transformer_call(peft_tr)
    stats["transformer_fused_rel"] = check_fused(peft_tr, transformer_call, out_lora)
    save_golden(gdir / "transformer_lora.safetensors", dict(inputs, out=out_lora))
    stats["transformer_out_std"] = out.std().item()
    stats["transformer_lora_rel_change"] = ((out_lora - out).abs().mean() / out.abs().mean()).item()

    # VAE decoder (input already scaled and shifted).
    vcfg = pipe.vae.config
    latents = torch.randn(2, vcfg.latent_channels, 8, 6, generator=gen) / vcfg.scaling_factor + vcfg.shift_factor
    image = pipe.vae.decode(latents).sample
    save_golden(gdir / "vae.safetensors", {"latents": latents, "image": image})
    stats["vae_image_std"] = image.std().item()

    # Pipeline prompt encoding for the prompts of the runs.
    run_prompts = prompt_set(case)
    assert all(r.max_sequence_length == length for r in case.runs)
    ids1 = pipe.tokenizer(run_prompts, padding="max_length", max_length=77, truncation=True,
                          return_tensors="pt").input_ids
    ids2 = pipe.tokenizer_2(run_prompts, padding="max_length", max_length=length, truncation=True,
                            return_tensors="pt").input_ids
    pe, pp, tid = pipe.encode_prompt(run_prompts, prompt_2=None, device=torch.device("cpu"),
                                     max_sequence_length=length)
    save_golden(gdir / "prompt_embeds.safetensors",
                {"input_ids": ids1, "input_ids_2": ids2, "prompt_embeds": pe, "pooled_prompt_embeds": pp,
                 "text_ids": tid})
    (gdir / "prompts.json").write_text(json.dumps(run_prompts, indent=1) + "\n")

    # Initial latents (unpacked and packed) and the next draw in the packed step-noise shape.
    r0 = case.runs[0]
    vsf = pipe.vae_scale_factor
    c = cfg.in_channels // 4
    lh_img, lw_img = case.latents_hw
    lh, lw = 2 * (lh_img // vsf), 2 * (lw_img // vsf)
    lat = {"image_hw": torch.tensor([lh_img, lw_img])}
    for seed in LATENT_SEEDS:
        g = torch.Generator("cpu").manual_seed(seed)
        first = torch.randn((1, c, lh, lw), generator=g)
        lat[f"seed_{seed}"] = first
        lat[f"seed_{seed}_packed"] = pack_latents(first)
        lat[f"seed_{seed}_next"] = torch.randn((1, (lh // 2) * (lw // 2), 4 * c), generator=g)
    save_golden(gdir / "latents.safetensors", lat)

    # Schedules: the case's own geometry (seq = (2*(H//vsf)/2) * (2*(W//vsf)/2)) and real FLUX's 512^2 / 1024^2.
    scfg = dict(pipe.scheduler.config)
    sch = {}
    sched = FlowMatchEulerTLCMScheduler.from_config(scfg)

    def sigmas_for(n, seq):
        sched.set_timesteps(sigmas=np.linspace(1.0, 1 / n, n), mu=flux_mu(seq, scfg))
        return sched.sigmas.clone()

    sizes = unique([(512, 512), (1024, 1024)] + [(r.height, r.width) for r in case.runs])
    for (hh, ww) in sizes:
        seq = (hh // vsf) * (ww // vsf)
        sch[f"image_seq_len_{hh}x{ww}"] = torch.tensor([seq])
        sch[f"mu_{hh}x{ww}"] = torch.tensor([flux_mu(seq, scfg)])
        for n in range(2, 9):
            sch[f"sigmas_{n}_{hh}x{ww}"] = sigmas_for(n, seq)
    for seq in (1024, 4096):
        for n in range(2, 9):
            sch[f"sigmas_{n}_seq{seq}"] = sigmas_for(n, seq)
    seq0 = (r0.height // vsf) * (r0.width // vsf)
    pshape = (1, seq0, 4 * c)
    step_sample = torch.randn(pshape, generator=gen)
    step_model_output = torch.randn(pshape, generator=gen)
    step_noise = torch.randn(pshape, generator=torch.Generator("cpu").manual_seed(1234))
    sched.set_timesteps(sigmas=np.linspace(1.0, 1 / 4, 4), mu=flux_mu(seq0, scfg))
    prev, denoised = sched.step(step_model_output, sched.timesteps[0], step_sample,
                                generator=torch.Generator("cpu").manual_seed(1234), return_dict=False)
    sig, sig_next = sched.sigmas[0], sched.sigmas[1]
    assert torch.allclose(prev, sig_next * step_noise + (1 - sig_next) * (step_sample - sig * step_model_output),
                          atol=1e-6)
    sched._index = 3
    last_prev, _ = sched.step(step_model_output, sched.timesteps[3], step_sample,
                              generator=torch.Generator("cpu").manual_seed(99), return_dict=False)
    sch.update({"step_sample": step_sample, "step_model_output": step_model_output, "step_noise": step_noise,
                "step_sigma": sig.reshape(1), "step_sigma_next": sig_next.reshape(1), "step_denoised": denoised,
                "step_prev_sample": prev, "last_sigma": sched.sigmas[3].reshape(1), "last_prev_sample": last_prev})
    save_golden(gdir / "scheduler.safetensors", sch)
    return stats


def run_record(run: Run, family: str) -> dict:
    rec = {"name": run.name, "scheduler": run.scheduler, "prompts": list(run.prompts), "seeds": list(run.seeds),
           "steps": run.steps, "width": run.width, "height": run.height, "guidance_scale": run.guidance_scale}
    if family == "flux":
        rec["max_sequence_length"] = run.max_sequence_length
    rec["lora_scale"] = run.lora_scale
    rec["num_images_per_prompt"] = run.num_images_per_prompt
    rec["images"] = [f"images/{run.name}-{i}.png" for i in range(len(run.seeds))]
    return rec


def make_runs(case: Case, root: Path) -> dict:
    gdir = root / "golden"
    images = run_images(case.family, root / "model", root / "lora", case.runs)
    records = []
    stats = {}
    for run in case.runs:
        rec = run_record(run, case.family)
        for img, rel in zip(images[run.name], rec["images"]):
            write_png(img, gdir / rel)
            a = np.asarray(img).astype(np.float64)
            stats[rel] = {"std": round(a.std(), 1), "sat": round(float(((a == 0) | (a == 255)).mean()), 3)}
        records.append(rec)
    (gdir / "runs.json").write_text(json.dumps(records, indent=1) + "\n")
    return stats


def make_case(name: str, out: Path) -> None:
    case = CASES[name]()
    root = out / name
    build_case(case, root)
    stats = (sdxl_goldens if case.family == "sdxl" else flux_goldens)(case, root)
    stats["images"] = make_runs(case, root)
    print(json.dumps({name: stats}, indent=1))


# ----------------------------------------------------------------------------------------------
# Reproducing the diffusers-made reference cases (tests/data/reference)
# ----------------------------------------------------------------------------------------------
def parse_reference_args(case_dir: Path):
    """(family, model dir, lora dir, Run) of one reference case's `args` line."""
    family = case_dir.parent.name
    words = shlex.split((case_dir / "args").read_text().strip().replace("@CASE@", str(case_dir)))
    opts = {}
    for key, value in zip(words[::2], words[1::2]):
        assert key.startswith("--"), key
        opts[key[2:].replace("-", "_")] = value
    n = int(opts.get("batch_size", "1"))
    seed = int(opts["seed"])
    scheduler = opts.get("scheduler", "lcm") if family == "sdxl" else "flow_match_tlcm"
    msl = int(opts["max_sequence_length"]) if "max_sequence_length" in opts else None
    run = Run(case_dir.name, scheduler, [opts["prompt"]] * n, [seed + i for i in range(n)], int(opts["infer_steps"]),
              int(opts["width"]), int(opts["height"]), guidance_scale=float(opts.get("guidance_scale", "0")),
              max_sequence_length=msl, num_images_per_prompt=n)
    assert opts.get("dtype", "fp32") == "fp32" and opts.get("device", "cpu") == "cpu"
    return family, Path(opts["base_model_path"]).resolve(), Path(opts["lora_path"]).resolve(), run


def check_reference(ref_root: Path) -> bool:
    ok = True
    for case_dir in sorted(ref_root.glob("*/case-*")):
        family, model_dir, lora_dir, run = parse_reference_args(case_dir)
        images = run_images(family, model_dir, lora_dir, [run])[run.name]
        for i, img in enumerate(images):
            want = np.asarray(Image.open(case_dir / f"expected-{i}.png").convert("RGB")).astype(np.int32)
            got = np.asarray(img.convert("RGB")).astype(np.int32)
            diff = np.abs(got - want)
            print(f"{family}/{case_dir.name} image {i}: {got.shape[1]}x{got.shape[0]} max|diff| {diff.max()} "
                  f"mean {diff.mean():.4f} differing pixels {(diff.max(-1) > 0).mean():.4f}")
            ok = ok and diff.max() <= 8
    return ok


# ----------------------------------------------------------------------------------------------
# Developer report: does every part of the computation move the outputs?
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def liveness(model: torch.nn.Module, call: Callable[[torch.nn.Module], torch.Tensor], top: int = 8) -> None:
    """Scales each weight tensor by 1.1 in turn and prints the weakest relative output changes."""
    base = call(model)
    scale = base.abs().mean().item()
    changes = []
    for name, p in model.named_parameters():
        saved = p.detach().clone()
        p.mul_(1.1)
        changes.append(((call(model) - base).abs().mean().item() / scale, name))
        p.copy_(saved)
    changes.sort()
    print(f"  {len(changes)} tensors; weakest:")
    for c, n in changes[:top]:
        print(f"    {c:.2e}  {n}")


def report(name: str, out: Path) -> None:
    case = CASES[name]()
    root = out / name
    gdir = root / "golden"
    if case.family == "sdxl":
        pipe = load_sdxl(root / "model", None)
        g = load_file(str(gdir / "unet.safetensors"))
        print("unet")
        liveness(pipe.unet, lambda m: m(g["sample"], g["timestep"].long(), encoder_hidden_states=g[
            "encoder_hidden_states"], added_cond_kwargs={"text_embeds": g["text_embeds"], "time_ids": g[
                "time_ids"]}).sample)
        den = lambda **kw: pipe.unet(kw.get("sample", g["sample"]), kw.get("timestep", g["timestep"].long()),
                                     encoder_hidden_states=kw.get("ehs", g["encoder_hidden_states"]),
                                     added_cond_kwargs={"text_embeds": kw.get("te", g["text_embeds"]),
                                                        "time_ids": kw.get("ti", g["time_ids"])}).sample
        base = den()
        rel = lambda o: ((o - base).abs().mean() / base.abs().mean()).item()
        print("  swap text:", rel(den(ehs=g["encoder_hidden_states"].flip(0))),
              "swap pooled:", rel(den(te=g["text_embeds"].flip(0))),
              "swap time_ids:", rel(den(ti=g["time_ids"].flip(0))),
              "swap t:", rel(den(timestep=g["timestep"].long().flip(0))))
        for comp, fname in (("text_encoder", "text_encoder"), ("text_encoder_2", "text_encoder_2")):
            gg = load_file(str(gdir / f"{fname}.safetensors"))
            print(comp)
            liveness(getattr(pipe, comp), lambda m: m(gg["input_ids"].long(), output_hidden_states=True)[0])
    else:
        pipe = load_flux(root / "model", None)
        g = load_file(str(gdir / "transformer.safetensors"))

        def den(model=pipe.transformer, **kw):
            return model(hidden_states=kw.get("hs", g["hidden_states"]), timestep=kw.get("t", g["timestep"]),
                         guidance=kw.get("guidance", g.get("guidance")),
                         pooled_projections=kw.get("pooled", g["pooled_projections"]),
                         encoder_hidden_states=kw.get("ehs", g["encoder_hidden_states"]), txt_ids=g["txt_ids"],
                         img_ids=kw.get("img_ids", g["img_ids"])).sample
        print("transformer")
        liveness(pipe.transformer, lambda m: den(m))
        base = den()
        rel = lambda o: ((o - base).abs().mean() / base.abs().mean()).item()
        print("  swap text:", rel(den(ehs=g["encoder_hidden_states"].flip(0))),
              "swap pooled:", rel(den(pooled=g["pooled_projections"].flip(0))),
              "swap t:", rel(den(t=g["timestep"].flip(0))),
              "ids x2:", rel(den(img_ids=g["img_ids"] * 2)))
        if "guidance" in g:
            print("  swap guidance:", rel(den(guidance=g["guidance"].flip(0))))
        gg = load_file(str(gdir / "text_encoder.safetensors"))
        print("text_encoder")
        liveness(pipe.text_encoder, lambda m: m(gg["input_ids"].long(), output_hidden_states=True)[0])
        gg2 = load_file(str(gdir / "text_encoder_2.safetensors"))
        print("text_encoder_2")
        liveness(pipe.text_encoder_2, lambda m: m(gg2["input_ids"].long())[0])
    gv = load_file(str(gdir / "vae.safetensors"))
    print("vae decoder: image std", gv["image"].std().item(), "min/max", gv["image"].min().item(),
          gv["image"].max().item())
    liveness(pipe.vae.decoder, lambda m: m(pipe.vae.post_quant_conv(gv["latents"]) if pipe.vae.post_quant_conv
                                           is not None else gv["latents"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "data", help="folder receiving the cases")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    ap.add_argument("--check-reference", type=Path, metavar="DIR",
                    help="re-run the reference cases under DIR (e.g. tests/data/reference) and compare PNGs")
    ap.add_argument("--report", action="store_true", help="print how strongly each weight moves the outputs")
    args = ap.parse_args(argv)
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(1)  # the machine is shared; one thread is also much faster there
    if args.check_reference:
        return 0 if check_reference(args.check_reference) else 1
    for name in args.cases.split(","):
        if args.report:
            report(name, args.out)
        else:
            make_case(name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
