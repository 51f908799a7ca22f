#include "text/t5_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "loaders/json_config.h"
#include "text/utf8.h"
#include "util/status_macros.h"

namespace tlcm {
namespace {

using nlohmann::json;

// transformers' SPECIAL_TOKENS_ATTRIBUTES minus additional_special_tokens.
constexpr const char* kSpecialTokenKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                             "pad_token", "cls_token", "mask_token"};

// An added token as transformers' AddedToken describes it (normalized/special do not change
// slow T5 tokenization).
struct TokenSpec {
  std::string content;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A token written as a string or as an AddedToken object {"content": ..., "lstrip": ...}.
TokenSpec ParseTokenSpec(const json& value) {
  if (value.is_string()) return {value.get<std::string>()};
  if (!value.is_object()) throw std::invalid_argument("a token must be a string or an object");
  return {value.at("content").get<std::string>(), ValueOr(value, "lstrip", false),
          ValueOr(value, "rstrip", false), ValueOr(value, "single_word", false)};
}

// What the folder's JSON files say about the tokens.
struct TokenSettings {
  int extra_ids = 100;
  std::map<std::string, TokenSpec> special;             // key of kSpecialTokenKeys -> token
  std::optional<std::vector<TokenSpec>> additional;     // additional_special_tokens
  std::optional<std::map<int64_t, TokenSpec>> overlay;  // added_tokens_decoder (or legacy files)
};

// Reads `path` when it exists.
absl::StatusOr<std::optional<json>> ReadOptionalJson(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::optional<json>();
  TLCM_ASSIGN_OR_RETURN(json value, ReadJsonFile(path));
  return std::optional<json>(std::move(value));
}

// Special tokens and additional_special_tokens of a tokenizer_config.json or
// special_tokens_map.json (later files override earlier ones; additional tokens are appended
// unless already listed).
void ReadSpecialTokens(const json& file, TokenSettings* settings) {
  for (const char* key : kSpecialTokenKeys) {
    auto it = file.find(key);
    if (it != file.end() && !it->is_null()) settings->special[key] = ParseTokenSpec(*it);
  }
  auto it = file.find("additional_special_tokens");
  if (it == file.end() || it->is_null()) return;
  if (!settings->additional) settings->additional.emplace();
  for (const json& token : it->get<std::vector<json>>()) {
    TokenSpec spec = ParseTokenSpec(token);
    const bool listed = std::any_of(settings->additional->begin(), settings->additional->end(),
                                    [&](const TokenSpec& t) { return t.content == spec.content; });
    if (!listed) settings->additional->push_back(std::move(spec));
  }
}

absl::StatusOr<TokenSettings> ReadTokenSettings(const std::string& dir) {
  TokenSettings settings;
  settings.special["eos_token"] = {"</s>"};  // T5Tokenizer's defaults
  settings.special["unk_token"] = {"<unk>"};
  settings.special["pad_token"] = {"<pad>"};

  const std::string config_path = dir + "/tokenizer_config.json";
  TLCM_ASSIGN_OR_RETURN(auto config, ReadOptionalJson(config_path));
  if (config) {
    TLCM_RETURN_IF_ERROR(
        ParseConfig(config_path, *config, [&](const json& c) {
          if (!ValueOr(c, "legacy", true)) {
            throw std::invalid_argument(
                "legacy=false (the non-legacy T5 tokenization) is not supported");
          }
          if (!ValueOr(c, "sp_model_kwargs", json::object()).empty()) {
            throw std::invalid_argument(
                "sp_model_kwargs (sentencepiece sampling options) are not supported");
          }
          settings.extra_ids = ValueOr(c, "extra_ids", 100);
          if (settings.extra_ids < 0) throw std::invalid_argument("extra_ids is negative");
          ReadSpecialTokens(c, &settings);
          auto it = c.find("added_tokens_decoder");
          if (it != c.end() && !it->is_null()) {
            settings.overlay.emplace();
            for (const auto& [key, token] : it->items()) {
              int64_t id = 0;
              if (!absl::SimpleAtoi(key, &id)) {
                throw std::invalid_argument(
                    absl::StrCat("added_tokens_decoder key \"", key, "\" is not an id"));
              }
              (*settings.overlay)[id] = ParseTokenSpec(token);
            }
          }
          return true;
        }).status());
  }
  if (settings.overlay) return settings;

  // Without added_tokens_decoder transformers takes its legacy route: special_tokens_map.json
  // refines the special tokens, added_tokens.json (no stripping) and tokenizer.json's
  // added_tokens give the added tokens.
  settings.overlay.emplace();
  const std::string map_path = dir + "/special_tokens_map.json";
  TLCM_ASSIGN_OR_RETURN(auto map, ReadOptionalJson(map_path));
  if (map) {
    TLCM_RETURN_IF_ERROR(ParseConfig(map_path, *map, [&](const json& m) {
                           ReadSpecialTokens(m, &settings);
                           return true;
                         }).status());
  }
  const std::string added_path = dir + "/added_tokens.json";
  TLCM_ASSIGN_OR_RETURN(auto added, ReadOptionalJson(added_path));
  if (added) {
    TLCM_RETURN_IF_ERROR(ParseConfig(added_path, *added, [&](const json& a) {
                           for (const auto& [content, id] : a.items()) {
                             (*settings.overlay)[id.get<int64_t>()] = {content};
                           }
                           return true;
                         }).status());
  }
  const std::string fast_path = dir + "/tokenizer.json";
  TLCM_ASSIGN_OR_RETURN(auto fast, ReadOptionalJson(fast_path));
  if (fast) {
    TLCM_RETURN_IF_ERROR(ParseConfig(fast_path, *fast, [&](const json& f) {
                           for (const json& token : f.at("added_tokens")) {
                             (*settings.overlay)[token.at("id").get<int64_t>()] =
                                 ParseTokenSpec(token);
                           }
                           return true;
                         }).status());
  }
  return settings;
}

// Python's str.isspace() for one code point.
bool IsPythonSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Python's str.lstrip() (`left`) or str.rstrip() of valid UTF-8 `text`.
std::string StripPythonSpace(const std::string& text, bool left) {
  const std::vector<char32_t> cps = DecodeUtf8(text);
  size_t begin = 0, end = cps.size();
  if (left) {
    while (begin < end && IsPythonSpace(cps[begin])) ++begin;
  } else {
    while (end > begin && IsPythonSpace(cps[end - 1])) --end;
  }
  return EncodeUtf8(std::u32string(cps.begin() + begin, cps.begin() + end));
}

}  // namespace

absl::StatusOr<T5Tokenizer> T5Tokenizer::FromFolder(const std::string& dir) {
  TLCM_ASSIGN_OR_RETURN(SentencePieceModel model,
                        SentencePieceModel::FromFile(dir + "/spiece.model"));
  TLCM_ASSIGN_OR_RETURN(TokenSettings settings, ReadTokenSettings(dir));
  const std::string config_path = dir + "/tokenizer_config.json";
  auto invalid = [&config_path](std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ": ", std::string(what)));
  };

  // T5Tokenizer's own sentinels: <extra_id_N> at vocab_size - 1 + extra_ids - N.
  int sentinels = settings.extra_ids;
  if (settings.additional) {
    sentinels = static_cast<int>(std::count_if(
        settings.additional->begin(), settings.additional->end(),
        [](const TokenSpec& t) { return absl::StrContains(t.content, "<extra_id_"); }));
    if (sentinels != settings.extra_ids) {
      return invalid(absl::StrCat("extra_ids is ", settings.extra_ids,
                                  " but additional_special_tokens holds ", sentinels,
                                  " <extra_id_N> tokens"));
    }
  }
  std::map<int64_t, TokenSpec> decoder;
  for (int n = 0; n < sentinels; ++n) {
    decoder[model.size() - 1 + settings.extra_ids - n] = {absl::StrCat("<extra_id_", n, ">"), true,
                                                          true};
  }
  for (auto& [id, token] : *settings.overlay) decoder[id] = token;

  T5Tokenizer tokenizer(std::move(model));
  auto& added = tokenizer.added_;
  auto add = [&](const TokenSpec& token, int64_t id) -> absl::Status {
    if (token.content.empty()) return invalid(absl::StrCat("added token ", id, " is empty"));
    if (token.single_word) {
      return invalid(
          absl::StrCat("added token \"", token.content, "\" is single_word (unsupported)"));
    }
    if (!added.emplace(token.content, AddedToken{id, token.lstrip, token.rstrip}).second) {
      return invalid(absl::StrCat("added token \"", token.content, "\" appears twice"));
    }
    return absl::OkStatus();
  };
  for (const auto& [id, token] : decoder) TLCM_RETURN_IF_ERROR(add(token, id));

  // Special tokens that no added token provides must be pieces of the model.
  std::vector<TokenSpec> specials;
  for (const auto& [key, token] : settings.special) specials.push_back(token);
  if (settings.additional) {
    specials.insert(specials.end(), settings.additional->begin(), settings.additional->end());
  }
  for (const TokenSpec& token : specials) {
    if (added.contains(token.content)) continue;
    if (!tokenizer.model_.HasPiece(token.content)) {
      return invalid(absl::StrCat("special token \"", token.content,
                                  "\" is neither an added token nor a piece of spiece.model"));
    }
    TLCM_RETURN_IF_ERROR(add(token, tokenizer.model_.PieceToId(token.content)));
  }

  // With no token inside another, transformers' trie split is a plain leftmost-match split.
  auto& lengths = tokenizer.added_lengths_;
  for (const auto& [content, token] : added) {
    for (const auto& [other, other_token] : added) {
      if (content != other && absl::StrContains(content, other)) {
        return invalid(absl::StrCat("added token \"", content, "\" contains added token \"", other,
                                    "\" (unsupported)"));
      }
    }
    lengths.push_back(content.size());
  }
  std::sort(lengths.begin(), lengths.end(), std::greater<size_t>());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  tokenizer.eos_id_ = added.at(settings.special.at("eos_token").content).id;
  tokenizer.pad_id_ = added.at(settings.special.at("pad_token").content).id;
  return tokenizer;
}

