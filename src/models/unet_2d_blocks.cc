#include "models/unet_2d_blocks.h"

namespace tlcm {
namespace {

Transformer2DModel MakeTransformer(int64_t channels, int64_t groups, int64_t num_layers,
                                   const CrossAttentionOptions& attention) {
  Transformer2DOptions options;
  options.heads = attention.heads;
  options.head_dim = channels / attention.heads;
  options.in_channels = channels;
  options.num_layers = num_layers;
  options.cross_attention_dim = attention.cross_attention_dim;
  options.norm_num_groups = groups;
  options.use_linear_projection = attention.use_linear_projection;
  return Transformer2DModel(options);
}

ResnetBlock2D MakeResnet(int64_t in, int64_t out, int64_t temb, int64_t groups, double eps) {
  ResnetBlock2DOptions options;
  options.in_channels = in;
  options.out_channels = out;
  options.temb_channels = temb;
  options.groups = groups;
  options.eps = eps;
  return ResnetBlock2D(options);
}

// A single Upsample2D under "upsamplers.0" (or a Downsample2D under "downsamplers.0").
template <typename Sampler>
Sampler RegisterSampler(torch::nn::Module& owner, const char* list_name, Sampler sampler) {
  torch::nn::ModuleList list;
  list->push_back(sampler);
  owner.register_module(list_name, list);
  return sampler;
}

}  // namespace

UNetDownBlockImpl::UNetDownBlockImpl(const UNetDownBlockOptions& o) {
  resnets_ = register_module("resnets", torch::nn::ModuleList());
  attentions_ = register_module("attentions", torch::nn::ModuleList());
  for (int64_t j = 0; j < o.num_layers; ++j) {
    const int64_t in = j == 0 ? o.in_channels : o.out_channels;
    resnets_->push_back(MakeResnet(in, o.out_channels, o.temb_channels, o.groups, o.eps));
    if (!o.transformer_layers.empty()) {
      attentions_->push_back(
          MakeTransformer(o.out_channels, o.groups, o.transformer_layers[j], o.attention));
    }
  }
  if (o.add_downsample) {
    downsampler_ =
        RegisterSampler(*this, "downsamplers", Downsample2D(o.out_channels, o.out_channels));
  }
}

torch::Tensor UNetDownBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& temb,
                                         const torch::Tensor& context,
                                         std::vector<torch::Tensor>& skips) {
  torch::Tensor h = x;  // [B, C, H, W]
  for (size_t j = 0; j < resnets_->size(); ++j) {
    h = resnets_[j]->as<ResnetBlock2DImpl>()->forward(h, temb);
    if (!attentions_->is_empty()) {
      h = attentions_[j]->as<Transformer2DModelImpl>()->forward(h, context);
    }
    skips.push_back(h);
  }
  if (downsampler_) {
    h = downsampler_(h);  // [B, C, ceil(H/2), ceil(W/2)]
    skips.push_back(h);
  }
  return h;
}

UNetMidBlockCrossAttnImpl::UNetMidBlockCrossAttnImpl(int64_t channels, int64_t temb_channels,
                                                     int64_t groups, double eps,
                                                     const std::vector<int64_t>& transformer_layers,
                                                     const CrossAttentionOptions& attention) {
  resnets_ = register_module("resnets", torch::nn::ModuleList());
  attentions_ = register_module("attentions", torch::nn::ModuleList());
  resnets_->push_back(MakeResnet(channels, channels, temb_channels, groups, eps));
  for (int64_t layers : transformer_layers) {
    attentions_->push_back(MakeTransformer(channels, groups, layers, attention));
    resnets_->push_back(MakeResnet(channels, channels, temb_channels, groups, eps));
  }
}

torch::Tensor UNetMidBlockCrossAttnImpl::forward(const torch::Tensor& x, const torch::Tensor& temb,
                                                 const torch::Tensor& context) {
  torch::Tensor h = resnets_[0]->as<ResnetBlock2DImpl>()->forward(x, temb);  // [B, C, H, W]
  for (size_t j = 0; j < attentions_->size(); ++j) {
    h = attentions_[j]->as<Transformer2DModelImpl>()->forward(h, context);
    h = resnets_[j + 1]->as<ResnetBlock2DImpl>()->forward(h, temb);
  }
  return h;
}

