// The down / mid / up blocks of diffusers' UNet2DConditionModel (DownBlock2D,
// CrossAttnDownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D, CrossAttnUpBlock2D) and of the
// AutoencoderKL (UNetMidBlock2D, UpDecoderBlock2D, DownEncoderBlock2D).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "models/layers/attention.h"
#include "models/layers/resnet.h"
#include "models/layers/transformer_2d.h"

namespace tlcm {

// What the cross-attention blocks put after each resnet: a Transformer2DModel with `heads`
// heads of out_channels / heads channels.
struct CrossAttentionOptions {
  int64_t heads = 1;
  int64_t cross_attention_dim = 0;
  bool use_linear_projection = true;
};

struct UNetDownBlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t temb_channels = 0;
  int64_t groups = 32;
  double eps = 1e-5;
  int64_t num_layers = 1;  // resnets (and attentions)
  // Empty: DownBlock2D. Otherwise CrossAttnDownBlock2D with transformer_layers[j] transformer
  // blocks after resnet j (size num_layers).
  std::vector<int64_t> transformer_layers;
  CrossAttentionOptions attention;
  bool add_downsample = true;
};

// Checkpoint keys: resnets.{j}, attentions.{j} (cross-attention form), downsamplers.0.conv.
class UNetDownBlockImpl : public torch::nn::Module {
 public:
  explicit UNetDownBlockImpl(const UNetDownBlockOptions& options);

  // x: [B, in, H, W]; temb: [B, T]; context: [B, L, X]. Appends the output of every
  // resnet(+attention) pair and of the downsampler to `skips` (the UNet's skip connections);
  // returns the last of them: [B, out, H', W'].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb,
                        const torch::Tensor& context, std::vector<torch::Tensor>& skips);

 private:
  torch::nn::ModuleList resnets_{nullptr};
  torch::nn::ModuleList attentions_{nullptr};  // empty for DownBlock2D
  Downsample2D downsampler_{nullptr};
};
TORCH_MODULE(UNetDownBlock);

// UNetMidBlock2DCrossAttn: resnets.0, then (attentions.{j}, resnets.{j+1}) pairs.
class UNetMidBlockCrossAttnImpl : public torch::nn::Module {
 public:
  // `transformer_layers[j]`: transformer blocks of attentions.{j} (one entry per pair).
  UNetMidBlockCrossAttnImpl(int64_t channels, int64_t temb_channels, int64_t groups, double eps,
                            const std::vector<int64_t>& transformer_layers,
                            const CrossAttentionOptions& attention);
  // x: [B, C, H, W]; temb: [B, T]; context: [B, L, X]. Returns [B, C, H, W].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb,
                        const torch::Tensor& context);

 private:
  torch::nn::ModuleList resnets_{nullptr};
  torch::nn::ModuleList attentions_{nullptr};
};
TORCH_MODULE(UNetMidBlockCrossAttn);

struct UNetUpBlockOptions {
  int64_t in_channels = 0;           // channels of the down block this level mirrors
  int64_t prev_output_channels = 0;  // channels coming from the block below
  int64_t out_channels = 0;
  int64_t temb_channels = 0;
  int64_t groups = 32;
  double eps = 1e-5;
  int64_t num_layers = 1;  // resnets (each consumes one skip connection)
  // Empty: UpBlock2D; otherwise CrossAttnUpBlock2D (size num_layers).
  std::vector<int64_t> transformer_layers;
  CrossAttentionOptions attention;
  bool add_upsample = true;
};

// Checkpoint keys: resnets.{j}, attentions.{j} (cross-attention form), upsamplers.0.conv.
class UNetUpBlockImpl : public torch::nn::Module {
 public:
  explicit UNetUpBlockImpl(const UNetUpBlockOptions& options);

  int64_t num_layers() const { return static_cast<int64_t>(resnets_->size()); }

  // x: [B, prev, H, W]; pops num_layers() tensors from the back of `skips`, concatenating each
  // after the hidden state on channels before its resnet. `upsample_size`: the upsampler's output
  // [H2, W2] (default 2H x 2W). Returns [B, out, H2, W2] (or [B, out, H, W] without upsampler).
  torch::Tensor forward(const torch::Tensor& x, std::vector<torch::Tensor>& skips,
                        const torch::Tensor& temb, const torch::Tensor& context,
                        const std::optional<std::vector<int64_t>>& upsample_size);

 private:
  torch::nn::ModuleList resnets_{nullptr};
  torch::nn::ModuleList attentions_{nullptr};  // empty for UpBlock2D
  Upsample2D upsampler_{nullptr};
};
TORCH_MODULE(UNetUpBlock);

// The VAE decoder's UNetMidBlock2D: resnets.0, [attentions.0: single-head spatial attention with
// group_norm and residual], resnets.1. No time embedding.
class UNetMidBlock2DImpl : public torch::nn::Module {
 public:
  UNetMidBlock2DImpl(int64_t channels, int64_t groups, double eps, bool add_attention);
  // x: [B, C, H, W] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  ResnetBlock2D resnet_0_{nullptr};
  Attention attention_{nullptr};  // absent when add_attention is false
  ResnetBlock2D resnet_1_{nullptr};
};
TORCH_MODULE(UNetMidBlock2D);

// The VAE decoder's UpDecoderBlock2D: resnets.{j} (no time embedding), then upsamplers.0.
class UpDecoderBlock2DImpl : public torch::nn::Module {
 public:
  UpDecoderBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers,
                       int64_t groups, double eps, bool add_upsample);
  // x: [B, in, H, W] -> [B, out, 2H, 2W] (or [B, out, H, W] without upsampler)
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::ModuleList resnets_{nullptr};
  Upsample2D upsampler_{nullptr};
};
TORCH_MODULE(UpDecoderBlock2D);

// The VAE encoder's DownEncoderBlock2D: resnets.{j} (no time embedding), then downsamplers.0
// (stride 2, padded at the bottom and right only).
class DownEncoderBlock2DImpl : public torch::nn::Module {
 public:
  DownEncoderBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers,
                         int64_t groups, double eps, bool add_downsample);
  // x: [B, in, H, W] -> [B, out, H/2, W/2] (or [B, out, H, W] without downsampler)
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::ModuleList resnets_{nullptr};
  Downsample2D downsampler_{nullptr};
};
TORCH_MODULE(DownEncoderBlock2D);

}  // namespace tlcm
