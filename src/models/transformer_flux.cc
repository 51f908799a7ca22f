#include "models/transformer_flux.h"

#include <numeric>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "loaders/json_config.h"
#include "models/layers/attention_ops.h"
#include "models/layers/interruption.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

constexpr double kNormEps = 1e-6;
constexpr int64_t kTimeProjDim = 256;  // sinusoid width of time_proj in diffusers' FLUX
constexpr int64_t kMlpRatio = 4;

// LayerNorm over the last dim without affine parameters (statistics in float32 inside
// layer_norm for half inputs).
torch::Tensor PlainLayerNorm(const torch::Tensor& x) {
  return torch::layer_norm(x, {x.size(-1)}, /*weight=*/{}, /*bias=*/{}, kNormEps);
}

// x * (1 + scale) + shift with scale, shift [B, C] broadcast over the tokens of x [B, L, C]:
// one pass over x (rounded once in half precision, where diffusers rounds twice).
torch::Tensor Modulate(const torch::Tensor& x, const torch::Tensor& scale,
                       const torch::Tensor& shift) {
  return torch::addcmul(shift.unsqueeze(1), x, 1 + scale.unsqueeze(1));
}

// x + gate * y with gate [B, C] broadcast over the tokens of x, y [B, L, C], in one pass.
torch::Tensor GatedAdd(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& y) {
  return torch::addcmul(x, gate.unsqueeze(1), y);
}

// Float16 activations are kept finite the way diffusers does after each block.
torch::Tensor ClampIfHalf(const torch::Tensor& x) {
  return x.scalar_type() == torch::kFloat16 ? x.clamp(-65504, 65504) : x;
}

void Require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

}  // namespace

absl::StatusOr<FluxTransformerConfig> FluxTransformerConfig::FromFile(const std::string& path) {
  TLCM_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  return ParseConfig(path, json, [](const nlohmann::json& j) {
    FluxTransformerConfig c;
    c.patch_size = ValueOr<int64_t>(j, "patch_size", c.patch_size);
    c.in_channels = SizeOr(j, "in_channels", c.in_channels);
    c.out_channels = SizeOr(j, "out_channels", c.in_channels);
    c.num_layers = ValueOr<int64_t>(j, "num_layers", c.num_layers);
    c.num_single_layers = ValueOr<int64_t>(j, "num_single_layers", c.num_single_layers);
    c.attention_head_dim = SizeOr(j, "attention_head_dim", c.attention_head_dim);
    c.num_attention_heads = SizeOr(j, "num_attention_heads", c.num_attention_heads);
    c.joint_attention_dim = SizeOr(j, "joint_attention_dim", c.joint_attention_dim);
    c.pooled_projection_dim = SizeOr(j, "pooled_projection_dim", c.pooled_projection_dim);
    c.guidance_embeds = ValueOr<bool>(j, "guidance_embeds", c.guidance_embeds);
    c.axes_dims_rope = SizesOr(j, "axes_dims_rope", c.axes_dims_rope);

    Require(c.patch_size == 1,
            absl::StrCat("patch_size ", c.patch_size,
                         " is not supported (only 1: latents arrive already packed)"));
    Require(c.num_layers >= 0 && c.num_layers <= kMaxConfigSize && c.num_single_layers >= 0 &&
                c.num_single_layers <= kMaxConfigSize,
            absl::StrCat("num_layers and num_single_layers must be in [0, ", kMaxConfigSize, "]"));
    for (int64_t d : c.axes_dims_rope) {
      Require(d % 2 == 0, absl::StrCat("axes_dims_rope entries must be even, got [",
                                       absl::StrJoin(c.axes_dims_rope, ", "), "]"));
    }
    const int64_t rope_dim =
        std::accumulate(c.axes_dims_rope.begin(), c.axes_dims_rope.end(), int64_t{0});
    Require(rope_dim == c.attention_head_dim,
            absl::StrCat("axes_dims_rope [", absl::StrJoin(c.axes_dims_rope, ", "), "] sums to ",
                         rope_dim, ", not attention_head_dim ", c.attention_head_dim));
    return c;
  });
}

// ---------------------------------------------------------------------------------------------

