#include "loaders/diffusers_folder.h"

#include <filesystem>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "loaders/json_config.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;

struct Requirement {
  const char* component;
  std::set<std::string> classes;  // accepted class names
};

const std::vector<Requirement>& RequirementsFor(PipelineFamily family) {
  static const std::vector<Requirement> kSdxl = {
      {"text_encoder", {"CLIPTextModel"}},
      {"text_encoder_2", {"CLIPTextModelWithProjection"}},
      {"tokenizer", {"CLIPTokenizer", "CLIPTokenizerFast"}},
      {"tokenizer_2", {"CLIPTokenizer", "CLIPTokenizerFast"}},
      {"unet", {"UNet2DConditionModel"}},
      {"vae", {"AutoencoderKL"}},
      {"scheduler",
       {"EulerDiscreteScheduler", "LCMScheduler", "EulerAncestralDiscreteScheduler",
        "DDIMScheduler", "DPMSolverMultistepScheduler"}},
  };
  static const std::vector<Requirement> kFlux = {
      {"text_encoder", {"CLIPTextModel"}},
      {"text_encoder_2", {"T5EncoderModel"}},
      {"tokenizer", {"CLIPTokenizer", "CLIPTokenizerFast"}},
      {"tokenizer_2", {"T5Tokenizer", "T5TokenizerFast"}},
      {"transformer", {"FluxTransformer2DModel"}},
      {"vae", {"AutoencoderKL"}},
      {"scheduler", {"FlowMatchEulerDiscreteScheduler", "FlowMatchEulerTLCMScheduler"}},
  };
  return family == PipelineFamily::kSdxl ? kSdxl : kFlux;
}

}  // namespace

const char* FamilyName(PipelineFamily family) {
  return family == PipelineFamily::kSdxl ? "sdxl" : "flux";
}

std::string DiffusersFolder::ComponentDir(const std::string& component) const {
  return (fs::path(root) / component).string();
}

absl::StatusOr<DiffusersFolder> OpenDiffusersFolder(const std::string& root) {
  const std::string index_path = (fs::path(root) / "model_index.json").string();
  TLCM_ASSIGN_OR_RETURN(nlohmann::json index, ReadJsonFile(index_path));
  DiffusersFolder folder;
  folder.root = root;
  const std::string pipeline_class = ValueOr<std::string>(index, "_class_name", "");
  if (pipeline_class == "StableDiffusionXLPipeline") {
    folder.family = PipelineFamily::kSdxl;
  } else if (pipeline_class == "FluxPipeline") {
    folder.family = PipelineFamily::kFlux;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": _class_name '", pipeline_class,
                     "' is not served (StableDiffusionXLPipeline or FluxPipeline)"));
  }
  for (const Requirement& req : RequirementsFor(folder.family)) {
    auto it = index.find(req.component);
    if (it == index.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": component '", req.component,
                                                     "' is missing (a ", pipeline_class,
                                                     " needs it)"));
    }
    const std::string cls = (*it)[1].get<std::string>();
    if (!req.classes.count(cls)) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": component '", req.component, "' has class '", cls,
                       "'; supported: ", absl::StrJoin(req.classes, ", ")));
    }
    if (!fs::is_directory(folder.ComponentDir(req.component))) {
      return absl::NotFoundError(absl::StrCat(index_path, ": component '", req.component,
                                              "' has no folder ",
                                              folder.ComponentDir(req.component)));
    }
    folder.component_class[req.component] = cls;
  }
  return folder;
}

}  // namespace tlcm
