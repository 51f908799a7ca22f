#include "pipelines/component_fit.h"

#include "absl/strings/str_cat.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/t5_encoder.h"
#include "models/transformer_flux.h"
#include "models/unet_2d_condition.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

// "<a_file>: <a_key> is <a_value>, but <b_file> ... gives <b_value>" when the two differ.
absl::Status ExpectEqual(const std::string& a_file, const std::string& a_key, int64_t a_value,
                         const std::string& b_file, const std::string& b_what, int64_t b_value) {
  if (a_value == b_value) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(a_file, ": ", a_key, " is ", a_value, ", but ",
                                                 b_file, " gives ", b_what, " = ", b_value,
                                                 ": the components do not belong together"));
}

}  // namespace

absl::Status CheckSdxlComponentsFit(const std::string& model_dir, const std::string& vae_dir) {
  const std::string te1_file = model_dir + "/text_encoder/config.json";
  const std::string te2_file = model_dir + "/text_encoder_2/config.json";
  const std::string unet_file = model_dir + "/unet/config.json";
  const std::string vae_file = vae_dir + "/config.json";
  TLCM_ASSIGN_OR_RETURN(ClipTextConfig te1, ClipTextConfig::FromFile(te1_file));
  TLCM_ASSIGN_OR_RETURN(ClipTextConfig te2, ClipTextConfig::FromFile(te2_file));
  TLCM_ASSIGN_OR_RETURN(UNet2DConditionConfig unet, UNet2DConditionConfig::FromFile(unet_file));
  TLCM_ASSIGN_OR_RETURN(AutoencoderKLConfig vae, AutoencoderKLConfig::FromFile(vae_file));
  for (const int64_t dim : unet.cross_attention_dim) {
    TLCM_RETURN_IF_ERROR(ExpectEqual(unet_file, "cross_attention_dim", dim,
                                     te1_file + " and " + te2_file, "the sum of hidden_size",
                                     te1.hidden_size + te2.hidden_size));
  }
  TLCM_RETURN_IF_ERROR(ExpectEqual(unet_file, "projection_class_embeddings_input_dim",
                                   unet.projection_class_embeddings_input_dim, te2_file,
                                   "projection_dim + 6 x addition_time_embed_dim",
                                   te2.projection_dim + 6 * unet.addition_time_embed_dim));
  // An inpainting UNet also takes the mask and the masked image's latents.
  if (unet.in_channels == 2 * vae.latent_channels + 1) return absl::OkStatus();
  return ExpectEqual(unet_file, "in_channels", unet.in_channels, vae_file,
                     "latent_channels (or 2 x latent_channels + 1 for an inpainting UNet)",
                     vae.latent_channels);
}

absl::Status CheckFluxComponentsFit(const std::string& model_dir, const std::string& vae_dir) {
  const std::string clip_file = model_dir + "/text_encoder/config.json";
  const std::string t5_file = model_dir + "/text_encoder_2/config.json";
  const std::string transformer_file = model_dir + "/transformer/config.json";
  const std::string vae_file = vae_dir + "/config.json";
  TLCM_ASSIGN_OR_RETURN(ClipTextConfig clip, ClipTextConfig::FromFile(clip_file));
  TLCM_ASSIGN_OR_RETURN(T5Config t5, T5Config::FromFile(t5_file));
  TLCM_ASSIGN_OR_RETURN(FluxTransformerConfig transformer,
                        FluxTransformerConfig::FromFile(transformer_file));
  TLCM_ASSIGN_OR_RETURN(AutoencoderKLConfig vae, AutoencoderKLConfig::FromFile(vae_file));
  TLCM_RETURN_IF_ERROR(ExpectEqual(transformer_file, "joint_attention_dim",
                                   transformer.joint_attention_dim, t5_file, "d_model",
                                   t5.d_model));
  TLCM_RETURN_IF_ERROR(ExpectEqual(transformer_file, "pooled_projection_dim",
                                   transformer.pooled_projection_dim, clip_file, "hidden_size",
                                   clip.hidden_size));
  return ExpectEqual(transformer_file, "in_channels", transformer.in_channels, vae_file,
                     "4 x latent_channels", 4 * vae.latent_channels);
}

}  // namespace tlcm
