// diffusers' UNet2DConditionModel in the form the SDXL family uses (text_time additional
// embedding, cross-attention transformer blocks), built from the component's config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/layers/embeddings.h"
#include "models/layers/loaded_layers.h"
#include "models/unet_2d_blocks.h"

namespace tlcm {

// The supported subset of UNet2DConditionModel's config.json, normalized: every per-block
// option is expanded to one entry per down block (index i), every per-layer option to one entry
// per resnet. Options SDXL-family UNets leave at their defaults (class embeddings,
// time_cond_proj_dim, other addition_embed_types, encoder_hid_proj, dual or only cross
// attention, fourier time embedding, "scale_shift" resnets, GLIGEN, ...) are rejected by FromFile.
struct UNet2DConditionConfig {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  std::vector<int64_t> block_out_channels;
  std::vector<std::string> down_block_types;  // "DownBlock2D" | "CrossAttnDownBlock2D"
  std::vector<std::string> up_block_types;    // "UpBlock2D" | "CrossAttnUpBlock2D"
  std::vector<int64_t> layers_per_block;      // resnets per down block (up blocks: + 1)
  // Transformer blocks in the attention after resnet j of down block i / up block i, and in
  // each attention of the mid block (UNetMidBlock2DCrossAttn).
  std::vector<std::vector<int64_t>> down_transformer_layers;
  std::vector<std::vector<int64_t>> up_transformer_layers;
  std::vector<int64_t> mid_transformer_layers;
  // Attention heads per down block: config `num_attention_heads`, or else `attention_head_dim`
  // (which diffusers' UNet2DConditionModel reads as a head count).
  std::vector<int64_t> num_attention_heads;
  std::vector<int64_t> cross_attention_dim;  // per down block
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  bool flip_sin_to_cos = true;
  double freq_shift = 0.0;
  int64_t time_embed_dim = 0;  // time_embedding_dim, or 4 * block_out_channels[0]
  int64_t addition_time_embed_dim = 0;
  int64_t projection_class_embeddings_input_dim = 0;
  bool use_linear_projection = false;
  // Accepted for completeness: the attention softmax always runs in float32 under half
  // precision on the hand-written path, and diffusers' SDPA processor ignores the flag too.
  bool upcast_attention = false;
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;

  // Parses unet/config.json. InvalidArgument names the file and the offending key.
  static absl::StatusOr<UNet2DConditionConfig> FromFile(const std::string& path);
};

// Checkpoint keys (exactly diffusers'): conv_in, time_embedding.linear_{1,2},
// add_embedding.linear_{1,2}, down_blocks.{i}.{resnets,attentions,downsamplers}.*,
// mid_block.{resnets,attentions}.*, up_blocks.{i}.{resnets,attentions,upsamplers}.*,
// conv_norm_out, conv_out. Built on the CPU with unset
// float32 parameters (load them: layers/loaded_layers.h); move with ->to(device, dtype).
// forward() runs in float32, float16 or bfloat16 (norms use the native kernels, which
// accumulate in float32, as diffusers does). Not thread-safe to mutate; concurrent forward()
// calls under NoGradGuard are fine.
class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  explicit UNet2DConditionModelImpl(const UNet2DConditionConfig& config);

  // sample: [B, in_channels, h, w] (any h, w; odd sizes follow diffusers' upsample sizes).
  // timestep: [B] (one per sample) or a scalar / [1] for all; integer or floating.
  // encoder_hidden_states: [B, L, cross_attention_dim]; text_embeds: [B, P];
  // time_ids: [B, K] with P + K * addition_time_embed_dim = projection_class_embeddings_input_dim
  // (SDXL: P 1280, K 6). Floating inputs are cast to the model's dtype.
  // Returns [B, out_channels, h, w] in the model's dtype.
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timestep,
                        const torch::Tensor& encoder_hidden_states,
                        const torch::Tensor& text_embeds, const torch::Tensor& time_ids);

  const UNet2DConditionConfig& config() const { return config_; }

 private:
  UNet2DConditionConfig config_;
  LoadedConv2d conv_in_{nullptr};
  TimestepEmbedding time_embedding_{nullptr};
  TimestepEmbedding add_embedding_{nullptr};
  std::vector<UNetDownBlock> down_blocks_;  // registered as the ModuleList down_blocks
  UNetMidBlockCrossAttn mid_block_{nullptr};
  std::vector<UNetUpBlock> up_blocks_;  // registered as the ModuleList up_blocks
  torch::nn::GroupNorm conv_norm_out_{nullptr};
  LoadedConv2d conv_out_{nullptr};
};
TORCH_MODULE(UNet2DConditionModel);

}  // namespace tlcm
