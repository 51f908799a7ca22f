#include "models/t5_encoder.h"

#include <cmath>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "loaders/json_config.h"
#include "models/layers/attention_ops.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

constexpr double kPi = 3.14159265358979323846;

// feed_forward_proj, checked against the optional dense_act_fn / is_gated_act entries that
// transformers lets override it.
bool ParseGatedGelu(const nlohmann::json& json) {
  const std::string proj = ValueOr<std::string>(json, "feed_forward_proj", "relu");
  if (proj != "relu" && proj != "gated-gelu") {
    throw std::invalid_argument(
        absl::StrCat("feed_forward_proj \"", proj, "\" is not supported (relu or gated-gelu)"));
  }
  const bool gated = proj == "gated-gelu";
  const std::string act = ValueOr<std::string>(json, "dense_act_fn", gated ? "gelu_new" : "relu");
  if (act != (gated ? "gelu_new" : "relu")) {
    throw std::invalid_argument(
        absl::StrCat("dense_act_fn \"", act, "\" contradicts feed_forward_proj \"", proj, "\""));
  }
  if (ValueOr<bool>(json, "is_gated_act", gated) != gated) {
    throw std::invalid_argument(
        absl::StrCat("is_gated_act contradicts feed_forward_proj \"", proj, "\""));
  }
  return gated;
}

}  // namespace

absl::StatusOr<T5Config> T5Config::FromFile(const std::string& path) {
  TLCM_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  return ParseConfig(path, json, [](const nlohmann::json& j) {
    T5Config c;
    c.vocab_size = SizeOr(j, "vocab_size", c.vocab_size);
    c.d_model = SizeOr(j, "d_model", c.d_model);
    c.d_kv = SizeOr(j, "d_kv", c.d_kv);
    c.d_ff = SizeOr(j, "d_ff", c.d_ff);
    c.num_heads = SizeOr(j, "num_heads", c.num_heads);
    c.num_layers = SizeOr(j, "num_layers", c.num_layers);
    c.relative_attention_num_buckets =
        SizeOr(j, "relative_attention_num_buckets", c.relative_attention_num_buckets);
    c.relative_attention_max_distance =
        SizeOr(j, "relative_attention_max_distance", c.relative_attention_max_distance);
    c.layer_norm_epsilon = ValueOr<double>(j, "layer_norm_epsilon", c.layer_norm_epsilon);
    c.gated_gelu = ParseGatedGelu(j);
    if (c.relative_attention_num_buckets < 4 || c.relative_attention_num_buckets % 2 != 0) {
      throw std::invalid_argument(
          absl::StrCat("relative_attention_num_buckets must be even and >= 4, got ",
                       c.relative_attention_num_buckets));
    }
    return c;
  });
}

torch::Tensor T5RelativePositionBucket(const torch::Tensor& relative_position, int64_t num_buckets,
                                       int64_t max_distance) {
  TORCH_CHECK(num_buckets >= 4 && num_buckets % 2 == 0,
              "T5 relative position buckets must be even and >= 4, got ", num_buckets);
  const torch::Tensor rp = relative_position.to(torch::kLong);
  const int64_t half = num_buckets / 2;  // one half per direction
  const int64_t max_exact = half / 2;    // distances below this get a bucket each
  torch::Tensor bucket = rp.gt(0).to(torch::kLong) * half;
  torch::Tensor distance = rp.abs();
  // Logarithmic bins up to max_distance, evaluated as transformers does: float32 log and
  // divisions by scalars, truncation to int64. Distances below max_exact never use this branch;
  // clamping them keeps log() finite without changing any selected value.
  torch::Tensor scaled = torch::log(distance.clamp_min(max_exact).to(torch::kFloat) / max_exact) /
                         std::log(static_cast<double>(max_distance) / max_exact) *
                         (half - max_exact);
  torch::Tensor large = (max_exact + scaled.to(torch::kLong)).clamp_max(half - 1);
  return bucket + torch::where(distance.lt(max_exact), distance, large);
}

