#!/usr/bin/env python3
"""Full-size random-weight SDXL and FLUX.1-dev folders for the GPU benchmark (bench/gpu_bench.sh).

Developer tooling, not run by CI. The real checkpoints cannot be fetched on our machines, and a timing
needs only their shapes: these folders have the published architectures (SDXL base 1.0: UNet 320/640/1280
with 1/2/10 transformer layers, CLIP ViT-L + OpenCLIP bigG; FLUX.1-dev: 19 double + 38 single blocks of
24 x 128, T5-XXL encoder, 16-channel VAE) with seeded random weights. Images come out as noise, which
does not change the cost of a run.

Two steps, because the GPU machine has torch and safetensors but not diffusers 0.31:

  skeleton --out DIR      (needs diffusers 0.31.0 / transformers 4.39.3)
      Writes DIR/sdxl-1024 and DIR/flux-1024: model_index.json, every component's config.json, the
      published scheduler config, the test tokenizers of tests/data/reference (their ids fit the real
      vocabularies) and weights.json, which lists for each weight file of the folder every key with
      its shape and dtype. The keys and shapes are read off the components built on the meta device
      (no memory), with the keys diffusers' and transformers' save_pretrained would write.
  materialize DIR [--device cuda]     (needs torch + safetensors only)
      Writes the weight files weights.json lists: weights ~ N(0, 1/fan_in), norm scales 1, biases 0,
      embeddings N(0, 0.02^2); the UNet and the FLUX transformer and T5 in the dtypes the benchmark runs
      (fp16 / bf16, the transformer and T5 in shards with an index.json as published), VAEs in fp32.
      About 7 GB (SDXL) + 34 GB (FLUX) of disk.

Usage
  tools/make_full_size_models.py skeleton --out .gpu/skeleton          # here
  tools/make_full_size_models.py materialize /tmp/models --skeleton .gpu/skeleton --device cuda   # GPU
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Dict, List

import torch

SHARD_BYTES = 10 * 1024**3

# Published configurations (stabilityai/stable-diffusion-xl-base-1.0, black-forest-labs/FLUX.1-dev).
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
              num_hidden_layers=12, hidden_act="quick_gelu", max_position_embeddings=77, projection_dim=768,
              bos_token_id=0, eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-5)
CLIP_BIG_G = dict(CLIP_L, hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32,
                  hidden_act="gelu", projection_dim=1280)
SDXL_UNET = dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280),
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=32,
                 attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048,
                 use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816)
VAE_BLOCKS = dict(in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512),
                  down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                  layers_per_block=2, norm_num_groups=32, sample_size=1024)
SDXL_VAE = dict(VAE_BLOCKS, latent_channels=4, scaling_factor=0.13025, force_upcast=True)
FLUX_VAE = dict(VAE_BLOCKS, latent_channels=16, use_quant_conv=False, use_post_quant_conv=False,
                shift_factor=0.1159, scaling_factor=0.3611)
FLUX_TRANSFORMER = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                        num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
                        guidance_embeds=True, axes_dims_rope=(16, 56, 56))
T5_XXL = dict(vocab_size=32128, d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24,
              num_decoder_layers=24, feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
              relative_attention_max_distance=128, layer_norm_epsilon=1e-6, dropout_rate=0.0, pad_token_id=0,
              eos_token_id=1, decoder_start_token_id=0, is_encoder_decoder=False, use_cache=False,
              tie_word_embeddings=False)


# ----------------------------------------------------------------------------------------------
# skeleton (diffusers / transformers)
# ----------------------------------------------------------------------------------------------
def saved_shapes(model: torch.nn.Module) -> Dict[str, List[int]]:
    """Key -> shape of what save_pretrained writes: the state dict without tied duplicates.

    transformers drops the tied copies it names in _tied_weights_keys (T5's encoder.embed_tokens.weight,
    kept as shared.weight); diffusers models have none."""
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    return {k: list(v.shape) for k, v in model.state_dict().items() if k not in tied}


def weight_files(shapes: Dict[str, List[int]], dtype: str, stem: str, sharded: bool) -> Dict[str, dict]:
    """Splits the keys (in order) into files of at most SHARD_BYTES, named as save_pretrained names them."""
    size = {"fp32": 4, "fp16": 2, "bf16": 2}[dtype]
    if not sharded:
        return {f"{stem}.safetensors": shapes}
    shards: List[Dict[str, List[int]]] = [{}]
    used = 0
    for key, shape in shapes.items():
        nbytes = math.prod(shape) * size
        if shards[-1] and used + nbytes > SHARD_BYTES:
            shards.append({})
            used = 0
        shards[-1][key] = shape
        used += nbytes
    n = len(shards)
    return {f"{stem}-{i + 1:05d}-of-{n:05d}.safetensors": s for i, s in enumerate(shards)}


def write_component(folder: Path, model: torch.nn.Module, dtype: str, stem: str, sharded: bool) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "save_config"):  # diffusers
        model.save_config(str(folder))
    else:  # transformers: what save_pretrained writes beside the weights
        model.config.architectures = [type(model).__name__]
        model.config.torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        model.config.save_pretrained(str(folder))
    files = weight_files(saved_shapes(model), dtype, stem, sharded)
    return {"dtype": dtype, "index": f"{stem}.safetensors.index.json" if sharded else "", "files": files}


def skeleton(out: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from diffusers import AutoencoderKL, FluxTransformer2DModel, UNet2DConditionModel  # noqa: E402
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    import make_goldens as mg  # noqa: E402

    for name, family in (("sdxl-1024", "sdxl"), ("flux-1024", "flux")):
        root = out / name
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        with torch.device("meta"):
            if family == "sdxl":
                parts = {
                    "text_encoder": (CLIPTextModel(CLIPTextConfig(**CLIP_L)), "fp16", "model", False),
                    "text_encoder_2": (CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_BIG_G)), "fp16", "model",
                                       False),
                    "unet": (UNet2DConditionModel(**SDXL_UNET), "fp16", "diffusion_pytorch_model", False),
                    "vae": (AutoencoderKL(**SDXL_VAE), "fp32", "diffusion_pytorch_model", False),
                }
                index = {"_class_name": "StableDiffusionXLPipeline", "force_zeros_for_empty_prompt": True,
                         "scheduler": ["diffusers", "EulerDiscreteScheduler"],
                         "text_encoder": ["transformers", "CLIPTextModel"],
                         "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
                         "tokenizer": ["transformers", "CLIPTokenizer"],
                         "tokenizer_2": ["transformers", "CLIPTokenizer"],
                         "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
                scheduler = mg.SDXL_SCHEDULER_CONFIG
            else:
                parts = {
                    "text_encoder": (CLIPTextModel(CLIPTextConfig(**CLIP_L)), "bf16", "model", False),
                    "text_encoder_2": (T5EncoderModel(T5Config(**T5_XXL)), "bf16", "model", True),
                    "transformer": (FluxTransformer2DModel(**FLUX_TRANSFORMER), "bf16", "diffusion_pytorch_model",
                                    True),
                    "vae": (AutoencoderKL(**FLUX_VAE), "fp32", "diffusion_pytorch_model", False),
                }
                index = {"_class_name": "FluxPipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                         "text_encoder": ["transformers", "CLIPTextModel"],
                         "text_encoder_2": ["transformers", "T5EncoderModel"],
                         "tokenizer": ["transformers", "CLIPTokenizer"],
                         "tokenizer_2": ["transformers", "T5TokenizerFast"],
                         "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}
                scheduler = mg.FLUX_SCHEDULER_CONFIG
        index["_diffusers_version"] = "0.31.0"
        (root / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        (root / "scheduler").mkdir()
        (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=2) + "\n")
        mg.copy_tokenizers(family, root)
        manifest = {part: write_component(root / part, *spec) for part, spec in parts.items()}
        (root / "weights.json").write_text(json.dumps(manifest, indent=1) + "\n")
        params = sum(math.prod(s) for c in manifest.values() for f in c["files"].values() for s in f.values())
        print(f"wrote {root} ({params / 1e9:.2f} B parameters)")


# ----------------------------------------------------------------------------------------------
# materialize (torch + safetensors)
# ----------------------------------------------------------------------------------------------
def random_tensor(key: str, shape: List[int], dtype: torch.dtype, gen: torch.Generator,
                  device: str) -> torch.Tensor:
    """A plausible value for a weight named `key`, so that activations stay finite in half precision."""
    if key.endswith("bias"):
        return torch.zeros(shape, dtype=dtype, device=device)
    if len(shape) == 1:  # norm scales (LayerNorm, GroupNorm, RMSNorm)
        return torch.ones(shape, dtype=dtype, device=device)
    std = 0.02 if "embed" in key and len(shape) == 2 and "proj" not in key else 1.0 / math.sqrt(
        math.prod(shape[1:]))
    t = torch.randn(shape, generator=gen, device=device, dtype=torch.float32) * std
    return t.to(dtype)


def materialize(skeleton_dir: Path, out: Path, device: str, only: List[str]) -> None:
    """Writes the weights of every skeleton model (or of those named in `only`) under `out`."""
    from safetensors.torch import save_file

    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    models = sorted(p.parent for p in skeleton_dir.glob("*/weights.json"))
    if only:
        unknown = set(only) - {m.name for m in models}
        if unknown:
            raise SystemExit(f"--only: no skeleton named {sorted(unknown)} in {skeleton_dir}")
        models = [m for m in models if m.name in only]
    for model in models:
        root = out / model.name
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(model, root, ignore=shutil.ignore_patterns("weights.json"))
        manifest = json.loads((model / "weights.json").read_text())
        gen = torch.Generator(device=device)
        gen.manual_seed(2406)
        for part, spec in manifest.items():
            dtype = dtypes[spec["dtype"]]
            weight_map, total = {}, 0
            for file, shapes in spec["files"].items():
                tensors = {k: random_tensor(k, s, dtype, gen, device).cpu() for k, s in shapes.items()}
                save_file(tensors, str(root / part / file), metadata={"format": "pt"})
                total += sum(t.numel() * t.element_size() for t in tensors.values())
                weight_map.update({k: file for k in shapes})
                del tensors
            if spec["index"]:
                index = {"metadata": {"total_size": total}, "weight_map": weight_map}
                (root / part / spec["index"]).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
            print(f"{root / part}: {total / 1e9:.2f} GB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sk = sub.add_parser("skeleton")
    sk.add_argument("--out", type=Path, required=True)
    ma = sub.add_parser("materialize")
    ma.add_argument("out", type=Path)
    ma.add_argument("--skeleton", type=Path, required=True)
    ma.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ma.add_argument("--only", action="append", default=[], help="a model to write (repeatable); default all")
    args = parser.parse_args()
    if args.command == "skeleton":
        skeleton(args.out)
    else:
        materialize(args.skeleton, args.out, args.device, args.only)


if __name__ == "__main__":
    main()
