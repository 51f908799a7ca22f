#include "engine/generation_request.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/prompt_text.h"
#include "schedulers/strength.h"
#include "util/client_text.h"
#include "util/lora_flag.h"
#include "util/status_macros.h"

namespace tlcm::engine {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

absl::Status CheckPromptBytes(absl::string_view field, const std::string& text,
                              const RequestLimits& limits) {
  if (text.size() > static_cast<size_t>(limits.max_prompt_bytes)) {
    return Invalid(field, absl::StrCat(text.size(), " bytes exceed the limit of ",
                                       limits.max_prompt_bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status CheckSide(absl::string_view field, int value, int multiple) {
  if (value <= 0 || value % multiple != 0) {
    return Invalid(field, absl::StrCat(value, " is not a positive multiple of ", multiple,
                                       " pixels (0 = the model's default)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateLoras(const std::vector<LoraChoice>& loras, const ModelInfo& info) {
  if (loras.size() > static_cast<size_t>(info.max_loras)) {
    return Invalid(
        "loras",
        info.max_loras == 0
            ? std::string("the model takes no style adapters")
            : absl::StrCat(loras.size(), " adapters exceed the model's limit of ", info.max_loras));
  }
  for (size_t i = 0; i < loras.size(); ++i) {
    const LoraChoice& lora = loras[i];
    const std::string field = absl::StrCat("loras[", i, "]");
    if (lora.name.empty()) return Invalid(field + ".name", "must not be empty");
    if (!std::isfinite(lora.scale) || std::fabs(lora.scale) > kMaxLoraScale) {
      return Invalid(field + ".scale",
                     absl::StrCat(lora.scale, " is not a number in [-", kMaxLoraScale, ", ",
                                  kMaxLoraScale, "] (adapter ", QuoteClientText(lora.name), ")"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (loras[j].name == lora.name) {
        return Invalid(field + ".name",
                       absl::StrCat("adapter ", QuoteClientText(lora.name), " is named twice"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ResolvedRequest> ValidateRequest(const GenerationRequest& request,
                                                const ModelInfo& info,
                                                const RequestLimits& limits) {
  ResolvedRequest out;
  out.key.model = request.model;

  // prompt / prompt_2
  if (absl::Status s = CheckPromptBytes("prompt", request.prompt, limits); !s.ok()) return s;
  if (absl::Status s = CheckPromptBytes("prompt_2", request.prompt_2, limits); !s.ok()) return s;
  if (!IsValidUtf8(request.prompt)) return Invalid("prompt", "is not valid UTF-8");
  if (!IsValidUtf8(request.prompt_2)) return Invalid("prompt_2", "is not valid UTF-8");
  if (IsBlankText(request.prompt)) {
    return Invalid("prompt", "must contain a visible character (only white space was sent)");
  }

  // steps
  out.key.steps = request.steps == 0 ? info.default_steps : request.steps;
  if (out.key.steps < info.min_steps || out.key.steps > info.max_steps) {
    return Invalid("steps",
                   absl::StrCat(out.key.steps, " is outside the model's range [", info.min_steps,
                                ", ", info.max_steps, "] (0 = default ", info.default_steps, ")"));
  }

  // image / mask (before width / height: an image sets their defaults)
  if (request.mask && !request.image) return Invalid("mask", "needs an image to repaint");
  if (request.strength && !request.image) return Invalid("strength", "needs an image");
  if (info.needs_mask && (!request.image || !request.mask)) {
    return Invalid(request.image ? "mask" : "image",
                   "the model is an inpainting model (9-channel UNet): a request needs an image "
                   "and a mask");
  }
  const auto image_side = [&](int side) { return side - side % info.size_multiple; };
  if (request.image) {
    const RgbImage& image = *request.image;
    if (request.mask &&
        (request.mask->width != image.width || request.mask->height != image.height)) {
      return Invalid("mask",
                     absl::StrCat(request.mask->width, "x", request.mask->height,
                                  " differs from the image's ", image.width, "x", image.height));
    }
    const int64_t image_pixels = static_cast<int64_t>(image.width) * image.height;
    if (image_pixels > kMaxInputPixelsPerOutputPixel * info.max_pixels) {
      return Invalid("image", absl::StrCat(image.width, "x", image.height, " exceeds ",
                                           kMaxInputPixelsPerOutputPixel,
                                           " times the model's max_pixels ", info.max_pixels));
    }
    if (request.width == 0 && request.height == 0 &&
        (image_side(image.width) == 0 || image_side(image.height) == 0)) {
      return Invalid("image", absl::StrCat(image.width, "x", image.height,
                                           " is smaller than the model's size multiple ",
                                           info.size_multiple, " (set width and height)"));
    }
  }

  // width / height
  out.key.width = request.width != 0 ? request.width
                  : request.image    ? image_side(request.image->width)
                                     : info.default_width;
  out.key.height = request.height != 0 ? request.height
                   : request.image     ? image_side(request.image->height)
                                       : info.default_height;
  if (absl::Status s = CheckSide("width", out.key.width, info.size_multiple); !s.ok()) return s;
  if (absl::Status s = CheckSide("height", out.key.height, info.size_multiple); !s.ok()) return s;
  const int64_t pixels = static_cast<int64_t>(out.key.width) * out.key.height;
  if (pixels > info.max_pixels) {
    return Invalid("width x height",
                   absl::StrCat(out.key.width, "x", out.key.height, " = ", pixels,
                                " pixels exceed the model's limit of ", info.max_pixels));
  }

  // strength
  if (request.image) {
    const double strength = request.strength.value_or(DefaultStrength(request.mask != nullptr));
    if (!(strength > 0.0 && strength <= 1.0)) {
      return Invalid("strength", absl::StrCat(strength, " is outside (0, 1]"));
    }
    out.start_step = StartStep(info.family, out.key.steps, strength);
    if (out.start_step >= out.key.steps) {
      return Invalid("strength", absl::StrCat(strength, " of ", out.key.steps,
                                              " steps runs no step (raise strength or steps)"));
    }
    out.key.strength = strength;
    out.key.masked = request.mask != nullptr;
  }

  // num_images
  if (request.num_images < 1 || request.num_images > limits.max_images_per_request) {
    return Invalid("num_images", absl::StrCat(request.num_images, " is outside [1, ",
                                              limits.max_images_per_request, "]"));
  }

  // guidance_scale
  out.guidance_scale = request.guidance_scale.value_or(info.default_guidance_scale);
  if (!std::isfinite(out.guidance_scale) || out.guidance_scale < limits.min_guidance_scale ||
      out.guidance_scale > limits.max_guidance_scale) {
    return Invalid("guidance_scale",
                   absl::StrCat(out.guidance_scale, " is outside [", limits.min_guidance_scale,
                                ", ", limits.max_guidance_scale, "]"));
  }

  // sampler
  if (request.sampler.empty()) {
    if (!info.samplers.empty()) out.key.sampler = info.samplers.front();
  } else if (std::find(info.samplers.begin(), info.samplers.end(), request.sampler) ==
             info.samplers.end()) {
    return Invalid("sampler", absl::StrCat(QuoteClientText(request.sampler),
                                           " is not one of the model's samplers (",
                                           absl::StrJoin(info.samplers, ", "), ")"));
  } else {
    out.key.sampler = request.sampler;
  }

  TLCM_RETURN_IF_ERROR(ValidateLoras(request.loras, info));

  // format / quality
  switch (request.format) {
    case ImageFormat::kPng:
    case ImageFormat::kJpeg:
    case ImageFormat::kWebp:
      break;
    default:
      return Invalid("format", absl::StrCat(static_cast<int>(request.format),
                                            " is not one of png, jpeg, webp"));
  }
  if (request.quality != 0 &&
      (request.quality < kMinImageQuality || request.quality > kMaxImageQuality)) {
    return Invalid("quality",
                   absl::StrCat(request.quality, " is outside [", kMinImageQuality, ", ",
                                kMaxImageQuality, "] (0 = default ", kDefaultImageQuality, ")"));
  }
  out.quality = request.quality == 0 ? kDefaultImageQuality : request.quality;

  // client_request_id
  if (request.client_request_id.size() > kMaxClientRequestIdBytes) {
    return Invalid("client_request_id",
                   absl::StrCat(request.client_request_id.size(), " bytes exceed the limit of ",
                                kMaxClientRequestIdBytes, " bytes"));
  }
  return out;
}

}  // namespace tlcm::engine
