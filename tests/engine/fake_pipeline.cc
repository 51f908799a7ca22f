#include "fake_pipeline.h"

#include <optional>
#include <stdexcept>

#include "absl/container/flat_hash_set.h"

namespace tlcm::engine::testing {

ModelInfo DefaultFakeModelInfo(const std::string& name) {
  ModelInfo info;
  info.name = name;
  info.family = "fake";
  info.samplers = {"lcm", "tlcm"};
  info.default_steps = 4;
  info.min_steps = 2;
  info.max_steps = 8;
  info.default_width = 64;
  info.default_height = 64;
  info.size_multiple = 8;
  info.max_pixels = 256 * 256;
  info.default_guidance_scale = 0;
  return info;
}

RgbImage MakeFakeImage(const BatchKey& key, const ImageJob& job) {
  RgbImage image;
  image.width = key.width;
  image.height = key.height;
  image.pixels.assign(static_cast<size_t>(key.width) * key.height * 3, 0);
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    image.pixels[i] = static_cast<uint8_t>(job.seed >> (8 * (i % 3)));
  }
  for (int b = 0; b < 8 && b < static_cast<int>(image.pixels.size()); ++b) {
    image.pixels[b] = static_cast<uint8_t>(job.seed >> (8 * b));
  }
  return image;
}

uint64_t SeedOfFakeImage(const RgbImage& image) {
  uint64_t seed = 0;
  for (int b = 0; b < 8 && b < static_cast<int>(image.pixels.size()); ++b) {
    seed |= static_cast<uint64_t>(image.pixels[b]) << (8 * b);
  }
  return seed;
}

class FakePipeline : public Pipeline {
 public:
  FakePipeline(FakePipelineControl* control, ModelInfo info, std::string device)
      : control_(control), info_(std::move(info)), device_(std::move(device)) {}

  const ModelInfo& info() const override { return info_; }

  absl::StatusOr<StageTimings> Run(const BatchKey& key, const std::vector<ImageJob>& jobs,
                                   const BatchCallbacks& callbacks) override {
    const bool warmup = jobs.size() == 1 && jobs[0].prompt == "warm-up";
    size_t record;
    FakePipelineControl::Failure failure;
    bool fail = false;
    std::optional<FakePipelineControl::Misbehaviour> misbehaviour;
    {
      absl::MutexLock lock(&control_->mu_);
      record = control_->runs_.size();
      control_->runs_.push_back({device_, key, jobs, warmup, {}});
      auto it = control_->run_failures_.find(info_.name);
      if (!warmup && it != control_->run_failures_.end()) {
        failure = it->second;
        control_->run_failures_.erase(it);
        fail = true;
      }
      auto odd = control_->misbehaviours_.find(info_.name);
      if (!warmup && odd != control_->misbehaviours_.end()) {
        misbehaviour = odd->second;
        control_->misbehaviours_.erase(odd);
      }
    }
    const auto finished = [&] {
      absl::MutexLock lock(&control_->mu_);
      if (!warmup) ++control_->finished_request_runs_;
    };
    if (fail) {
      finished();
      if (!failure.throw_what.empty()) throw std::runtime_error(failure.throw_what);
      return failure.status;
    }
    std::vector<bool> in(jobs.size(), true);
    const auto poll_drops = [&] {
      bool any = false;
      for (size_t j = 0; j < jobs.size(); ++j) {
        if (in[j] && callbacks.should_drop(j)) {
          in[j] = false;
          absl::MutexLock lock(&control_->mu_);
          control_->runs_[record].dropped.push_back(j);
        }
        any = any || in[j];
      }
      return any;
    };
    for (int step = 1; step <= key.steps; ++step) {
      if (!poll_drops()) break;
      {
        absl::MutexLock lock(&control_->mu_);
        ++control_->blocked_;
        const auto may_step = [this] {
          control_->mu_.AssertHeld();
          return !control_->manual_ || control_->permits_ > 0;
        };
        control_->mu_.Await(absl::Condition(&may_step));
        --control_->blocked_;
        if (control_->manual_) --control_->permits_;
      }
      callbacks.on_step(step, key.steps);
      for (size_t j = 0; j < jobs.size(); ++j) {
        if (in[j] && callbacks.wants_preview(j)) {
          BatchKey preview_key = key;
          preview_key.width = 8;
          preview_key.height = 8;
          callbacks.on_preview(j, step, MakeFakeImage(preview_key, jobs[j]));
        }
      }
    }
    if (poll_drops() && misbehaviour != FakePipelineControl::Misbehaviour::kSkipImages) {
      for (size_t j = 0; j < jobs.size(); ++j) {
        if (!in[j]) continue;
        RgbImage image = MakeFakeImage(key, jobs[j]);
        if (misbehaviour == FakePipelineControl::Misbehaviour::kMalformedImages) {
          image.pixels.pop_back();
        }
        callbacks.on_image(j, std::move(image));
      }
    }
    StageTimings timings;
    timings.text_encode_ms = 1;
    timings.denoise_ms = 2;
    timings.decode_ms = 3;
    absl::flat_hash_set<std::string> prompts;
    for (const ImageJob& job : jobs) {
      if (prompts.insert(job.prompt).second) {
        ++timings.prompt_cache_misses;
      } else {
        ++timings.prompt_cache_hits;
      }
    }
    finished();
    return timings;
  }

