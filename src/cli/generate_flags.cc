#include "cli/generate_flags.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "util/lora_flag.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

using Setter = std::function<absl::Status(const std::string&)>;

absl::Status BadValue(const std::string& flag, const std::string& value, const std::string& rule) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": ", rule));
}

Setter IntIn(const std::string& flag, int* out, int lo, int hi) {
  return [=](const std::string& v) {
    int x = 0;
    if (!absl::SimpleAtoi(v, &x) || x < lo || x > hi) {
      return BadValue(flag, v, absl::StrCat("must be an integer in [", lo, ", ", hi, "]"));
    }
    *out = x;
    return absl::OkStatus();
  };
}

Setter String(std::string* out) {
  return [=](const std::string& v) {
    *out = v;
    return absl::OkStatus();
  };
}

Setter OneOf(const std::string& flag, std::string* out, std::vector<std::string> allowed) {
  return [=](const std::string& v) {
    for (const std::string& a : allowed) {
      if (v == a) {
        *out = v;
        return absl::OkStatus();
      }
    }
    std::string list;
    for (const std::string& a : allowed) absl::StrAppend(&list, list.empty() ? "" : ", ", a);
    return BadValue(flag, v, absl::StrCat("must be one of ", list));
  };
}

Setter Bool(const std::string& flag, bool* out) {
  return [=](const std::string& v) {
    if (v != "true" && v != "false") return BadValue(flag, v, "must be true or false");
    *out = v == "true";
    return absl::OkStatus();
  };
}

// The dtype names of --dtype and --vae_dtype.
const std::vector<std::string> kDtypeNames = {"auto", "fp32", "fp16", "bf16"};

}  // namespace

absl::StatusOr<GenerateFlags> ParseGenerateFlags(const std::vector<std::string>& args) {
  GenerateFlags f;
  std::string lora_paths_folder;  // the folder of the --lora paths, when some are paths
  std::map<std::string, Setter> setters = {
      {"prompt", String(&f.prompt)},
      {"prompt_2", String(&f.prompt_2)},
      {"output_dir", String(&f.output_dir)},
      {"base_model_path", String(&f.base_model_path)},
      {"lora_path", String(&f.lora_path)},
      {"infer-steps", IntIn("infer-steps", &f.steps, 1, 50)},
      {"width", IntIn("width", &f.width, 8, 8192)},
      {"height", IntIn("height", &f.height, 8, 8192)},
      {"resolution", IntIn("resolution", &f.resolution, 8, 8192)},
      {"batch_size", IntIn("batch_size", &f.batch_size, 1, 64)},
      {"seed",
       [&](const std::string& v) {
         uint64_t s = 0;
         if (!absl::SimpleAtoi(v, &s)) return BadValue("seed", v, "must be a non-negative integer");
         f.seed = s;
         return absl::OkStatus();
       }},
      {"scheduler", OneOf("scheduler", &f.scheduler, {"lcm", "tlcm", "flow_match_tlcm"})},
      {"format", OneOf("format", &f.format, {"png", "jpg", "jpeg", "webp"})},
      {"quality", IntIn("quality", &f.quality, 1, 100)},
      {"device", String(&f.device)},
      {"dtype", OneOf("dtype", &f.dtype, kDtypeNames)},
      {"lora_scale",
       [&](const std::string& v) {
         float s = 0;
         if (!absl::SimpleAtof(v, &s) || s < 0)
           return BadValue("lora_scale", v, "must be a number >= 0");
         f.lora_scale = s;
         return absl::OkStatus();
       }},
      {"guidance_scale",
       [&](const std::string& v) {
         float g = 0;
         if (!absl::SimpleAtof(v, &g) || g < 0 || g > 100) {
           return BadValue("guidance_scale", v, "must be a number in [0, 100]");
         }
         f.guidance_scale = g;
         return absl::OkStatus();
       }},
      {"max_sequence_length", IntIn("max_sequence_length", &f.max_sequence_length, 1, 512)},
      {"variant", String(&f.variant)},
      {"vae_path", String(&f.vae_path)},
      {"vae_dtype", OneOf("vae_dtype", &f.vae_dtype, kDtypeNames)},
      {"channels_last", Bool("channels_last", &f.channels_last)},
      {"cuda_graphs", Bool("cuda_graphs", &f.cuda_graphs)},
      {"threads", IntIn("threads", &f.threads, 0, 1024)},
      {"adapter_folder", String(&f.adapter_folder)},
      {"lora",
       [&](const std::string& v) -> absl::Status {
         TLCM_ASSIGN_OR_RETURN(auto parsed, ParseLoraFlag(v, "--lora"));
         auto& [name, scale] = parsed;
         // A path: the adapter is its file stem (or folder name) in its own folder.
         if (name.find('/') != std::string::npos || absl::EndsWith(name, ".safetensors")) {
           const std::filesystem::path path(name);
           const std::string folder = path.parent_path().string();
           if (!lora_paths_folder.empty() && lora_paths_folder != folder) {
             return BadValue("lora", v, "paths must all be in one folder");
           }
           lora_paths_folder = folder;
           name = absl::EndsWith(name, ".safetensors") ? path.stem().string()
                                                       : path.filename().string();
         }
         f.loras.push_back({name, scale});
         return absl::OkStatus();
       }},
      {"image", String(&f.image)},
      {"mask", String(&f.mask)},
      {"strength",
       [&](const std::string& v) {
         double s = 0;
         if (!absl::SimpleAtod(v, &s) || !(s > 0 && s <= 1)) {
           return BadValue("strength", v, "must be a number in (0, 1]");
         }
         f.strength = s;
         return absl::OkStatus();
       }},
  };
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (!absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    arg = arg.substr(2);
    if (arg == "lora_scale_from_config") {
      f.lora_scale_from_config = true;
      continue;
    }
    std::string name = arg, value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    if (name == "infer_steps") name = "infer-steps";
    auto it = setters.find(name);
    if (it == setters.end())
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    if (absl::Status s = it->second(value); !s.ok()) return s;
  }
  if (f.prompt.empty())
    return absl::InvalidArgumentError("--prompt is required and must not be empty");
  if (f.base_model_path.empty()) {
    return absl::InvalidArgumentError("--base_model_path is required (a diffusers model folder)");
  }
  if (!lora_paths_folder.empty()) {
    if (!f.adapter_folder.empty() && f.adapter_folder != lora_paths_folder) {
      return absl::InvalidArgumentError(
          "--lora: paths must be in --adapter_folder when both are given");
    }
    f.adapter_folder = lora_paths_folder;
  }
  if (!f.loras.empty() && f.adapter_folder.empty()) {
    return absl::InvalidArgumentError(
        "--lora NAME:SCALE needs --adapter_folder DIR (or give the adapter's path)");
  }
  if (f.width == 0) f.width = f.resolution;
  if (f.height == 0) f.height = f.resolution;
  if (f.format == "jpeg") f.format = "jpg";
  return f;
}

