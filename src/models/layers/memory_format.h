// Memory layout of convolutional models.
#pragma once

#include <torch/torch.h>

namespace tlcm {

// Stores every 4-D parameter of `module` (the convolution weights) channels-last (NHWC). A
// convolution with an NHWC weight produces NHWC output, and the ops between convolutions
// (GroupNorm, SiLU, additions, nearest upsampling) keep that layout, so from the first
// convolution on the whole network runs on the NHWC kernels of oneDNN (CPU) and cuDNN (GPU)
// without converting layouts per call. The arithmetic is the same; only the summation order
// inside a kernel may differ, by float rounding. Call it after loading and LoRA fusion.
void UseChannelsLast(torch::nn::Module& module);

}  // namespace tlcm
