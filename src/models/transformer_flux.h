// FLUX.1 diffusion transformer: diffusers' FluxTransformer2DModel (0.31.0);
// docs/model-notes.md §3.
// Submodules carry the checkpoint attribute names, so a diffusers `transformer/` folder loads
// with LoadModuleWeights(model, store, IdentityKeys()).
//
// Every module here is built on the CPU with unset float32 parameters (load them:
// layers/loaded_layers.h) and may then be moved with ->to(device, dtype). Once the weights are
// final (loaded, the TLCM LoRA fused, on their device and dtype), FuseProjections() fuses the
// projections that read the same input into one matrix product each (layers/fused_linear.h);
// forward() throws before that, and after a move until it is called again.
// forward() runs in float32, float16 or bfloat16 (the dtype of the weights). Layer norms and
// RMS norms compute their statistics in float32, RoPE is applied in float32, attention's
// softmax runs in float32. forward() changes no module state; loading weights or moving a model
// must not overlap any forward() on it.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/layers/embeddings.h"
#include "models/layers/fused_linear.h"
#include "models/layers/loaded_layers.h"
#include "models/layers/rms_norm.h"
#include "models/layers/rope.h"

namespace tlcm {

// transformer/config.json. Keys absent (or null) take diffusers' constructor defaults.
struct FluxTransformerConfig {
  int64_t patch_size = 1;
  int64_t in_channels = 64;
  int64_t out_channels = 64;  // null / absent -> in_channels
  int64_t num_layers = 19;
  int64_t num_single_layers = 38;
  int64_t attention_head_dim = 128;
  int64_t num_attention_heads = 24;
  int64_t joint_attention_dim = 4096;
  int64_t pooled_projection_dim = 768;
  bool guidance_embeds = false;
  std::vector<int64_t> axes_dims_rope = {16, 56, 56};

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }

  // Parses and validates config.json. InvalidArgument naming the file and key when:
  // patch_size != 1 (only unpatched token inputs are supported: the pipeline packs 2x2 latent
  // patches itself), a size is not positive, an axes_dims_rope entry is odd, or the axes do not
  // add up to attention_head_dim. NotFound when the file is missing.
  static absl::StatusOr<FluxTransformerConfig> FromFile(const std::string& path);
};

// time_text_embed: CombinedTimestep(Guidance)TextProjEmbeddings.
// temb = timestep_embedder(sin256(t)) [+ guidance_embedder(sin256(g))] + text_embedder(pooled),
// sin256 = SinusoidalTimestepEmbedding(dim 256, flip_sin_to_cos, shift 0, scale 1), cast to the
// dtype of `pooled`. Keys: timestep_embedder.*, guidance_embedder.* (only with guidance),
// text_embedder.* (each linear_1, linear_2).
class FluxTimeTextEmbeddingImpl : public torch::nn::Module {
 public:
  FluxTimeTextEmbeddingImpl(int64_t dim, int64_t pooled_projection_dim, bool guidance_embeds);
  // timestep: [B] (already x1000); guidance: [B], or undefined exactly when the module was built
  // without guidance (else throws c10::Error); pooled: [B, P] -> [B, dim]
  torch::Tensor forward(const torch::Tensor& timestep, const torch::Tensor& guidance,
                        const torch::Tensor& pooled);

 private:
  TimestepEmbedding timestep_embedder_{nullptr};
  TimestepEmbedding guidance_embedder_{nullptr};
  TimestepEmbedding text_embedder_{nullptr};
};
TORCH_MODULE(FluxTimeTextEmbedding);

// AdaLayerNormZero: linear(silu(temb)) -> shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp,
// gate_mlp (chunks of the last dim, in that order); x' = LN(x) * (1 + scale_msa) + shift_msa,
// LN without affine, eps 1e-6. Key: linear.{weight,bias} [6*dim, dim].
struct AdaLayerNormZeroOutput {
  torch::Tensor x;         // [B, L, dim]
  torch::Tensor gate_msa;  // [B, dim] (each of the four)
  torch::Tensor shift_mlp;
  torch::Tensor scale_mlp;
  torch::Tensor gate_mlp;
};
class AdaLayerNormZeroImpl : public torch::nn::Module {
 public:
  explicit AdaLayerNormZeroImpl(int64_t dim);
  // x: [B, L, dim], temb: [B, dim]
  AdaLayerNormZeroOutput forward(const torch::Tensor& x, const torch::Tensor& temb);

 private:
  LoadedLinear linear_{nullptr};
};
TORCH_MODULE(AdaLayerNormZero);

