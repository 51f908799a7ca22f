// A diffusers pipeline folder: model_index.json names the pipeline class and, per component
// folder, the (library, class) that saved it.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace tlcm {

enum class PipelineFamily { kSdxl, kFlux };

// "sdxl" / "flux".
const char* FamilyName(PipelineFamily family);

struct DiffusersFolder {
  std::string root;
  PipelineFamily family = PipelineFamily::kSdxl;
  std::map<std::string, std::string> component_class;  // e.g. "unet" -> "UNet2DConditionModel"

  // root/<component>
  std::string ComponentDir(const std::string& component) const;
};

// Reads root/model_index.json and checks that the pipeline class is one we serve
// (StableDiffusionXLPipeline, FluxPipeline) and that every component it needs is present with
// a class we implement and has its folder. Errors name model_index.json and the component.
absl::StatusOr<DiffusersFolder> OpenDiffusersFolder(const std::string& root);

}  // namespace tlcm
