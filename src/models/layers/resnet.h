// diffusers' ResnetBlock2D, Downsample2D and Upsample2D in the forms the SDXL UNet and the
// AutoencoderKL decoder use (SiLU, "default" time-embedding addition, pre-norm).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "models/layers/loaded_layers.h"

namespace tlcm {

struct ResnetBlock2DOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t temb_channels = 0;  // 0: no time embedding (no time_emb_proj), as in the VAE
  int64_t groups = 32;        // GroupNorm groups of norm1 and norm2
  double eps = 1e-5;          // GroupNorm eps
};

// h = conv1(silu(norm1(x))) [+ time_emb_proj(silu(temb))[:, :, None, None]];
// h = conv2(silu(norm2(h))); out = (conv_shortcut(x) when channels change, else x) + h.
// Checkpoint keys: norm1, conv1, time_emb_proj (with temb), norm2, conv2, conv_shortcut (1x1,
// only when in_channels != out_channels); all with weight and bias.
class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  explicit ResnetBlock2DImpl(const ResnetBlock2DOptions& options);

  // x: [B, in, H, W]; temb: [B, temb_channels] (required iff temb_channels > 0).
  // Returns [B, out, H, W].
  torch::Tensor forward(const torch::Tensor& x,
                        const std::optional<torch::Tensor>& temb = std::nullopt);

 private:
  torch::nn::GroupNorm norm1_{nullptr};
  LoadedConv2d conv1_{nullptr};
  LoadedLinear time_emb_proj_{nullptr};
  torch::nn::GroupNorm norm2_{nullptr};
  LoadedConv2d conv2_{nullptr};
  LoadedConv2d conv_shortcut_{nullptr};
};
TORCH_MODULE(ResnetBlock2D);

// 3x3 convolution with stride 2. The UNet's pads 1 on every side; the VAE encoder's (padding 0 in
// diffusers) pads one zero row and column at the bottom and right only.
// Checkpoint keys: conv.{weight,bias}.
class Downsample2DImpl : public torch::nn::Module {
 public:
  enum class Padding { kSymmetric, kBottomRight };
  Downsample2DImpl(int64_t channels, int64_t out_channels, Padding padding = Padding::kSymmetric);
  // x: [B, C, H, W] -> [B, out, ceil(H/2), ceil(W/2)] (symmetric) or [B, out, H/2, W/2] (even H, W)
  torch::Tensor forward(const torch::Tensor& x);

 private:
  Padding padding_;
  LoadedConv2d conv_{nullptr};
};
TORCH_MODULE(Downsample2D);

// Nearest-neighbour upsampling then a 3x3 convolution (padding 1).
// Checkpoint keys: conv.{weight,bias}.
class Upsample2DImpl : public torch::nn::Module {
 public:
  Upsample2DImpl(int64_t channels, int64_t out_channels);
  // x: [B, C, H, W] -> [B, out, 2H, 2W], or [B, out, size[0], size[1]] when `size` is given
  // (the UNet passes the skip connection's size when the input was not a multiple of the
  // overall downsampling factor).
  torch::Tensor forward(const torch::Tensor& x,
                        const std::optional<std::vector<int64_t>>& size = std::nullopt);

 private:
  LoadedConv2d conv_{nullptr};
};
TORCH_MODULE(Upsample2D);

}  // namespace tlcm