// AdaLayerNormZeroSingle: linear(silu(temb)) -> shift, scale, gate; returns
// (LN(x) * (1 + scale) + shift, gate). Key: linear.{weight,bias} [3*dim, dim].
class AdaLayerNormZeroSingleImpl : public torch::nn::Module {
 public:
  explicit AdaLayerNormZeroSingleImpl(int64_t dim);
  // x: [B, L, dim], temb: [B, dim] -> ([B, L, dim], gate [B, dim])
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x,
                                                  const torch::Tensor& temb);

 private:
  LoadedLinear linear_{nullptr};
};
TORCH_MODULE(AdaLayerNormZeroSingle);

// AdaLayerNormContinuous (norm_out): linear(silu(cond) in x's dtype) -> scale, shift (scale
// FIRST); LN(x) * (1 + scale) + shift. Key: linear.{weight,bias} [2*dim, cond_dim].
class AdaLayerNormContinuousImpl : public torch::nn::Module {
 public:
  AdaLayerNormContinuousImpl(int64_t dim, int64_t conditioning_dim);
  // x: [B, L, dim], cond: [B, conditioning_dim] -> [B, L, dim]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cond);

 private:
  LoadedLinear linear_{nullptr};
};
TORCH_MODULE(AdaLayerNormContinuous);

// diffusers FeedForward with activation "gelu-approximate": net.0.proj (dim -> 4*dim) ->
// GELU(tanh) -> net.2 (4*dim -> dim). Slot net.1 (dropout) holds no weights.
// Keys: net.0.proj.{weight,bias}, net.2.{weight,bias}.
class FluxFeedForwardImpl : public torch::nn::Module {
 public:
  explicit FluxFeedForwardImpl(int64_t dim);
  // x: [B, L, dim] -> [B, L, dim]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  LoadedLinear proj_{nullptr};  // net.0.proj
  LoadedLinear out_{nullptr};   // net.2
};
TORCH_MODULE(FluxFeedForward);

// FLUX attention (diffusers Attention + FluxAttnProcessor2_0), heads x head_dim = dim, scale
// head_dim^-0.5, no mask. Per-head RMSNorm (eps 1e-6) on queries and keys, then RoPE.
// Keys: to_q, to_k, to_v (all with bias), norm_q.weight, norm_k.weight; with `joint` also
// add_q_proj, add_k_proj, add_v_proj, norm_added_q.weight, norm_added_k.weight, to_out.0,
// to_add_out. Without `joint` (single blocks) there is no output projection, and the block
// makes the projections (fused with its MLP input).
class FluxAttentionImpl : public torch::nn::Module {
 public:
  FluxAttentionImpl(int64_t dim, int64_t heads, int64_t head_dim, bool joint);

  // to_q, to_k, to_v, for a single block to fuse with its own projection.
  std::vector<LoadedLinear> QkvProjections() const { return {to_q_, to_k_, to_v_}; }
  // Joint: to_q / to_k / to_v into one product, add_q_proj / add_k_proj / add_v_proj into
  // another. Nothing without `joint`.
  void FuseProjections();

  // Self-attention of a single-block stream (requires !joint) from its projections.
  // q, k, v: [B, N, dim] (to_q, to_k, to_v of the normed stream); rope tables: [N, head_dim]
  // -> [B, N, dim] (heads merged, not projected)
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const RopeTables& rope);

  // Joint attention over cat[context, x] along the tokens (requires joint and FuseProjections);
  // rope covers the concatenated sequence. x: [B, S, dim], context: [B, L, dim], rope:
  // [L + S, head_dim] -> (to_out.0 of the image part [B, S, dim], to_add_out of the text part
  // [B, L, dim]).
  std::pair<torch::Tensor, torch::Tensor> JointForward(const torch::Tensor& x,
                                                       const torch::Tensor& context,
                                                       const RopeTables& rope);

 private:
  // Normalized, rotated heads [B, H, N, D] -> attention -> [B, N, H*D].
  torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const RopeTables& rope) const;

  int64_t heads_;
  LoadedLinear to_q_{nullptr}, to_k_{nullptr}, to_v_{nullptr};
  RMSNorm norm_q_{nullptr}, norm_k_{nullptr};
  LoadedLinear add_q_proj_{nullptr}, add_k_proj_{nullptr}, add_v_proj_{nullptr};
  RMSNorm norm_added_q_{nullptr}, norm_added_k_{nullptr};
  LoadedLinear to_out_0_{nullptr}, to_add_out_{nullptr};
  FusedLinear qkv_;      // to_q, to_k, to_v (joint)
  FusedLinear add_qkv_;  // add_q_proj, add_k_proj, add_v_proj (joint)
};
TORCH_MODULE(FluxAttention);

