// Fault injection: tasks whose process crashes, aborts, is killed with SIGKILL mid-task, or
// throws. Checks that results are still right (retries), that errors name the task, the node
// and the signal when retries run out, and that the node keeps working (its pool replaces the
// dead workers). The driver's exit code is the number of failed checks.
#include <raympi/raympi.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "check.h"

namespace {

namespace fs = std::filesystem;

// True the first time it is called for `marker` (the file did not exist; now it does).
bool FirstTime(const std::string& marker) {
  if (fs::exists(marker)) return false;
  std::ofstream(marker).close();
  return true;
}

int CrashOnce(std::string dir, int x) {
  if (FirstTime(dir + "/crashed")) std::abort();
  return x;
}
// A task that ends its process "normally" in the middle of the job is a dead worker too.
int ExitZeroOnce(std::string dir, int x) {
  if (FirstTime(dir + "/exited")) std::exit(0);
  return x;
}
int Segfault(int x) {
  std::raise(SIGSEGV);
  return x;
}
int ThrowOnce(std::string dir, int x) {
  if (FirstTime(dir + "/threw")) throw std::runtime_error("first try fails");
  return x;
}
// Publishes its pid, then runs until killed; the run after the kill returns at once.
int RunUntilKilled(std::string dir, int x) {
  if (fs::exists(dir + "/killed")) return x;
  std::ofstream(dir + "/pid.tmp") << getpid();
  fs::rename(dir + "/pid.tmp", dir + "/pid");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // burns no CPU meanwhile
  }
  return -1;
}
int Square(int x) { return x * x; }
// Runs until the driver creates `path` (at most 60 s, then returns -1).
int RunUntilFile(std::string path, int x) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return x;
}
// Owns an object and hands out a ref to it; publishes its pid.
raympi::ObjectRef<int> OwnSomething(std::string dir) {
  auto ref = raympi::Put(42);
  std::ofstream(dir + "/owner.tmp") << getpid();
  fs::rename(dir + "/owner.tmp", dir + "/owner");
  return ref;
}
RAYMPI_REMOTE(CrashOnce, ExitZeroOnce, Segfault, ThrowOnce, RunUntilKilled, Square, OwnSomething,
              RunUntilFile);

// Submits `n` Square tasks (no retries) at once, so they are pushed in batches; their sum.
int SumOfSquares(int n) {
  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 0; i < n; ++i) refs.push_back(raympi::Task(Square).SetMaxRetries(0).Remote(i));
  int sum = 0;
  for (const auto& v : raympi::Get(refs)) sum += *v;
  return sum;
}

std::string MakeDir() {
  char dir[] = "/tmp/raympi-failures.XXXXXX";
  return mkdtemp(dir) ? dir : "/tmp";
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  std::string dir = MakeDir();

  // A crash on the first attempt costs one retry.
  CHECK(*raympi::Get(raympi::Task(CrashOnce).Remote(dir, 7)) == 7);
  CHECK(*raympi::Get(raympi::Task(ExitZeroOnce).Remote(dir, 8)) == 8);

  // Retries run out: the error names the function, the node, the pid and the signal.
  CHECK_THROWS(raympi::TaskError, "killed by signal 11 (SIGSEGV); no retries were allowed",
               raympi::Get(raympi::Task(Segfault).SetMaxRetries(0).Remote(1)));
  CHECK_THROWS(raympi::TaskError, "all 2 retries used",
               raympi::Get(raympi::Task(Segfault).SetMaxRetries(2).Remote(1)));
  try {
    raympi::Get(raympi::Task(Segfault).SetMaxRetries(0).Remote(1));
  } catch (const raympi::TaskError& e) {
    std::string what = e.what();
    CHECK(what.find("Segfault") != std::string::npos);
    CHECK(what.find("its worker (node ") != std::string::npos);
  }

  // Exceptions are retried only when asked.
  CHECK_THROWS(raympi::TaskError, "first try fails",
               raympi::Get(raympi::Task(ThrowOnce).Remote(dir, 1)));
  std::filesystem::remove(dir + "/threw");
  CHECK(*raympi::Get(raympi::Task(ThrowOnce).SetRetryExceptions(true).Remote(dir, 5)) == 5);

  // kill -9 of the worker by pid, mid-task.
  auto running = raympi::Task(RunUntilKilled).Remote(dir, 11);
  CHECK(raympi_test::WaitForFile(dir + "/pid"));
  int pid = 0;
  std::ifstream(dir + "/pid") >> pid;
  CHECK(pid > 0);
  std::ofstream(dir + "/killed").close();
  if (pid > 0) kill(pid, SIGKILL);
  CHECK(*raympi::Get(running) == 11);

  // A worker killed while it owns the only copy of an object: Get says the object is lost.
  auto inner = *raympi::Get(raympi::Task(OwnSomething).Remote(dir));
  int owner = 0;
  std::ifstream(dir + "/owner") >> owner;
  CHECK(owner > 0);
  if (owner > 0) kill(owner, SIGKILL);
  CHECK_THROWS(raympi::TaskError, "the object is lost: its owner", raympi::Get(inner));

  // The nodes still run tasks on fresh workers.
  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 0; i < 20; ++i) refs.push_back(raympi::Task(Square).Remote(i));
  int sum = 0;
  for (const auto& v : raympi::Get(refs)) sum += *v;
  CHECK(sum == 2470);

  // Tasks pushed in one batch behind a crashing task never started: they run elsewhere without
  // using a retry (they allow none), and only the crashing task fails.
  auto crash = raympi::Task(Segfault).SetMaxRetries(0).Remote(1);
  CHECK(SumOfSquares(40) == 20540);
  CHECK_THROWS(raympi::TaskError, "no retries were allowed", raympi::Get(crash));

  // A long task does not hold up the tasks pushed behind it: its worker hands them back (they
  // finish while it still runs, or this Get would wait for the long task's 60 s bound).
  auto long_task = raympi::Task(RunUntilFile).Remote(dir + "/go", 3);
  CHECK(SumOfSquares(40) == 20540);
  std::ofstream(dir + "/go").close();
  CHECK(*raympi::Get(long_task) == 3);

  std::filesystem::remove_all(dir);
  std::fprintf(stderr, "failures_test: %d failure(s)\n", raympi_test::Failures());
  return raympi_test::Failures();
}
