#include "loaders/lora_keys.h"

#include <array>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace tlcm {
namespace {

using Role = LoraKey::Role;

// Suffixes after the module path, in the order tried (longer forms first).
struct Suffix {
  const char* text;
  Role role;
};
constexpr std::array<Suffix, 9> kSuffixes = {{
    {".lora_linear_layer.down.weight", Role::kDown},
    {".lora_linear_layer.up.weight", Role::kUp},
    {".lora.down.weight", Role::kDown},
    {".lora.up.weight", Role::kUp},
    {".lora_down.weight", Role::kDown},
    {".lora_up.weight", Role::kUp},
    {".lora_A.weight", Role::kDown},
    {".lora_B.weight", Role::kUp},
    {".alpha", Role::kAlpha},
}};

// PEFT writes `lora_A.<adapter>.weight` for named adapters: drops the adapter name.
std::string DropPeftAdapterName(std::string key) {
  for (const char* part : {".lora_A.", ".lora_B."}) {
    const size_t at = key.rfind(part);
    if (at == std::string::npos) continue;
    const size_t name_start = at + std::string(part).size();
    const size_t dot = key.find('.', name_start);
    if (dot != std::string::npos && key.substr(dot) == ".weight" && dot > name_start &&
        key.compare(name_start, dot - name_start, "weight") != 0) {
      key.erase(name_start - 1, dot - name_start + 1);
    }
  }
  return key;
}

// The attention-processor form of old diffusers files: <attention>.processor.to_q_lora ->
// <attention>.to_q (to_out_lora -> to_out.0).
std::string ProcessorModule(std::string module) {
  static const std::array<std::pair<const char*, const char*>, 4> kProjections = {{
      {".processor.to_q_lora", ".to_q"},
      {".processor.to_k_lora", ".to_k"},
      {".processor.to_v_lora", ".to_v"},
      {".processor.to_out_lora", ".to_out.0"},
  }};
  for (const auto& [from, to] : kProjections) {
    if (absl::EndsWith(module, from)) {
      return absl::StrCat(module.substr(0, module.size() - std::string(from).size()), to);
    }
  }
  return module;
}

}  // namespace

absl::StatusOr<std::optional<LoraKey>> ParseLoraKey(const std::string& raw_key) {
  for (const char* te :
       {"text_encoder.", "text_encoder_2.", "lora_te_", "lora_te1_", "lora_te2_"}) {
    if (absl::StartsWith(raw_key, te)) {
      return absl::InvalidArgumentError(
          absl::StrCat("key '", raw_key,
                       "' belongs to a text encoder; only denoiser (UNet / transformer) LoRA "
                       "modules are supported"));
    }
  }
  const std::string stripped = DropPeftAdapterName(raw_key);
  absl::string_view key = stripped;
  LoraKey parsed;
  for (const char* prefix : {"lora_unet_", "lora_transformer_"}) {
    if (absl::ConsumePrefix(&key, prefix)) parsed.underscored = true;
  }
  if (!parsed.underscored) {
    for (const char* prefix : {"base_model.model.", "unet.", "transformer."}) {
      if (absl::ConsumePrefix(&key, prefix)) break;
    }
  }
  for (const Suffix& suffix : kSuffixes) {
    if (absl::ConsumeSuffix(&key, suffix.text)) {
      parsed.role = suffix.role;
      parsed.module = parsed.underscored ? std::string(key) : ProcessorModule(std::string(key));
      return std::optional<LoraKey>(std::move(parsed));
    }
  }
  // Old diffusers processor keys: <attention>.processor.to_q_lora.down.weight.
  for (const auto& [suffix, role] : std::array<std::pair<const char*, Role>, 2>{
           {{"_lora.down.weight", Role::kDown}, {"_lora.up.weight", Role::kUp}}}) {
    if (absl::ConsumeSuffix(&key, suffix)) {
      parsed.role = role;
      parsed.module = ProcessorModule(absl::StrCat(key, "_lora"));
      return std::optional<LoraKey>(std::move(parsed));
    }
  }
  return std::optional<LoraKey>();
}

}  // namespace tlcm
