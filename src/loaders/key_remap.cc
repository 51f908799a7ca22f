#include "loaders/key_remap.h"

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace tlcm {

KeyRemap IdentityKeys() {
  return [](const std::string& key) -> std::optional<std::string> { return key; };
}

KeyRemap ClipTextKeys() {
  return [](const std::string& key) -> std::optional<std::string> {
    if (absl::EndsWith(key, "embeddings.position_ids")) return std::nullopt;
    return key;
  };
}

KeyRemap T5EncoderKeys() {
  return [](const std::string& key) -> std::optional<std::string> {
    if (key == "encoder.embed_tokens.weight") return std::nullopt;
    return key;
  };
}

KeyRemap VaeDecoderKeys() {
  return [](const std::string& key) -> std::optional<std::string> {
    if (absl::StartsWith(key, "encoder.") || absl::StartsWith(key, "quant_conv.")) {
      return std::nullopt;
    }
    return absl::StrReplaceAll(key, {{".query.", ".to_q."},
                                     {".key.", ".to_k."},
                                     {".value.", ".to_v."},
                                     {".proj_attn.", ".to_out.0."}});
  };
}

}  // namespace tlcm
