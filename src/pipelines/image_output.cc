#include "pipelines/image_output.h"

#include <cstring>

namespace tlcm {

std::vector<RgbImage> ToRgbImages(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "ToRgbImages: expected [B, 3, H, W], got ",
              images.sizes());
  const torch::Tensor x = images.detach().to(torch::kCPU, torch::kFloat32);
  const torch::Tensor bytes = ((x / 2 + 0.5).clamp(0, 1) * 255)
                                  .round()
                                  .to(torch::kUInt8)
                                  .permute({0, 2, 3, 1})
                                  .contiguous();
  std::vector<RgbImage> out;
  for (int64_t b = 0; b < bytes.size(0); ++b) {
    RgbImage image;
    image.height = static_cast<int>(bytes.size(1));
    image.width = static_cast<int>(bytes.size(2));
    image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
    std::memcpy(image.pixels.data(), bytes[b].data_ptr<uint8_t>(), image.pixels.size());
    out.push_back(std::move(image));
  }
  return out;
}

}  // namespace tlcm
