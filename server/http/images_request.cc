#include "server/http/images_request.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/pipeline.h"
#include "image/image_format.h"
#include "server/tlcm_service.h"
#include "util/client_text.h"
#include "util/status_macros.h"

namespace tlcm::server {
namespace {

using nlohmann::json;

constexpr int kMaxPartialImages = 8;

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

// The field's value, or null when it is absent (absent and null mean the same).
const json& Field(const json& body, const char* name) {
  static const json kNull;
  auto it = body.find(name);
  return it == body.end() ? kNull : *it;
}

absl::StatusOr<std::string> String(const json& body, const char* name) {
  const json& v = Field(body, name);
  if (v.is_null()) return std::string();
  if (!v.is_string()) return Invalid(name, "must be a string");
  return v.get<std::string>();
}

// An integer in [low, high]; `fallback` when absent.
absl::StatusOr<int64_t> Integer(const json& body, const char* name, int64_t low, int64_t high,
                                int64_t fallback) {
  const json& v = Field(body, name);
  if (v.is_null()) return fallback;
  if (!v.is_number_integer()) return Invalid(name, "must be an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(high)) {
    return Invalid(name, absl::StrCat("must be in [", low, ", ", high, "]"));
  }
  const int64_t value = v.get<int64_t>();
  if (value < low || value > high) {
    return Invalid(name, absl::StrCat(value, " is outside [", low, ", ", high, "]"));
  }
  return value;
}

// A JSON number as a float; beyond float's range it becomes an infinity of its sign (the
// engine's range checks then refuse it) rather than an undefined conversion.
float FloatOf(const json& number) {
  const double value = number.get<double>();
  if (std::fabs(value) <= std::numeric_limits<float>::max()) return static_cast<float>(value);
  return std::copysign(std::numeric_limits<float>::infinity(), value);
}

absl::Status ParseSize(const std::string& size, tlcm::v1::GenerateRequest* request) {
  if (size.empty() || size == "auto") return absl::OkStatus();
  const std::vector<absl::string_view> parts = absl::StrSplit(size, 'x');
  int width = 0;
  int height = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &width) ||
      !absl::SimpleAtoi(parts[1], &height) || width <= 0 || height <= 0) {
    return Invalid("size", absl::StrCat("must be \"WIDTHxHEIGHT\" in pixels (e.g. \"1024x1024\") "
                                        "or \"auto\", not ",
                                        QuoteClientText(size)));
  }
  request->set_width(width);
  request->set_height(height);
  return absl::OkStatus();
}

absl::Status ParseFormat(const std::string& format, tlcm::v1::GenerateRequest* request) {
  if (format.empty()) return absl::OkStatus();  // the engine's default, PNG
  absl::StatusOr<ImageFormat> parsed = ParseImageFormat(format);
  if (!parsed.ok()) {
    return Invalid("output_format", absl::StrCat("must be \"png\", \"jpeg\" or \"webp\", not ",
                                                 QuoteClientText(format)));
  }
  request->set_format(ToProtoFormat(*parsed));
  return absl::OkStatus();
}

