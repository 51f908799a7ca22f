#include "models/layers/memory_format.h"

namespace tlcm {

void UseChannelsLast(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& parameter : module.parameters(/*recurse=*/true)) {
    if (parameter.dim() == 4) {
      parameter.set_data(parameter.contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
}

}  // namespace tlcm
