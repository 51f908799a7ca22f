// Multi-axis rotary position embedding (FLUX's FluxPosEmbed + apply_rotary_emb, interleaved
// pairs).
#pragma once

#include <vector>

#include <torch/torch.h>

namespace tlcm {

// One rotation per position and pair of channels, cos + i sin of its angle:
// [S, sum(axes_dims) / 2] complex64 (float32 cos and sin).
struct RopeTables {
  torch::Tensor rotation;
};

// Tables for the positions `ids` ([S, n_axes], any numeric dtype; converted to float32 first,
// like diffusers). Axis i with even dimension d_i has frequencies
// theta^-(2j/d_i), j in [0, d_i/2), computed in float64; angle = pos_i * freq, its cos and sin
// rounded to float32, the axes concatenated in order (diffusers' tables hold the same values,
// each repeated for both channels of a pair). Throws c10::Error when ids.size(1) !=
// axes_dims.size() or a d_i is odd. Runs on ids' device.
RopeTables MultiAxisRopeTables(const torch::Tensor& ids, const std::vector<int64_t>& axes_dims,
                               double theta = 10000.0);

// Rotates the interleaved pairs (x[2k], x[2k+1]) of the last dimension:
//   out = x * cos + rotate(x) * sin,  rotate(x)[2k] = -x[2k+1], rotate(x)[2k+1] = x[2k],
// computed in float32 and returned in x's dtype. That is the complex product of each pair
// x[2k] + i x[2k+1] with cos + i sin, which is how it runs: one pass instead of seven.
// x: [B, H, S, D]; rope.rotation: [S, D/2].
torch::Tensor ApplyRope(const torch::Tensor& x, const RopeTables& rope);

}  // namespace tlcm
