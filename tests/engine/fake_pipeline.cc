#include "tests/engine/fake_pipeline.h"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "schedulers/strength.h"
#include "util/client_text.h"

namespace tlcm::engine::testing {

ModelInfo FakeModelInfo(const ModelSpec& spec) {
  ModelInfo info;
  info.name = spec.name;
  info.family = "sdxl";
  info.samplers = {"lcm", "tlcm"};
  info.default_steps = spec.default_steps;
  info.min_steps = spec.min_steps;
  info.max_steps = spec.max_steps;
  info.default_width = spec.default_width > 0 ? spec.default_width : 64;
  info.default_height = spec.default_height > 0 ? spec.default_height : 64;
  info.size_multiple = 8;
  info.max_pixels = spec.max_pixels > 0 ? spec.max_pixels : 256 * 256;
  info.default_guidance_scale = 0;
  info.max_loras = spec.adapter_folder.empty() ? 0 : spec.max_loras;
  return info;
}

RgbImage FakeImage(uint64_t seed, const std::string& prompt, int width, int height) {
  RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<size_t>(width) * height * 3);
  uint64_t state = absl::HashOf(seed, prompt) | 1;  // xorshift64
  for (auto& byte : image.pixels) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    byte = static_cast<uint8_t>(state >> 24);
  }
  for (size_t b = 0; b < 8 && b < image.pixels.size(); ++b) {
    image.pixels[b] = static_cast<uint8_t>(seed >> (8 * b));
  }
  return image;
}

uint64_t SeedOfFakeImage(const RgbImage& image) {
  uint64_t seed = 0;
  for (size_t b = 0; b < 8 && b < image.pixels.size(); ++b) {
    seed |= static_cast<uint64_t>(image.pixels[b]) << (8 * b);
  }
  return seed;
}

class FakePipeline : public Pipeline {
 public:
  FakePipeline(FakePipelineControl* control, ModelInfo info, std::string device)
      : control_(control), info_(std::move(info)), device_(std::move(device)) {}

  const ModelInfo& info() const override { return info_; }

  DeviceMemory MemoryUsage() const override {
    absl::MutexLock lock(&control_->mu_);
    return control_->memory_;
  }

  std::vector<std::string> AdapterNames() const override {
    absl::MutexLock lock(&control_->mu_);
    auto it = control_->adapters_.find(info_.name);
    return it == control_->adapters_.end() ? std::vector<std::string>() : it->second;
  }

