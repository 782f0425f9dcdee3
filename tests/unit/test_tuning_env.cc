#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/tuning_env.h"

namespace raympi {
namespace {

// Checks `vars` as if they were the whole environment.
Status CheckWith(const std::map<std::string, std::string>& vars) {
  return CheckTuningEnvironment([&vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(TuningEnvTest, UnsetAndValidValuesPass) {
  EXPECT_TRUE(CheckWith({}).ok());
  EXPECT_TRUE(CheckWith({{"RAYMPI_PUSH_BATCH", "8"}, {"RAYMPI_RECEIVE_SPIN_US", "0"}}).ok());
}

TEST(TuningEnvTest, TextIsRejectedNamingTheVariableAndTheFix) {
  Status st = CheckWith({{"RAYMPI_PUSH_BATCH", "abc"}});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("RAYMPI_PUSH_BATCH='abc'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("whole number from 1"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("fix or unset it"), std::string::npos) << st.message();
}

TEST(TuningEnvTest, TrailingJunkEmptyAndOverflowAreRejected) {
  EXPECT_FALSE(CheckWith({{"RAYMPI_HAND_BACK_US", "20ms"}}).ok());
  EXPECT_FALSE(CheckWith({{"RAYMPI_HAND_BACK_US", ""}}).ok());
  EXPECT_FALSE(CheckWith({{"RAYMPI_NODE_TIMEOUT_MS", "99999999999999999999"}}).ok());
}

TEST(TuningEnvTest, ValuesBelowTheMinimumAreRejected) {
  EXPECT_FALSE(CheckWith({{"RAYMPI_PIPELINE_DEPTH", "0"}}).ok());
  EXPECT_FALSE(CheckWith({{"RAYMPI_NODE_TIMEOUT_MS", "0"}}).ok());
  EXPECT_FALSE(CheckWith({{"RAYMPI_FETCH_SPIN_MAX_US", "-5"}}).ok());
  EXPECT_TRUE(CheckWith({{"RAYMPI_FETCH_SPIN_MAX_US", "0"}}).ok());
}

// TuningInt as if `vars` were the whole environment.
int ReadWith(const std::map<std::string, std::string>& vars, const char* name, int fallback) {
  return TuningInt(name, fallback, [&vars](const char* n) -> const char* {
    auto it = vars.find(n);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(TuningEnvTest, TuningIntReadsValidValues) {
  EXPECT_EQ(ReadWith({{"RAYMPI_PUSH_BATCH", "8"}}, "RAYMPI_PUSH_BATCH", 32), 8);
  EXPECT_EQ(ReadWith({{"RAYMPI_RECEIVE_SPIN_US", "0"}}, "RAYMPI_RECEIVE_SPIN_US", 50), 0);
}

TEST(TuningEnvTest, TuningIntKeepsTheDefaultWhenUnsetOrInvalid) {
  EXPECT_EQ(ReadWith({}, "RAYMPI_PUSH_BATCH", 32), 32);
  EXPECT_EQ(ReadWith({{"RAYMPI_PUSH_BATCH", "lots"}}, "RAYMPI_PUSH_BATCH", 32), 32);
  EXPECT_EQ(ReadWith({{"RAYMPI_PUSH_BATCH", "0"}}, "RAYMPI_PUSH_BATCH", 32), 32);
  EXPECT_EQ(ReadWith({{"RAYMPI_HAND_BACK_US", "20ms"}}, "RAYMPI_HAND_BACK_US", 2000), 2000);
}

TEST(TuningEnvDeathTest, ReadingAVariableMissingFromTheTableAborts) {
  EXPECT_DEATH(ReadWith({}, "RAYMPI_NOT_A_TUNING_VARIABLE", 1), "not in the tuning table");
}

TEST(TuningEnvTest, EveryVariableTheProcessesReadIsKnown) {
  // A name missing from the checker's table would be read as its default forever.
  for (const char* name :
       {"RAYMPI_MAX_INLINE_BYTES", "RAYMPI_STORE_FULL_TIMEOUT_MS", "RAYMPI_PIPELINE_DEPTH",
        "RAYMPI_PUSH_BATCH", "RAYMPI_HAND_BACK_US", "RAYMPI_RECEIVE_SPIN_US",
        "RAYMPI_RECEIVE_PAUSE_US", "RAYMPI_FETCH_SPIN_MAX_US", "RAYMPI_RECEIVER_GRACE_US",
        "RAYMPI_NODE_TIMEOUT_MS", "RAYMPI_SPAWN_TIMEOUT_S", "RAYMPI_NODE_PROCESS_SLOTS",
        "RAYMPI_SAME_HOST_READS", "RAYMPI_SAME_HOST_PINS"}) {
    EXPECT_EQ(ReadWith({{name, "7"}}, name, 1), 7) << name;
  }
}

}  // namespace
}  // namespace raympi
