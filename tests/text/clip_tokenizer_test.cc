// ClipTokenizer against transformers' slow CLIPTokenizer: tests/data/tokenizers/clip_cases.json
// (tools/make_clip_tokenizer_cases.py) holds its ids for the real CLIP vocabulary (SDXL's two pad
// conventions) and for the truncated vocabulary of tests/data/reference.
#include "text/clip_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/test_data_path.h"

namespace tlcm {
namespace {

using ::tlcm::testing::DataPath;

nlohmann::json LoadCases() {
  std::ifstream in(DataPath("tokenizers/clip_cases.json"));
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

const nlohmann::json& Cases() {
  static const nlohmann::json cases = LoadCases();
  return cases;
}

const nlohmann::json& Suite(const std::string& name) {
  for (const auto& suite : Cases().at("suites")) {
    if (suite.at("name") == name) return suite;
  }
  ADD_FAILURE() << "no suite " << name;
  static const nlohmann::json empty = nlohmann::json::object();
  return empty;
}

std::string Escaped(const std::string& text) { return nlohmann::json(text).dump(); }

// Checks every case of `suite` with both tokenizers; returns the number of texts checked.
int CheckSuite(const nlohmann::json& suite) {
  int checked = 0;
  for (const auto& [key, folder] : suite.at("tokenizers").items()) {
    auto tok = ClipTokenizer::FromFolder(DataPath(folder.get<std::string>()));
    EXPECT_TRUE(tok.ok()) << tok.status();
    if (!tok.ok()) continue;
    int failures = 0;
    for (const auto& c : suite.at("cases")) {
      const std::string text = c.at("text").get<std::string>();
      const auto tokens = c.at(key).at("tokens").get<std::vector<int64_t>>();
      const auto input_ids = c.at(key).at("input_ids").get<std::vector<int64_t>>();
      const std::vector<int64_t> got_tokens = tok->Tokenize(text);
      const std::vector<int64_t> got_ids = tok->Encode(text);
      if (got_tokens != tokens || got_ids != input_ids) {
        ADD_FAILURE() << key << " text " << Escaped(text) << "\n  expected "
                      << absl::StrJoin(tokens, " ") << "\n  got      "
                      << absl::StrJoin(got_tokens, " ") << "\n  padded ids "
                      << (got_ids == input_ids ? "match" : "differ");
        if (++failures >= 10) break;
      }
      ++checked;
    }
  }
  return checked;
}

TEST(ClipTokenizerTest, MatchesTransformersOnRealVocabulary) {
  const nlohmann::json& suite = Suite("clip-vocab");
  ASSERT_GE(suite.at("cases").size(), 300u);
  EXPECT_EQ(CheckSuite(suite), 2 * static_cast<int>(suite.at("cases").size()));
}

TEST(ClipTokenizerTest, MatchesTransformersOnTruncatedReferenceVocabulary) {
  const nlohmann::json& suite = Suite("reference-sdxl");
  ASSERT_GE(suite.at("cases").size(), 5u);
  EXPECT_EQ(CheckSuite(suite), 2 * static_cast<int>(suite.at("cases").size()));
}

TEST(ClipTokenizerTest, SpecialIdsOfSdxlsTwoTokenizers) {
  auto tok = ClipTokenizer::FromFolder(DataPath("clip-vocab/tokenizer"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->bos_id(), 49406);
  EXPECT_EQ(tok->eos_id(), 49407);
  EXPECT_EQ(tok->pad_id(), 49407);
  EXPECT_EQ(tok->max_length(), 77);
  auto tok2 = ClipTokenizer::FromFolder(DataPath("clip-vocab/tokenizer_2"));
  ASSERT_TRUE(tok2.ok()) << tok2.status();
  EXPECT_EQ(tok2->bos_id(), 49406);
  EXPECT_EQ(tok2->eos_id(), 49407);
  EXPECT_EQ(tok2->pad_id(), 0);
  EXPECT_EQ(tok2->max_length(), 77);
  EXPECT_EQ(tok->Tokenize("a photo of"), (std::vector<int64_t>{320, 1125, 539}));
  // "!" is an added token of tokenizer_2 (its pad token): split out of the text, id 0.
  EXPECT_EQ(tok->Tokenize("wow!!!"), (std::vector<int64_t>{2781, 995}));
  EXPECT_EQ(tok2->Tokenize("wow!!!"), (std::vector<int64_t>{2781, 0, 0, 0}));
}

TEST(ClipTokenizerTest, ConcurrentEncodeAgreesWithSerial) {
  auto tok = ClipTokenizer::FromFolder(DataPath("clip-vocab/tokenizer"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  std::vector<std::string> texts;
  for (const auto& c : Suite("clip-vocab").at("cases")) {
    texts.push_back(c.at("text").get<std::string>());
  }
  std::vector<std::vector<int64_t>> serial;
  serial.reserve(texts.size());
  for (const auto& t : texts) serial.push_back(tok->Encode(t));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = w; i < texts.size() + w; ++i) {
          const size_t k = (i * 7 + round) % texts.size();
          if (tok->Encode(texts[k]) != serial[k]) ++mismatches[w];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// A scratch tokenizer folder with a 4-letter vocabulary.
class ClipTokenizerFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = std::filesystem::path(::testing::TempDir()) / absl::StrCat("clip_tok_", test);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Write("vocab.json",
          R"({"a": 0, "b": 1, "!": 2, "a</w>": 3, "b</w>": 4, "!</w>": 5, "ab</w>": 6,)"
          R"( "<|startoftext|>": 7, "<|endoftext|>": 8})");
    Write("merges.txt", "#version: 0.2\na b</w>\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::string Dir() const { return dir_.string(); }

  std::filesystem::path dir_;
};

TEST_F(ClipTokenizerFolderTest, DefaultsWithoutConfigFiles) {
  auto tok = ClipTokenizer::FromFolder(Dir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->bos_id(), 7);
  EXPECT_EQ(tok->eos_id(), 8);
  EXPECT_EQ(tok->pad_id(), 8);
  EXPECT_EQ(tok->max_length(), 77);
  // "c" is not in the vocabulary: unk ("<|endoftext|>").
  EXPECT_EQ(tok->Tokenize("AB ab! c"), (std::vector<int64_t>{6, 6, 5, 8}));
}

TEST_F(ClipTokenizerFolderTest, ConfigMaxLengthPadAndTruncation) {
  Write("tokenizer_config.json", R"({"model_max_length": 5, "pad_token": "!"})");
  auto tok = ClipTokenizer::FromFolder(Dir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->max_length(), 5);
  EXPECT_EQ(tok->pad_id(), 2);
  EXPECT_EQ(tok->Encode("ab"), (std::vector<int64_t>{7, 6, 8, 2, 2}));
  EXPECT_EQ(tok->Encode("ab b a ab"), (std::vector<int64_t>{7, 6, 4, 3, 8}));
  EXPECT_EQ(tok->Encode(""), (std::vector<int64_t>{7, 8, 2, 2, 2}));
  EXPECT_EQ(tok->Tokenize("a!!"), (std::vector<int64_t>{3, 2, 2}));  // "!" split out
}

TEST_F(ClipTokenizerFolderTest, SpecialTokensMapOverridesConfigOnlyWithoutAddedTokensDecoder) {
  Write("tokenizer_config.json", R"({"pad_token": "<|endoftext|>"})");
  Write("special_tokens_map.json", R"({"pad_token": {"content": "!", "lstrip": false}})");
  auto tok = ClipTokenizer::FromFolder(Dir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->pad_id(), 2);
  Write("tokenizer_config.json",
        R"({"pad_token": "<|endoftext|>",)"
        R"( "added_tokens_decoder": {"8": {"content": "<|endoftext|>"}}})");
  tok = ClipTokenizer::FromFolder(Dir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->pad_id(), 8);
}

void ExpectError(const absl::StatusOr<ClipTokenizer>& tok, absl::StatusCode code,
                 const std::string& mention) {
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), code) << tok.status();
  EXPECT_NE(tok.status().message().find(mention), std::string::npos) << tok.status();
}

TEST_F(ClipTokenizerFolderTest, MissingFilesAreNamed) {
  ExpectError(ClipTokenizer::FromFolder(Dir() + "/nope"), absl::StatusCode::kNotFound,
              "vocab.json");
  std::filesystem::remove(dir_ / "merges.txt");
  ExpectError(ClipTokenizer::FromFolder(Dir()), absl::StatusCode::kNotFound, "merges.txt");
}

TEST_F(ClipTokenizerFolderTest, MalformedFilesAreNamed) {
  Write("tokenizer_config.json", "{\"pad_token\": ");
  ExpectError(ClipTokenizer::FromFolder(Dir()), absl::StatusCode::kInvalidArgument,
              "tokenizer_config.json");
  Write("tokenizer_config.json", R"({"model_max_length": 1e30})");
  ExpectError(ClipTokenizer::FromFolder(Dir()), absl::StatusCode::kInvalidArgument,
              "model_max_length");
  Write("tokenizer_config.json", R"({"pad_token": {"content": "!", "rstrip": true}})");
  ExpectError(ClipTokenizer::FromFolder(Dir()), absl::StatusCode::kInvalidArgument, "rstrip");
  Write("tokenizer_config.json", R"({"pad_token": "[PAD]"})");
  ExpectError(ClipTokenizer::FromFolder(Dir()), absl::StatusCode::kInvalidArgument, "[PAD]");
  Write("tokenizer_config.json", "{}");
  Write("special_tokens_map.json", "[1, 2]");
  ExpectError(ClipTokenizer::FromFolder(Dir()), absl::StatusCode::kInvalidArgument,
              "special_tokens_map.json");
  std::filesystem::remove(dir_ / "special_tokens_map.json");
  Write("merges.txt", "#version: 0.2\na b\nab\n");
  ExpectError(ClipTokenizer::FromFolder(Dir()), absl::StatusCode::kInvalidArgument,
              "merges.txt: line 3");
  Write("vocab.json", "{\"a\": 0,");
  ExpectError(ClipTokenizer::FromFolder(Dir()), absl::StatusCode::kInvalidArgument, "vocab.json");
  Write("vocab.json", R"({"a": "zero"})");
  ExpectError(ClipTokenizer::FromFolder(Dir()), absl::StatusCode::kInvalidArgument, "vocab.json");
}

}  // namespace
}  // namespace tlcm