torch::Tensor T5ClampFloat16(const torch::Tensor& x) {
  if (x.scalar_type() != torch::kHalf) return x;
  // The limit is chosen on the device (no host sync): a tensor, where clamp() takes a number.
  constexpr double kMax = 65504.0;  // largest finite float16
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(x.device());
  torch::Tensor limit = torch::where(x.isinf().any(), torch::scalar_tensor(kMax - 1000.0, opts),
                                     torch::scalar_tensor(kMax, opts))
                            .to(torch::kHalf);
  return torch::where(x > limit, limit, torch::where(x < -limit, -limit, x));
}

T5LayerNormImpl::T5LayerNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight_ = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor T5LayerNormImpl::forward(const torch::Tensor& x) {
  torch::Tensor variance = x.to(torch::kFloat).pow(2).mean(-1, /*keepdim=*/true);  // [..., 1]
  torch::Tensor h = x * torch::rsqrt(variance + eps_);  // float32 (promoted)
  if (weight_.scalar_type() == torch::kHalf || weight_.scalar_type() == torch::kBFloat16) {
    h = h.to(weight_.scalar_type());
  }
  return weight_ * h;
}

T5AttentionImpl::T5AttentionImpl(const T5Config& config, bool has_relative_attention_bias)
    : heads_(config.num_heads),
      num_buckets_(config.relative_attention_num_buckets),
      max_distance_(config.relative_attention_max_distance) {
  const int64_t inner = config.num_heads * config.d_kv;
  auto linear = [](int64_t in, int64_t out) { return LoadedLinear(in, out, /*bias=*/false); };
  q_ = register_module("q", linear(config.d_model, inner));
  k_ = register_module("k", linear(config.d_model, inner));
  v_ = register_module("v", linear(config.d_model, inner));
  o_ = register_module("o", linear(inner, config.d_model));
  if (has_relative_attention_bias) {
    relative_attention_bias_ =
        register_module("relative_attention_bias", LoadedEmbedding(num_buckets_, config.num_heads));
  }
}

torch::Tensor T5AttentionImpl::ComputeBias(int64_t length) {
  TORCH_CHECK(relative_attention_bias_, "T5 attention without relative_attention_bias");
  auto opts =
      torch::TensorOptions().dtype(torch::kLong).device(relative_attention_bias_->weight.device());
  torch::Tensor query = torch::arange(length, opts).unsqueeze(1);  // [L, 1]
  torch::Tensor key = torch::arange(length, opts).unsqueeze(0);    // [1, L]
  torch::Tensor bucket = T5RelativePositionBucket(key - query, num_buckets_, max_distance_);
  // [L, L, heads] -> [1, heads, L, L]
  return relative_attention_bias_(bucket).permute({2, 0, 1}).unsqueeze(0);
}

torch::Tensor T5AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& position_bias) {
  // q, k, v: [B, heads, L, d_kv]
  torch::Tensor q = SplitHeads(q_(x), heads_);
  torch::Tensor k = SplitHeads(k_(x), heads_);
  torch::Tensor v = SplitHeads(v_(x), heads_);
  // No 1/sqrt(d_kv): T5 folds it into the weights.
  torch::Tensor out = ScaledDotProductAttention(q, k, v, position_bias, /*scale=*/1.0);
  return o_(MergeHeads(out));  // [B, L, D]
}

T5LayerSelfAttentionImpl::T5LayerSelfAttentionImpl(const T5Config& config,
                                                   bool has_relative_attention_bias) {
  self_attention_ =
      register_module("SelfAttention", T5Attention(config, has_relative_attention_bias));
  layer_norm_ =
      register_module("layer_norm", T5LayerNorm(config.d_model, config.layer_norm_epsilon));
}

torch::Tensor T5LayerSelfAttentionImpl::forward(const torch::Tensor& x,
                                                const torch::Tensor& position_bias) {
  return x + self_attention_(layer_norm_(x), position_bias);
}

