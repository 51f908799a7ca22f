#!/usr/bin/env python3
"""Medium-size random-weight models for bench/cpu_compare.sh (developer tooling, not run by CI).

The test models under tests/data/ are so small that a benchmark on them measures per-call overhead
only. These configurations keep the real structure of SDXL and FLUX.1-dev (every block type, 3
resolution levels, multi-head attention, gated T5 with 512 tokens, a 4-level VAE) at reduced
widths and depths, so that compute dominates a run but one run takes only seconds on a few CPU cores.
Weights are random (seeded); the images are noise-like, which does not change the cost.

Usage
  tools/make_bench_models.py [--out /work/bench-models]
Writes <out>/sdxl-medium/{model,lora} and <out>/flux-medium/{model,lora} in the layout of
tests/data/<case>/ (diffusers save_pretrained folder + PEFT adapter with r 64, applied at 0.125), using
tools/make_goldens.py's case builder and tokenizers. Not committed (a few hundred MB).

  sdxl-medium  UNet block_out (64, 128, 256) (SDXL: 320, 640, 1280), layers_per_block 2, heads of 32,
               transformer layers (0, 1, 2) (SDXL: 0, 2, 10), 32 norm groups; CLIP 128 (4 layers) +
               CLIP 256 with projection 256 (6 layers); VAE (32, 64, 128, 128), 4 levels, 1 layer per block.
  flux-medium  transformer 6 heads x 64 = 384 wide, 2 double + 4 single blocks (FLUX.1-dev: 3072 wide,
               19 + 38), in_channels 64, axes_dims_rope (8, 28, 28), guidance embedding; CLIP 256
               (4 layers); T5 gated-gelu d_model 512, d_ff 1024, 8 heads x 64, 4 layers, 32 buckets
               (512 tokens); VAE (32, 64, 128, 128) with 16 latent channels; FLUX's scheduler config.
Sized for 256x256 images on a 2-core machine (a few seconds of CPU per 4-step run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_goldens as mg  # noqa: E402


def sdxl_medium() -> mg.Case:
    te1 = dict(vocab_size=2014, hidden_size=128, intermediate_size=512, num_attention_heads=2,
               num_hidden_layers=4, hidden_act="quick_gelu", max_position_embeddings=77, projection_dim=128,
               bos_token_id=0, eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-5)
    te2 = dict(te1, hidden_size=256, intermediate_size=1024, num_attention_heads=4, num_hidden_layers=6,
               hidden_act="gelu", projection_dim=256)
    unet = dict(sample_size=32, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(64, 128, 256),
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=32,
                attention_head_dim=(2, 4, 8), transformer_layers_per_block=(1, 1, 2), cross_attention_dim=128 + 256,
                use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=32,
                projection_class_embeddings_input_dim=256 + 6 * 32)
    vae = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64, 128, 128),
               down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
               layers_per_block=1, norm_num_groups=32, sample_size=256, scaling_factor=0.13025, force_upcast=True)
    return mg.Case("sdxl-medium", "sdxl", 5005, te1, te2, unet, vae, mg.UNET_GAINS, mg.SDXL_VAE_GAINS,
                   mg.CLIP_GAINS, mg.CLIP_GAINS, runs=[], scheduler_config=mg.SDXL_SCHEDULER_CONFIG)


def flux_medium() -> mg.Case:
    te1 = dict(vocab_size=2014, hidden_size=256, intermediate_size=1024, num_attention_heads=4,
               num_hidden_layers=4, hidden_act="quick_gelu", max_position_embeddings=77, projection_dim=256,
               bos_token_id=0, eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-5)
    t5 = dict(vocab_size=512, d_model=512, d_ff=1024, d_kv=64, num_heads=8, num_layers=4, num_decoder_layers=1,
              feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
              relative_attention_max_distance=128, layer_norm_epsilon=1e-6, dropout_rate=0.0, pad_token_id=0,
              eos_token_id=1, decoder_start_token_id=0, is_encoder_decoder=False, use_cache=False,
              tie_word_embeddings=False)
    transformer = dict(patch_size=1, in_channels=64, num_layers=2, num_single_layers=4, attention_head_dim=64,
                       num_attention_heads=6, joint_attention_dim=512, pooled_projection_dim=256,
                       guidance_embeds=True, axes_dims_rope=(8, 28, 28))
    vae = dict(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(32, 64, 128, 128),
               down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
               layers_per_block=1, norm_num_groups=32, sample_size=256, use_quant_conv=False,
               use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611)
    return mg.Case("flux-medium", "flux", 6006, te1, t5, transformer, vae, mg.FLUX_GAINS, mg.FLUX_VAE_GAINS,
                   mg.CLIP_GAINS, mg.T5_GAINS, runs=[], scheduler_config=mg.FLUX_SCHEDULER_CONFIG,
                   max_sequence_length=512)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="/work/bench-models")
    args = parser.parse_args()
    for case in (sdxl_medium(), flux_medium()):
        root = Path(args.out) / case.name
        mg.build_case(case, root)
        print(f"wrote {root}")


if __name__ == "__main__":
    main()
