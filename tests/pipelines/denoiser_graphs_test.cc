#include "pipelines/denoiser_graphs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "pipelines/flux_pipeline.h"
#include "pipelines/sdxl_pipeline.h"
#include "tests/pipelines/golden_runs.h"

namespace tlcm {
namespace {

using testing::DataPath;
using ::testing::HasSubstr;

// The devices graphs are checked on: the first CUDA GPU where there is one (bench/gpu_bench.sh
// runs the suite on a GPU machine); none elsewhere, where the refusal below is what there is.
std::vector<std::string> CudaDevices() {
  if (torch::cuda::is_available()) return {"cuda:0"};
  return {};
}

TEST(DenoiserGraphsTest, RefusedOffCuda) {
  auto graphs = DenoiserGraphs::Create(torch::kCPU);
  ASSERT_FALSE(graphs.ok());
  EXPECT_EQ(graphs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(graphs.status().message(), HasSubstr("cuda_graphs needs a CUDA device"));

  PipelineOptions options;
  options.cuda_graphs = true;
  auto sdxl = StableDiffusionXLPipeline::Load(DataPath("sdxl-tiny/model"), options);
  ASSERT_FALSE(sdxl.ok());
  EXPECT_THAT(sdxl.status().message(), HasSubstr("cuda_graphs"));
  auto flux = FluxPipeline::Load(DataPath("flux-tiny/model"), options);
  ASSERT_FALSE(flux.ok());
  EXPECT_THAT(flux.status().message(), HasSubstr("cuda_graphs"));
}

class DenoiserGraphsCudaTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DenoiserGraphsCudaTest, ReplaysEqualEagerCallsBitForBit) {
  const torch::Device device(GetParam());
  auto graphs = DenoiserGraphs::Create(device);
  ASSERT_TRUE(graphs.ok()) << graphs.status();
  torch::manual_seed(0);
  const auto half = torch::TensorOptions().device(device).dtype(torch::kFloat16);
  const torch::Tensor weight = torch::randn({64, 64}, half);
  const DenoiserGraphs::Call call = [&](const std::vector<torch::Tensor>& in) {
    return torch::relu(torch::matmul(in[0], weight)) + in[1] * 0.5;
  };
  for (int64_t rows : {1, 3}) {
    // Warm-up, capture, then replays: each call with fresh values.
    for (int i = 0; i < 4; ++i) {
      const std::vector<torch::Tensor> inputs = {torch::randn({rows, 64}, half),
                                                 torch::randn({rows, 64}, half)};
      const torch::Tensor expected = call(inputs);
      EXPECT_TRUE(torch::equal((*graphs)->Run(inputs, call), expected)) << rows << " " << i;
    }
  }
  EXPECT_EQ((*graphs)->size(), 2u);
}

TEST_P(DenoiserGraphsCudaTest, KeepsAtMostTheirLimit) {
  auto graphs = DenoiserGraphs::Create(torch::Device(GetParam()));
  ASSERT_TRUE(graphs.ok()) << graphs.status();
  const DenoiserGraphs::Call call = [](const std::vector<torch::Tensor>& in) { return in[0] + 1; };
  const size_t limit = DenoiserGraphs::kMaxGraphs;
  for (int64_t rows = 1; rows <= static_cast<int64_t>(limit) + 3; ++rows) {
    const torch::Tensor x = torch::zeros({rows, 8}, torch::Device(GetParam()));
    for (int i = 0; i < 2; ++i) {
      EXPECT_TRUE(torch::equal((*graphs)->Run({x}, call), x + 1));
    }
  }
  EXPECT_EQ((*graphs)->size(), limit);
}

TEST_P(DenoiserGraphsCudaTest, AFailedCaptureLeavesNoGraph) {
  auto graphs = DenoiserGraphs::Create(torch::Device(GetParam()));
  ASSERT_TRUE(graphs.ok()) << graphs.status();
  int calls = 0;
  const DenoiserGraphs::Call call = [&](const std::vector<torch::Tensor>& in) {
    if (++calls == 2) throw std::runtime_error("fails while captured");
    return in[0] * 2;
  };
  const torch::Tensor x = torch::ones({2, 4}, torch::Device(GetParam()));
  EXPECT_TRUE(torch::equal((*graphs)->Run({x}, call), x * 2));  // warm-up
  EXPECT_THROW((*graphs)->Run({x}, call), std::runtime_error);  // capture fails
  EXPECT_EQ((*graphs)->size(), 0u);
  // The stream left capture mode: the next calls warm up, capture and replay again.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal((*graphs)->Run({x}, call), x * 2));
  EXPECT_EQ((*graphs)->size(), 1u);
}

// Whole pipelines: a 4-step run of two images warms up at step 1, captures at step 2 and
// replays at steps 3 and 4; its images are those of the eager pipeline, byte for byte.
template <typename Pipeline>
void ExpectGraphsChangeNoImage(const std::string& case_name, const std::string& device,
                               torch::Dtype dtype, float guidance_scale) {
  PipelineOptions options;
  options.device = torch::Device(device);
  options.dtype = dtype;
  options.lora_path = DataPath(case_name + "/lora");
  auto eager = Pipeline::Load(DataPath(case_name + "/model"), options);
  options.cuda_graphs = true;
  auto graphed = Pipeline::Load(DataPath(case_name + "/model"), options);
  ASSERT_TRUE(eager.ok() && graphed.ok()) << eager.status() << graphed.status();
  const std::vector<ImageRequest> requests = {{"a red fox", "", 7, guidance_scale},
                                              {"a lighthouse at dawn", "", 8, guidance_scale}};
  for (int run = 0; run < 2; ++run) {
    auto a = (*eager)->Run(requests, {4, 64, 64, ""});
    auto b = (*graphed)->Run(requests, {4, 64, 64, ""});
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
    for (size_t i = 0; i < requests.size(); ++i) {
      ASSERT_TRUE(a->images[i] && b->images[i]);
      EXPECT_EQ(a->images[i]->pixels, b->images[i]->pixels) << "run " << run << " image " << i;
    }
  }
}

TEST_P(DenoiserGraphsCudaTest, SdxlImagesEqualEagerOnes) {
  ExpectGraphsChangeNoImage<StableDiffusionXLPipeline>("sdxl-rich", GetParam(), torch::kFloat16,
                                                       0.0f);
}

TEST_P(DenoiserGraphsCudaTest, FluxImagesEqualEagerOnes) {
  ExpectGraphsChangeNoImage<FluxPipeline>("flux-rich", GetParam(), torch::kBFloat16, 3.5f);
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(DenoiserGraphsCudaTest);
INSTANTIATE_TEST_SUITE_P(Devices, DenoiserGraphsCudaTest, ::testing::ValuesIn(CudaDevices()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;  // "cuda:0" -> "cuda_0"
                           for (char& c : name) {
                             if (c == ':') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace tlcm