T5DenseImpl::T5DenseImpl(const T5Config& config) {
  auto linear = [](int64_t in, int64_t out) { return LoadedLinear(in, out, /*bias=*/false); };
  if (config.gated_gelu) {
    wi_0_ = register_module("wi_0", linear(config.d_model, config.d_ff));
    wi_1_ = register_module("wi_1", linear(config.d_model, config.d_ff));
  } else {
    wi_ = register_module("wi", linear(config.d_model, config.d_ff));
  }
  wo_ = register_module("wo", linear(config.d_ff, config.d_model));
}

torch::Tensor T5DenseImpl::forward(const torch::Tensor& x) {
  torch::Tensor h;  // [B, L, d_ff]
  if (wi_0_) {
    // transformers' "gelu_new" (tanh approximation), spelled out op by op as it does.
    torch::Tensor g = wi_0_(x);
    g = 0.5 * g * (1.0 + torch::tanh(std::sqrt(2.0 / kPi) * (g + 0.044715 * torch::pow(g, 3.0))));
    h = g * wi_1_(x);
  } else {
    h = torch::relu(wi_(x));
  }
  // transformers keeps `wo` in float32 when it loads T5 in float16; follow the weight's dtype.
  if (h.scalar_type() != wo_->weight.scalar_type()) h = h.to(wo_->weight.scalar_type());
  return wo_(h);
}

T5LayerFFImpl::T5LayerFFImpl(const T5Config& config) {
  dense_relu_dense_ = register_module("DenseReluDense", T5Dense(config));
  layer_norm_ =
      register_module("layer_norm", T5LayerNorm(config.d_model, config.layer_norm_epsilon));
}

torch::Tensor T5LayerFFImpl::forward(const torch::Tensor& x) {
  return x + dense_relu_dense_(layer_norm_(x));
}

T5BlockImpl::T5BlockImpl(const T5Config& config, bool has_relative_attention_bias) {
  self_attention_ = T5LayerSelfAttention(config, has_relative_attention_bias);
  feed_forward_ = T5LayerFF(config);
  auto layer = register_module("layer", torch::nn::ModuleList());
  layer->push_back(self_attention_);  // "layer.0"
  layer->push_back(feed_forward_);    // "layer.1"
}

torch::Tensor T5BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& position_bias) {
  torch::Tensor h = T5ClampFloat16(self_attention_(x, position_bias));  // [B, L, D]
  return T5ClampFloat16(feed_forward_(h));
}

T5StackImpl::T5StackImpl(const T5Config& config) {
  auto block = register_module("block", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) {
    blocks_.push_back(T5Block(config, /*has_relative_attention_bias=*/i == 0));
    block->push_back(blocks_.back());
  }
  final_layer_norm_ =
      register_module("final_layer_norm", T5LayerNorm(config.d_model, config.layer_norm_epsilon));
}

torch::Tensor T5StackImpl::forward(const torch::Tensor& x) {
  // Block 0's bias, [1, heads, L, L], serves every block.
  torch::Tensor position_bias =
      blocks_.front()->self_attention()->attention()->ComputeBias(x.size(1));
  torch::Tensor h = x;  // [B, L, D]
  for (auto& block : blocks_) h = block(h, position_bias);
  return final_layer_norm_(h);
}

T5EncoderModelImpl::T5EncoderModelImpl(const T5Config& config) : config_(config) {
  shared_ = register_module("shared", LoadedEmbedding(config.vocab_size, config.d_model));
  encoder_ = register_module("encoder", T5Stack(config));
}

torch::Tensor T5EncoderModelImpl::forward(const torch::Tensor& input_ids) {
  TORCH_CHECK(input_ids.dim() == 2 && input_ids.size(0) >= 1 && input_ids.size(1) >= 1,
              "T5 encoder: input_ids must be a non-empty [B, L], got ", input_ids.sizes());
  TORCH_CHECK(input_ids.scalar_type() == torch::kLong, "T5 encoder: input_ids must be int64");
  TORCH_CHECK(
      input_ids.min().item<int64_t>() >= 0 && input_ids.max().item<int64_t>() < config_.vocab_size,
      "T5 encoder: token id outside [0, ", config_.vocab_size, ")");
  return encoder_(shared_(input_ids));  // [B, L, D]
}

}  // namespace tlcm
