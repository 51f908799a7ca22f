// diffusers' AutoencoderKL (SDXL's and FLUX's VAE) as two modules built from the component's
// config.json: the decoder (every run) and the encoder (image inputs: img2img, inpainting).
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
  int64_t in_channels = 3;   // image channels the encoder reads
  int64_t out_channels = 3;  // image channels the decoder writes
  int64_t latent_channels = 4;
  std::vector<int64_t> block_out_channels;  // encoder order; the decoder walks it reversed
  int64_t layers_per_block = 1;             // decoder up blocks hold layers_per_block + 1 resnets
  int64_t norm_num_groups = 32;
  // The pipeline decodes `latents / scaling_factor + shift_factor` (no shift when absent).
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;
  // True when the VAE overflows in float16 (SDXL's): the pipeline then decodes in float32.
  bool force_upcast = true;
  bool use_quant_conv = true;
  bool use_post_quant_conv = true;
  bool mid_block_add_attention = true;

  // Parses vae/config.json. InvalidArgument names the file and the offending key (other block
  // types, activations, latents_mean / latents_std are rejected; down_block_types must be
  // DownEncoderBlock2D, as many as block_out_channels).
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

// diffusers' `Encoder`: conv_in, down_blocks.{i} (DownEncoderBlock2D, a downsampler on all but
// the last), mid_block (resnet, attention, resnet), conv_norm_out (GroupNorm eps 1e-6), SiLU,
// conv_out to 2 * latent_channels (mean and log-variance). Every GroupNorm uses norm_num_groups.
class VaeEncoderImpl : public torch::nn::Module {
 public:
  explicit VaeEncoderImpl(const AutoencoderKLConfig& config);
  // x: [B, in_channels, H, W] -> [B, 2 * latent_channels, H / 2^(n-1), W / 2^(n-1)],
  // n = block_out_channels.size(); H and W multiples of 2^(n-1).
  torch::Tensor forward(const torch::Tensor& x);

  torch::ScalarType dtype() const { return conv_in_->weight.scalar_type(); }

 private:
  LoadedConv2d conv_in_{nullptr};
  std::vector<DownEncoderBlock2D> down_blocks_;  // registered as the ModuleList down_blocks
  UNetMidBlock2D mid_block_{nullptr};
  torch::nn::GroupNorm conv_norm_out_{nullptr};
  LoadedConv2d conv_out_{nullptr};
};
TORCH_MODULE(VaeEncoder);

// AutoencoderKL.encode up to the latent distribution: `encoder`, then quant_conv (1x1, when
// use_quant_conv). Checkpoint keys: encoder.*, quant_conv.* (load the full AutoencoderKL file
// through VaeEncoderKeys()). Built and loaded as AutoencoderKLDecoder is.
class AutoencoderKLEncoderImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLEncoderImpl(const AutoencoderKLConfig& config);

  // image: [B, in_channels, H, W] in [-1, 1]; floating input is cast to the model's dtype.
  // Returns the moments [B, 2 * latent_channels, h, w] (mean, then log-variance) in that dtype,
  // unscaled (the pipelines apply scaling_factor and shift_factor).
  torch::Tensor forward(const torch::Tensor& image);

  const AutoencoderKLConfig& config() const { return config_; }

 private:
  AutoencoderKLConfig config_;
  VaeEncoder encoder_{nullptr};
  LoadedConv2d quant_conv_{nullptr};
};
TORCH_MODULE(AutoencoderKLEncoder);

// diffusers' DiagonalGaussianDistribution over `moments` ([B, 2C, h, w]): mean, and
// std = exp(0.5 * clamp(logvar, -30, 20)). `noise` [B, C, h, w] (standard normal) gives the sample
// mean + std * noise; an undefined `noise` gives the mode (the mean). Float32 result.
torch::Tensor LatentFromMoments(const torch::Tensor& moments, const torch::Tensor& noise);

}  // namespace tlcm