FluxTimeTextEmbeddingImpl::FluxTimeTextEmbeddingImpl(int64_t dim, int64_t pooled_projection_dim,
                                                     bool guidance_embeds) {
  timestep_embedder_ =
      register_module("timestep_embedder", TimestepEmbedding(kTimeProjDim, dim, dim));
  if (guidance_embeds) {
    guidance_embedder_ =
        register_module("guidance_embedder", TimestepEmbedding(kTimeProjDim, dim, dim));
  }
  text_embedder_ =
      register_module("text_embedder", TimestepEmbedding(pooled_projection_dim, dim, dim));
}

torch::Tensor FluxTimeTextEmbeddingImpl::forward(const torch::Tensor& timestep,
                                                 const torch::Tensor& guidance,
                                                 const torch::Tensor& pooled) {
  TORCH_CHECK(guidance.defined() == !guidance_embedder_.is_empty(),
              guidance_embedder_.is_empty()
                  ? "this FLUX transformer has no guidance embedding: pass no guidance"
                  : "this FLUX transformer embeds guidance: a guidance tensor is required");
  auto sinusoid = [&](const torch::Tensor& t) {
    return SinusoidalTimestepEmbedding(t, kTimeProjDim, /*flip_sin_to_cos=*/true,
                                       /*freq_shift=*/0.0)
        .to(pooled.scalar_type());  // [B, 256]
  };
  torch::Tensor emb = timestep_embedder_(sinusoid(timestep));  // [B, dim]
  if (guidance.defined()) emb = emb + guidance_embedder_(sinusoid(guidance));
  return emb + text_embedder_(pooled);
}

// ---------------------------------------------------------------------------------------------

AdaLayerNormZeroImpl::AdaLayerNormZeroImpl(int64_t dim) {
  linear_ = register_module("linear", LoadedLinear(dim, 6 * dim));
}

AdaLayerNormZeroOutput AdaLayerNormZeroImpl::forward(const torch::Tensor& x,
                                                     const torch::Tensor& temb) {
  // chunks: 6 x [B, dim]
  std::vector<torch::Tensor> chunks = linear_(torch::silu(temb)).chunk(6, /*dim=*/1);
  return {Modulate(PlainLayerNorm(x), chunks[1], chunks[0]), chunks[2], chunks[3], chunks[4],
          chunks[5]};
}

AdaLayerNormZeroSingleImpl::AdaLayerNormZeroSingleImpl(int64_t dim) {
  linear_ = register_module("linear", LoadedLinear(dim, 3 * dim));
}

std::pair<torch::Tensor, torch::Tensor> AdaLayerNormZeroSingleImpl::forward(
    const torch::Tensor& x, const torch::Tensor& temb) {
  // chunks: shift, scale, gate, each [B, dim]
  std::vector<torch::Tensor> chunks = linear_(torch::silu(temb)).chunk(3, /*dim=*/1);
  return {Modulate(PlainLayerNorm(x), chunks[1], chunks[0]), chunks[2]};
}

AdaLayerNormContinuousImpl::AdaLayerNormContinuousImpl(int64_t dim, int64_t conditioning_dim) {
  linear_ = register_module("linear", LoadedLinear(conditioning_dim, 2 * dim));
}

torch::Tensor AdaLayerNormContinuousImpl::forward(const torch::Tensor& x,
                                                  const torch::Tensor& cond) {
  // chunks: scale, shift (this order), each [B, dim]
  std::vector<torch::Tensor> chunks =
      linear_(torch::silu(cond).to(x.scalar_type())).chunk(2, /*dim=*/1);
  return Modulate(PlainLayerNorm(x), chunks[0], chunks[1]);
}

// ---------------------------------------------------------------------------------------------

FluxFeedForwardImpl::FluxFeedForwardImpl(int64_t dim) {
  auto net = register_module("net", torch::nn::ModuleList());
  // net.0 is diffusers' GELU module, whose weights sit in its `proj` child.
  auto gelu = std::make_shared<torch::nn::Module>();
  proj_ = gelu->register_module("proj", LoadedLinear(dim, kMlpRatio * dim));
  net->push_back(gelu);
  net->push_back(torch::nn::Identity());  // net.1: dropout, inactive at inference
  out_ = LoadedLinear(kMlpRatio * dim, dim);
  net->push_back(out_);
}

