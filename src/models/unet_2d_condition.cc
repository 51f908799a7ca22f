#include "models/unet_2d_condition.h"

#include <algorithm>
#include <stdexcept>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "loaders/json_config.h"
#include "models/layers/interruption.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

using Json = nlohmann::json;

// json[key], or nullptr when it is absent or null.
const Json* Find(const Json& json, const char* key) {
  auto it = json.find(key);
  return it == json.end() || it->is_null() ? nullptr : &*it;
}

// json[key] as one size per block (each in [1, kMaxConfigSize]): a number is repeated, a list
// must have `blocks` entries.
std::vector<int64_t> PerBlock(const Json& json, const char* key, size_t blocks, int64_t fallback) {
  const Json* value = Find(json, key);
  if (value == nullptr) return std::vector<int64_t>(blocks, fallback);
  std::vector<int64_t> values;
  if (value->is_number_integer()) {
    values.assign(blocks, value->get<int64_t>());
  } else {
    values = value->get<std::vector<int64_t>>();
    if (values.size() != blocks) {
      throw std::invalid_argument(
          absl::StrCat("\"", key, "\" has ", values.size(), " entries for ", blocks, " blocks"));
    }
  }
  for (int64_t v : values) CheckSize(key, v);
  return values;
}

// One entry of transformer_layers_per_block / reverse_transformer_layers_per_block: a number
// (the same for every resnet of the block) or a list with one count per resnet.
std::vector<int64_t> PerLayer(const Json& entry, const char* key, int64_t layers) {
  if (entry.is_number_integer()) return std::vector<int64_t>(layers, entry.get<int64_t>());
  auto values = entry.get<std::vector<int64_t>>();
  if (static_cast<int64_t>(values.size()) != layers) {
    throw std::invalid_argument(absl::StrCat("\"", key, "\": an entry has ", values.size(),
                                             " counts for a block of ", layers, " layers"));
  }
  return values;
}

// diffusers accepts block type names with a "UNetRes" prefix.
std::string BlockType(std::string name) {
  if (absl::StartsWith(name, "UNetRes")) name = name.substr(7);
  return name;
}

bool IsCrossAttention(const std::string& block_type) {
  return absl::StartsWith(block_type, "CrossAttn");
}