  absl::Status PrepareAdapters(const std::vector<LoraChoice>& loras) override {
    const std::vector<std::string> offered = AdapterNames();
    for (const LoraChoice& lora : loras) {
      if (std::find(offered.begin(), offered.end(), lora.name) == offered.end()) {
        return absl::NotFoundError(absl::StrCat("loras: adapter ", QuoteClientText(lora.name),
                                                " is not offered by ", info_.name));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<StageTimings> Start(int width, int height,
                                     const std::vector<SampleSpec>& samples) override {
    if (samples.empty()) return StageTimings{};
    const bool warmup = samples.size() == 1 && samples[0].job.prompt == "warm-up";
    uint64_t run = 0;
    std::optional<size_t> record;
    {
      absl::MutexLock lock(&control_->mu_);
      run = control_->next_run_++;
      control_->live_samples_[run] = static_cast<int>(samples.size());
      if (control_->record_runs_) {
        record = control_->runs_.size();
        BatchKey key{info_.name,
                     samples[0].steps,
                     width,
                     height,
                     samples[0].sampler,
                     samples[0].strength,
                     samples[0].job.mask != nullptr};
        std::vector<ImageJob> jobs;
        for (const SampleSpec& spec : samples) jobs.push_back(spec.job);
        control_->runs_.push_back({device_, key, std::move(jobs), warmup, {}});
      }
      if (!warmup) ++control_->started_request_runs_;
    }
    StageTimings timings;
    timings.text_encode_ms = 1;
    absl::flat_hash_set<std::string> prompts;
    for (size_t j = 0; j < samples.size(); ++j) {
      const SampleSpec& spec = samples[j];
      const int first_step = StartStepOf(spec);
      samples_[spec.id] =
          Sample{spec, width, height, first_step, first_step, run, record, j, warmup};
      if (prompts.insert(spec.job.prompt).second) {
        ++timings.prompt_cache_misses;
      } else {
        ++timings.prompt_cache_hits;
      }
    }
    return timings;
  }

  absl::StatusOr<StageTimings> Step(const std::vector<SampleId>& set,
                                    const std::function<bool()>& interrupt) override {
    bool warmup_only = true;
    bool after_a_step = false;  // a step boundary: some sample of the set has stepped
    for (const SampleId& id : set) {
      const Sample& s = samples_.at(id);
      warmup_only = warmup_only && s.warmup;
      after_a_step = after_a_step || s.step > s.first_step;
    }
    absl::Duration step_delay;
    FakePipelineControl::Failure failure;
    bool fail = false;
    {
      absl::MutexLock lock(&control_->mu_);
      if (control_->record_runs_ && !warmup_only) control_->step_sets_.push_back(set);
      control_->largest_batch_ = std::max(control_->largest_batch_, static_cast<int>(set.size()));
      step_delay = control_->step_delay_;
      auto it = control_->run_failures_.find(info_.name);
      if (!warmup_only && it != control_->run_failures_.end()) {
        failure = it->second;
        control_->run_failures_.erase(it);
        fail = true;
      }
    }
    if (fail) {
      Release(set);
      if (!failure.throw_what.empty()) throw std::runtime_error(failure.throw_what);
      return failure.status;
    }
    const auto cancelled = [&] { return interrupt && interrupt(); };
    if (after_a_step && !ParkWhileStepsHeld(cancelled)) {
      return absl::CancelledError("no sample is wanted any more");
    }
    WaitForPermit();
    if (cancelled()) return absl::CancelledError("no sample is wanted any more");
    if (step_delay > absl::ZeroDuration()) absl::SleepFor(step_delay);
    for (const SampleId& id : set) ++samples_.at(id).step;
    StageTimings timings;
    timings.denoise_ms = 0.5;
    return timings;
  }

  absl::StatusOr<RgbImage> Preview(const SampleId& id) override {
    const Sample& s = samples_.at(id);
    return FakeImage(s.spec.job.seed + static_cast<uint64_t>(s.step), s.spec.job.prompt,
                     s.width / 8, s.height / 8);
  }

  absl::StatusOr<StageTimings> Decode(const std::vector<SampleId>& ids,
                                      std::vector<RgbImage>* images) override {
    for (const SampleId& id : ids) {
      const Sample& s = samples_.at(id);
      std::optional<FakePipelineControl::Misbehaviour> misbehaviour;
      if (!s.warmup) {
        absl::MutexLock lock(&control_->mu_);
        auto odd = control_->misbehaviours_.find(info_.name);
        if (odd != control_->misbehaviours_.end()) misbehaviour = odd->second;
      }
      if (misbehaviour == FakePipelineControl::Misbehaviour::kSkipImages) continue;
      RgbImage image = FakeImage(s.spec.job.seed, s.spec.job.prompt, s.width, s.height);
      if (misbehaviour == FakePipelineControl::Misbehaviour::kMalformedImages) {
        image.pixels.pop_back();
      }
      images->push_back(std::move(image));
    }
    {
      absl::MutexLock lock(&control_->mu_);
      for (const SampleId& id : ids) {
        if (!samples_.at(id).warmup) control_->misbehaviours_.erase(info_.name);
      }
    }
    Forget(ids, /*dropped=*/false);
    StageTimings timings;
    timings.decode_ms = 3;
    return timings;
  }

  void Release(const std::vector<SampleId>& ids) override { Forget(ids, /*dropped=*/true); }

 private:
  struct Sample {
    SampleSpec spec;
    int width = 0, height = 0;
    int first_step = 0;            // an image input starts at its start step
    int step = 0;                  // steps done
    uint64_t run = 0;              // the Start call that started it
    std::optional<size_t> record;  // that call's index in control_->runs_, when recorded
    size_t job = 0;                // its index in that call
    bool warmup = false;
  };

  // The step an image input starts at: the SDXL rule (the fake's family).
  static int StartStepOf(const SampleSpec& spec) {
    return spec.strength > 0 ? SdxlStartStep(spec.steps, spec.strength) : 0;
  }

  // Forgets samples; those that leave before they were decoded count as dropped from their run.
  // A run whose samples are all gone has finished.
  void Forget(const std::vector<SampleId>& ids, bool dropped) {
    absl::MutexLock lock(&control_->mu_);
    for (const SampleId& id : ids) {
      auto it = samples_.find(id);
      if (it == samples_.end()) continue;
      const Sample& s = it->second;
      if (dropped && s.record.has_value()) control_->runs_[*s.record].dropped.push_back(s.job);
      if (--control_->live_samples_[s.run] == 0) {
        control_->live_samples_.erase(s.run);
        if (!s.warmup) ++control_->finished_request_runs_;
      }
      samples_.erase(it);
    }
  }

  // Manual stepping: takes one permit, waiting for it.
  void WaitForPermit() {
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

  // Held steps: parks until released or until `cancelled` (polled every 5 ms, as a real
  // pipeline polls its interrupt). Returns false when cancelled.
  template <typename Cancelled>
  bool ParkWhileStepsHeld(const Cancelled& cancelled) {
    absl::Mutex& mu = control_->mu_;
    mu.Lock();
    if (!control_->steps_held_) {
      mu.Unlock();
      return true;
    }
    ++control_->parked_;
    bool wanted = true;
    while (control_->steps_held_) {
      mu.Unlock();
      wanted = !cancelled();  // calls into the engine: not under our lock
      mu.Lock();
      if (!wanted) break;
      mu.AwaitWithTimeout(absl::Condition(
                              +[](bool* held) { return !*held; }, &control_->steps_held_),
                          absl::Milliseconds(5));
    }
    --control_->parked_;
    mu.Unlock();
    return wanted;
  }

  FakePipelineControl* const control_;
  const ModelInfo info_;
  const std::string device_;
  absl::flat_hash_map<SampleId, Sample> samples_;  // started, not decoded or released
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
    ModelInfo model_info = info != infos_.end() ? info->second : FakeModelInfo(spec);
    ++created_;
    return std::make_unique<FakePipeline>(this, std::move(model_info), device);
  };
}

PipelineFactory MakeFakePipelineFactory(std::shared_ptr<FakePipelineControl> control) {
  PipelineFactory factory = control->Factory();
  return [control = std::move(control), factory = std::move(factory)](
             const ModelSpec& spec, const std::string& device) { return factory(spec, device); };
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

void FakePipelineControl::HoldSteps(bool hold) {
  absl::MutexLock lock(&mu_);
  steps_held_ = hold;
}

void FakePipelineControl::SetStepDelay(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  step_delay_ = delay;
}

void FakePipelineControl::SetAdapters(const std::string& model, std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  absl::MutexLock lock(&mu_);
  adapters_[model] = std::move(names);
}

void FakePipelineControl::SetDeviceMemory(DeviceMemory memory) {
  absl::MutexLock lock(&mu_);
  memory_ = memory;
}

void FakePipelineControl::SetRecordRuns(bool record) {
  absl::MutexLock lock(&mu_);
  record_runs_ = record;
}

void FakePipelineControl::FailNextRun(const std::string& model, absl::Status status) {
  absl::MutexLock lock(&mu_);
  run_failures_[model] = Failure{std::move(status), ""};
}

void FakePipelineControl::MisbehaveOnNextRun(const std::string& model, Misbehaviour misbehaviour) {
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

std::vector<std::vector<SampleId>> FakePipelineControl::step_sets() const {
  absl::MutexLock lock(&mu_);
  return step_sets_;
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

int FakePipelineControl::largest_batch() const {
  absl::MutexLock lock(&mu_);
  return largest_batch_;
}

namespace {

// Waits on `mu` (held) until `*value >= count` or `timeout` passed.
bool AwaitAtLeast(absl::Mutex& mu, const int* value, int count, absl::Duration timeout)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  const auto enough = [value, count] { return *value >= count; };
  return mu.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

}  // namespace

bool FakePipelineControl::WaitForRequestRuns(int count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return AwaitAtLeast(mu_, &started_request_runs_, count, timeout);
}

bool FakePipelineControl::WaitForBlockedSteps(int count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return AwaitAtLeast(mu_, &blocked_, count, timeout);
}

bool FakePipelineControl::WaitForParkedBatches(int count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return AwaitAtLeast(mu_, &parked_, count, timeout);
}

bool FakePipelineControl::WaitForFinishedRuns(int count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return AwaitAtLeast(mu_, &finished_request_runs_, count, timeout);
}

}  // namespace tlcm::engine::testing
