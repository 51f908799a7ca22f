#include "pipelines/image_output.h"

#include <cstring>

namespace tlcm {

std::vector<RgbImage> ToRgbImages(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "ToRgbImages: expected [B, 3, H, W], got ",
              images.sizes());
  // The conversion runs where the images are (on a GPU it costs nothing next to the decode),
  // so that only the final bytes cross to the host: a quarter of the float32 pixels.
  const torch::Tensor bytes = ((images.detach().to(torch::kFloat32) / 2 + 0.5).clamp(0, 1) * 255)
                                  .round()
                                  .to(torch::kUInt8)
                                  .permute({0, 2, 3, 1})
                                  .contiguous();
  torch::Tensor host;
  if (bytes.is_cuda()) {
    // Page-locked memory: the copy runs at the bus's full speed (from the caching host
    // allocator, so batches reuse the same pages).
    host = torch::empty(bytes.sizes(),
                        torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true));
    host.copy_(bytes);
  } else {
    host = bytes.to(torch::kCPU);  // no copy when already there
  }
  std::vector<RgbImage> out;
  for (int64_t b = 0; b < host.size(0); ++b) {
    RgbImage image;
    image.height = static_cast<int>(host.size(1));
    image.width = static_cast<int>(host.size(2));
    image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
    std::memcpy(image.pixels.data(), host[b].data_ptr<uint8_t>(), image.pixels.size());
    out.push_back(std::move(image));
  }
  return out;
}

}  // namespace tlcm
