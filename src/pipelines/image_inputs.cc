#include "pipelines/image_inputs.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "image/pil_resample.h"

namespace tlcm {
namespace {

// [1, C, height, width] float32 from interleaved 8-bit channels.
torch::Tensor PlaneTensor(Plane8 plane) {
  const torch::Tensor bytes =
      torch::from_blob(plane.bytes.data(), {plane.height, plane.width, plane.channels},
                       torch::kUInt8)
          .clone();
  // numpy's float32 division of the uint8 array, as pil_to_numpy does it.
  return bytes.to(torch::kFloat32).div(255.0).permute({2, 0, 1}).unsqueeze(0).contiguous();
}

}  // namespace

absl::Status CheckImageInputs(const std::vector<ImageRequest>& requests, double strength, int steps,
                              int start_step) {
  const auto with_image = std::count_if(requests.begin(), requests.end(),
                                        [](const ImageRequest& r) { return r.image != nullptr; });
  const auto with_mask = std::count_if(requests.begin(), requests.end(),
                                       [](const ImageRequest& r) { return r.mask != nullptr; });
  if (with_image == 0) {
    if (with_mask > 0) return absl::InvalidArgumentError("mask: needs an image to repaint");
    return absl::OkStatus();
  }
  if (with_image != static_cast<int64_t>(requests.size())) {
    return absl::InvalidArgumentError("image: a run has an image for every request or none");
  }
  if (with_mask != 0 && with_mask != with_image) {
    return absl::InvalidArgumentError("mask: a run has a mask for every image or none");
  }
  for (const ImageRequest& r : requests) {
    if (r.mask && (r.mask->width != r.image->width || r.mask->height != r.image->height)) {
      return absl::InvalidArgumentError(absl::StrCat("mask: ", r.mask->width, "x", r.mask->height,
                                                     " differs from the image's ", r.image->width,
                                                     "x", r.image->height));
    }
  }
  if (!(strength > 0.0 && strength <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("strength must be in (0, 1], got ", strength));
  }
  if (start_step >= steps) {
    return absl::InvalidArgumentError(absl::StrCat("strength ", strength, " runs no step of ",
                                                   steps, "; raise strength or steps"));
  }
  return absl::OkStatus();
}

torch::Tensor ImageTensor(const RgbImage& image, int width, int height) {
  const RgbImage resized = ResizeLanczos(image, width, height);
  return PlaneTensor(Plane8{resized.width, resized.height, 3, resized.pixels}) * 2.0 - 1.0;
}

torch::Tensor MaskTensor(const RgbImage& mask, int width, int height) {
  const torch::Tensor gray = PlaneTensor(ResizeLanczos(ToGrayscale(mask), width, height));
  return (gray >= 0.5).to(torch::kFloat32);
}

ImageLatents EncodeImageInputs(AutoencoderKLEncoder& vae, const std::vector<ImageRequest>& requests,
                               const std::vector<ImageNoise*>& noises, int width, int height,
                               const LatentScaling& scaling, const torch::Device& device,
                               const ImageInputPlan& plan) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> pixels, masks;
  for (const ImageRequest& request : requests) {
    pixels.push_back(ImageTensor(*request.image, width, height));
    if (request.mask) masks.push_back(MaskTensor(*request.mask, width, height));
  }
  const torch::Tensor images = torch::cat(pixels);
  // One draw of `shape` from every image's stream, concatenated along dim 0, on the device.
  const auto draw = [&](at::IntArrayRef shape) {
    std::vector<torch::Tensor> draws;
    for (ImageNoise* n : noises) draws.push_back(n->Draw(shape));
    return torch::cat(draws).to(device);
  };
  const auto scaled = [&](const torch::Tensor& sample) {
    return (sample - scaling.shift) * scaling.scaling;
  };
  // The encoder's moments [n, 2C, h, w] (deterministic: computed before any draw).
  const bool encode_masked = plan.encode_masked && !masks.empty();
  const torch::Tensor moments =
      plan.encode_images ? vae->forward(images.to(device)) : torch::Tensor();
  const torch::Tensor masked_moments =
      encode_masked ? vae->forward((images * (torch::cat(masks) < 0.5)).to(device))
                    : torch::Tensor();
  const torch::Tensor any_moments = moments.defined() ? moments : masked_moments;
  TORCH_CHECK(any_moments.defined(), "EncodeImageInputs: the plan encodes nothing");
  const int64_t c = any_moments.size(1) / 2, h = any_moments.size(2), w = any_moments.size(3);
  ImageLatents out;
  if (plan.encode_images) out.clean = scaled(LatentFromMoments(moments, draw({1, c, h, w})));
  out.noise = draw({1, c, h, w});
  if (!masks.empty()) {
    const torch::Tensor masked_draw = draw({1, c, h, w});  // the masked image's latent sample
    if (encode_masked) out.masked = scaled(LatentFromMoments(masked_moments, masked_draw));
    namespace F = torch::nn::functional;
    out.mask =
        F::interpolate(
            torch::cat(masks),
            F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kNearest))
            .to(device);
  }
  return out;
}

torch::Tensor BlendMasked(const torch::Tensor& latents, const torch::Tensor& outside,
                          const torch::Tensor& mask) {
  return (1 - mask) * outside + mask * latents;
}

void BlendMaskedSamples(const std::vector<DenoisingSample*>& set,
                        const std::function<torch::Tensor(const DenoisingSample&)>& outside) {
  for (DenoisingSample* s : set) {
    if (!s->mask.defined()) continue;
    s->latents = BlendMasked(s->latents, s->done() ? s->image_latents : outside(*s), s->mask);
  }
}

}  // namespace tlcm