const T5Tokenizer::AddedToken* T5Tokenizer::FindAdded(std::string_view text) const {
  auto it = added_.find(absl::string_view(text.data(), text.size()));
  return it == added_.end() ? nullptr : &it->second;
}

int64_t T5Tokenizer::TokenToId(std::string_view token) const {
  if (const AddedToken* added = FindAdded(token)) return added->id;
  return model_.PieceToId(token);
}

std::vector<int64_t> T5Tokenizer::Tokenize(std::string_view text) const {
  std::string clean;  // valid UTF-8: each invalid byte becomes U+FFFD
  clean.reserve(text.size());
  for (char32_t c : DecodeUtf8(text)) AppendUtf8(c, clean);

  // 1. Split on added tokens, leftmost first (at most one can match at a position, since none
  //    contains another).
  std::vector<std::string> parts;
  size_t part_start = 0;
  for (size_t i = 0; i < clean.size();) {
    size_t matched = 0;
    for (size_t length : added_lengths_) {
      if (length <= clean.size() - i && FindAdded(std::string_view(clean).substr(i, length))) {
        matched = length;
        break;
      }
    }
    if (matched == 0) {
      i += Utf8SequenceLength(clean[i]);
      continue;
    }
    if (i > part_start) parts.push_back(clean.substr(part_start, i - part_start));
    parts.push_back(clean.substr(i, matched));
    i += matched;
    part_start = i;
  }
  if (part_start < clean.size()) parts.push_back(clean.substr(part_start));

  // 2. Tokens that strip eat the Python whitespace of their neighbours (transformers edits the
  //    list in place, left to right, so a neighbour is tested as it stands at that moment).
  for (size_t i = 0; i < parts.size(); ++i) {
    const AddedToken* token = FindAdded(parts[i]);
    if (token == nullptr) continue;
    if (token->rstrip && i + 1 < parts.size()) parts[i + 1] = StripPythonSpace(parts[i + 1], true);
    if (token->lstrip && i > 0) parts[i - 1] = StripPythonSpace(parts[i - 1], false);
  }

  // 3. Added tokens map to their ids; other text goes through sentencepiece.
  std::vector<int64_t> ids;
  for (const std::string& part : parts) {
    if (part.empty()) continue;
    if (const AddedToken* token = FindAdded(part)) {
      ids.push_back(token->id);
      continue;
    }
    for (const auto& piece : model_.Encode(part)) ids.push_back(TokenToId(piece.piece));
  }
  return ids;
}

std::vector<int64_t> T5Tokenizer::Encode(std::string_view text, int max_length) const {
  std::vector<int64_t> ids = Tokenize(text);
  const size_t limit = static_cast<size_t>(std::max(max_length, 1));
  if (ids.size() > limit - 1) ids.resize(limit - 1);
  if (ids.empty() || ids.back() != eos_id_) ids.push_back(eos_id_);
  ids.resize(limit, pad_id_);
  return ids;
}

}  // namespace tlcm
