// The key layouts of LoRA files for a denoiser (UNet or FLUX transformer), read into one form:
// (module, role). Accepted, as diffusers' load_lora_weights accepts them:
//   PEFT        [base_model.model.]<module>.lora_A[.<adapter>].weight / lora_B
//   diffusers   unet.<module>.lora_A.weight / transformer.<module>.lora_B.weight (its own save),
//               unet.<module>.lora.down.weight / .lora.up.weight and the attention-processor
//               form unet.<attention>.processor.to_q_lora.down.weight (to_out_lora = to_out.0),
//               .lora_linear_layer.down / .up; a `<module>.alpha` tensor beside them
//   kohya       lora_unet_<module with '_' for '.'>.lora_down.weight / .lora_up.weight / .alpha
//               (also lora_transformer_ for FLUX); the module is then matched against the
//               model's names with '.' written as '_' (ResolveLoraTargets in loaders/lora.h)
// Text-encoder keys (text_encoder., text_encoder_2., lora_te_, lora_te1_, lora_te2_) are refused:
// adapters change the denoiser only.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace tlcm {

struct LoraKey {
  enum class Role { kDown, kUp, kAlpha };  // lora_A, lora_B, the scalar alpha
  std::string module;                      // as the file names it (see `underscored`)
  Role role = Role::kDown;
  bool underscored = false;  // kohya: '.' of the module path written as '_'
};

// The module and role of `key`; nullopt when the key is no LoRA tensor of any known layout;
// InvalidArgument (naming the key) for text-encoder keys.
absl::StatusOr<std::optional<LoraKey>> ParseLoraKey(const std::string& key);

}  // namespace tlcm
