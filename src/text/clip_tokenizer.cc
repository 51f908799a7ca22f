#include "text/clip_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "loaders/json_config.h"
#include "text/clip_pretokenizer.h"
#include "text/utf8.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

// CLIPTokenizer reads merges.txt lines [1, 49152 - 256 - 2] (line 0 is the "#version" header).
constexpr size_t kMaxMerges = 49152 - 256 - 2;
constexpr int kDefaultMaxLength = 77;
constexpr int kMaxMaxLength = 1 << 20;
constexpr size_t kCacheCapacity = 1 << 16;  // words
constexpr size_t kMaxCachedWordBytes = 256;

// The special-token attributes of transformers' tokenizers, in the order they are registered.
constexpr const char* kSpecialKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                        "pad_token", "cls_token", "mask_token"};

// One special or added token as the json files spell it.
struct TokenSpec {
  std::string content;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A token is either a plain string or an AddedToken dict {"content": ..., "lstrip": ..., ...}.
// Throws nlohmann::json::exception on other shapes (callers run inside ParseConfig).
TokenSpec ParseTokenSpec(const nlohmann::json& value) {
  TokenSpec spec;
  if (value.is_string()) {
    spec.content = value.get<std::string>();
  } else {
    spec.content = value.at("content").get<std::string>();
    spec.lstrip = ValueOr(value, "lstrip", false);
    spec.rstrip = ValueOr(value, "rstrip", false);
    spec.single_word = ValueOr(value, "single_word", false);
  }
  if (spec.lstrip || spec.rstrip || spec.single_word) {
    throw std::invalid_argument(absl::StrCat("token '", spec.content,
                                             "': lstrip / rstrip / single_word are not supported"));
  }
  return spec;
}

// Special tokens of one file, with that file's path (for errors).
struct SpecialTokens {
  std::map<std::string, std::pair<TokenSpec, std::string>> by_key;  // "bos_token" -> (spec, path)
  std::vector<std::pair<TokenSpec, std::string>> additional;        // additional_special_tokens

  // Values of `other` replace these (transformers lets special_tokens_map.json override).
  void Update(const SpecialTokens& other) {
    for (const auto& [key, value] : other.by_key) by_key[key] = value;
    additional.insert(additional.end(), other.additional.begin(), other.additional.end());
  }
};

// Reads the special-token keys of tokenizer_config.json / special_tokens_map.json (`path` is only
// recorded). Throws like ParseTokenSpec; an empty content is rejected.
SpecialTokens ParseSpecialTokensAt(const nlohmann::json& json, const std::string& path) {
  SpecialTokens out;
  auto parse = [&](const nlohmann::json& value, const std::string& what) {
    TokenSpec spec = ParseTokenSpec(value);
    if (spec.content.empty()) throw std::invalid_argument(what + " is empty");
    return std::make_pair(std::move(spec), path);
  };
  for (const char* key : kSpecialKeys) {
    auto it = json.find(key);
    if (it != json.end() && !it->is_null()) out.by_key[key] = parse(*it, key);
  }
  if (auto it = json.find("additional_special_tokens"); it != json.end() && !it->is_null()) {
    for (const auto& t : *it) out.additional.push_back(parse(t, "additional_special_tokens"));
  }
  return out;
}

// "added_tokens_decoder": {"<id>": {"content": ..., ...}, ...} -> content -> id.
std::map<std::string, int64_t> ParseAddedTokensDecoder(const nlohmann::json& json) {
  std::map<std::string, int64_t> ids;
  for (const auto& [key, token] : json.items()) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(key, &id)) {
      throw std::invalid_argument(
          absl::StrCat("added_tokens_decoder key '", key, "' is not an id"));
    }
    ids[ParseTokenSpec(token).content] = id;
  }
  return ids;
}

bool FileExists(const std::string& path) { return std::ifstream(path).good(); }

absl::StatusOr<nlohmann::json> ReadOptionalJson(const std::string& path) {
  if (!FileExists(path)) return nlohmann::json::object();
  TLCM_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  }
  return json;
}

absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> ReadVocab(const std::string& path) {
  TLCM_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  }
  absl::flat_hash_map<std::string, int64_t> vocab;
  for (const auto& [token, id] : json.items()) {
    if (!id.is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": id of '", token, "' is not an integer"));
    }
    vocab[token] = id.get<int64_t>();
  }
  return vocab;
}

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

