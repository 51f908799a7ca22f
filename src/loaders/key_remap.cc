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

namespace {

// The AutoencoderKL keys of one side: those under `module` or `conv`, legacy attention names
// renamed; the other side's keys are dropped.
KeyRemap VaeSideKeys(std::string module, std::string conv) {
  return [module = std::move(module),
          conv = std::move(conv)](const std::string& key) -> std::optional<std::string> {
    if (!absl::StartsWith(key, module) && !absl::StartsWith(key, conv)) return std::nullopt;
    return absl::StrReplaceAll(key, {{".query.", ".to_q."},
                                     {".key.", ".to_k."},
                                     {".value.", ".to_v."},
                                     {".proj_attn.", ".to_out.0."}});
  };
}

}  // namespace

KeyRemap VaeDecoderKeys() { return VaeSideKeys("decoder.", "post_quant_conv."); }

KeyRemap VaeEncoderKeys() { return VaeSideKeys("encoder.", "quant_conv."); }

}  // namespace tlcm
