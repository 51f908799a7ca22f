// CUDA graphs of a denoiser call, one per input signature (the shapes and dtypes of its inputs).
//
// A UNet or transformer step launches hundreds to thousands of kernels; on a fast GPU the host
// thread that queues them one by one becomes the limit and the GPU idles between kernels. A
// captured graph queues the whole call with one launch and the host thread sleeps meanwhile.
//
// Contract of the call given to Run(): a function of its tensor inputs alone that launches the
// same work for the same input signature every time: no reads of tensor values on the host, no
// host-to-device copies, no random draws, no module state that changes between calls (style
// adapters applied per sample are such state: the pipelines run those calls eagerly). Replaying
// a graph runs the same kernels on the same addresses as the capture did, so its output equals
// an eager call's bit for bit (tests/pipelines/denoiser_graphs_test.cc, on CUDA).
//
// Memory: every graph allocates from one pool shared by all graphs of this object. That is safe
// because the graphs run one at a time from one thread, each call copies its inputs into the
// graph's own input tensors (allocated outside the pool) and its output out of the pool right
// after the replay, so nothing a graph wrote is read after another graph ran.
//
// Only in builds whose LibTorch has CUDA (TLCM_WITH_CUDA); elsewhere Create() says so.
// Not thread-safe: one caller at a time (a pipeline's device worker).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace tlcm {

class DenoiserGraphs {
 public:
  using Call = std::function<torch::Tensor(const std::vector<torch::Tensor>& inputs)>;

  // At most this many graphs are kept; the least recently used one goes first. Signatures are
  // (set size, width, height): a server sees few, a hostile mix of sizes must not grow memory.
  static constexpr size_t kMaxGraphs = 32;

  // InvalidArgument unless this build's LibTorch has CUDA and `device` is a CUDA device.
  static absl::StatusOr<std::unique_ptr<DenoiserGraphs>> Create(const torch::Device& device);
  ~DenoiserGraphs();
  DenoiserGraphs(const DenoiserGraphs&) = delete;
  DenoiserGraphs& operator=(const DenoiserGraphs&) = delete;

  // call(inputs), all defined inputs on this object's device (undefined ones pass as such). The
  // first call of a signature runs eagerly (it warms up the cuBLAS / cuDNN handles and the
  // allocator, which must not happen inside a capture); the second captures a graph and
  // replays it; later ones replay. Exceptions from `call` propagate; a failed capture leaves
  // no graph behind.
  torch::Tensor Run(const std::vector<torch::Tensor>& inputs, const Call& call);

  // Signatures seen and held now (captured, or seen once and run eagerly).
  size_t size() const;

 private:
  struct State;  // the graphs and their pool (CUDA builds only)
  explicit DenoiserGraphs(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

}  // namespace tlcm