std::string GenerateUsage() {
  return R"(usage: tlcm-generate --base_model_path DIR --prompt TEXT [flags]
  --base_model_path DIR     diffusers folder (SDXL or FLUX, detected from model_index.json)
  --lora_path PATH          TLCM LoRA: PEFT adapter folder or adapter_model.safetensors
  --prompt TEXT             the prompt (--prompt_2 TEXT: second text encoder's prompt)
  --infer-steps N           denoising steps (default 4; TLCM is trained for 2..8)
  --resolution N            width and height (default 1024); --width / --height override it
  --batch_size N            images to generate, seeds seed..seed+N-1 (default 1)
  --seed N                  seed of the first image (default: random, printed)
  --scheduler NAME          SDXL: lcm (default) | tlcm; FLUX: flow_match_tlcm
  --guidance_scale G        FLUX embedded guidance (default 7)
  --max_sequence_length N   FLUX T5 tokens (default 512)
  --output_dir DIR          images go to DIR/<steps>/<prompt>_<i>.<ext> (default outputs)
  --format png|jpg|webp     image format (default png); --quality 1..100 for jpg/webp (90)
  --device cpu|cuda|cuda:N  (default cpu)       --dtype auto|fp32|fp16|bf16 (default auto)
  --lora_scale S            LoRA scale (default 0.125 = 8/64, as the TLCM code loads it)
  --lora_scale_from_config  use lora_alpha / r from the adapter's config instead
  --variant NAME            weight file variant, e.g. fp16     --vae_path DIR  replacement VAE
  --vae_dtype auto|fp32|fp16|bf16  VAE decoder dtype (default auto: see PipelineOptions)
  --channels_last true|false  NHWC convolution weights (default true)
  --cuda_graphs true|false  replay denoiser steps from CUDA graphs (CUDA only; default false)
  --threads N               CPU threads for LibTorch (default: all cores)
  --lora NAME_OR_PATH:SCALE style adapter on every image (repeatable; SCALE as diffusers'
                            set_adapters weight, default 1): a .safetensors file or adapter
                            folder, or a NAME in --adapter_folder DIR
  --image FILE              PNG/JPEG/WebP to start from (img2img), resized to the output size
  --mask FILE               with --image: white = repaint, black = keep (inpainting)
  --strength S              with --image: part of the schedule that runs, (0, 1]
                            (default 0.6; 1.0 with --mask)
)";
}

std::string SafeFileStem(const std::string& prompt) {
  std::string out;
  for (char c : prompt) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    out.push_back(ok ? c : '_');
    if (out.size() == 100) break;
  }
  if (out.empty() || out == "." || out == "..") out = "image";
  return out;
}

ModelSpec ModelSpecOf(const GenerateFlags& flags, std::string name) {
  ModelSpec spec;
  spec.name = std::move(name);
  spec.base_model_path = flags.base_model_path;
  spec.lora_path = flags.lora_path;
  spec.lora_scale = flags.lora_scale;
  spec.lora_scale_from_config = flags.lora_scale_from_config;
  spec.dtype = flags.dtype;
  spec.variant = flags.variant;
  spec.vae_path = flags.vae_path;
  spec.vae_dtype = flags.vae_dtype;
  spec.channels_last = flags.channels_last;
  spec.cuda_graphs = flags.cuda_graphs;
  spec.max_sequence_length = flags.max_sequence_length;
  spec.prompt_cache_entries = 0;
  spec.adapter_folder = flags.adapter_folder;
  spec.max_loras = std::max<int>(static_cast<int>(flags.loras.size()), spec.max_loras);
  return spec;
}

}  // namespace tlcm
