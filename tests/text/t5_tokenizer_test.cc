// T5Tokenizer against transformers 4.39.3's slow T5Tokenizer (tests/data/tokenizers/t5_cases.json,
// section "tokenizers", from tools/make_t5_tokenizer_cases.py). Folders:
//   t5-spm/                 T5-like 16000-piece nmt_nfkc unigram model (tools/train_t5_test_spm.py)
//                           with FLUX tokenizer_2's JSON files (legacy, extra_ids 100,
//                           added_tokens_decoder); max_length 77 and 512
//   t5-spm-variant/         1000-piece identity-normalized model with user-defined symbols and
//                           remove_extra_whitespaces=false, pre-4.34 tokenizer_config.json
//                           (extra_ids 5, sentinels strip both sides); max_length 77
//   t5-spm-variant-added/   the same + added_tokens.json (sentinels without stripping)
//   t5-spm-variant-fast/    the same + tokenizer.json added_tokens (mixed strip flags)
//   reference/flux/case-1/model/tokenizer_2/   the FLUX reference case's tokenizer (400 pieces);
//                           max_length 24 as its runs use
#include "text/t5_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tlcm {
namespace {

namespace fs = std::filesystem;

std::string DataPath(const std::string& relative) {
  return std::string(TLCM_TEST_DATA_DIR) + "/" + relative;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// A fresh folder under the test temp dir holding t5-spm's spiece.model and `config` (if any) as
// tokenizer_config.json.
std::string MakeFolder(const std::string& name, const std::string& config) {
  const std::string dir = ::testing::TempDir() + "/t5_tokenizer_test_" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(DataPath("t5-spm/spiece.model"), dir + "/spiece.model");
  if (!config.empty()) WriteFile(dir + "/tokenizer_config.json", config);
  return dir;
}

void ExpectConfigError(const std::string& name, const std::string& config,
                       const std::string& fragment) {
  const std::string dir = MakeFolder(name, config);
  auto tokenizer = T5Tokenizer::FromFolder(dir);
  ASSERT_FALSE(tokenizer.ok()) << name;
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument) << tokenizer.status();
  EXPECT_NE(tokenizer.status().message().find(dir + "/tokenizer_config.json"), std::string::npos)
      << tokenizer.status();
  EXPECT_NE(tokenizer.status().message().find(fragment), std::string::npos) << tokenizer.status();
}

TEST(T5TokenizerTest, MatchesTransformersOnRecordedCases) {
  std::ifstream in(DataPath("tokenizers/t5_cases.json"));
  ASSERT_TRUE(in) << "missing t5_cases.json";
  const nlohmann::json cases = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& group : cases.at("tokenizers")) {
    const std::string dir = group.at("dir").get<std::string>();
    auto tokenizer = T5Tokenizer::FromFolder(DataPath(dir));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    EXPECT_EQ(tokenizer->eos_id(), group.at("eos_id").get<int64_t>());
    EXPECT_EQ(tokenizer->pad_id(), group.at("pad_id").get<int64_t>());
    for (const auto& c : group.at("cases")) {
      const std::string text = c.at("text").get<std::string>();
      EXPECT_EQ(tokenizer->Tokenize(text), c.at("tokenize").get<std::vector<int64_t>>())
          << dir << ": \"" << text << "\"";
      for (int length : group.at("max_lengths").get<std::vector<int>>()) {
        auto expected = c.at("encode").at(std::to_string(length)).get<std::vector<int64_t>>();
        expected.resize(length, tokenizer->pad_id());
        EXPECT_EQ(tokenizer->Encode(text, length), expected)
            << dir << " max_length " << length << ": \"" << text << "\"";
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 1800);
}

TEST(T5TokenizerTest, FluxReferencePrompt) {
  auto tokenizer = T5Tokenizer::FromFolder(DataPath("reference/flux/case-1/model/tokenizer_2"));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const auto ids = tokenizer->Encode("a paper lantern floating on a dark lake", 24);
  ASSERT_EQ(ids.size(), 24u);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tokenizer->eos_id()), 1);
}

