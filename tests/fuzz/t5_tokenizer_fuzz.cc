// Fuzzes the T5 tokenizer (text/t5_tokenizer.h) with prompts: the input is the UTF-8 (or not)
// text, encoded by the tiny FLUX model's tokenizer_2 (added tokens, <extra_id_N> sentinels).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "text/t5_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tlcm::T5Tokenizer* tokenizer = [] {
    auto loaded = tlcm::T5Tokenizer::FromFolder(TLCM_TEST_DATA_DIR "/flux-tiny/model/tokenizer_2");
    if (!loaded.ok()) std::abort();
    return new tlcm::T5Tokenizer(*std::move(loaded));
  }();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  constexpr int kMaxLength = 64;
  if (tokenizer->Encode(text, kMaxLength).size() != kMaxLength) std::abort();
  return 0;
}
