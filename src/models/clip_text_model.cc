#include "models/clip_text_model.h"

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "loaders/json_config.h"
#include "models/layers/attention_ops.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

ClipActivation ParseActivation(const std::string& name) {
  if (name == "quick_gelu") return ClipActivation::kQuickGelu;
  if (name == "gelu") return ClipActivation::kGelu;
  throw std::invalid_argument(
      absl::StrCat("hidden_act \"", name, "\" is not supported (quick_gelu or gelu)"));
}

bool NamesProjectionClass(const nlohmann::json& json) {
  auto it = json.find("architectures");
  if (it == json.end() || !it->is_array()) return false;
  for (const auto& name : *it) {
    if (name.is_string() && name.get<std::string>() == "CLIPTextModelWithProjection") return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<ClipTextConfig> ClipTextConfig::FromFile(const std::string& path) {
  TLCM_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  return ParseConfig(path, json, [](const nlohmann::json& j) {
    ClipTextConfig c;
    c.vocab_size = SizeOr(j, "vocab_size", c.vocab_size);
    c.hidden_size = SizeOr(j, "hidden_size", c.hidden_size);
    c.intermediate_size = SizeOr(j, "intermediate_size", c.intermediate_size);
    c.num_attention_heads = SizeOr(j, "num_attention_heads", c.num_attention_heads);
    c.num_hidden_layers = SizeOr(j, "num_hidden_layers", c.num_hidden_layers);
    c.max_position_embeddings = SizeOr(j, "max_position_embeddings", c.max_position_embeddings);
    c.hidden_act = ParseActivation(ValueOr<std::string>(j, "hidden_act", "quick_gelu"));
    c.layer_norm_eps = ValueOr<double>(j, "layer_norm_eps", c.layer_norm_eps);
    c.projection_dim = SizeOr(j, "projection_dim", c.projection_dim);
    c.eos_token_id = ValueOr<int64_t>(j, "eos_token_id", c.eos_token_id);
    c.with_projection = NamesProjectionClass(j);
    if (c.hidden_size % c.num_attention_heads != 0) {
      throw std::invalid_argument(absl::StrCat("hidden_size ", c.hidden_size,
                                               " is not divisible by num_attention_heads ",
                                               c.num_attention_heads));
    }
    return c;
  });
}

ClipTextEmbeddingsImpl::ClipTextEmbeddingsImpl(const ClipTextConfig& config) {
  token_embedding_ =
      register_module("token_embedding", LoadedEmbedding(config.vocab_size, config.hidden_size));
  position_embedding_ = register_module(
      "position_embedding", LoadedEmbedding(config.max_position_embeddings, config.hidden_size));
}

torch::Tensor ClipTextEmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  const int64_t length = input_ids.size(1);
  torch::Tensor positions = torch::arange(length, input_ids.options().dtype(torch::kLong));
  // [B, L, H] + [1, L, H]
  return token_embedding_(input_ids) + position_embedding_(positions).unsqueeze(0);
}

ClipAttentionImpl::ClipAttentionImpl(const ClipTextConfig& config)
    : heads_(config.num_attention_heads) {
  const int64_t h = config.hidden_size;
  q_proj_ = register_module("q_proj", LoadedLinear(h, h));
  k_proj_ = register_module("k_proj", LoadedLinear(h, h));
  v_proj_ = register_module("v_proj", LoadedLinear(h, h));
  out_proj_ = register_module("out_proj", LoadedLinear(h, h));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  // q, k, v: [B, heads, L, head_dim]
  torch::Tensor q = SplitHeads(q_proj_(x), heads_);
  torch::Tensor k = SplitHeads(k_proj_(x), heads_);
  torch::Tensor v = SplitHeads(v_proj_(x), heads_);
  // [B, heads, L, head_dim] -> [B, L, H]
  return out_proj_(MergeHeads(ScaledDotProductAttention(q, k, v, mask)));
}

ClipMlpImpl::ClipMlpImpl(const ClipTextConfig& config) : activation_(config.hidden_act) {
  fc1_ = register_module("fc1", LoadedLinear(config.hidden_size, config.intermediate_size));
  fc2_ = register_module("fc2", LoadedLinear(config.intermediate_size, config.hidden_size));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = fc1_(x);  // [B, L, intermediate]
  switch (activation_) {
    case ClipActivation::kQuickGelu:
      h = h * torch::sigmoid(h * 1.702);
      break;
    case ClipActivation::kGelu:
      h = torch::gelu(h);
      break;
  }
  return fc2_(h);
}

ClipEncoderLayerImpl::ClipEncoderLayerImpl(const ClipTextConfig& config) {
  auto norm = [&] {
    return torch::nn::LayerNorm(
        torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps));
  };
  self_attn_ = register_module("self_attn", ClipAttention(config));
  layer_norm1_ = register_module("layer_norm1", norm());
  mlp_ = register_module("mlp", ClipMlp(config));
  layer_norm2_ = register_module("layer_norm2", norm());
}

