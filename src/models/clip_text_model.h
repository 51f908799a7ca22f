// transformers CLIPTextModel / CLIPTextModelWithProjection (SDXL's two text encoders, FLUX's
// CLIP encoder). Features, pooling, architecture and keys: docs/model-notes.md §2.
//
// Module names equal the checkpoint keys (`text_model.encoder.layers.3.self_attn.q_proj.weight`),
// so weights load with LoadModuleWeights(model, store, ClipTextKeys()).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/layers/loaded_layers.h"

namespace tlcm {

// The hidden activation of the MLP.
enum class ClipActivation {
  kQuickGelu,  // "quick_gelu": x * sigmoid(1.702 x)
  kGelu,       // "gelu": exact (erf) GELU
};

// The fields of a transformers CLIPTextConfig that the forward pass needs.
struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_attention_heads = 8;
  int64_t num_hidden_layers = 12;
  int64_t max_position_embeddings = 77;
  ClipActivation hidden_act = ClipActivation::kQuickGelu;
  double layer_norm_eps = 1e-5;
  int64_t projection_dim = 512;
  // Chooses the pooling position: 2 (the legacy value in SDXL's and FLUX's configs) pools at
  // argmax(input_ids); any other value at the first position holding eos_token_id.
  int64_t eos_token_id = 49407;
  // True for CLIPTextModelWithProjection: the model has `text_projection` and returns
  // text_embeds. FromFile sets it when config.json's `architectures` names that class; a loader
  // that knows the class from model_index.json may set it itself.
  bool with_projection = false;

  // Parses a transformers config.json. Keys that are absent take transformers' defaults (the
  // values above). InvalidArgument naming `path` and the key for a hidden_act other than
  // quick_gelu / gelu, non-positive sizes, or hidden_size not divisible by num_attention_heads.
  static absl::StatusOr<ClipTextConfig> FromFile(const std::string& path);
};

struct ClipTextOutput {
  torch::Tensor penultimate_hidden_state;  // [B, L, H] hidden_states[-2], no final layer norm
  torch::Tensor last_hidden_state;         // [B, L, H] after final_layer_norm
  torch::Tensor pooled;                    // [B, H] last_hidden_state at the pooling position
  torch::Tensor text_embeds;               // [B, P] text_projection(pooled); undefined without
                                           // a projection
};

// `text_model.embeddings`: token + learned absolute position embedding.
class ClipTextEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit ClipTextEmbeddingsImpl(const ClipTextConfig& config);
  // input_ids: [B, L] int64, L <= max_position_embeddings -> [B, L, H]
  torch::Tensor forward(const torch::Tensor& input_ids);

 private:
  LoadedEmbedding token_embedding_{nullptr};
  LoadedEmbedding position_embedding_{nullptr};
};
TORCH_MODULE(ClipTextEmbeddings);

// `self_attn`: multi-head attention with biased q/k/v/out projections, scale head_dim^-0.5.
class ClipAttentionImpl : public torch::nn::Module {
 public:
  explicit ClipAttentionImpl(const ClipTextConfig& config);
  // x: [B, L, H], mask: additive [L, L] -> [B, L, H]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);

 private:
  int64_t heads_;
  LoadedLinear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr}, out_proj_{nullptr};
};
TORCH_MODULE(ClipAttention);

// `mlp`: fc1 -> activation -> fc2.
class ClipMlpImpl : public torch::nn::Module {
 public:
  explicit ClipMlpImpl(const ClipTextConfig& config);
  // x: [B, L, H] -> [B, L, H]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  ClipActivation activation_;
  LoadedLinear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(ClipMlp);

// `text_model.encoder.layers.{i}`: pre-LN transformer layer.
class ClipEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderLayerImpl(const ClipTextConfig& config);
  // x: [B, L, H], mask: additive [L, L] -> [B, L, H]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);

 private:
  ClipAttention self_attn_{nullptr};
  torch::nn::LayerNorm layer_norm1_{nullptr};
  ClipMlp mlp_{nullptr};
  torch::nn::LayerNorm layer_norm2_{nullptr};
};
TORCH_MODULE(ClipEncoderLayer);

// `text_model.encoder`: the stack of `layers`.
class ClipEncoderImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderImpl(const ClipTextConfig& config);
  // x: [B, L, H], mask: additive [L, L]. Returns {hidden_states[-2], hidden_states[-1]}, both
  // [B, L, H]: the input of the last layer and its output (with one layer the first is x).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x,
                                                  const torch::Tensor& mask);

 private:
  std::vector<ClipEncoderLayer> layers_;
};
TORCH_MODULE(ClipEncoder);

// `text_model`: embeddings, encoder, final_layer_norm.
class ClipTextTransformerImpl : public torch::nn::Module {
 public:
  explicit ClipTextTransformerImpl(const ClipTextConfig& config);
  // input_ids: [B, L] int64. Fills every field of ClipTextOutput but text_embeds.
  ClipTextOutput forward(const torch::Tensor& input_ids);

 private:
  int64_t eos_token_id_;
  ClipTextEmbeddings embeddings_{nullptr};
  ClipEncoder encoder_{nullptr};
  torch::nn::LayerNorm final_layer_norm_{nullptr};
};
TORCH_MODULE(ClipTextTransformer);

// CLIPTextModel, or CLIPTextModelWithProjection when config.with_projection.
// Built on the CPU with unset float32 parameters (load them: layers/loaded_layers.h); forward
// works in any floating dtype / device the module was moved to. Causal mask only (no padding
// mask, as SDXL and FLUX call it). Not thread-safe for concurrent forward calls that also move or
// load the module; concurrent forwards are fine.
class ClipTextModelImpl : public torch::nn::Module {
 public:
  explicit ClipTextModelImpl(const ClipTextConfig& config);
  // input_ids: [B, L] int64 with 1 <= L <= max_position_embeddings and ids in [0, vocab_size)
  // (checked: c10::Error otherwise).
  ClipTextOutput forward(const torch::Tensor& input_ids);

  const ClipTextConfig& config() const { return config_; }

 private:
  ClipTextConfig config_;
  ClipTextTransformer text_model_{nullptr};
  LoadedLinear text_projection_{nullptr};  // null without a projection
};
TORCH_MODULE(ClipTextModel);

}  // namespace tlcm
