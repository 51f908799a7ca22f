#include "models/layers/loaded_layers.h"

#include "models/layers/lora_batch.h"

namespace tlcm {

LoadedLinearImpl::LoadedLinearImpl(int64_t in_features, int64_t out_features, bool bias) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  if (bias) this->bias = register_parameter("bias", torch::empty({out_features}));
}

torch::Tensor LoadedLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::linear(x, weight, bias);
  if (const LowRankUpdate* update = CurrentLoraUpdate(this)) {
    return AddLinearLoraUpdate(*update, x, std::move(y));
  }
  return y;
}

LoadedConv2dImpl::LoadedConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                   int64_t stride, int64_t padding, bool bias)
    : stride_(stride), padding_(padding) {
  weight = register_parameter("weight", torch::empty({out_channels, in_channels, kernel, kernel}));
  if (bias) this->bias = register_parameter("bias", torch::empty({out_channels}));
}

torch::Tensor LoadedConv2dImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::conv2d(x, weight, bias, stride_, padding_);
  if (const LowRankUpdate* update = CurrentLoraUpdate(this)) {
    return AddConv2dLoraUpdate(*update, x, std::move(y), stride_, padding_);
  }
  return y;
}

LoadedEmbeddingImpl::LoadedEmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim) {
  weight = register_parameter("weight", torch::empty({num_embeddings, embedding_dim}));
}

torch::Tensor LoadedEmbeddingImpl::forward(const torch::Tensor& ids) {
  return torch::embedding(weight, ids);
}

}  // namespace tlcm
