// Conversions from decoded image tensors to 8-bit RGB, as diffusers' PIL output does them.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "image/rgb_image.h"

namespace tlcm {

// images: [B, 3, H, W] in [-1, 1] (any float dtype, any device) ->
// round(clamp(x / 2 + 0.5, 0, 1) * 255) in float32, as uint8 RGB. The arithmetic runs on the
// images' device; only the bytes are copied to the host (through pinned memory from a GPU).
std::vector<RgbImage> ToRgbImages(const torch::Tensor& images);

}  // namespace tlcm
