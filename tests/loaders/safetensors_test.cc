#include "loaders/safetensors.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loaders/weight_store.h"
#include "tests/test_util.h"

namespace tlcm {
namespace {

namespace fs = std::filesystem;

// Writes a raw safetensors file with the given header text and data bytes.
std::string WriteRaw(const std::string& name, const std::string& header, size_t data_bytes) {
  const std::string path = testing::FreshTempPath(name);
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << std::string(data_bytes, '\0');
  return path;
}

TEST(SafetensorsTest, RoundTripsEveryDtype) {
  std::map<std::string, torch::Tensor> tensors = {
      {"a", torch::randn({2, 3})},
      {"b", torch::randn({4}).to(torch::kFloat16)},
      {"c", torch::randn({1, 2, 2}).to(torch::kBFloat16)},
      {"empty", torch::zeros({0, 5})}};
  const std::string path = testing::FreshTempPath("roundtrip.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  for (const auto& [key, t] : tensors) {
    auto got = (*file)->Get(key);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->scalar_type(), t.scalar_type()) << key;
    EXPECT_TRUE(torch::equal(*got, t)) << key;
  }
  auto missing = (*file)->Get("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
}

TEST(SafetensorsTest, TensorsOutliveTheFileHandleAndWritesStayPrivate) {
  const std::string path = testing::FreshTempPath("cow.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"w", torch::ones({8})}}).ok());
  torch::Tensor w;
  {
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok());
    w = (*file)->Get("w").value();
  }
  w.mul_(3);  // the mapping is still alive and copy-on-write
  EXPECT_EQ(w.sum().item<float>(), 24.0f);
  auto again = SafetensorsFile::Open(path);
  EXPECT_EQ((*again)->Get("w").value().sum().item<float>(), 8.0f);
}

struct BadCase {
  const char* name;
  std::string header;
  size_t data_bytes;
  const char* message_part;
};

TEST(SafetensorsTest, RejectsCorruptHeadersNamingFileAndKey) {
  const std::vector<BadCase> cases = {
      {"notjson", "{oops", 0, "not a JSON object"},
      {"dtype", R"({"k":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8, "I64"},
      {"outside", R"({"k":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, "outside"},
      {"size", R"({"k":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "shape x dtype"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"k":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "overlaps"},
      {"shape", R"({"k":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "shape"},
      {"fields", R"({"k":{"dtype":"F32"}})", 0, "data_offsets"},
  };
  for (const auto& c : cases) {
    const std::string path = WriteRaw(std::string(c.name) + ".safetensors", c.header, c.data_bytes);
    auto file = SafetensorsFile::Open(path);
    ASSERT_FALSE(file.ok()) << c.name;
    const std::string message(file.status().message());
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(c.message_part), std::string::npos) << c.name << ": " << message;
    if (std::string(c.name) != "notjson") {
      EXPECT_NE(message.find("'k'"), std::string::npos) << c.name << ": " << message;
    }
  }
}

TEST(SafetensorsTest, RejectsTruncatedFilesAndHugeHeaders) {
  const std::string tiny = testing::FreshTempPath("tiny.safetensors");
  std::ofstream(tiny) << "abc";
  EXPECT_EQ(SafetensorsFile::Open(tiny).status().code(), absl::StatusCode::kDataLoss);
  const std::string huge = testing::FreshTempPath("huge.safetensors");
  {
    std::ofstream out(huge, std::ios::binary);
    uint64_t n = kMaxSafetensorsHeaderBytes + 1;
    out.write(reinterpret_cast<const char*>(&n), 8);
  }
  auto file = SafetensorsFile::Open(huge);
  EXPECT_NE(file.status().message().find("limit"), std::string::npos) << file.status();
  EXPECT_EQ(SafetensorsFile::Open(testing::FreshTempPath("absent")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(WeightStoreTest, ReadsShardsThroughTheIndexAndPrefersTheVariant) {
  const fs::path dir = testing::FreshTempDir("component");
  ASSERT_TRUE(WriteSafetensors((dir / "model-00001-of-00002.safetensors").string(),
                               {{"a", torch::ones({2})}})
                  .ok());
  ASSERT_TRUE(WriteSafetensors((dir / "model-00002-of-00002.safetensors").string(),
                               {{"b", torch::zeros({3})}})
                  .ok());
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})";
  auto store = WeightStore::OpenComponent(dir.string());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(store->Keys(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(store->Get("b").value().numel(), 3);

  ASSERT_TRUE(WriteSafetensors((dir / "model.fp16.safetensors").string(),
                               {{"a", torch::ones({2}, torch::kFloat16)}})
                  .ok());
  auto fp16 = WeightStore::OpenComponent(dir.string(), "fp16");
  ASSERT_TRUE(fp16.ok());
  EXPECT_EQ(fp16->Get("a").value().scalar_type(), torch::kFloat16);

  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map":{"zz":"model-00001-of-00002.safetensors"}})";
  auto bad = WeightStore::OpenComponent(dir.string());
  EXPECT_NE(bad.status().message().find("'zz'"), std::string::npos) << bad.status();
  EXPECT_EQ(WeightStore::OpenComponent(testing::FreshTempPath("nowhere")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tlcm
