// transformers T5EncoderModel (FLUX's text_encoder_2, t5-v1_1-xxl): docs/model-notes.md §4.
//
// Module names equal the checkpoint keys (`encoder.block.3.layer.1.DenseReluDense.wi_0.weight`),
// so weights load with LoadModuleWeights(model, store, T5EncoderKeys()).
//
// Precision: T5-XXL's activations overflow float16; run it in bfloat16 or float32. float16 is
// accepted and, like transformers, clamps the hidden state after each sub-layer to the finite
// float16 range (max - 1000 once an inf appeared), which keeps it finite but not accurate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/layers/loaded_layers.h"

namespace tlcm {

// The fields of a transformers T5Config that the encoder needs.
struct T5Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t d_ff = 2048;
  int64_t num_heads = 8;
  int64_t num_layers = 6;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  // feed_forward_proj "relu": wo(relu(wi(x))); "gated-gelu": wo(gelu_tanh(wi_0(x)) * wi_1(x)).
  bool gated_gelu = false;

  // Parses a transformers config.json; absent keys take transformers' defaults (the values
  // above, feed_forward_proj "relu"). InvalidArgument naming `path` and the key for any other
  // feed_forward_proj, for `dense_act_fn` / `is_gated_act` entries that contradict it
  // (transformers would let them override it), for non-positive sizes and for a bucket count
  // that is odd or below 4.
  static absl::StatusOr<T5Config> FromFile(const std::string& path);
};

// The bidirectional relative-position bucket of transformers' T5Attention for
// relative_position = key_position - query_position (any integer tensor; int64 result of the
// same shape, values in [0, num_buckets)): docs/model-notes.md §4. The float ops (log in
// float32, the divisor log(max_distance / max_exact) in double) follow transformers, since
// bucket boundaries depend on their rounding.
torch::Tensor T5RelativePositionBucket(const torch::Tensor& relative_position, int64_t num_buckets,
                                       int64_t max_distance);

// transformers' float16 guard, applied after every T5 sub-layer: clamps x to +-65504, or to
// +-(65504 - 1000) (64512 after rounding to half) when x holds an inf. Other dtypes pass through.
torch::Tensor T5ClampFloat16(const torch::Tensor& x);

// T5's RMS norm: x * rsqrt(mean(x^2) + eps) with the mean in float32; the result is cast to the
// weight's dtype when that is half precision, then multiplied by the weight. Key: `weight`.
class T5LayerNormImpl : public torch::nn::Module {
 public:
  T5LayerNormImpl(int64_t dim, double eps);
  // x: [..., D] -> [..., D] (float32 when x is half and the weight float32, as in transformers)
  torch::Tensor forward(const torch::Tensor& x);

 private:
  double eps_;
  torch::Tensor weight_;
};
TORCH_MODULE(T5LayerNorm);

// `SelfAttention`: q/k/v/o without bias, no 1/sqrt(d) scaling, float32 softmax. Only block 0
// owns `relative_attention_bias` ([buckets, heads]).
class T5AttentionImpl : public torch::nn::Module {
 public:
  T5AttentionImpl(const T5Config& config, bool has_relative_attention_bias);
  // The position bias [1, heads, L, L] for a length-L sequence; only on the module with
  // relative_attention_bias.
  torch::Tensor ComputeBias(int64_t length);
  // x: [B, L, D], position_bias: [1, heads, L, L] -> [B, L, D]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& position_bias);

 private:
  int64_t heads_;
  int64_t num_buckets_;
  int64_t max_distance_;
  LoadedLinear q_{nullptr}, k_{nullptr}, v_{nullptr}, o_{nullptr};
  LoadedEmbedding relative_attention_bias_{nullptr};
};
TORCH_MODULE(T5Attention);

// `layer.0`: h + SelfAttention(layer_norm(h)).
class T5LayerSelfAttentionImpl : public torch::nn::Module {
 public:
  T5LayerSelfAttentionImpl(const T5Config& config, bool has_relative_attention_bias);
  // x: [B, L, D], position_bias: [1, heads, L, L] -> [B, L, D]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& position_bias);
  T5Attention& attention() { return self_attention_; }

 private:
  T5Attention self_attention_{nullptr};
  T5LayerNorm layer_norm_{nullptr};
};
TORCH_MODULE(T5LayerSelfAttention);

// `DenseReluDense`: {wi, wo} (relu) or {wi_0, wi_1, wo} (gated-gelu, tanh GELU), no bias.
class T5DenseImpl : public torch::nn::Module {
 public:
  explicit T5DenseImpl(const T5Config& config);
  // x: [B, L, D] -> [B, L, D]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  LoadedLinear wi_{nullptr}, wi_0_{nullptr}, wi_1_{nullptr}, wo_{nullptr};
};
TORCH_MODULE(T5Dense);

// `layer.1`: h + DenseReluDense(layer_norm(h)).
class T5LayerFFImpl : public torch::nn::Module {
 public:
  explicit T5LayerFFImpl(const T5Config& config);
  // x: [B, L, D] -> [B, L, D]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  T5Dense dense_relu_dense_{nullptr};
  T5LayerNorm layer_norm_{nullptr};
};
TORCH_MODULE(T5LayerFF);

// `encoder.block.{i}`: `layer` = [self-attention, feed-forward].
class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const T5Config& config, bool has_relative_attention_bias);
  // x: [B, L, D], position_bias: [1, heads, L, L] -> [B, L, D]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& position_bias);
  T5LayerSelfAttention& self_attention() { return self_attention_; }

 private:
  T5LayerSelfAttention self_attention_{nullptr};
  T5LayerFF feed_forward_{nullptr};
};
TORCH_MODULE(T5Block);

// `encoder`: blocks and final_layer_norm; block 0's position bias is shared by every block.
class T5StackImpl : public torch::nn::Module {
 public:
  explicit T5StackImpl(const T5Config& config);
  // x: [B, L, D] embedded tokens -> [B, L, D]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::vector<T5Block> blocks_;
  T5LayerNorm final_layer_norm_{nullptr};
};
TORCH_MODULE(T5Stack);

// T5EncoderModel: `shared` token embedding (no scaling) + `encoder`. Built on the CPU with
// unset float32 parameters (load them: layers/loaded_layers.h); forward works in the dtype /
// device the module was moved to (see the precision note above). No attention mask (FLUX passes
// none). Concurrent forwards are fine; moving or loading the module meanwhile is not.
class T5EncoderModelImpl : public torch::nn::Module {
 public:
  explicit T5EncoderModelImpl(const T5Config& config);
  // input_ids: [B, L] int64, ids in [0, vocab_size), L >= 1 (checked: c10::Error otherwise)
  // -> last_hidden_state [B, L, d_model]
  torch::Tensor forward(const torch::Tensor& input_ids);

  const T5Config& config() const { return config_; }

 private:
  T5Config config_;
  LoadedEmbedding shared_{nullptr};
  T5Stack encoder_{nullptr};
};
TORCH_MODULE(T5EncoderModel);

}  // namespace tlcm