torch::Tensor FluxFeedForwardImpl::forward(const torch::Tensor& x) {
  return out_(torch::gelu(proj_(x), "tanh"));
}

// ---------------------------------------------------------------------------------------------

FluxAttentionImpl::FluxAttentionImpl(int64_t dim, int64_t heads, int64_t head_dim, bool joint)
    : heads_(heads) {
  const int64_t inner = heads * head_dim;
  to_q_ = register_module("to_q", LoadedLinear(dim, inner));
  to_k_ = register_module("to_k", LoadedLinear(dim, inner));
  to_v_ = register_module("to_v", LoadedLinear(dim, inner));
  norm_q_ = register_module("norm_q", RMSNorm(head_dim, kNormEps));
  norm_k_ = register_module("norm_k", RMSNorm(head_dim, kNormEps));
  if (!joint) return;
  add_q_proj_ = register_module("add_q_proj", LoadedLinear(dim, inner));
  add_k_proj_ = register_module("add_k_proj", LoadedLinear(dim, inner));
  add_v_proj_ = register_module("add_v_proj", LoadedLinear(dim, inner));
  norm_added_q_ = register_module("norm_added_q", RMSNorm(head_dim, kNormEps));
  norm_added_k_ = register_module("norm_added_k", RMSNorm(head_dim, kNormEps));
  auto to_out = register_module("to_out", torch::nn::ModuleList());
  to_out_0_ = LoadedLinear(inner, dim);
  to_out->push_back(to_out_0_);
  to_add_out_ = register_module("to_add_out", LoadedLinear(inner, dim));
}

torch::Tensor FluxAttentionImpl::Attend(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, const RopeTables& rope) const {
  // q, k, v: [B, H, N, D]
  torch::Tensor out = ScaledDotProductAttention(ApplyRope(q, rope), ApplyRope(k, rope), v);
  return MergeHeads(out);  // [B, N, H*D]
}

void FluxAttentionImpl::FuseProjections() {
  if (add_q_proj_.is_empty()) return;  // single: the block fuses to_q / to_k / to_v
  qkv_ = FusedLinear::Fuse({to_q_, to_k_, to_v_});
  add_qkv_ = FusedLinear::Fuse({add_q_proj_, add_k_proj_, add_v_proj_});
}

torch::Tensor FluxAttentionImpl::forward(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v, const RopeTables& rope) {
  TORCH_CHECK(add_q_proj_.is_empty(), "FluxAttention::forward is for single blocks");
  // q, k, v: [B, N, dim], possibly column slices of one product
  return Attend(norm_q_(SplitHeads(q, heads_)), norm_k_(SplitHeads(k, heads_)),
                SplitHeads(v, heads_), rope);  // heads [B, H, N, D] in
}

std::pair<torch::Tensor, torch::Tensor> FluxAttentionImpl::JointForward(
    const torch::Tensor& x, const torch::Tensor& context, const RopeTables& rope) {
  TORCH_CHECK(!add_q_proj_.is_empty(), "FluxAttention::JointForward needs a joint attention");
  // x: [B, S, dim], context: [B, L, dim]
  const int64_t text_len = context.size(1);
  const std::vector<torch::Tensor> image = qkv_.forward(x);           // 3 x [B, S, dim]
  const std::vector<torch::Tensor> text = add_qkv_.forward(context);  // 3 x [B, L, dim]
  torch::Tensor q = norm_q_(SplitHeads(image[0], heads_));            // [B, H, S, D]
  torch::Tensor k = norm_k_(SplitHeads(image[1], heads_));
  torch::Tensor v = SplitHeads(image[2], heads_);
  torch::Tensor cq = norm_added_q_(SplitHeads(text[0], heads_));  // [B, H, L, D]
  torch::Tensor ck = norm_added_k_(SplitHeads(text[1], heads_));
  torch::Tensor cv = SplitHeads(text[2], heads_);
  // Text tokens first, then image tokens: the order of the RoPE tables.
  torch::Tensor out = Attend(torch::cat({cq, q}, 2), torch::cat({ck, k}, 2), torch::cat({cv, v}, 2),
                             rope);                 // [B, L + S, H*D]
  return {to_out_0_(out.slice(1, text_len)),        // image [B, S, dim]
          to_add_out_(out.slice(1, 0, text_len))};  // text [B, L, dim]
}