UNet2DConditionConfig Parse(const Json& json) {
  // Options SDXL-family UNets leave at these values.
  RequireValue(json, "center_input_sample", false);
  RequireValue(json, "mid_block_type", std::string("UNetMidBlock2DCrossAttn"));
  RequireValue(json, "downsample_padding", 1);
  RequireValue(json, "mid_block_scale_factor", 1.0);
  RequireValue(json, "act_fn", std::string("silu"));
  RequireValue(json, "encoder_hid_dim", nullptr);
  RequireValue(json, "encoder_hid_dim_type", nullptr);
  RequireValue(json, "dual_cross_attention", false);
  RequireValue(json, "class_embed_type", nullptr);
  RequireValue(json, "num_class_embeds", nullptr);
  RequireValue(json, "class_embeddings_concat", false);
  RequireValue(json, "resnet_time_scale_shift", std::string("default"));
  RequireValue(json, "resnet_skip_time_act", false);
  RequireValue(json, "resnet_out_scale_factor", 1.0);
  RequireValue(json, "time_embedding_type", std::string("positional"));
  RequireValue(json, "time_embedding_act_fn", nullptr);
  RequireValue(json, "timestep_post_act", nullptr);
  RequireValue(json, "time_cond_proj_dim", nullptr);
  RequireValue(json, "attention_type", std::string("default"));
  RequireValue(json, "mid_block_only_cross_attention", false);
  RequireValue(json, "cross_attention_norm", nullptr);
  RequireValue(json, "addition_embed_type", std::string("text_time"));
  if (json.contains("mid_block_type") && json["mid_block_type"].is_null()) {
    throw std::invalid_argument("\"mid_block_type\": null is not supported");
  }
  if (Find(json, "addition_embed_type") == nullptr) {
    throw std::invalid_argument(
        "\"addition_embed_type\": null is not supported (only \"text_time\")");
  }
  if (const Json* only = Find(json, "only_cross_attention")) {
    const bool any = only->is_array() ? std::any_of(only->begin(), only->end(),
                                                    [](const Json& v) { return v.get<bool>(); })
                                      : only->get<bool>();
    if (any) throw std::invalid_argument("\"only_cross_attention\": true is not supported");
  }

  UNet2DConditionConfig c;
  c.in_channels = SizeOr(json, "in_channels", 4);
  c.out_channels = SizeOr(json, "out_channels", 4);
  if (!json.contains("block_out_channels")) {
    throw std::invalid_argument("\"block_out_channels\": missing");
  }
  c.block_out_channels = SizesOr(json, "block_out_channels", {});
  const size_t n = c.block_out_channels.size();
  for (const auto& name : json.at("down_block_types").get<std::vector<std::string>>()) {
    c.down_block_types.push_back(BlockType(name));
  }
  for (const auto& name : json.at("up_block_types").get<std::vector<std::string>>()) {
    c.up_block_types.push_back(BlockType(name));
  }
  if (n == 0 || c.down_block_types.size() != n || c.up_block_types.size() != n) {
    throw std::invalid_argument(absl::StrCat(
        "\"block_out_channels\" (", n, "), \"down_block_types\" (", c.down_block_types.size(),
        ") and \"up_block_types\" (", c.up_block_types.size(), ") must have the same length"));
  }
  for (const auto& type : c.down_block_types) {
    if (type != "DownBlock2D" && type != "CrossAttnDownBlock2D") {
      throw std::invalid_argument(
          absl::StrCat("\"down_block_types\": \"", type, "\" is not supported"));
    }
  }
  for (const auto& type : c.up_block_types) {
    if (type != "UpBlock2D" && type != "CrossAttnUpBlock2D") {
      throw std::invalid_argument(
          absl::StrCat("\"up_block_types\": \"", type, "\" is not supported"));
    }
  }
  c.layers_per_block = PerBlock(json, "layers_per_block", n, 2);
  c.cross_attention_dim = PerBlock(json, "cross_attention_dim", n, 1280);
  c.num_attention_heads = Find(json, "num_attention_heads") != nullptr
                              ? PerBlock(json, "num_attention_heads", n, 8)
                              : PerBlock(json, "attention_head_dim", n, 8);
  if (json.contains("norm_num_groups") && json["norm_num_groups"].is_null()) {
    throw std::invalid_argument("\"norm_num_groups\": null is not supported");
  }
  c.norm_num_groups = SizeOr(json, "norm_num_groups", 32);
  c.norm_eps = ValueOr<double>(json, "norm_eps", 1e-5);
  for (size_t i = 0; i < n; ++i) {
    const int64_t channels = c.block_out_channels[i];
    if (channels % c.norm_num_groups != 0) {
      throw std::invalid_argument(absl::StrCat("\"norm_num_groups\": ", c.norm_num_groups,
                                               " does not divide block_out_channels ", channels));
    }
    if (c.num_attention_heads[i] <= 0 || channels % c.num_attention_heads[i] != 0) {
      throw std::invalid_argument(absl::StrCat("attention heads ", c.num_attention_heads[i],
                                               " do not divide block_out_channels ", channels));
    }
  }

  // transformer_layers_per_block: a number, or one entry per block (number or per-layer list).
  const Json* layers_found = Find(json, "transformer_layers_per_block");
  const Json layers_json = layers_found != nullptr ? *layers_found : Json(1);
  if (layers_json.is_array() && layers_json.size() != n) {
    throw std::invalid_argument(absl::StrCat("\"transformer_layers_per_block\" has ",
                                             layers_json.size(), " entries for ", n, " blocks"));
  }
  for (size_t i = 0; i < n; ++i) {
    const Json& entry = layers_json.is_array() ? layers_json.at(i) : layers_json;
    c.down_transformer_layers.push_back(
        PerLayer(entry, "transformer_layers_per_block", c.layers_per_block[i]));
  }
  c.mid_transformer_layers = {c.down_transformer_layers.back().front()};
  const Json* reverse = Find(json, "reverse_transformer_layers_per_block");
  if (reverse != nullptr && (!reverse->is_array() || reverse->size() != n)) {
    throw std::invalid_argument(
        absl::StrCat("\"reverse_transformer_layers_per_block\" needs a list of ", n, " entries"));
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t mirror = n - 1 - i;
    const int64_t layers = c.layers_per_block[mirror] + 1;
    if (reverse != nullptr) {
      c.up_transformer_layers.push_back(
          PerLayer(reverse->at(i), "reverse_transformer_layers_per_block", layers));
    } else {
      const Json& entry = layers_json.is_array() ? layers_json.at(mirror) : layers_json;
      if (!entry.is_number_integer()) {
        throw std::invalid_argument(
            "\"transformer_layers_per_block\" with per-layer lists needs "
            "\"reverse_transformer_layers_per_block\"");
      }
      c.up_transformer_layers.push_back(PerLayer(entry, "transformer_layers_per_block", layers));
    }
  }

  c.flip_sin_to_cos = ValueOr<bool>(json, "flip_sin_to_cos", true);
  c.freq_shift = ValueOr<double>(json, "freq_shift", 0.0);
  c.time_embed_dim = SizeOr(json, "time_embedding_dim", 4 * c.block_out_channels[0]);
  c.addition_time_embed_dim = json.at("addition_time_embed_dim").get<int64_t>();
  c.projection_class_embeddings_input_dim =
      json.at("projection_class_embeddings_input_dim").get<int64_t>();
  c.use_linear_projection = ValueOr<bool>(json, "use_linear_projection", false);
  c.upcast_attention = ValueOr<bool>(json, "upcast_attention", false);
  c.conv_in_kernel = ValueOr<int64_t>(json, "conv_in_kernel", 3);
  c.conv_out_kernel = ValueOr<int64_t>(json, "conv_out_kernel", 3);
  if (c.conv_in_kernel % 2 == 0 || c.conv_out_kernel % 2 == 0) {
    throw std::invalid_argument("\"conv_in_kernel\" and \"conv_out_kernel\" must be odd");
  }
  return c;
}

}  // namespace

