// The bootstrap text a process learns its place from, given as an argument or, for a program
// pre-launched before its node exists (no-spawn mode), later on a pipe.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/bootstrap.h"

namespace raympi {
namespace {

TEST(BootstrapTest, FormatThenParseGivesItBack) {
  Bootstrap b{true, "/raympi-p1-key-n0", 2, 5, 1, true};
  Bootstrap parsed;
  ASSERT_TRUE(ParseBootstrap(FormatBootstrap(b), &parsed));
  EXPECT_TRUE(parsed.driver);
  EXPECT_EQ(parsed.bus_name, b.bus_name);
  EXPECT_EQ(parsed.node, 2);
  EXPECT_EQ(parsed.slot_base, 5);
  EXPECT_EQ(parsed.rank_offset, 1);
  EXPECT_TRUE(parsed.supervised);
}

TEST(BootstrapTest, AnFdArgumentIsNotABootstrap) {
  Bootstrap parsed;
  EXPECT_TRUE(IsBootstrapFd(BootstrapFdArgument(7)));
  EXPECT_FALSE(ParseBootstrap(BootstrapFdArgument(7), &parsed));
  EXPECT_FALSE(IsBootstrapFd("worker,/bus,0,1,0,supervised"));
}

TEST(BootstrapTest, ReadsTheLineTheSupervisorWritesAndClosesThePipe) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string text = FormatBootstrap({false, "/raympi-p9-k-n1", 1, 3, 0, true});
  const std::string line = text + "\n";
  ASSERT_EQ(write(fds[1], line.data(), line.size()), static_cast<ssize_t>(line.size()));
  EXPECT_EQ(ReadBootstrapFd(BootstrapFdArgument(fds[0])), text);
  EXPECT_EQ(close(fds[0]), -1);  // already closed by the reader
  close(fds[1]);
}

TEST(BootstrapTest, APipeClosedFirstMeansTheJobEndedBeforeAPlace) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[1]);
  EXPECT_EQ(ReadBootstrapFd(BootstrapFdArgument(fds[0])), "");
}

}  // namespace
}  // namespace raympi
