// Every translation from checkpoint key names to this project's module names, in one place.
#pragma once

#include "loaders/module_loader.h"

namespace tlcm {

// Keys used as they are.
KeyRemap IdentityKeys();
// transformers CLIPTextModel(WithProjection): drops the `text_model.embeddings.position_ids`
// buffer that older checkpoints carry.
KeyRemap ClipTextKeys();
// transformers T5EncoderModel: drops `encoder.embed_tokens.weight`, which some checkpoints carry
// as a tied copy of `shared.weight` (the model holds the embedding once, as `shared`). The copy is
// dropped without comparing it: transformers ties the two at load, so `shared` is what it uses.
KeyRemap T5EncoderKeys();
// diffusers AutoencoderKL: legacy attention names (query, key, value, proj_attn) become
// to_q, to_k, to_v, to_out.0. VaeDecoderKeys drops the encoder side (encoder.*, quant_conv.*),
// VaeEncoderKeys the decoder side (decoder.*, post_quant_conv.*).
KeyRemap VaeDecoderKeys();
KeyRemap VaeEncoderKeys();

}  // namespace tlcm