// The two token streams leaving a double block.
struct FluxStreams {
  torch::Tensor hidden_states;          // image tokens [B, S, dim]
  torch::Tensor encoder_hidden_states;  // text tokens [B, L, dim]
};

// FluxTransformerBlock (double-stream MMDiT block). Keys: norm1.linear, norm1_context.linear,
// attn.* (joint), ff.net.{0.proj,2}, ff_context.net.{0.proj,2}. norm2 / norm2_context are
// LayerNorms without weights (eps 1e-6). In float16 the text stream is clamped to +-65504.
class FluxTransformerBlockImpl : public torch::nn::Module {
 public:
  FluxTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim);
  void FuseProjections() { attn_->FuseProjections(); }
  // hidden_states: [B, S, dim], encoder_hidden_states: [B, L, dim], temb: [B, dim],
  // rope: [L + S, head_dim]
  FluxStreams forward(const torch::Tensor& hidden_states,
                      const torch::Tensor& encoder_hidden_states, const torch::Tensor& temb,
                      const RopeTables& rope);

 private:
  AdaLayerNormZero norm1_{nullptr}, norm1_context_{nullptr};
  FluxAttention attn_{nullptr};
  FluxFeedForward ff_{nullptr}, ff_context_{nullptr};
};
TORCH_MODULE(FluxTransformerBlock);

// FluxSingleTransformerBlock over the concatenated [text, image] tokens:
// x + gate * proj_out(cat[attn(nx), gelu_tanh(proj_mlp(nx))]). Keys: norm.linear, proj_mlp
// (dim -> 4*dim), attn.{to_q,to_k,to_v,norm_q,norm_k}, proj_out (5*dim -> dim). Clamped to
// +-65504 in float16. attn's q / k / v and proj_mlp read the same nx: one fused product.
class FluxSingleTransformerBlockImpl : public torch::nn::Module {
 public:
  FluxSingleTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim);
  // attn.to_q, attn.to_k, attn.to_v and proj_mlp into one product.
  void FuseProjections();
  // x: [B, L + S, dim], temb: [B, dim], rope: [L + S, head_dim] -> [B, L + S, dim]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, const RopeTables& rope);

 private:
  AdaLayerNormZeroSingle norm_{nullptr};
  LoadedLinear proj_mlp_{nullptr};
  FluxAttention attn_{nullptr};
  LoadedLinear proj_out_{nullptr};
  FusedLinear qkv_mlp_;
};
TORCH_MODULE(FluxSingleTransformerBlock);

// The whole model. Keys: x_embedder, context_embedder, time_text_embed.*,
// transformer_blocks.{i}.*, single_transformer_blocks.{i}.*, norm_out.linear, proj_out.
class FluxTransformer2DModelImpl : public torch::nn::Module {
 public:
  explicit FluxTransformer2DModelImpl(const FluxTransformerConfig& config);

  // Fuses every block's projections that read the same input (see the top of this file). Call
  // it once the weights are final, and again after moving the model.
  void FuseProjections();

  // hidden_states: [B, S, in_channels] packed latents; encoder_hidden_states: [B, L,
  // joint_attention_dim]; pooled_projections: [B, pooled_projection_dim]; timestep: [B] sigma
  // in [0, 1]; guidance: [B] guidance scale, or an undefined tensor exactly when the config has
  // no guidance_embeds; img_ids: [S, 3], txt_ids: [L, 3] (RoPE positions).
  // Inputs are cast to the weights' dtype; timestep and guidance are cast first and then
  // multiplied by 1000 in that dtype (diffusers' order: under bf16 both steps round).
  // Returns [B, S, out_channels] in the weights' dtype. Throws c10::Error on shape mismatches,
  // on a guidance tensor that does not match the config, and before FuseProjections.
  torch::Tensor forward(const torch::Tensor& hidden_states,
                        const torch::Tensor& encoder_hidden_states,
                        const torch::Tensor& pooled_projections, const torch::Tensor& timestep,
                        const torch::Tensor& guidance, const torch::Tensor& img_ids,
                        const torch::Tensor& txt_ids);

  const FluxTransformerConfig& config() const { return config_; }

 private:
  FluxTransformerConfig config_;
  LoadedLinear x_embedder_{nullptr}, context_embedder_{nullptr};
  FluxTimeTextEmbedding time_text_embed_{nullptr};
  std::vector<FluxTransformerBlock> transformer_blocks_;
  std::vector<FluxSingleTransformerBlock> single_transformer_blocks_;
  AdaLayerNormContinuous norm_out_{nullptr};
  LoadedLinear proj_out_{nullptr};
};
TORCH_MODULE(FluxTransformer2DModel);

}  // namespace tlcm
