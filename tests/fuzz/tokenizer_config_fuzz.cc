// Fuzzes the JSON files a tokenizer folder is configured by (read through loaders/json_config.h):
// the first input byte picks a tokenizer and one of its JSON files, the rest is that file's
// content; the other files of the folder are the tiny test models' own. A tokenizer that loads
// then encodes a fixed prompt.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "text/clip_tokenizer.h"
#include "text/t5_tokenizer.h"

namespace {

namespace fs = std::filesystem;

struct Case {
  bool clip;
  const char* source;  // the test folder whose other files are used
  const char* file;    // the fuzzed file's name
};

constexpr Case kCases[] = {
    {true, TLCM_TEST_DATA_DIR "/sdxl-tiny/model/tokenizer_2", "tokenizer_config.json"},
    {true, TLCM_TEST_DATA_DIR "/sdxl-tiny/model/tokenizer_2", "special_tokens_map.json"},
    {true, TLCM_TEST_DATA_DIR "/sdxl-tiny/model/tokenizer_2", "added_tokens.json"},
    {false, TLCM_TEST_DATA_DIR "/t5-spm-variant-fast", "tokenizer_config.json"},
    {false, TLCM_TEST_DATA_DIR "/t5-spm-variant-fast", "special_tokens_map.json"},
    {false, TLCM_TEST_DATA_DIR "/t5-spm-variant-fast", "added_tokens.json"},
    {false, TLCM_TEST_DATA_DIR "/t5-spm-variant-fast", "tokenizer.json"},
};
constexpr size_t kNumCases = sizeof(kCases) / sizeof(kCases[0]);

// One folder per case under a private temporary directory (removed at exit): links to the
// source folder's files except the fuzzed one, which each run rewrites.
class CaseFolders {
 public:
  CaseFolders() {
    std::string root = (fs::temp_directory_path() / "tlcm-tokenizer-config-XXXXXX").string();
    if (mkdtemp(root.data()) == nullptr) std::abort();
    root_ = root;
    for (size_t i = 0; i < kNumCases; ++i) {
      const fs::path dir = root_ / std::to_string(i);
      fs::create_directory(dir);
      for (const auto& entry : fs::directory_iterator(kCases[i].source)) {
        if (entry.path().filename() != kCases[i].file) {
          fs::create_symlink(fs::absolute(entry.path()), dir / entry.path().filename());
        }
      }
      dirs_.push_back(dir);
    }
  }
  ~CaseFolders() {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }
  const fs::path& operator[](size_t i) const { return dirs_[i]; }

 private:
  fs::path root_;
  std::vector<fs::path> dirs_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t pick = data[0] % kNumCases;
  const Case& c = kCases[pick];
  static const CaseFolders folders;
  const fs::path& dir = folders[pick];
  {
    std::ofstream out(dir / c.file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  constexpr const char* kPrompt = "a cat <|endoftext|> on a mat! </s> <extra_id_0> caf\xC3\xA9";
  if (c.clip) {
    auto tokenizer = tlcm::ClipTokenizer::FromFolder(dir.string());
    if (tokenizer.ok() &&
        tokenizer->Encode(kPrompt).size() != static_cast<size_t>(tokenizer->max_length())) {
      std::abort();
    }
  } else {
    auto tokenizer = tlcm::T5Tokenizer::FromFolder(dir.string());
    if (tokenizer.ok() && tokenizer->Encode(kPrompt, 32).size() != 32) std::abort();
  }
  return 0;
}