absl::StatusOr<UNet2DConditionConfig> UNet2DConditionConfig::FromFile(const std::string& path) {
  TLCM_ASSIGN_OR_RETURN(Json json, ReadJsonFile(path));
  return ParseConfig(path, json, Parse);
}

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const UNet2DConditionConfig& config)
    : config_(config) {
  const auto& c = config_;
  const size_t n = c.block_out_channels.size();
  const int64_t temb = c.time_embed_dim;
  conv_in_ = register_module("conv_in",
                             LoadedConv2d(c.in_channels, c.block_out_channels[0], c.conv_in_kernel,
                                          /*stride=*/1, /*padding=*/(c.conv_in_kernel - 1) / 2));
  time_embedding_ =
      register_module("time_embedding", TimestepEmbedding(c.block_out_channels[0], temb, temb));
  add_embedding_ = register_module(
      "add_embedding", TimestepEmbedding(c.projection_class_embeddings_input_dim, temb, temb));

  torch::nn::ModuleList down_blocks;
  for (size_t i = 0; i < n; ++i) {
    UNetDownBlockOptions o;
    o.in_channels = i == 0 ? c.block_out_channels[0] : c.block_out_channels[i - 1];
    o.out_channels = c.block_out_channels[i];
    o.temb_channels = temb;
    o.groups = c.norm_num_groups;
    o.eps = c.norm_eps;
    o.num_layers = c.layers_per_block[i];
    if (IsCrossAttention(c.down_block_types[i])) {
      o.transformer_layers = c.down_transformer_layers[i];
    }
    o.attention = {c.num_attention_heads[i], c.cross_attention_dim[i], c.use_linear_projection};
    o.add_downsample = i + 1 < n;
    down_blocks_.push_back(UNetDownBlock(o));
    down_blocks->push_back(down_blocks_.back());
  }
  register_module("down_blocks", down_blocks);

  mid_block_ = register_module(
      "mid_block", UNetMidBlockCrossAttn(c.block_out_channels.back(), temb, c.norm_num_groups,
                                         c.norm_eps, c.mid_transformer_layers,
                                         CrossAttentionOptions{c.num_attention_heads.back(),
                                                               c.cross_attention_dim.back(),
                                                               c.use_linear_projection}));

  torch::nn::ModuleList up_blocks;
  for (size_t i = 0; i < n; ++i) {
    const size_t mirror = n - 1 - i;  // the down block this up block mirrors
    UNetUpBlockOptions o;
    o.in_channels = c.block_out_channels[mirror == 0 ? 0 : mirror - 1];
    o.prev_output_channels = c.block_out_channels[i == 0 ? mirror : mirror + 1];
    o.out_channels = c.block_out_channels[mirror];
    o.temb_channels = temb;
    o.groups = c.norm_num_groups;
    o.eps = c.norm_eps;
    o.num_layers = c.layers_per_block[mirror] + 1;
    if (IsCrossAttention(c.up_block_types[i])) o.transformer_layers = c.up_transformer_layers[i];
    o.attention = {c.num_attention_heads[mirror], c.cross_attention_dim[mirror],
                   c.use_linear_projection};
    o.add_upsample = i + 1 < n;
    up_blocks_.push_back(UNetUpBlock(o));
    up_blocks->push_back(up_blocks_.back());
  }
  register_module("up_blocks", up_blocks);

  conv_norm_out_ = register_module(
      "conv_norm_out",
      torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, c.block_out_channels[0])
                               .eps(c.norm_eps)
                               .affine(true)));
  conv_out_ = register_module("conv_out", LoadedConv2d(c.block_out_channels[0], c.out_channels,
                                                       c.conv_out_kernel, /*stride=*/1,
                                                       /*padding=*/(c.conv_out_kernel - 1) / 2));
}

