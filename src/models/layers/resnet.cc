#include "models/layers/resnet.h"

namespace tlcm {
namespace {

torch::nn::GroupNorm MakeGroupNorm(int64_t groups, int64_t channels, double eps) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels).eps(eps).affine(true));
}

LoadedConv2d MakeConv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return LoadedConv2d(in, out, kernel, stride, padding);
}

}  // namespace

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetBlock2DOptions& o) {
  norm1_ = register_module("norm1", MakeGroupNorm(o.groups, o.in_channels, o.eps));
  conv1_ = register_module("conv1", MakeConv(o.in_channels, o.out_channels, 3, 1, 1));
  if (o.temb_channels > 0) {
    time_emb_proj_ =
        register_module("time_emb_proj", LoadedLinear(o.temb_channels, o.out_channels));
  }
  norm2_ = register_module("norm2", MakeGroupNorm(o.groups, o.out_channels, o.eps));
  conv2_ = register_module("conv2", MakeConv(o.out_channels, o.out_channels, 3, 1, 1));
  if (o.in_channels != o.out_channels) {
    conv_shortcut_ =
        register_module("conv_shortcut", MakeConv(o.in_channels, o.out_channels, 1, 1, 0));
  }
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x,
                                         const std::optional<torch::Tensor>& temb) {
  // x: [B, in, H, W]
  torch::Tensor h = conv1_(torch::silu(norm1_(x)));  // [B, out, H, W]
  if (time_emb_proj_) {
    TORCH_CHECK(temb.has_value(), "ResnetBlock2D with time_emb_proj needs a time embedding");
    h = h + time_emb_proj_(torch::silu(*temb)).unsqueeze(-1).unsqueeze(-1);
  }
  h = conv2_(torch::silu(norm2_(h)));
  return (conv_shortcut_ ? conv_shortcut_(x) : x) + h;
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t out_channels, Padding padding)
    : padding_(padding) {
  const int64_t conv_padding = padding == Padding::kSymmetric ? 1 : 0;
  conv_ = register_module("conv", MakeConv(channels, out_channels, 3, 2, conv_padding));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  if (padding_ == Padding::kSymmetric) return conv_(x);
  // (left, right, top, bottom) = (0, 1, 0, 1)
  return conv_(torch::constant_pad_nd(x, {0, 1, 0, 1}, 0));
}

Upsample2DImpl::Upsample2DImpl(int64_t channels, int64_t out_channels) {
  conv_ = register_module("conv", MakeConv(channels, out_channels, 3, 1, 1));
}

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x,
                                      const std::optional<std::vector<int64_t>>& size) {
  namespace F = torch::nn::functional;
  auto options = F::InterpolateFuncOptions().mode(torch::kNearest);
  if (size) {
    options.size(*size);
  } else {
    options.scale_factor(std::vector<double>{2.0, 2.0});
  }
  // Nearest-neighbour copying is exact in every dtype.
  return conv_(F::interpolate(x, options));
}

}  // namespace tlcm