// ---------------------------------------------------------------------------------------------

FluxTransformerBlockImpl::FluxTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim) {
  norm1_ = register_module("norm1", AdaLayerNormZero(dim));
  norm1_context_ = register_module("norm1_context", AdaLayerNormZero(dim));
  attn_ = register_module("attn", FluxAttention(dim, heads, head_dim, /*joint=*/true));
  ff_ = register_module("ff", FluxFeedForward(dim));
  ff_context_ = register_module("ff_context", FluxFeedForward(dim));
}

FluxStreams FluxTransformerBlockImpl::forward(const torch::Tensor& hidden_states,
                                              const torch::Tensor& encoder_hidden_states,
                                              const torch::Tensor& temb, const RopeTables& rope) {
  // hidden_states: [B, S, dim], encoder_hidden_states: [B, L, dim]
  AdaLayerNormZeroOutput img = norm1_(hidden_states, temb);
  AdaLayerNormZeroOutput txt = norm1_context_(encoder_hidden_states, temb);
  auto [img_attn, txt_attn] = attn_->JointForward(img.x, txt.x, rope);

  torch::Tensor x = GatedAdd(hidden_states, img.gate_msa, img_attn);
  x = GatedAdd(x, img.gate_mlp, ff_(Modulate(PlainLayerNorm(x), img.scale_mlp, img.shift_mlp)));

  torch::Tensor c = GatedAdd(encoder_hidden_states, txt.gate_msa, txt_attn);
  c = GatedAdd(c, txt.gate_mlp,
               ff_context_(Modulate(PlainLayerNorm(c), txt.scale_mlp, txt.shift_mlp)));
  return {x, ClampIfHalf(c)};
}

FluxSingleTransformerBlockImpl::FluxSingleTransformerBlockImpl(int64_t dim, int64_t heads,
                                                               int64_t head_dim) {
  norm_ = register_module("norm", AdaLayerNormZeroSingle(dim));
  proj_mlp_ = register_module("proj_mlp", LoadedLinear(dim, kMlpRatio * dim));
  attn_ = register_module("attn", FluxAttention(dim, heads, head_dim, /*joint=*/false));
  proj_out_ = register_module("proj_out", LoadedLinear((1 + kMlpRatio) * dim, dim));
}

void FluxSingleTransformerBlockImpl::FuseProjections() {
  std::vector<LoadedLinear> parts = attn_->QkvProjections();
  parts.push_back(proj_mlp_);
  qkv_mlp_ = FusedLinear::Fuse(std::move(parts));
}

torch::Tensor FluxSingleTransformerBlockImpl::forward(const torch::Tensor& x,
                                                      const torch::Tensor& temb,
                                                      const RopeTables& rope) {
  // x: [B, N, dim], N = L + S
  auto [nx, gate] = norm_(x, temb);
  const std::vector<torch::Tensor> p = qkv_mlp_.forward(nx);    // q, k, v [B, N, dim], mlp 4*dim
  torch::Tensor mlp = torch::gelu(p[3], "tanh");                // [B, N, 4*dim]
  torch::Tensor attn = attn_->forward(p[0], p[1], p[2], rope);  // [B, N, dim]
  return ClampIfHalf(GatedAdd(x, gate, proj_out_(torch::cat({attn, mlp}, 2))));
}

// ---------------------------------------------------------------------------------------------

FluxTransformer2DModelImpl::FluxTransformer2DModelImpl(const FluxTransformerConfig& config)
    : config_(config) {
  const int64_t dim = config.inner_dim();
  x_embedder_ = register_module("x_embedder", LoadedLinear(config.in_channels, dim));
  context_embedder_ =
      register_module("context_embedder", LoadedLinear(config.joint_attention_dim, dim));
  time_text_embed_ = register_module(
      "time_text_embed",
      FluxTimeTextEmbedding(dim, config.pooled_projection_dim, config.guidance_embeds));
  auto blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) {
    transformer_blocks_.push_back(
        FluxTransformerBlock(dim, config.num_attention_heads, config.attention_head_dim));
    blocks->push_back(transformer_blocks_.back());
  }
  auto singles = register_module("single_transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_single_layers; ++i) {
    single_transformer_blocks_.push_back(
        FluxSingleTransformerBlock(dim, config.num_attention_heads, config.attention_head_dim));
    singles->push_back(single_transformer_blocks_.back());
  }
  norm_out_ = register_module("norm_out", AdaLayerNormContinuous(dim, dim));
  proj_out_ = register_module(
      "proj_out", LoadedLinear(dim, config.patch_size * config.patch_size * config.out_channels));
}

