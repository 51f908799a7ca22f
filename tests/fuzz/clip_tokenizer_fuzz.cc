// Fuzzes the CLIP tokenizer (text/clip_tokenizer.h) with prompts: the input is the UTF-8 (or not)
// text, encoded by SDXL's second tokenizer of the tiny test model (added tokens, "!" padding).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "text/clip_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tlcm::ClipTokenizer* tokenizer = [] {
    auto loaded =
        tlcm::ClipTokenizer::FromFolder(TLCM_TEST_DATA_DIR "/sdxl-tiny/model/tokenizer_2");
    if (!loaded.ok()) std::abort();
    return new tlcm::ClipTokenizer(*std::move(loaded));
  }();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (tokenizer->Encode(text).size() != static_cast<size_t>(tokenizer->max_length())) std::abort();
  return 0;
}
