// tlcm-generate: one batch of TLCM images from the command line, without the server.
//   tlcm-generate --base_model_path DIR --lora_path DIR --prompt "..." --infer-steps 4
// Exit codes: 0 success, 2 bad flags, 1 anything else (unusable model folder, generation or
// write failure); the message goes to stderr.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/generate_flags.h"
#include "engine/generation_request.h"
#include "engine/whole_batch.h"
#include "image/image_format.h"
#include "pipelines/pipeline_factory.h"

namespace {

namespace fs = std::filesystem;

// The picture in the file at `path`, decoded; errors start with `flag`.
absl::StatusOr<std::shared_ptr<const tlcm::RgbImage>> ReadPicture(const std::string& path,
                                                                  const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  absl::StatusOr<tlcm::RgbImage> image = tlcm::DecodeImage(bytes.str(), flag + " " + path);
  if (!image.ok()) return image.status();
  return std::make_shared<const tlcm::RgbImage>(std::move(*image));
}

int Fail(const absl::Status& status) {
  std::cerr << "tlcm-generate: " << status.message() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << tlcm::GenerateUsage();
      return 0;
    }
  }
  absl::StatusOr<tlcm::GenerateFlags> flags = tlcm::ParseGenerateFlags(args);
  if (!flags.ok()) {
    std::cerr << "tlcm-generate: " << flags.status().message() << "\n\n" << tlcm::GenerateUsage();
    return 2;
  }
  tlcm::SetComputeThreads(flags->threads);
  absl::StatusOr<tlcm::ImageFormat> format = tlcm::ParseImageFormat(flags->format);
  if (!format.ok()) return Fail(format.status());

  const tlcm::ModelSpec spec =
      tlcm::ModelSpecOf(*flags, fs::path(flags->base_model_path).filename().string());
  absl::StatusOr<std::unique_ptr<tlcm::engine::Pipeline>> pipeline =
      tlcm::CreatePipeline(spec, flags->device);
  if (!pipeline.ok()) return Fail(pipeline.status());
  const tlcm::engine::ModelInfo& info = (*pipeline)->info();

  const uint64_t seed = flags->seed ? *flags->seed : std::random_device{}() & 0xffffffffu;
  std::cerr << "model " << spec.base_model_path << " (" << info.family << "), seed " << seed
            << "\n";
  if (absl::Status s = (*pipeline)->PrepareAdapters(flags->loras); !s.ok()) return Fail(s);
  std::shared_ptr<const tlcm::RgbImage> image, mask;
  if (!flags->mask.empty() && flags->image.empty()) {
    return Fail(absl::InvalidArgumentError("--mask needs --image"));
  }
  if (!flags->image.empty()) {
    absl::StatusOr<std::shared_ptr<const tlcm::RgbImage>> read =
        ReadPicture(flags->image, "--image");
    if (!read.ok()) return Fail(read.status());
    image = *read;
  }
  if (!flags->mask.empty()) {
    absl::StatusOr<std::shared_ptr<const tlcm::RgbImage>> read = ReadPicture(flags->mask, "--mask");
    if (!read.ok()) return Fail(read.status());
    mask = *read;
  }
  std::vector<tlcm::engine::ImageJob> jobs;
  for (int i = 0; i < flags->batch_size; ++i) {
    jobs.push_back({flags->prompt, flags->prompt_2, seed + static_cast<uint64_t>(i),
                    flags->guidance_scale.value_or(info.default_guidance_scale), flags->loras,
                    image, mask});
  }
  tlcm::engine::BatchKey key{spec.name, flags->steps, flags->width, flags->height,
                             flags->scheduler.empty() ? info.samplers.front() : flags->scheduler};
  if (image) {
    key.strength = flags->strength.value_or(tlcm::engine::DefaultStrength(mask != nullptr));
    key.masked = mask != nullptr;
  }
  const fs::path dir = fs::path(flags->output_dir) / std::to_string(flags->steps);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return Fail(
        absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message())));

  tlcm::engine::WholeBatchHooks hooks;
  hooks.on_step = [](int step, int total) { std::cerr << "step " << step << "/" << total << "\n"; };
  absl::StatusOr<tlcm::engine::WholeBatch> batch =
      tlcm::engine::RunWholeBatch(**pipeline, key, jobs, hooks);
  if (!batch.ok()) return Fail(batch.status());
  for (size_t i = 0; i < batch->images.size(); ++i) {
    absl::StatusOr<std::string> bytes =
        tlcm::EncodeImage(batch->images[i], *format, flags->quality);
    if (!bytes.ok()) return Fail(bytes.status());
    const fs::path path =
        dir / absl::StrCat(tlcm::SafeFileStem(flags->prompt), "_", i, ".", flags->format);
    std::ofstream out(path, std::ios::binary);
    out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    if (!out) return Fail(absl::InternalError(absl::StrCat("cannot write ", path.string())));
    std::cout << path.string() << "\n";
  }
  const tlcm::engine::StageTimings& timings = batch->timings;
  std::cerr << "text encode " << timings.text_encode_ms << " ms, denoise " << timings.denoise_ms
            << " ms, decode " << timings.decode_ms << " ms\n";
  return 0;
}
