// Linear, Conv2d and Embedding layers for models whose weights always come from a checkpoint.
//
// LibTorch's torch::nn::Linear / Conv2d / Embedding fill their parameters with random values when
// they are constructed. That work is serial and, for full-size models, most of the loading time
// (the FLUX transformer has 12 billion parameters). These layers only allocate: their parameters
// hold whatever memory held until LoadModuleWeights (loaders/module_loader.h) sets them, so a
// model built from them must be loaded, or explicitly filled, before its first forward.
// Parameter names and shapes are torch::nn's, hence diffusers' checkpoint keys.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace tlcm {

// y = x W^T + b. Parameters: weight [out_features, in_features], bias [out_features] (if `bias`).
class LoadedLinearImpl : public torch::nn::Module {
 public:
  LoadedLinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  // x: [..., in_features] -> [..., out_features]
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;
  torch::Tensor bias;  // undefined without a bias
};
TORCH_MODULE(LoadedLinear);

// Square-kernel 2-D convolution with zero padding, no dilation, one group. Parameters:
// weight [out_channels, in_channels, kernel, kernel], bias [out_channels] (if `bias`).
class LoadedConv2dImpl : public torch::nn::Module {
 public:
  LoadedConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1,
                   int64_t padding = 0, bool bias = true);
  // x: [B, in_channels, H, W] -> [B, out_channels, H', W'], H' = (H + 2 padding - kernel) /
  // stride + 1 (W' alike).
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;
  torch::Tensor bias;  // undefined without a bias

 private:
  int64_t stride_;
  int64_t padding_;
};
TORCH_MODULE(LoadedConv2d);

// Row lookup. Parameter: weight [num_embeddings, embedding_dim].
class LoadedEmbeddingImpl : public torch::nn::Module {
 public:
  LoadedEmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim);
  // ids: integer tensor [...] with values in [0, num_embeddings) -> [..., embedding_dim]
  torch::Tensor forward(const torch::Tensor& ids);

  torch::Tensor weight;
};
TORCH_MODULE(LoadedEmbedding);

}  // namespace tlcm
