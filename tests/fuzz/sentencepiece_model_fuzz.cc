// Fuzzes the SentencePiece model reader (text/sentencepiece_model.h): the input is a serialized
// ModelProto; a model that loads then encodes a fixed text with spaces, digits and non-ASCII.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "text/sentencepiece_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model = tlcm::SentencePieceModel::FromSerialized(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.model");
  if (!model.ok()) return 0;
  for (const auto& piece : model->Encode("A photo of 2 cats, caf\xC3\xA9  \xE2\x80\x94 ok")) {
    if (piece.id < 0 || piece.id >= model->size()) std::abort();
  }
  return 0;
}
