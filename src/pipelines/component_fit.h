// Checks that the components of a diffusers folder fit together, from their config.json files
// alone, before any weights are read: a mismatched folder (an SDXL UNet beside the wrong text
// encoders, a FLUX transformer beside an SDXL VAE) fails loading at once with the two files and
// keys named, instead of after minutes of loading, or with a shape error in the first request.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace tlcm {

// SDXL: unet cross_attention_dim = text_encoder hidden_size + text_encoder_2 hidden_size;
// projection_class_embeddings_input_dim = text_encoder_2 projection_dim + 6 x
// addition_time_embed_dim (the pooled embedding and the six size/crop conditions);
// unet in_channels = vae latent_channels. `vae_dir` may be a replacement VAE folder.
// InvalidArgument naming both files otherwise; config errors as the configs' FromFile reports them.
absl::Status CheckSdxlComponentsFit(const std::string& model_dir, const std::string& vae_dir);

// FLUX: transformer joint_attention_dim = text_encoder_2 (T5) d_model; pooled_projection_dim =
// text_encoder (CLIP) hidden_size; in_channels = 4 x vae latent_channels (2x2 latent patches).
absl::Status CheckFluxComponentsFit(const std::string& model_dir, const std::string& vae_dir);

}  // namespace tlcm