 private:
  FakePipelineControl* const control_;
  const ModelInfo info_;
  const std::string device_;
};

PipelineFactory FakePipelineControl::Factory() {
  return [this](const ModelSpec& spec,
                const std::string& device) -> absl::StatusOr<std::unique_ptr<Pipeline>> {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](bool* hold) { return !*hold; }, &hold_loading_));
    auto failure = create_failures_.find(spec.name);
    if (failure != create_failures_.end()) return failure->second;
    auto info = infos_.find(spec.name);
    ModelInfo model_info =
        info != infos_.end() ? info->second : DefaultFakeModelInfo(spec.name);
    ++created_;
    return std::make_unique<FakePipeline>(this, std::move(model_info), device);
  };
}

void FakePipelineControl::SetInfo(const std::string& model, ModelInfo info) {
  absl::MutexLock lock(&mu_);
  infos_[model] = std::move(info);
}

void FakePipelineControl::HoldLoading(bool hold) {
  absl::MutexLock lock(&mu_);
  hold_loading_ = hold;
}

void FakePipelineControl::FailCreate(const std::string& model, absl::Status status) {
  absl::MutexLock lock(&mu_);
  create_failures_[model] = std::move(status);
}

void FakePipelineControl::SetManualStepping(bool manual) {
  absl::MutexLock lock(&mu_);
  manual_ = manual;
  permits_ = 0;
}

void FakePipelineControl::AllowSteps(int steps) {
  absl::MutexLock lock(&mu_);
  permits_ += steps;
}

void FakePipelineControl::FailNextRun(const std::string& model, absl::Status status) {
  absl::MutexLock lock(&mu_);
  run_failures_[model] = Failure{std::move(status), ""};
}

void FakePipelineControl::MisbehaveOnNextRun(const std::string& model,
                                             Misbehaviour misbehaviour) {
  absl::MutexLock lock(&mu_);
  misbehaviours_[model] = misbehaviour;
}

void FakePipelineControl::ThrowOnNextRun(const std::string& model, const std::string& what) {
  absl::MutexLock lock(&mu_);
  run_failures_[model] = Failure{absl::OkStatus(), what};
}

std::vector<FakePipelineControl::RunRecord> FakePipelineControl::runs() const {
  absl::MutexLock lock(&mu_);
  return runs_;
}

std::vector<FakePipelineControl::RunRecord> FakePipelineControl::request_runs() const {
  absl::MutexLock lock(&mu_);
  std::vector<RunRecord> out;
  for (const RunRecord& run : runs_) {
    if (!run.warmup) out.push_back(run);
  }
  return out;
}

int FakePipelineControl::created_pipelines() const {
  absl::MutexLock lock(&mu_);
  return created_;
}

bool FakePipelineControl::WaitForRequestRuns(int count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto enough = [&] {
    mu_.AssertHeld();
    int n = 0;
    for (const RunRecord& run : runs_) n += run.warmup ? 0 : 1;
    return n >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakePipelineControl::WaitForBlockedSteps(int count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto enough = [&] {
    mu_.AssertHeld();
    return blocked_ >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakePipelineControl::WaitForFinishedRuns(int count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto enough = [&] {
    mu_.AssertHeld();
    return finished_request_runs_ >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

}  // namespace tlcm::engine::testing
