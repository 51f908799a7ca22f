#include "models/autoencoder_kl.h"

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "loaders/json_config.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

using Json = nlohmann::json;

// diffusers hard-codes this eps for every GroupNorm of the VAE encoder and decoder.
constexpr double kNormEps = 1e-6;

AutoencoderKLConfig Parse(const Json& json) {
  RequireValue(json, "act_fn", std::string("silu"));
  RequireValue(json, "latents_mean", nullptr);
  RequireValue(json, "latents_std", nullptr);
  AutoencoderKLConfig c;
  c.in_channels = SizeOr(json, "in_channels", 3);
  c.out_channels = SizeOr(json, "out_channels", 3);
  c.latent_channels = SizeOr(json, "latent_channels", 4);
  c.block_out_channels = SizesOr(json, "block_out_channels", {64});
  const auto up_types =
      ValueOr<std::vector<std::string>>(json, "up_block_types", {"UpDecoderBlock2D"});
  if (c.block_out_channels.empty() || up_types.size() != c.block_out_channels.size()) {
    throw std::invalid_argument(
        absl::StrCat("\"up_block_types\" (", up_types.size(), ") and \"block_out_channels\" (",
                     c.block_out_channels.size(), ") must have the same, non-zero length"));
  }
  for (const auto& type : up_types) {
    if (type != "UpDecoderBlock2D") {
      throw std::invalid_argument(
          absl::StrCat("\"up_block_types\": \"", type, "\" is not supported"));
    }
  }
  const auto down_types = ValueOr<std::vector<std::string>>(
      json, "down_block_types",
      std::vector<std::string>(c.block_out_channels.size(), "DownEncoderBlock2D"));
  if (down_types.size() != c.block_out_channels.size()) {
    throw std::invalid_argument(absl::StrCat("\"down_block_types\" (", down_types.size(),
                                             ") and \"block_out_channels\" (",
                                             c.block_out_channels.size(), ") differ in length"));
  }
  for (const auto& type : down_types) {
    if (type != "DownEncoderBlock2D") {
      throw std::invalid_argument(
          absl::StrCat("\"down_block_types\": \"", type, "\" is not supported"));
    }
  }
  c.layers_per_block = SizeOr(json, "layers_per_block", 1);
  c.norm_num_groups = SizeOr(json, "norm_num_groups", 32);
  for (int64_t channels : c.block_out_channels) {
    if (c.norm_num_groups <= 0 || channels % c.norm_num_groups != 0) {
      throw std::invalid_argument(absl::StrCat("\"norm_num_groups\": ", c.norm_num_groups,
                                               " does not divide block_out_channels ", channels));
    }
  }
  c.scaling_factor = ValueOr<double>(json, "scaling_factor", 0.18215);
  if (auto it = json.find("shift_factor"); it != json.end() && !it->is_null()) {
    c.shift_factor = it->get<double>();
  }
  c.force_upcast = ValueOr<bool>(json, "force_upcast", true);
  c.use_quant_conv = ValueOr<bool>(json, "use_quant_conv", true);
  c.use_post_quant_conv = ValueOr<bool>(json, "use_post_quant_conv", true);
  c.mid_block_add_attention = ValueOr<bool>(json, "mid_block_add_attention", true);
  return c;
}

LoadedConv2d Conv(int64_t in, int64_t out, int64_t kernel) {
  return LoadedConv2d(in, out, kernel, /*stride=*/1, /*padding=*/(kernel - 1) / 2);
}

}  // namespace

absl::StatusOr<AutoencoderKLConfig> AutoencoderKLConfig::FromFile(const std::string& path) {
  TLCM_ASSIGN_OR_RETURN(Json json, ReadJsonFile(path));
  return ParseConfig(path, json, Parse);
}

