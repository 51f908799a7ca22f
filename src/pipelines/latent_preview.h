// Cheap previews of a running image straight from its latent (no VAE).
#pragma once

#include <torch/torch.h>

#include "image/rgb_image.h"

namespace tlcm {

// latent: [C, h, w] (any dtype/device) -> an h x w RGB image. Four-channel (SDXL) latents use a
// fixed linear latent-to-RGB map fitted on SDXL's VAE (public factors used by several UIs); other
// channel counts average channel c into colour c % 3 and squash with tanh. A preview shows
// composition and colour, not detail.
RgbImage LatentPreview(const torch::Tensor& latent);

}  // namespace tlcm
