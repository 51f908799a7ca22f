#include "pipelines/latent_preview.h"

#include <cstring>

namespace tlcm {

RgbImage LatentPreview(const torch::Tensor& latent) {
  TORCH_CHECK(latent.dim() == 3, "LatentPreview: expected [C, h, w], got ", latent.sizes());
  const torch::Tensor z = latent.detach().to(torch::kCPU, torch::kFloat32);
  const int64_t channels = z.size(0);
  torch::Tensor rgb;  // [3, h, w] in about [-1, 1]
  if (channels == 4) {
    const torch::Tensor factors = torch::tensor({0.3651f, 0.4232f, 0.4341f,    //
                                                 -0.2533f, -0.0042f, 0.1068f,  //
                                                 0.1076f, 0.1111f, -0.0362f,   //
                                                 -0.3165f, -0.2492f, -0.2188f})
                                      .view({4, 3});
    const torch::Tensor bias = torch::tensor({0.1084f, -0.0175f, -0.0011f}).view({3, 1, 1});
    rgb = torch::einsum("chw,ck->khw", {z, factors}) + bias;
  } else {
    std::vector<torch::Tensor> colours;
    for (int64_t k = 0; k < 3; ++k) {
      const torch::Tensor idx = torch::arange(k % channels, channels, 3, torch::kInt64);
      colours.push_back(torch::tanh(z.index_select(0, idx).mean(0)));
    }
    rgb = torch::stack(colours);
  }
  const torch::Tensor bytes =
      ((rgb / 2 + 0.5).clamp(0, 1) * 255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  RgbImage image;
  image.height = static_cast<int>(bytes.size(0));
  image.width = static_cast<int>(bytes.size(1));
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  std::memcpy(image.pixels.data(), bytes.data_ptr<uint8_t>(), image.pixels.size());
  return image;
}

}  // namespace tlcm