// "loras": [{"name": "ink", "scale": 0.8}, ...] -> request->loras. Types and keys are checked
// here; the count, names and scale range are the engine's (ValidateLoras), as for gRPC.
absl::Status ParseLoras(const json& loras, tlcm::v1::GenerateRequest* request) {
  if (loras.is_null()) return absl::OkStatus();
  if (!loras.is_array()) {
    return Invalid("loras", R"(must be an array of {"name": string, "scale": number} objects)");
  }
  for (size_t i = 0; i < loras.size(); ++i) {
    const std::string field = absl::StrCat("loras[", i, "]");
    const json& entry = loras[i];
    if (!entry.is_object()) {
      return Invalid(field, R"(must be an object {"name": string, "scale": number})");
    }
    for (const auto& [key, value] : entry.items()) {
      if (key != "name" && key != "scale") {
        return Invalid(field, absl::StrCat("unknown key ", QuoteClientText(key),
                                           " (an entry has \"name\" and \"scale\")"));
      }
    }
    tlcm::v1::LoraWeight* lora = request->add_loras();
    const json& name = Field(entry, "name");
    if (name.is_null()) return Invalid(field + ".name", "is required (see GET /v1/models)");
    if (!name.is_string()) return Invalid(field + ".name", "must be a string");
    lora->set_name(name.get<std::string>());
    const json& scale = Field(entry, "scale");
    if (!scale.is_null() && !scale.is_number())
      return Invalid(field + ".scale", "must be a number");
    lora->set_scale(scale.is_null() ? engine::LoraChoice{}.scale : FloatOf(scale));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ImagesRequest> ParseImagesRequest(absl::string_view body) {
  const json parsed = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Invalid("body", "is not valid JSON");
  if (!parsed.is_object()) return Invalid("body", "must be a JSON object");
  for (const char* field : {"image", "mask"}) {
    if (!Field(parsed, field).is_null()) {
      return Invalid(field,
                     "input images go to POST /v1/images/edits as multipart/form-data files");
    }
  }
  return ImagesRequestFromJson(parsed);
}

absl::StatusOr<ImagesRequest> ImagesRequestFromJson(const json& parsed) {
  ImagesRequest out;
  tlcm::v1::GenerateRequest& request = out.request;
  TLCM_ASSIGN_OR_RETURN(*request.mutable_model(), String(parsed, "model"));
  if (request.model().empty()) return Invalid("model", "is required (see GET /v1/models)");
  if (Field(parsed, "prompt").is_null()) return Invalid("prompt", "is required");
  TLCM_ASSIGN_OR_RETURN(*request.mutable_prompt(), String(parsed, "prompt"));
  TLCM_ASSIGN_OR_RETURN(*request.mutable_prompt_2(), String(parsed, "prompt_2"));
  // The engine checks n against the model's limit; this only keeps it an int32.
  TLCM_ASSIGN_OR_RETURN(const int64_t n,
                        Integer(parsed, "n", 1, std::numeric_limits<int32_t>::max(), 1));
  request.set_num_images(static_cast<int32_t>(n));

  TLCM_ASSIGN_OR_RETURN(const std::string size, String(parsed, "size"));
  TLCM_RETURN_IF_ERROR(ParseSize(size, &request));

  TLCM_ASSIGN_OR_RETURN(const std::string response_format, String(parsed, "response_format"));
  if (response_format == "url") {
    return Invalid("response_format",
                   "\"url\" is not supported: this server keeps no images; use \"b64_json\"");
  }
  if (!response_format.empty() && response_format != "b64_json") {
    return Invalid("response_format",
                   absl::StrCat("must be \"b64_json\", not ", QuoteClientText(response_format)));
  }
  TLCM_ASSIGN_OR_RETURN(const std::string output_format, String(parsed, "output_format"));
  TLCM_RETURN_IF_ERROR(ParseFormat(output_format, &request));
  TLCM_ASSIGN_OR_RETURN(const int64_t compression,
                        Integer(parsed, "output_compression", 0, 100, 0));
  if (!Field(parsed, "output_compression").is_null()) {
    request.set_quality(static_cast<int32_t>(std::max<int64_t>(compression, 1)));
  }
  TLCM_ASSIGN_OR_RETURN(out.user, String(parsed, "user"));

  const json& stream = Field(parsed, "stream");
  if (!stream.is_null() && !stream.is_boolean()) return Invalid("stream", "must be true or false");
  out.stream = stream.is_boolean() && stream.get<bool>();
  TLCM_ASSIGN_OR_RETURN(const int64_t partial_images,
                        Integer(parsed, "partial_images", 0, kMaxPartialImages, 0));
  out.partial_images = static_cast<int>(partial_images);
  request.set_stream_previews(out.stream && out.partial_images > 0);

  TLCM_ASSIGN_OR_RETURN(const int64_t steps,
                        Integer(parsed, "steps", 1, std::numeric_limits<int32_t>::max(), 0));
  request.set_steps(static_cast<int32_t>(steps));
  const json& seed = Field(parsed, "seed");
  if (!seed.is_null()) {
    if (!seed.is_number_unsigned()) {
      return Invalid("seed", "must be an integer in [0, 18446744073709551615]");
    }
    request.set_seed(seed.get<uint64_t>());
  }
  const json& guidance = Field(parsed, "guidance_scale");
  if (!guidance.is_null()) {
    if (!guidance.is_number()) return Invalid("guidance_scale", "must be a number");
    request.set_guidance_scale(FloatOf(guidance));
  }
  TLCM_ASSIGN_OR_RETURN(*request.mutable_sampler(), String(parsed, "sampler"));
  const json& strength = Field(parsed, "strength");
  if (!strength.is_null()) {
    if (!strength.is_number()) return Invalid("strength", "must be a number");
    request.set_strength(strength.get<double>());
  }
  TLCM_RETURN_IF_ERROR(ParseLoras(Field(parsed, "loras"), &request));
  return out;
}

}  // namespace tlcm::server
