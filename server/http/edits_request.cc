#include "server/http/edits_request.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "util/client_text.h"
#include "util/status_macros.h"

namespace tlcm::server {
namespace {

using nlohmann::json;

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

// The field an input-image part stands for: "image" for image, image[] and image[N]; the name
// itself otherwise.
std::string FieldOf(const std::string& part) {
  if (part == "image[]" || (absl::StartsWith(part, "image[") && absl::EndsWith(part, "]"))) {
    return "image";
  }
  return part;
}

// `name` as a message may repeat it: plain when it is a field name (lower case, digits, '_'),
// quoted and bounded otherwise.
std::string PartName(const std::string& name) {
  const bool plain =
      !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      });
  return plain ? name : QuoteClientText(name);
}

// A text part's value as the JSON body carries it: for the numeric fields a number when the
// text reads as one, for `stream` a boolean for "true" / "false", else the text (the field's
// own check then names a wrong one: "n: must be an integer").
json TextValue(const std::string& field, const std::string& text) {
  constexpr std::array<absl::string_view, 7> kNumbers = {
      "n", "output_compression", "partial_images", "steps", "seed", "guidance_scale", "strength"};
  if (field == "stream" && (text == "true" || text == "false")) return text == "true";
  if (std::find(kNumbers.begin(), kNumbers.end(), field) != kNumbers.end()) {
    json number = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!number.is_discarded() && number.is_number()) return number;
  }
  return text;
}

}  // namespace

absl::StatusOr<ImagesRequest> ParseEditsRequest(const httplib::MultipartFormDataMap& form) {
  std::vector<const std::string*> images;
  const std::string* mask = nullptr;
  json fields = json::object();
  for (const auto& [name, part] : form) {
    const std::string field = FieldOf(name);
    if (field == "image") {
      images.push_back(&part.content);
    } else if (field == "mask") {
      if (mask != nullptr) return Invalid("mask", "given more than once");
      mask = &part.content;
    } else {
      if (fields.contains(field)) {
        return Invalid(PartName(field), "given more than once");
      }
      fields[field] = TextValue(field, part.content);
    }
  }
  if (images.empty()) {
    return Invalid("image", "is required: a PNG, JPEG or WebP file part named \"image\"");
  }
  if (images.size() > 1) {
    return Invalid("image", absl::StrCat("one input image per request, got ", images.size()));
  }
  TLCM_ASSIGN_OR_RETURN(ImagesRequest out, ImagesRequestFromJson(fields));
  out.request.set_image(*images.front());
  if (mask != nullptr) out.request.set_mask(*mask);
  return out;
}

}  // namespace tlcm::server
