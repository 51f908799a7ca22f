#include "pipelines/prompt_cache.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace tlcm {

std::vector<torch::Tensor> EncodePromptsCached(PromptCache& cache,
                                               const std::vector<ImageRequest>& requests,
                                               const std::vector<size_t>& images,
                                               const PromptEncoder& encode, int& hits,
                                               int& misses) {
  std::vector<std::string> keys, miss_keys, miss_prompts, miss_prompts_2;
  for (size_t i : images) {
    const std::string& prompt = requests[i].prompt;
    const std::string& second = requests[i].prompt_2.empty() ? prompt : requests[i].prompt_2;
    // Length-prefixed so that no two (prompt, prompt_2) pairs share a key.
    std::string key = absl::StrCat(prompt.size(), ":", prompt, second);
    if (cache.Find(key) == nullptr &&
        std::find(miss_keys.begin(), miss_keys.end(), key) == miss_keys.end()) {
      miss_keys.push_back(key);
      miss_prompts.push_back(prompt);
      miss_prompts_2.push_back(second);
    }
    keys.push_back(std::move(key));
  }
  std::map<std::string, std::vector<torch::Tensor>> fresh;
  if (!miss_keys.empty()) {
    const std::vector<torch::Tensor> encoded = encode(miss_prompts, miss_prompts_2);
    for (size_t m = 0; m < miss_keys.size(); ++m) {
      std::vector<torch::Tensor> rows;
      for (const torch::Tensor& t : encoded)
        rows.push_back(t.narrow(0, static_cast<int64_t>(m), 1));
      cache.Insert(miss_keys[m], rows);
      fresh[miss_keys[m]] = std::move(rows);
    }
  }
  // An image counts as a miss when its prompt had to be encoded in this run.
  misses = 0;
  std::vector<std::vector<torch::Tensor>> parts;
  for (const std::string& key : keys) {
    auto it = fresh.find(key);
    const std::vector<torch::Tensor>* rows = it != fresh.end() ? &it->second : cache.Find(key);
    if (it != fresh.end()) ++misses;
    if (parts.empty()) parts.resize(rows->size());
    for (size_t t = 0; t < rows->size(); ++t) parts[t].push_back((*rows)[t]);
  }
  hits = static_cast<int>(keys.size()) - misses;
  std::vector<torch::Tensor> out;
  for (auto& p : parts) out.push_back(torch::cat(p));
  return out;
}

}  // namespace tlcm
