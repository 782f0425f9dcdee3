// A tiny harness for driver programs run under mpirun: every failed CHECK is counted and
// printed, and the driver returns the count, which becomes the job's exit code.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

namespace raympi_test {

inline int& Failures() {
  static int failures = 0;
  return failures;
}

// Waits (up to 60 s) for a task to create `path`: how a test learns that a task runs.
inline bool WaitForFile(const std::string& path) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace raympi_test

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      ++raympi_test::Failures();                                                      \
      std::fprintf(stderr, "CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                                 \
  } while (0)

// Runs `body`, which must throw `Exception` whose what() contains `text`.
#define CHECK_THROWS(Exception, text, body)                                                  \
  do {                                                                                       \
    bool thrown_ = false;                                                                    \
    try {                                                                                    \
      body;                                                                                  \
    } catch (const Exception& e) {                                                           \
      thrown_ = std::string(e.what()).find(text) != std::string::npos;                       \
      if (!thrown_) std::fprintf(stderr, "unexpected message: %s\n", e.what());              \
    }                                                                                        \
    if (!thrown_) {                                                                          \
      ++raympi_test::Failures();                                                             \
      std::fprintf(stderr, "CHECK_THROWS failed at %s:%d: %s\n", __FILE__, __LINE__, #body); \
    }                                                                                        \
  } while (0)
