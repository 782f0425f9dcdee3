// Hdf5SpillStorage on a temporary directory: batches written and read back byte-exact, the
// file's index, nothing half-written on a failed write (a file size limit stands in for a
// full disk), clear errors for a bad directory, and the directory removed at the end.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "objects/hdf5_spill_storage.h"

namespace raympi {
namespace {

namespace fs = std::filesystem;

ObjectId Id(uint32_t index) {
  ObjectId id;
  id.owner_node = 2;
  id.owner_slot = 5;
  id.owner_pid = 99;
  id.index = index;
  return id;
}

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> out(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  return out;
}

class Hdf5SpillStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("raympi-test-hdf5-" + std::to_string(getpid()))).string();
    dir_ = root_ + "/job/node-0";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string root_;
  std::string dir_;
};

TEST_F(Hdf5SpillStorageTest, BatchIsReadBackByteExact) {
  auto storage = Hdf5SpillStorage::Create(dir_);
  ASSERT_TRUE(storage.ok()) << storage.status().ToString();
  EXPECT_TRUE(fs::is_directory(dir_));
  EXPECT_TRUE(FilesIn(dir_).empty());  // the write probe is gone
  const std::vector<size_t> sizes = {1 << 20, 123457, 3 << 20, 64};
  std::vector<std::vector<uint8_t>> data;
  std::vector<SpillItem> items;
  for (size_t i = 0; i < sizes.size(); ++i) data.push_back(Pattern(sizes[i], i));
  for (size_t i = 0; i < sizes.size(); ++i) {
    items.push_back(SpillItem{Id(i), data[i].data(), data[i].size()});
  }
  auto batch = (*storage)->WriteBatch(items);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(FilesIn(dir_), std::vector<std::string>{"spill-0.h5"});
  ASSERT_EQ(batch->offsets.size(), sizes.size());
  for (size_t i = sizes.size(); i-- > 0;) {  // any order
    std::vector<uint8_t> back(sizes[i]);
    ASSERT_TRUE((*storage)->Read(batch->file, batch->offsets[i], sizes[i], back.data()).ok());
    EXPECT_EQ(back, data[i]) << "object " << i;
  }
  // A second batch is another file.
  auto second = (*storage)->WriteBatch({items[1]});
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->file, batch->file);
  EXPECT_TRUE((*storage)->Remove(batch->file).ok());
  EXPECT_EQ(FilesIn(dir_), std::vector<std::string>{"spill-1.h5"});
  EXPECT_FALSE((*storage)->Remove(batch->file).ok());
}

TEST_F(Hdf5SpillStorageTest, TheFileCarriesItsIndex) {
  auto storage = Hdf5SpillStorage::Create(dir_);
  ASSERT_TRUE(storage.ok());
  std::vector<uint8_t> a = Pattern(1000, 1), b = Pattern(5000, 2);
  auto batch = (*storage)->WriteBatch({{Id(7), a.data(), a.size()}, {Id(8), b.data(), b.size()}});
  ASSERT_TRUE(batch.ok());
  hid_t file = H5Fopen(batch->file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  uint8_t ids[2][16];
  uint64_t offsets[2], sizes[2];
  hid_t set = H5Dopen2(file, "ids", H5P_DEFAULT);
  EXPECT_GE(H5Dread(set, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids), 0);
  H5Dclose(set);
  set = H5Dopen2(file, "offsets", H5P_DEFAULT);
  EXPECT_GE(H5Dread(set, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, offsets), 0);
  H5Dclose(set);
  set = H5Dopen2(file, "sizes", H5P_DEFAULT);
  EXPECT_GE(H5Dread(set, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, sizes), 0);
  H5Dclose(set);
  H5Fclose(file);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(ids[1]), 16), Id(8).Binary());
  EXPECT_EQ(offsets[1], 1000u);
  EXPECT_EQ(sizes[0], 1000u);
  EXPECT_EQ(sizes[1], 5000u);
}

TEST_F(Hdf5SpillStorageTest, AFailedWriteLeavesNothingAndSaysWhy) {
  auto storage = Hdf5SpillStorage::Create(dir_);
  ASSERT_TRUE(storage.ok());
  std::vector<uint8_t> big = Pattern(8 << 20, 3);
  // A file size limit makes write() fail as a full disk would (EFBIG instead of ENOSPC).
  signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = 1 << 20;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  auto batch = (*storage)->WriteBatch({{Id(1), big.data(), big.size()}});
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), StatusCode::kIoError);
  const std::string& message = batch.status().message();
  EXPECT_NE(message.find(dir_), std::string::npos) << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  EXPECT_TRUE(FilesIn(dir_).empty());  // no .part, no .h5
  // With room again, spilling works.
  EXPECT_TRUE((*storage)->WriteBatch({{Id(1), big.data(), big.size()}}).ok());
}

TEST_F(Hdf5SpillStorageTest, ReadsOutsideTheFileFail) {
  auto storage = Hdf5SpillStorage::Create(dir_);
  ASSERT_TRUE(storage.ok());
  std::vector<uint8_t> a = Pattern(100, 1);
  auto batch = (*storage)->WriteBatch({{Id(1), a.data(), a.size()}});
  ASSERT_TRUE(batch.ok());
  std::vector<uint8_t> back(200);
  Status beyond = (*storage)->Read(batch->file, 50, 100, back.data());
  EXPECT_EQ(beyond.code(), StatusCode::kIoError);
  EXPECT_NE(beyond.message().find("beyond"), std::string::npos) << beyond.message();
  Status missing = (*storage)->Read(dir_ + "/spill-9.h5", 0, 10, back.data());
  EXPECT_EQ(missing.code(), StatusCode::kIoError);
  EXPECT_NE(missing.message().find("spill-9.h5"), std::string::npos) << missing.message();
}

TEST_F(Hdf5SpillStorageTest, ABadDirectoryIsNamedInTheError) {
  fs::create_directories(root_);
  const std::string file = root_ + "/a-file";
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  auto storage = Hdf5SpillStorage::Create(file + "/spill");
  ASSERT_FALSE(storage.ok());
  EXPECT_EQ(storage.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(storage.status().message().find(file + "/spill"), std::string::npos)
      << storage.status().message();
}

TEST_F(Hdf5SpillStorageTest, TheDirectoryGoesWithTheStorage) {
  {
    auto storage = Hdf5SpillStorage::Create(dir_);
    ASSERT_TRUE(storage.ok());
    std::vector<uint8_t> a = Pattern(100, 1);
    ASSERT_TRUE((*storage)->WriteBatch({{Id(1), a.data(), a.size()}}).ok());
  }
  EXPECT_FALSE(fs::exists(dir_));
  EXPECT_TRUE(fs::exists(root_ + "/job"));  // only its own directory
}

}  // namespace
}  // namespace raympi
