// Image inputs of a run (img2img and inpainting) as diffusers' StableDiffusionXLImg2Img /
// StableDiffusionXLInpaint / FluxImg2Img / FluxInpaint pipelines prepare them: the images and
// masks preprocessed like VaeImageProcessor, the strength rule, and the encoded latents with the
// noise draws in diffusers' order.
#pragma once

#include <functional>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "image/rgb_image.h"
#include "models/autoencoder_kl.h"
#include "pipelines/denoising_sample.h"
#include "pipelines/image_noise.h"
#include "pipelines/pipeline_options.h"
#include "schedulers/strength.h"  // SdxlStartStep, FluxStartStep

namespace tlcm {

// OK when no request has an image, or every one has one and either all or none has a mask, and
// `strength` is in (0, 1] and leaves at least one of `steps` steps (start_step < steps).
// InvalidArgument naming the field (image, mask, strength) otherwise.
absl::Status CheckImageInputs(const std::vector<ImageRequest>& requests, double strength, int steps,
                              int start_step);

// VaeImageProcessor.preprocess of an RGB image: Lanczos-resized to width x height when its size
// differs (Pillow's filter), x / 255 * 2 - 1. [1, 3, height, width] float32 on the CPU.
torch::Tensor ImageTensor(const RgbImage& image, int width, int height);

// The mask processor's preprocess: grayscale (Pillow's "L"), resized as above, x / 255,
// binarized (>= 0.5 -> 1, else 0). [1, 1, height, width] float32 on the CPU.
torch::Tensor MaskTensor(const RgbImage& mask, int width, int height);

// What the denoising loop needs of the input images, rows in the order of the requests, float32
// on the device, on the latent grid [n, C, h, w] ([n, 1, h, w] for the mask).
struct ImageLatents {
  torch::Tensor clean;   // the images' latents, scaled as the denoiser sees them; undefined when
                         // the plan skips them
  torch::Tensor noise;   // drawn right after encoding: starts the run and re-noises `clean`
  torch::Tensor mask;    // 1 = repaint; undefined without masks (img2img)
  torch::Tensor masked;  // the masked images' latents (image * (mask < 0.5)), scaled like
                         // `clean`; only when the plan encodes them
};

// Which latents a run computes, as diffusers' pipelines decide it.
struct ImageInputPlan {
  // The input images' latents. A 9-channel inpainting UNet starting from pure noise (strength 1)
  // needs none, and diffusers then neither encodes nor draws them.
  bool encode_images = true;
  // With masks: the masked images' latents, which a 9-channel inpainting UNet reads. Otherwise
  // only their sample's draw is made (a 4-channel denoiser never reads them).
  bool encode_masked = false;
};

// How a pipeline turns a sampled VAE latent z into its latent space: (z - shift) * scaling.
struct LatentScaling {
  double scaling = 1.0;
  double shift = 0.0;
};

// Preprocesses and encodes the inputs of `requests` at width x height: per image, from its own
// stream noises[i], a draw for the latent sample (when plan.encode_images), then the start
// noise, then (with masks) the draw that samples the masked image's latent (encoded when
// plan.encode_masked). The mask goes to the latent grid by nearest-neighbour interpolation.
ImageLatents EncodeImageInputs(AutoencoderKLEncoder& vae, const std::vector<ImageRequest>& requests,
                               const std::vector<ImageNoise*>& noises, int width, int height,
                               const LatentScaling& scaling, const torch::Device& device,
                               const ImageInputPlan& plan = {});

// Inpainting after each step: the generated latents inside the mask, `outside` (the input's
// latents, re-noised to the next step) elsewhere: (1 - mask) * outside + mask * latents.
torch::Tensor BlendMasked(const torch::Tensor& latents, const torch::Tensor& outside,
                          const torch::Tensor& mask);

// After a step of `set`: every inpainted sample keeps its new latents inside its mask and takes
// `outside(sample)` (its input re-noised to the step it is at now; clean once done) elsewhere.
void BlendMaskedSamples(const std::vector<DenoisingSample*>& set,
                        const std::function<torch::Tensor(const DenoisingSample&)>& outside);

}  // namespace tlcm