UNetUpBlockImpl::UNetUpBlockImpl(const UNetUpBlockOptions& o) {
  resnets_ = register_module("resnets", torch::nn::ModuleList());
  attentions_ = register_module("attentions", torch::nn::ModuleList());
  for (int64_t j = 0; j < o.num_layers; ++j) {
    // Resnet j sees the hidden state (prev_output_channels first, then out_channels) plus a
    // skip with out_channels, except the last one, whose skip comes from the level above
    // (in_channels).
    const int64_t hidden = j == 0 ? o.prev_output_channels : o.out_channels;
    const int64_t skip = j == o.num_layers - 1 ? o.in_channels : o.out_channels;
    resnets_->push_back(
        MakeResnet(hidden + skip, o.out_channels, o.temb_channels, o.groups, o.eps));
    if (!o.transformer_layers.empty()) {
      attentions_->push_back(
          MakeTransformer(o.out_channels, o.groups, o.transformer_layers[j], o.attention));
    }
  }
  if (o.add_upsample) {
    upsampler_ = RegisterSampler(*this, "upsamplers", Upsample2D(o.out_channels, o.out_channels));
  }
}

torch::Tensor UNetUpBlockImpl::forward(const torch::Tensor& x, std::vector<torch::Tensor>& skips,
                                       const torch::Tensor& temb, const torch::Tensor& context,
                                       const std::optional<std::vector<int64_t>>& upsample_size) {
  torch::Tensor h = x;
  for (size_t j = 0; j < resnets_->size(); ++j) {
    TORCH_CHECK(!skips.empty(), "UNet up block: no skip connection left");
    h = torch::cat({h, skips.back()}, 1);  // [B, hidden + skip, H, W]
    skips.pop_back();
    h = resnets_[j]->as<ResnetBlock2DImpl>()->forward(h, temb);
    if (!attentions_->is_empty()) {
      h = attentions_[j]->as<Transformer2DModelImpl>()->forward(h, context);
    }
  }
  if (upsampler_) h = upsampler_(h, upsample_size);
  return h;
}

UNetMidBlock2DImpl::UNetMidBlock2DImpl(int64_t channels, int64_t groups, double eps,
                                       bool add_attention) {
  resnet_0_ = MakeResnet(channels, channels, 0, groups, eps);
  resnet_1_ = MakeResnet(channels, channels, 0, groups, eps);
  torch::nn::ModuleList resnets;
  resnets->push_back(resnet_0_);
  resnets->push_back(resnet_1_);
  register_module("resnets", resnets);
  if (add_attention) {
    AttentionOptions options;
    options.query_dim = channels;
    options.heads = 1;
    options.dim_head = channels;
    options.bias = true;
    options.norm_num_groups = groups;
    options.norm_eps = eps;
    options.residual_connection = true;
    attention_ = Attention(options);
    torch::nn::ModuleList attentions;
    attentions->push_back(attention_);
    register_module("attentions", attentions);
  }
}

torch::Tensor UNetMidBlock2DImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = resnet_0_(x);  // [B, C, H, W]
  if (attention_) h = attention_(h);
  return resnet_1_(h);
}

UpDecoderBlock2DImpl::UpDecoderBlock2DImpl(int64_t in_channels, int64_t out_channels,
                                           int64_t num_layers, int64_t groups, double eps,
                                           bool add_upsample) {
  resnets_ = register_module("resnets", torch::nn::ModuleList());
  for (int64_t j = 0; j < num_layers; ++j) {
    const int64_t in = j == 0 ? in_channels : out_channels;
    resnets_->push_back(MakeResnet(in, out_channels, 0, groups, eps));
  }
  if (add_upsample) {
    upsampler_ = RegisterSampler(*this, "upsamplers", Upsample2D(out_channels, out_channels));
  }
}

torch::Tensor UpDecoderBlock2DImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (const auto& resnet : *resnets_) h = resnet->as<ResnetBlock2DImpl>()->forward(h);
  if (upsampler_) h = upsampler_(h);
  return h;
}

DownEncoderBlock2DImpl::DownEncoderBlock2DImpl(int64_t in_channels, int64_t out_channels,
                                               int64_t num_layers, int64_t groups, double eps,
                                               bool add_downsample) {
  resnets_ = register_module("resnets", torch::nn::ModuleList());
  for (int64_t j = 0; j < num_layers; ++j) {
    const int64_t in = j == 0 ? in_channels : out_channels;
    resnets_->push_back(MakeResnet(in, out_channels, 0, groups, eps));
  }
  if (add_downsample) {
    downsampler_ = RegisterSampler(
        *this, "downsamplers",
        Downsample2D(out_channels, out_channels, Downsample2DImpl::Padding::kBottomRight));
  }
}

torch::Tensor DownEncoderBlock2DImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (const auto& resnet : *resnets_) h = resnet->as<ResnetBlock2DImpl>()->forward(h);
  if (downsampler_) h = downsampler_(h);
  return h;
}

}  // namespace tlcm
