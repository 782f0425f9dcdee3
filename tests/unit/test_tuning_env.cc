#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
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

// Every name the sources read through TuningInt (or runtime.cc's `micros`) must be in the table
// (else the first process to read it aborts, maybe only on a rare path) and in the README's
// table of tuning variables. Found by scanning the sources, not listed here by hand.
std::set<std::string> NamesReadBySources() {
  const std::regex read(R"re((TuningInt|micros)\(\s*"(RAYMPI_[A-Z0-9_]+)")re");
  std::set<std::string> names;
  for (const auto& file : std::filesystem::recursive_directory_iterator(
           std::filesystem::path(RAYMPI_SOURCE_DIR) / "src")) {
    const std::string ext = file.path().extension().string();
    if (!file.is_regular_file() || (ext != ".cc" && ext != ".h")) continue;
    std::ifstream in(file.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), read);
         it != std::sregex_iterator(); ++it) {
      names.insert((*it)[2].str());
    }
  }
  return names;
}

TEST(TuningEnvTest, EveryVariableTheSourcesReadIsInTheTableAndTheReadme) {
  const std::set<std::string> names = NamesReadBySources();
  // The scan itself works: these are read in src/worker/runtime.cc and src/main.cc.
  ASSERT_GE(names.size(), 14u);
  ASSERT_EQ(names.count("RAYMPI_RECEIVE_PAUSE_US"), 1u);
  ASSERT_EQ(names.count("RAYMPI_SAME_HOST_PINS"), 1u);
  std::ifstream readme(std::filesystem::path(RAYMPI_SOURCE_DIR) / "README.md");
  const std::string text((std::istreambuf_iterator<char>(readme)),
                         std::istreambuf_iterator<char>());
  for (const std::string& name : names) {
    EXPECT_EQ(ReadWith({{name, "7"}}, name.c_str(), 1), 7) << name;
    EXPECT_NE(text.find("| `" + name + "` |"), std::string::npos)
        << name << " is missing from the README's table of tuning variables";
  }
}

}  // namespace
}  // namespace raympi
