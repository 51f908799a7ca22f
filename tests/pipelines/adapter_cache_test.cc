#include "pipelines/adapter_cache.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "loaders/safetensors.h"
#include "models/layers/loaded_layers.h"
#include "tests/test_util.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;

// A model with one Linear layer `proj` [out 4, in 6].
struct OneLayerImpl : torch::nn::Module {
  OneLayerImpl() {
    proj = register_module("proj", LoadedLinear(6, 4));
    testing::FillRandom(*this, 1);
  }
  LoadedLinear proj{nullptr};
};
TORCH_MODULE(OneLayer);

// Writes <dir>/<name>.safetensors: a rank-`rank` LoRA for `proj` (float32: A 6 * rank and B
// 4 * rank numbers, 40 * rank bytes).
void WriteAdapter(const fs::path& dir, const std::string& name, int64_t rank) {
  ASSERT_TRUE(WriteSafetensors((dir / (name + ".safetensors")).string(),
                               {{"proj.lora_A.weight", torch::ones({rank, 6})},
                                {"proj.lora_B.weight", torch::ones({4, rank})}})
                  .ok());
}

class AdapterCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTempDir("adapter_cache");
    for (const char* name : {"a", "b", "c"}) WriteAdapter(dir_, name, 2);  // 80 bytes each
    fs::create_directories(dir_ / "folder-style");
    ASSERT_TRUE(
        WriteSafetensors((dir_ / "folder-style" / "pytorch_lora_weights.safetensors").string(),
                         {{"unet.proj.lora_A.weight", torch::ones({1, 6})},
                          {"unet.proj.lora_B.weight", torch::ones({4, 1})}})
            .ok());
    std::ofstream(dir_ / "notes.txt") << "not an adapter";
  }

  std::unique_ptr<AdapterCache> Make(int64_t budget) {
    return MakeAdapterCache(dir_.string(), budget, model_.get(), torch::kCPU, torch::kFloat32);
  }

  fs::path dir_;
  OneLayer model_;
};

TEST_F(AdapterCacheTest, ListsFilesAndFolders) {
  EXPECT_EQ(Make(1000)->Names(), (std::vector<std::string>{"a", "b", "c", "folder-style"}));
  EXPECT_TRUE(
      MakeAdapterCache("", 1000, model_.get(), torch::kCPU, torch::kFloat32)->Names().empty());
}

TEST_F(AdapterCacheTest, LoadsOnFirstUseAndCountsHitsMissesBytes) {
  auto cache = Make(1000);
  auto a = cache->Get("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->name(), "a");
  EXPECT_EQ((*a)->bytes(), 80);
  ASSERT_EQ((*a)->layers().size(), 1u);
  EXPECT_EQ((*a)->layers()[0].layer, model_->proj.get());
  auto again = cache->Get("a");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), a->get());
  auto folder = cache->Get("folder-style");
  ASSERT_TRUE(folder.ok()) << folder.status();
  const AdapterCache::Stats stats = cache->stats();
  EXPECT_EQ(stats.hits, 1);
  EXPECT_EQ(stats.misses, 2);
  EXPECT_EQ(stats.bytes, 80 + 40);
  EXPECT_EQ(stats.entries, 2);
  EXPECT_GT(stats.load_seconds, 0);
}

TEST_F(AdapterCacheTest, EvictsTheLeastRecentlyUsedBeyondTheBudget) {
  auto cache = Make(170);  // two adapters of 80 bytes
  ASSERT_TRUE(cache->Get("a").ok());
  auto b = cache->Get("b");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(cache->Get("a").ok());  // a is now the most recent
  ASSERT_TRUE(cache->Get("c").ok());  // evicts b
  AdapterCache::Stats stats = cache->stats();
  EXPECT_EQ(stats.evictions, 1);
  EXPECT_EQ(stats.bytes, 160);
  EXPECT_EQ((*b)->layers().size(), 1u);  // still valid while held
  ASSERT_TRUE(cache->Get("a").ok());
  EXPECT_EQ(cache->stats().misses, 3);
  ASSERT_TRUE(cache->Get("b").ok());  // loaded again
  EXPECT_EQ(cache->stats().misses, 4);
}

TEST_F(AdapterCacheTest, ErrorsNameTheAdapter) {
  auto cache = Make(50);
  auto missing = cache->Get("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'nope'"), std::string::npos) << missing.status();
  for (const std::string& bad :
       std::vector<std::string>{"../a", "a/b", ".hidden", "", std::string(300, 'x')}) {
    auto status = cache->Get(bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_LT(status.message().size(), 200u) << bad;
  }
  auto big = cache->Get("a");  // 80 bytes > budget 50
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("'a'"), std::string::npos) << big.status();
  ASSERT_TRUE(WriteSafetensors((dir_ / "wrong.safetensors").string(),
                               {{"other.lora_A.weight", torch::ones({2, 6})},
                                {"other.lora_B.weight", torch::ones({4, 2})}})
                  .ok());
  auto wrong = Make(1000)->Get("wrong");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("matches no module"), std::string::npos)
      << wrong.status();
}

TEST_F(AdapterCacheTest, ConcurrentCallersShareOneLoad) {
  std::atomic<int> loads{0};
  AdapterCache cache(dir_.string(), 1000, [&](const std::string& name, const std::string& path) {
    ++loads;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return DeviceAdapter::Load(name, path, *model_, torch::kCPU, torch::kFloat32);
  });
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] { ok += cache.Get("a").ok() ? 1 : 0; });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(cache.stats().misses, 1);
  EXPECT_EQ(cache.stats().hits, 3);
}

}  // namespace
}  // namespace tlcm