// merges.txt as transformers reads it: the file stripped of surrounding whitespace, split into
// lines; line 0 is a header; each further line is "left right" (at most kMaxMerges of them).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadMerges(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  size_t begin = 0, end = text.size();
  while (begin < end && IsAsciiSpace(text[begin])) ++begin;
  while (end > begin && IsAsciiSpace(text[end - 1])) --end;
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_start = begin;
  for (size_t line = 0; line_start <= end && merges.size() < kMaxMerges; ++line) {
    size_t line_end = text.find('\n', line_start);
    if (line_end == std::string::npos || line_end > end) line_end = end;
    if (line > 0) {  // line 0: "#version: ..." header
      std::vector<std::string> parts;
      for (size_t i = line_start; i < line_end;) {
        while (i < line_end && IsAsciiSpace(text[i])) ++i;
        size_t j = i;
        while (j < line_end && !IsAsciiSpace(text[j])) ++j;
        if (j > i) parts.emplace_back(text, i, j - i);
        i = j;
      }
      if (parts.size() != 2) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": line ", line + 1, ": expected two symbols separated by a space"));
      }
      merges.emplace_back(std::move(parts[0]), std::move(parts[1]));
    }
    line_start = line_end + 1;
  }
  return merges;
}

}  // namespace

ClipTokenizer::ClipTokenizer(ClipTokenizer&&) noexcept = default;
ClipTokenizer& ClipTokenizer::operator=(ClipTokenizer&&) noexcept = default;
ClipTokenizer::~ClipTokenizer() = default;