void FluxTransformer2DModelImpl::FuseProjections() {
  for (auto& block : transformer_blocks_) block->FuseProjections();
  for (auto& block : single_transformer_blocks_) block->FuseProjections();
}

torch::Tensor FluxTransformer2DModelImpl::forward(
    const torch::Tensor& hidden_states, const torch::Tensor& encoder_hidden_states,
    const torch::Tensor& pooled_projections, const torch::Tensor& timestep,
    const torch::Tensor& guidance, const torch::Tensor& img_ids, const torch::Tensor& txt_ids) {
  TORCH_CHECK(hidden_states.dim() == 3 && hidden_states.size(2) == config_.in_channels,
              "hidden_states must be [B, S, ", config_.in_channels, "], got ",
              hidden_states.sizes());
  const int64_t batch = hidden_states.size(0);
  const int64_t image_len = hidden_states.size(1);
  TORCH_CHECK(encoder_hidden_states.dim() == 3 && encoder_hidden_states.size(0) == batch &&
                  encoder_hidden_states.size(2) == config_.joint_attention_dim,
              "encoder_hidden_states must be [", batch, ", L, ", config_.joint_attention_dim,
              "], got ", encoder_hidden_states.sizes());
  const int64_t text_len = encoder_hidden_states.size(1);
  TORCH_CHECK(
      pooled_projections.sizes() == torch::IntArrayRef({batch, config_.pooled_projection_dim}),
      "pooled_projections must be [", batch, ", ", config_.pooled_projection_dim, "], got ",
      pooled_projections.sizes());
  TORCH_CHECK(timestep.sizes() == torch::IntArrayRef({batch}), "timestep must be [", batch,
              "], got ", timestep.sizes());
  TORCH_CHECK(!guidance.defined() || guidance.sizes() == torch::IntArrayRef({batch}),
              "guidance must be [", batch, "], got ", guidance.sizes());
  const auto n_axes = static_cast<int64_t>(config_.axes_dims_rope.size());
  TORCH_CHECK(img_ids.sizes() == torch::IntArrayRef({image_len, n_axes}), "img_ids must be [",
              image_len, ", ", n_axes, "], got ", img_ids.sizes());
  TORCH_CHECK(txt_ids.sizes() == torch::IntArrayRef({text_len, n_axes}), "txt_ids must be [",
              text_len, ", ", n_axes, "], got ", txt_ids.sizes());

  const torch::ScalarType dtype = x_embedder_->weight.scalar_type();
  torch::Tensor x = x_embedder_(hidden_states.to(dtype));  // [B, S, dim]
  // Cast, then scale in the model dtype (rounds under half precision, like diffusers).
  torch::Tensor t = timestep.to(dtype) * 1000;  // [B]
  torch::Tensor g = guidance.defined() ? guidance.to(dtype) * 1000 : torch::Tensor();
  torch::Tensor temb = time_text_embed_(t, g, pooled_projections.to(dtype));  // [B, dim]
  torch::Tensor c = context_embedder_(encoder_hidden_states.to(dtype));       // [B, L, dim]
  RopeTables rope = MultiAxisRopeTables(torch::cat({txt_ids, img_ids}, 0),
                                        config_.axes_dims_rope);  // [L + S, D]

  for (auto& block : transformer_blocks_) {
    FluxStreams streams = block(x, c, temb, rope);
    x = streams.hidden_states;
    c = streams.encoder_hidden_states;
    ThrowIfInterrupted();
  }
  x = torch::cat({c, x}, 1);  // [B, L + S, dim]
  for (auto& block : single_transformer_blocks_) {
    x = block(x, temb, rope);
    ThrowIfInterrupted();
  }
  x = x.slice(1, text_len);              // image tokens [B, S, dim]
  return proj_out_(norm_out_(x, temb));  // [B, S, out_channels]
}

}  // namespace tlcm