torch::Tensor ClipEncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  // x: [B, L, H]
  torch::Tensor h = x + self_attn_(layer_norm1_(x), mask);
  return h + mlp_(layer_norm2_(h));
}

ClipEncoderImpl::ClipEncoderImpl(const ClipTextConfig& config) {
  auto list = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers_.push_back(ClipEncoderLayer(config));
    list->push_back(layers_.back());
  }
}

std::pair<torch::Tensor, torch::Tensor> ClipEncoderImpl::forward(const torch::Tensor& x,
                                                                 const torch::Tensor& mask) {
  torch::Tensor penultimate = x;  // [B, L, H]
  torch::Tensor h = x;
  for (auto& layer : layers_) {
    penultimate = h;
    h = layer(h, mask);
  }
  return {penultimate, h};
}

ClipTextTransformerImpl::ClipTextTransformerImpl(const ClipTextConfig& config)
    : eos_token_id_(config.eos_token_id) {
  embeddings_ = register_module("embeddings", ClipTextEmbeddings(config));
  encoder_ = register_module("encoder", ClipEncoder(config));
  final_layer_norm_ = register_module(
      "final_layer_norm",
      torch::nn::LayerNorm(
          torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
}

ClipTextOutput ClipTextTransformerImpl::forward(const torch::Tensor& input_ids) {
  torch::Tensor x = embeddings_(input_ids);                                         // [B, L, H]
  torch::Tensor mask = CausalMask(input_ids.size(1), x.scalar_type(), x.device());  // [L, L]
  auto [penultimate, last] = encoder_(x, mask);

  ClipTextOutput out;
  out.penultimate_hidden_state = penultimate;
  out.last_hidden_state = final_layer_norm_(last);
  // Pooling position per sample, [B]. argmax returns the first maximal element.
  torch::Tensor position = eos_token_id_ == 2
                               ? input_ids.argmax(-1)
                               : input_ids.eq(eos_token_id_).to(torch::kInt).argmax(-1);
  torch::Tensor batch = torch::arange(input_ids.size(0), position.options());
  out.pooled = out.last_hidden_state.index({batch, position});  // [B, H]
  return out;
}

ClipTextModelImpl::ClipTextModelImpl(const ClipTextConfig& config) : config_(config) {
  text_model_ = register_module("text_model", ClipTextTransformer(config));
  if (config.with_projection) {
    text_projection_ = register_module(
        "text_projection", LoadedLinear(config.hidden_size, config.projection_dim, /*bias=*/false));
  }
}

ClipTextOutput ClipTextModelImpl::forward(const torch::Tensor& input_ids) {
  TORCH_CHECK(input_ids.dim() == 2 && input_ids.size(0) >= 1,
              "CLIP text model: input_ids must be a non-empty [B, L], got ", input_ids.sizes());
  TORCH_CHECK(input_ids.scalar_type() == torch::kLong, "CLIP text model: input_ids must be int64");
  const int64_t length = input_ids.size(1);
  TORCH_CHECK(length >= 1 && length <= config_.max_position_embeddings,
              "CLIP text model: sequence length ", length, " outside [1, ",
              config_.max_position_embeddings, "]");
  TORCH_CHECK(
      input_ids.min().item<int64_t>() >= 0 && input_ids.max().item<int64_t>() < config_.vocab_size,
      "CLIP text model: token id outside [0, ", config_.vocab_size, ")");
  ClipTextOutput out = text_model_(input_ids);
  if (text_projection_) out.text_embeds = text_projection_(out.pooled);  // [B, P]
  return out;
}

}  // namespace tlcm