TEST(T5TokenizerTest, EncodeTruncatesAndKeepsALiteralEos) {
  auto tokenizer = T5Tokenizer::FromFolder(DataPath("t5-spm"));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const auto tokens = tokenizer->Tokenize("one two three four five six");
  ASSERT_GT(tokens.size(), 4u);
  const auto four = tokenizer->Encode("one two three four five six", 4);
  EXPECT_EQ(four, (std::vector<int64_t>{tokens[0], tokens[1], tokens[2], 1}));
  // A prompt that ends in "</s>" gets no second EOS.
  const auto literal = tokenizer->Encode("one </s>", 6);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 1), 1);
  EXPECT_EQ(tokenizer->Encode("anything", 1), (std::vector<int64_t>{1}));
}

TEST(T5TokenizerTest, InvalidUtf8CountsAsReplacementCharacters) {
  auto tokenizer = T5Tokenizer::FromFolder(DataPath("t5-spm"));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->Tokenize("a\xff\xfe b"), tokenizer->Tokenize("a\xef\xbf\xbd\xef\xbf\xbd b"));
}

TEST(T5TokenizerTest, ConcurrentCallsAgree) {
  auto tokenizer = T5Tokenizer::FromFolder(DataPath("t5-spm"));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::string prompt = "a cozy cabin in a snowy forest at night, <extra_id_0> warm windows";
  const auto expected = tokenizer->Encode(prompt, 77);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) mismatches[t] += tokenizer->Encode(prompt, 77) != expected;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(T5TokenizerTest, MissingSpieceModelIsNotFound) {
  const std::string dir = ::testing::TempDir() + "/t5_tokenizer_test_empty";
  fs::create_directories(dir);
  auto tokenizer = T5Tokenizer::FromFolder(dir);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(tokenizer.status().message().find(dir + "/spiece.model"), std::string::npos);
}

TEST(T5TokenizerTest, CorruptSpieceModelNamesTheFile) {
  const std::string dir = MakeFolder("corrupt", "");
  const std::string bytes = ReadFile(dir + "/spiece.model");
  WriteFile(dir + "/spiece.model", bytes.substr(0, bytes.size() / 3));
  auto tokenizer = T5Tokenizer::FromFolder(dir);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().message().find(dir + "/spiece.model"), std::string::npos)
      << tokenizer.status();
}

TEST(T5TokenizerTest, DefaultsWithoutConfig) {
  // No tokenizer_config.json: T5Tokenizer's defaults (100 sentinels after the 16000 pieces).
  auto tokenizer = T5Tokenizer::FromFolder(MakeFolder("defaults", ""));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->Tokenize("<extra_id_0>"), (std::vector<int64_t>{16099}));
  EXPECT_EQ(tokenizer->Tokenize("<extra_id_99>"), (std::vector<int64_t>{16000}));
}

TEST(T5TokenizerTest, UnsupportedConfigsAreRejected) {
  ExpectConfigError("legacy", R"({"legacy": false})", "legacy=false");
  ExpectConfigError("kwargs", R"({"sp_model_kwargs": {"enable_sampling": true}})",
                    "sp_model_kwargs");
  ExpectConfigError("extra", R"({"extra_ids": 3, "additional_special_tokens": ["<extra_id_0>"]})",
                    "extra_ids is 3 but additional_special_tokens holds 1");
  ExpectConfigError("single",
                    R"({"added_tokens_decoder": {"5": {"content": "<x>", "single_word": true}}})",
                    "single_word");
  ExpectConfigError("contains", R"({"added_tokens_decoder": {"16100": {"content": "<pad>x"}}})",
                    "contains added token");
  ExpectConfigError("missing", R"({"extra_ids": 0, "eos_token": "<eos>"})", "\"<eos>\"");
  ExpectConfigError("type", R"({"extra_ids": "many"})", "type must be number");
  ExpectConfigError("key", R"({"added_tokens_decoder": {"x": "<x>"}})", "not an id");
  ExpectConfigError("json", "{not json", "not valid JSON");
}

}  // namespace
}  // namespace tlcm