VaeDecoderImpl::VaeDecoderImpl(const AutoencoderKLConfig& c) {
  const std::vector<int64_t> channels(c.block_out_channels.rbegin(), c.block_out_channels.rend());
  conv_in_ = register_module("conv_in", Conv(c.latent_channels, channels[0], 3));
  mid_block_ = register_module("mid_block", UNetMidBlock2D(channels[0], c.norm_num_groups, kNormEps,
                                                           c.mid_block_add_attention));
  torch::nn::ModuleList up_blocks;
  for (size_t i = 0; i < channels.size(); ++i) {
    const int64_t in = i == 0 ? channels[0] : channels[i - 1];
    up_blocks_.push_back(UpDecoderBlock2D(in, channels[i], c.layers_per_block + 1,
                                          c.norm_num_groups, kNormEps,
                                          /*add_upsample=*/i + 1 < channels.size()));
    up_blocks->push_back(up_blocks_.back());
  }
  register_module("up_blocks", up_blocks);
  conv_norm_out_ = register_module(
      "conv_norm_out",
      torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, channels.back())
                               .eps(kNormEps)
                               .affine(true)));
  conv_out_ = register_module("conv_out", Conv(channels.back(), c.out_channels, 3));
}

torch::Tensor VaeDecoderImpl::forward(const torch::Tensor& z) {
  torch::Tensor h = mid_block_(conv_in_(z));  // [B, C_last, h, w]
  for (auto& block : up_blocks_) h = block(h);
  return conv_out_(torch::silu(conv_norm_out_(h)));  // [B, out_channels, H, W]
}

AutoencoderKLDecoderImpl::AutoencoderKLDecoderImpl(const AutoencoderKLConfig& config)
    : config_(config) {
  if (config.use_post_quant_conv) {
    post_quant_conv_ =
        register_module("post_quant_conv", Conv(config.latent_channels, config.latent_channels, 1));
  }
  decoder_ = register_module("decoder", VaeDecoder(config));
}

torch::Tensor AutoencoderKLDecoderImpl::forward(const torch::Tensor& z) {
  torch::Tensor h = z.to(decoder_->dtype());  // [B, latent_channels, h, w]
  if (post_quant_conv_) h = post_quant_conv_(h);
  return decoder_(h);
}

VaeEncoderImpl::VaeEncoderImpl(const AutoencoderKLConfig& c) {
  const std::vector<int64_t>& channels = c.block_out_channels;
  conv_in_ = register_module("conv_in", Conv(c.in_channels, channels[0], 3));
  torch::nn::ModuleList down_blocks;
  for (size_t i = 0; i < channels.size(); ++i) {
    const int64_t in = i == 0 ? channels[0] : channels[i - 1];
    down_blocks_.push_back(DownEncoderBlock2D(in, channels[i], c.layers_per_block,
                                              c.norm_num_groups, kNormEps,
                                              /*add_downsample=*/i + 1 < channels.size()));
    down_blocks->push_back(down_blocks_.back());
  }
  register_module("down_blocks", down_blocks);
  mid_block_ = register_module("mid_block", UNetMidBlock2D(channels.back(), c.norm_num_groups,
                                                           kNormEps, c.mid_block_add_attention));
  conv_norm_out_ = register_module(
      "conv_norm_out",
      torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, channels.back())
                               .eps(kNormEps)
                               .affine(true)));
  conv_out_ = register_module("conv_out", Conv(channels.back(), 2 * c.latent_channels, 3));
}

torch::Tensor VaeEncoderImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = conv_in_(x);  // [B, C_0, H, W]
  for (auto& block : down_blocks_) h = block(h);
  h = mid_block_(h);                                 // [B, C_last, h, w]
  return conv_out_(torch::silu(conv_norm_out_(h)));  // [B, 2 * latent_channels, h, w]
}

AutoencoderKLEncoderImpl::AutoencoderKLEncoderImpl(const AutoencoderKLConfig& config)
    : config_(config) {
  encoder_ = register_module("encoder", VaeEncoder(config));
  if (config.use_quant_conv) {
    quant_conv_ = register_module("quant_conv",
                                  Conv(2 * config.latent_channels, 2 * config.latent_channels, 1));
  }
}

torch::Tensor AutoencoderKLEncoderImpl::forward(const torch::Tensor& image) {
  torch::Tensor moments = encoder_(image.to(encoder_->dtype()));
  if (quant_conv_) moments = quant_conv_(moments);
  return moments;
}

torch::Tensor LatentFromMoments(const torch::Tensor& moments, const torch::Tensor& noise) {
  const std::vector<torch::Tensor> halves = moments.to(torch::kFloat32).chunk(2, 1);
  if (!noise.defined()) return halves[0];
  const torch::Tensor std = torch::exp(0.5 * torch::clamp(halves[1], -30.0, 20.0));
  return halves[0] + std * noise.to(moments.device(), torch::kFloat32);
}

}  // namespace tlcm