absl::StatusOr<ClipTokenizer> ClipTokenizer::FromFolder(const std::string& dir) {
  const std::string vocab_path = dir + "/vocab.json";
  const std::string merges_path = dir + "/merges.txt";
  const std::string config_path = dir + "/tokenizer_config.json";
  const std::string map_path = dir + "/special_tokens_map.json";
  const std::string added_path = dir + "/added_tokens.json";

  TLCM_ASSIGN_OR_RETURN(auto vocab, ReadVocab(vocab_path));
  TLCM_ASSIGN_OR_RETURN(auto merges, ReadMerges(merges_path));
  TLCM_ASSIGN_OR_RETURN(nlohmann::json config, ReadOptionalJson(config_path));

  // Special tokens by attribute, and added tokens (content -> id).
  SpecialTokens specials;
  std::map<std::string, int64_t> added_ids;
  TLCM_ASSIGN_OR_RETURN(SpecialTokens from_config,
                        ParseConfig(config_path, config, [&](const nlohmann::json& j) {
                          return ParseSpecialTokensAt(j, config_path);
                        }));
  specials.Update(from_config);
  if (auto it = config.find("added_tokens_decoder"); it != config.end()) {
    TLCM_ASSIGN_OR_RETURN(added_ids, ParseConfig(config_path, *it, ParseAddedTokensDecoder));
  } else {
    // transformers' legacy path: special_tokens_map.json overrides, added_tokens.json adds.
    TLCM_ASSIGN_OR_RETURN(nlohmann::json map, ReadOptionalJson(map_path));
    TLCM_ASSIGN_OR_RETURN(SpecialTokens from_map,
                          ParseConfig(map_path, map, [&](const nlohmann::json& j) {
                            return ParseSpecialTokensAt(j, map_path);
                          }));
    specials.Update(from_map);
    TLCM_ASSIGN_OR_RETURN(nlohmann::json added, ReadOptionalJson(added_path));
    TLCM_ASSIGN_OR_RETURN(added_ids, ParseConfig(added_path, added, [](const nlohmann::json& j) {
                            std::map<std::string, int64_t> ids;
                            for (const auto& [content, id] : j.items())
                              ids[content] = id.get<int64_t>();
                            return ids;
                          }));
  }
  const std::pair<const char*, const char*> kDefaults[] = {{"bos_token", "<|startoftext|>"},
                                                           {"eos_token", "<|endoftext|>"},
                                                           {"unk_token", "<|endoftext|>"},
                                                           {"pad_token", "<|endoftext|>"}};
  for (const auto& [key, content] : kDefaults) {
    if (!specials.by_key.count(key)) {
      specials.by_key[key] = {TokenSpec{content}, dir + " (CLIPTokenizer default)"};
    }
  }

  // Special tokens that are not added tokens yet become ones, with their vocab.json id.
  auto register_special = [&](const TokenSpec& spec, const std::string& what,
                              const std::string& path) -> absl::Status {
    if (added_ids.count(spec.content)) return absl::OkStatus();
    auto it = vocab.find(spec.content);
    if (it == vocab.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " '", spec.content,
                                                     "' is neither in ", vocab_path,
                                                     " nor an added token"));
    }
    added_ids[spec.content] = it->second;
    return absl::OkStatus();
  };
  for (const char* key : kSpecialKeys) {
    if (auto it = specials.by_key.find(key); it != specials.by_key.end()) {
      TLCM_RETURN_IF_ERROR(register_special(it->second.first, key, it->second.second));
    }
  }
  for (const auto& [spec, path] : specials.additional) {
    TLCM_RETURN_IF_ERROR(register_special(spec, "additional_special_tokens", path));
  }

  // Token -> id as transformers converts tokens: added tokens first, then the vocab.
  auto find_id = [&](const std::string& token) -> std::optional<int64_t> {
    if (auto it = added_ids.find(token); it != added_ids.end()) return it->second;
    if (auto it = vocab.find(token); it != vocab.end()) return it->second;
    return std::nullopt;
  };
  ClipTokenizer tok;
  // Registered above, so these have ids.
  tok.bos_id_ = *find_id(specials.by_key["bos_token"].first.content);
  tok.eos_id_ = *find_id(specials.by_key["eos_token"].first.content);
  tok.pad_id_ = *find_id(specials.by_key["pad_token"].first.content);
  const int64_t unk_id = *find_id(specials.by_key["unk_token"].first.content);

  auto parse_max_length = [](const nlohmann::json& j) {
    const double value = ValueOr<double>(j, "model_max_length", kDefaultMaxLength);
    if (value < 2 || value > kMaxMaxLength || value != static_cast<int>(value)) {
      throw std::invalid_argument(absl::StrCat("model_max_length ", value,
                                               " is not an integer in [2, ", kMaxMaxLength, "]"));
    }
    return static_cast<int>(value);
  };
  TLCM_ASSIGN_OR_RETURN(tok.max_length_, ParseConfig(config_path, config, parse_max_length));

  tok.bpe_ = std::make_unique<ByteLevelBpe>(merges, "</w>");
  tok.symbol_ids_.resize(tok.bpe_->symbol_count());
  for (int32_t s = 0; s < tok.bpe_->symbol_count(); ++s) {
    tok.symbol_ids_[s] = find_id(tok.bpe_->symbol(s)).value_or(unk_id);
  }
  for (const char* word : {"<|startoftext|>", "<|endoftext|>"}) {
    tok.whole_words_[word] = find_id(word).value_or(unk_id);
  }
  for (const auto& [content, id] : added_ids) {
    if (content.empty()) continue;
    const std::vector<char32_t> cps = DecodeUtf8(content);
    tok.added_.push_back(AddedToken{std::u32string(cps.begin(), cps.end()), id});
  }
  std::stable_sort(
      tok.added_.begin(), tok.added_.end(),
      [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  tok.cache_ = std::make_unique<WordIdCache>(kCacheCapacity);
  return tok;
}

std::vector<int64_t> ClipTokenizer::WordIds(const std::string& word) const {
  if (auto it = whole_words_.find(word); it != whole_words_.end()) return {it->second};
  if (auto cached = cache_->Lookup(word)) return *std::move(cached);
  std::vector<int64_t> ids;
  for (int32_t s : bpe_->Apply(word)) ids.push_back(symbol_ids_[s]);
  if (word.size() <= kMaxCachedWordBytes) cache_->Insert(word, ids);
  return ids;
}

std::vector<int64_t> ClipTokenizer::Tokenize(std::string_view text) const {
  const std::vector<char32_t> decoded = DecodeUtf8(text);
  const std::u32string_view s(decoded.data(), decoded.size());
  std::vector<int64_t> ids;
  // The text between added tokens goes through the pre-tokenizer and BPE on its own.
  size_t piece_start = 0;
  auto flush_piece = [&](size_t piece_end) {
    if (piece_end == piece_start) return;
    const std::u32string_view piece = s.substr(piece_start, piece_end - piece_start);
    for (const std::string& word : ClipPreTokenize(piece)) {
      const std::vector<int64_t> word_ids = WordIds(word);
      ids.insert(ids.end(), word_ids.begin(), word_ids.end());
    }
  };
  // Added tokens: leftmost match first, the longest one at that position.
  for (size_t i = 0; i < s.size();) {
    const AddedToken* match = nullptr;
    for (const AddedToken& t : added_) {
      if (s.size() - i >= t.content.size() && s.compare(i, t.content.size(), t.content) == 0) {
        match = &t;
        break;
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    flush_piece(i);
    ids.push_back(match->id);
    i += match->content.size();
    piece_start = i;
  }
  flush_piece(s.size());
  return ids;
}

std::vector<int64_t> ClipTokenizer::Encode(std::string_view text) const {
  std::vector<int64_t> ids = Tokenize(text);
  const size_t keep = std::min(ids.size(), static_cast<size_t>(max_length_ - 2));
  std::vector<int64_t> out;
  out.reserve(max_length_);
  out.push_back(bos_id_);
  out.insert(out.end(), ids.begin(), ids.begin() + keep);
  out.push_back(eos_id_);
  out.resize(max_length_, pad_id_);
  return out;
}

}  // namespace tlcm
