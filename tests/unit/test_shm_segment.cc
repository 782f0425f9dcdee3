#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "common/shm_segment.h"

namespace raympi {
namespace {

std::string UniqueName(const std::string& tag) {
  return "/raympi-test-seg-" + std::to_string(getpid()) + "-" + tag;
}

bool ShmExists(const std::string& name) {
  struct stat st;
  return stat(("/dev/shm" + name).c_str(), &st) == 0;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(ShmSegment, CreateThenAttachSharesMemory) {
  const std::string name = UniqueName("share");
  auto created = ShmSegment::Create(name, 8192, "test seg", "shrink it");
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_EQ(created->size(), 8192u);
  EXPECT_TRUE(created->owner());
  std::memcpy(created->data(), "hello", 6);

  auto attached = ShmSegment::Attach(name, 16, "test seg", "test segment");
  ASSERT_TRUE(attached.ok()) << attached.status().message();
  EXPECT_EQ(attached->size(), 8192u);
  EXPECT_FALSE(attached->owner());
  EXPECT_STREQ(attached->data(), "hello");
  EXPECT_NE(attached->data(), created->data());
}

TEST(ShmSegment, AttachChecksSizeAndExistence) {
  const std::string name = UniqueName("size");
  auto created = ShmSegment::Create(name, 4096, "test seg", "shrink it");
  ASSERT_TRUE(created.ok()) << created.status().message();
  auto small = ShmSegment::Attach(name, 4097, "test seg", "raympi thing");
  EXPECT_EQ(small.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(small.status().message(), "too small (4096 bytes) to be a raympi thing"))
      << small.status().message();

  auto missing = ShmSegment::Attach(UniqueName("missing"), 1, "test seg", "thing");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.status().message(), "test seg")) << missing.status().message();
  EXPECT_TRUE(Contains(missing.status().message(), "raylet")) << missing.status().message();
}

TEST(ShmSegment, CreateIsExclusiveAndHintsAtStaleSegments) {
  const std::string name = UniqueName("excl");
  auto first = ShmSegment::Create(name, 4096, "test seg", "shrink it");
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto second = ShmSegment::Create(name, 4096, "test seg", "shrink it");
  ASSERT_FALSE(second.ok());
  const std::string& m = second.status().message();
  EXPECT_TRUE(Contains(m, "already exists")) << m;
  EXPECT_TRUE(Contains(m, "stale")) << m;
  EXPECT_TRUE(Contains(m, "rm /dev/shm" + name)) << m;
  // The failed create must not have removed the first one's segment.
  EXPECT_TRUE(ShmExists(name));
}

TEST(ShmSegment, RejectsBadNames) {
  for (const std::string& bad : {std::string("no-slash"), std::string("/"), std::string("/a/b"),
                                 "/" + std::string(200, 'x')}) {
    auto seg = ShmSegment::Create(bad, 4096, "test seg", "shrink it");
    EXPECT_EQ(seg.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(Contains(seg.status().message(), "test seg name")) << seg.status().message();
  }
}

TEST(ShmSegment, CreatorUnlinksOnDestructionAttacherDoesNot) {
  const std::string name = UniqueName("unlink");
  {
    auto created = ShmSegment::Create(name, 4096, "test seg", "shrink it");
    ASSERT_TRUE(created.ok()) << created.status().message();
    {
      auto attached = ShmSegment::Attach(name, 1, "test seg", "thing");
      ASSERT_TRUE(attached.ok()) << attached.status().message();
    }
    EXPECT_TRUE(ShmExists(name)) << "an attacher must not unlink";
    ShmSegment moved = std::move(*created);  // ownership moves with the segment
    EXPECT_EQ(created->data(), nullptr);
    EXPECT_TRUE(ShmExists(name));
  }
  EXPECT_FALSE(ShmExists(name));
}

TEST(ShmSegment, RobustMutexRecoversFromDeadOwner) {
  // The mutex lives in shared memory, as in the bus and the store.
  auto seg = ShmSegment::Create(UniqueName("mutex"), 4096, "test seg", "shrink it");
  ASSERT_TRUE(seg.ok()) << seg.status().message();
  auto* mutex = reinterpret_cast<pthread_mutex_t*>(seg->data());
  ASSERT_EQ(InitRobustMutex(mutex), 0);

  bool owner_died = true;
  ASSERT_EQ(LockRobust(mutex, &owner_died), 0);
  EXPECT_FALSE(owner_died);
  pthread_mutex_unlock(mutex);

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pthread_mutex_lock(mutex);
    _exit(0);  // dies holding the lock
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_EQ(LockRobust(mutex, &owner_died), 0);
  EXPECT_TRUE(owner_died);
  pthread_mutex_unlock(mutex);
  ASSERT_EQ(LockRobust(mutex, &owner_died), 0);  // consistent again
  EXPECT_FALSE(owner_died);
  pthread_mutex_unlock(mutex);
}

TEST(ShmSegment, ErrnoText) { EXPECT_FALSE(ErrnoText(ENOENT).empty()); }

}  // namespace
}  // namespace raympi