torch::Tensor UNet2DConditionModelImpl::forward(const torch::Tensor& sample,
                                                const torch::Tensor& timestep,
                                                const torch::Tensor& encoder_hidden_states,
                                                const torch::Tensor& text_embeds,
                                                const torch::Tensor& time_ids) {
  const auto dtype = conv_in_->weight.scalar_type();
  const int64_t batch = sample.size(0);
  const torch::Tensor context = encoder_hidden_states.to(dtype);  // [B, L, X]

  // Time embedding: sinusoids in float32, then the model dtype. emb: [B, time_embed_dim]
  const torch::Tensor t = timestep.to(sample.device()).reshape({-1}).expand({batch});
  torch::Tensor emb =
      time_embedding_(SinusoidalTimestepEmbedding(t, config_.block_out_channels[0],
                                                  config_.flip_sin_to_cos, config_.freq_shift)
                          .to(dtype));
  // text_time: [text_embeds, sinusoid(each time id)] -> add_embedding.
  torch::Tensor time_embeds =
      SinusoidalTimestepEmbedding(time_ids.reshape({-1}), config_.addition_time_embed_dim,
                                  config_.flip_sin_to_cos, config_.freq_shift)
          .reshape({batch, -1});  // [B, K * addition_time_embed_dim]
  emb = emb + add_embedding_(torch::cat({text_embeds.to(dtype), time_embeds.to(dtype)}, -1));

  // Down path; skips holds conv_in's output and every block output, in order.
  torch::Tensor h = conv_in_(sample.to(dtype));  // [B, C0, h, w]
  std::vector<torch::Tensor> skips = {h};
  for (auto& block : down_blocks_) {
    h = block(h, emb, context, skips);
    ThrowIfInterrupted();
  }
  h = mid_block_(h, emb, context);
  ThrowIfInterrupted();

  // Up path: each block consumes its skips from the back; its upsampler produces the size of the
  // next skip (2x, or the odd size the down path had; diffusers passes that size only for odd
  // inputs, which interpolates identically).
  for (size_t i = 0; i < up_blocks_.size(); ++i) {
    auto& block = up_blocks_[i];
    std::optional<std::vector<int64_t>> upsample_size;
    const size_t consumed = static_cast<size_t>(block->num_layers());
    if (i + 1 < up_blocks_.size()) {
      TORCH_CHECK(skips.size() > consumed, "UNet: skip connections do not match the up blocks");
      const torch::Tensor& next = skips[skips.size() - consumed - 1];
      upsample_size = std::vector<int64_t>{next.size(2), next.size(3)};
    }
    h = block(h, skips, emb, context, upsample_size);
    ThrowIfInterrupted();
  }
  return conv_out_(torch::silu(conv_norm_out_(h)));  // [B, out_channels, h, w]
}

}  // namespace tlcm
