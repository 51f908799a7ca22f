// The decoding half of diffusers' AutoencoderKL (SDXL's and FLUX's VAE), built from the
// component's config.json. Text-to-image never encodes, so the encoder is not built.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/layers/loaded_layers.h"
#include "models/unet_2d_blocks.h"

namespace tlcm {

struct AutoencoderKLConfig {
  int64_t out_channels = 3;  // image channels
  int64_t latent_channels = 4;
  std::vector<int64_t> block_out_channels;  // encoder order; the decoder walks it reversed
  int64_t layers_per_block = 1;             // decoder up blocks hold layers_per_block + 1 resnets
  int64_t norm_num_groups = 32;
  // The pipeline decodes `latents / scaling_factor + shift_factor` (no shift when absent).
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;
  // True when the VAE overflows in float16 (SDXL's): the pipeline then decodes in float32.
  bool force_upcast = true;
  bool use_post_quant_conv = true;
  bool mid_block_add_attention = true;

  // Parses vae/config.json. InvalidArgument names the file and the offending key (other block
  // types, activations, latents_mean / latents_std are rejected).
  static absl::StatusOr<AutoencoderKLConfig> FromFile(const std::string& path);
};

// diffusers' `Decoder`: conv_in, mid_block (resnet, attention, resnet), up_blocks.{i}
// (UpDecoderBlock2D, an upsampler on all but the last), conv_norm_out (GroupNorm eps 1e-6),
// SiLU, conv_out. Every GroupNorm uses norm_num_groups and eps 1e-6.
class VaeDecoderImpl : public torch::nn::Module {
 public:
  explicit VaeDecoderImpl(const AutoencoderKLConfig& config);
  // z: [B, latent_channels, h, w] -> [B, out_channels, h * 2^(n-1), w * 2^(n-1)],
  // n = block_out_channels.size().
  torch::Tensor forward(const torch::Tensor& z);

  // The dtype the decoder's weights have now.
  torch::ScalarType dtype() const { return conv_in_->weight.scalar_type(); }

 private:
  LoadedConv2d conv_in_{nullptr};
  UNetMidBlock2D mid_block_{nullptr};
  std::vector<UpDecoderBlock2D> up_blocks_;  // registered as the ModuleList up_blocks
  torch::nn::GroupNorm conv_norm_out_{nullptr};
  LoadedConv2d conv_out_{nullptr};
};
TORCH_MODULE(VaeDecoder);

// AutoencoderKL.decode: post_quant_conv (1x1, when use_post_quant_conv) then `decoder`.
// Checkpoint keys: post_quant_conv.*, decoder.* (load the full AutoencoderKL file through
// VaeDecoderKeys(), which drops the encoder and renames legacy attention keys).
// Built on the CPU with unset float32 parameters (load them: layers/loaded_layers.h); move with
// ->to(device, dtype). Runs in float32 / float16 / bfloat16 (SDXL's VAE overflows in float16:
// see force_upcast).
class AutoencoderKLDecoderImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLDecoderImpl(const AutoencoderKLConfig& config);

  // z: [B, latent_channels, h, w], already scaled (latents / scaling_factor + shift_factor);
  // floating input is cast to the model's dtype. Returns the image in [-1, 1] space (not
  // clamped): [B, out_channels, 8h, 8w] for 4 resolution levels.
  torch::Tensor forward(const torch::Tensor& z);

  const AutoencoderKLConfig& config() const { return config_; }

 private:
  AutoencoderKLConfig config_;
  LoadedConv2d post_quant_conv_{nullptr};
  VaeDecoder decoder_{nullptr};
};
TORCH_MODULE(AutoencoderKLDecoder);

}  // namespace tlcm
