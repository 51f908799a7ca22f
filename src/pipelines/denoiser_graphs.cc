#include "pipelines/denoiser_graphs.h"

#include <utility>

#include "absl/strings/str_cat.h"

#if defined(TLCM_WITH_CUDA)
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <list>

#include "absl/container/flat_hash_map.h"
#endif

namespace tlcm {

#if defined(TLCM_WITH_CUDA)
namespace {

// "2x4x128x128:Half,1:Long,-," for the inputs' shapes and dtypes ("-": undefined).
std::string Signature(const std::vector<torch::Tensor>& inputs) {
  std::string key;
  for (const torch::Tensor& t : inputs) {
    if (!t.defined()) {
      absl::StrAppend(&key, "-,");
      continue;
    }
    const char* separator = "";
    for (int64_t size : t.sizes()) {
      absl::StrAppend(&key, separator, size);
      separator = "x";
    }
    absl::StrAppend(&key, ":", c10::toString(t.scalar_type()), ",");
  }
  return key;
}

struct Graph {
  std::list<std::string>::iterator recent;  // this graph's place in State::recent
  bool captured = false;                    // false: seen once, ran eagerly
  std::vector<torch::Tensor> inputs;        // the tensors the graph reads (outside the pool)
  torch::Tensor output;                     // the tensor the graph writes (in the pool)
  at::cuda::CUDAGraph graph;
};

// Captures `call` on `graph`'s own input tensors into `pool`. On failure the capture is ended
// (which discards it) and the exception goes on.
void Capture(const torch::Device& device, c10::MempoolId_t pool, Graph& graph,
             const DenoiserGraphs::Call& call) {
  // A capture records work without running it; the replay that follows runs on the worker's
  // stream after everything queued there. The synchronization only keeps the warm-up's and the
  // input copies' memory traffic out of the capture (once per signature).
  c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
  {
    const c10::cuda::CUDAStreamGuard on_side(side);
    // Thread-local mode: other threads (other devices' workers, image encoding) may go on
    // using CUDA while this one captures.
    graph.graph.capture_begin(pool, cudaStreamCaptureModeThreadLocal);
    try {
      graph.output = call(graph.inputs);
    } catch (...) {
      graph.graph.capture_end();
      throw;
    }
    graph.graph.capture_end();
  }
  graph.captured = true;
}

}  // namespace

struct DenoiserGraphs::State {
  torch::Device device;
  c10::MempoolId_t pool;          // shared by every graph (see the header)
  std::list<std::string> recent;  // signatures, most recently used first
  absl::flat_hash_map<std::string, std::unique_ptr<Graph>> graphs;
};

absl::StatusOr<std::unique_ptr<DenoiserGraphs>> DenoiserGraphs::Create(
    const torch::Device& device) {
  if (!device.is_cuda()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cuda_graphs needs a CUDA device, not '", device.str(), "'"));
  }
  auto state = std::make_unique<State>(State{device, at::cuda::graph_pool_handle(), {}, {}});
  return std::unique_ptr<DenoiserGraphs>(new DenoiserGraphs(std::move(state)));
}

torch::Tensor DenoiserGraphs::Run(const std::vector<torch::Tensor>& inputs, const Call& call) {
  State& s = *state_;
  const std::string key = Signature(inputs);
  auto found = s.graphs.find(key);
  if (found == s.graphs.end()) {
    if (s.graphs.size() >= kMaxGraphs) {
      s.graphs.erase(s.recent.back());
      s.recent.pop_back();
    }
    s.recent.push_front(key);
    auto graph = std::make_unique<Graph>();
    graph->recent = s.recent.begin();
    s.graphs.emplace(key, std::move(graph));
    return call(inputs);  // the warm-up
  }
  Graph& graph = *found->second;
  s.recent.splice(s.recent.begin(), s.recent, graph.recent);
  if (!graph.captured) {
    for (const torch::Tensor& t : inputs) graph.inputs.push_back(t.defined() ? t.clone() : t);
    try {
      Capture(s.device, s.pool, graph, call);
    } catch (...) {
      s.recent.erase(graph.recent);
      s.graphs.erase(found);
      throw;
    }
  } else {
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].defined()) graph.inputs[i].copy_(inputs[i]);
    }
  }
  graph.graph.replay();
  return graph.output.clone();
}

size_t DenoiserGraphs::size() const { return state_->graphs.size(); }

#else  // LibTorch without CUDA: Create() refuses, so no object exists.

struct DenoiserGraphs::State {};

absl::StatusOr<std::unique_ptr<DenoiserGraphs>> DenoiserGraphs::Create(
    const torch::Device& device) {
  return absl::InvalidArgumentError(
      absl::StrCat("cuda_graphs needs a CUDA device and a build whose LibTorch has CUDA; this "
                   "build has none (device '",
                   device.str(), "')"));
}

torch::Tensor DenoiserGraphs::Run(const std::vector<torch::Tensor>& inputs, const Call& call) {
  return call(inputs);
}

size_t DenoiserGraphs::size() const { return 0; }

#endif

DenoiserGraphs::DenoiserGraphs(std::unique_ptr<State> state) : state_(std::move(state)) {}
DenoiserGraphs::~DenoiserGraphs() = default;

}  // namespace tlcm
