// End-to-end checks of actors (issue 5), on one node and on several virtual nodes. The driver's
// exit code is the number of failed checks. Argument: the number of nodes.
#include <raympi/raympi.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check.h"

namespace {

class Counter {
 public:
  explicit Counter(int start) : n_(start) {}
  int Add(int x) { return n_ += x; }
  int Get() const { return n_; }
  int Node() const { return raympi::CurrentNodeId(); }
  int Fail(int x) { throw std::runtime_error("bad call " + std::to_string(x)); }
  std::vector<int> Log(int x) {
    log_.push_back(x);
    return log_;
  }
  int Reset() { return n_ = 0; }    // deliberately not registered
  int Crash(int) { std::abort(); }  // the actor's process dies
  std::vector<double> Big(int n) const { return std::vector<double>(n, n_); }
  // An actor calling another actor through a handle it was given.
  int AddTo(raympi::ActorHandle<Counter> other, int x) {
    return *raympi::Get(other.Task(&Counter::Add).Remote(x));
  }

 private:
  int n_;
  std::vector<int> log_;
};

Counter* MakeCounter(int start) {
  if (start < 0) throw std::invalid_argument("start must be >= 0, got " + std::to_string(start));
  return new Counter(start);
}

// Returns true once `n` calls are inside it at the same time (false after 20 s without).
class Meeting {
 public:
  bool Meet(int n) {
    ++inside_;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (inside_.load() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    return inside_.load() >= n;
  }

 private:
  std::atomic<int> inside_{0};
};
Meeting* MakeMeeting() { return new Meeting(); }

class Other {
 public:
  int Id() const { return 7; }
};
Other* MakeOther() { return new Other(); }

// Tasks that use actors.
int AddByName(std::string name, int x) {
  auto counter = raympi::GetActor<Counter>(name);
  return *raympi::Get(counter.Task(&Counter::Add).Remote(x));
}
int AddByHandle(raympi::ActorHandle<Counter> counter, int x) {
  return *raympi::Get(counter.Task(&Counter::Add).Remote(x));
}
int NodeOfTask() { return raympi::CurrentNodeId(); }
int Slow(int x) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (std::chrono::steady_clock::now() < end) std::this_thread::yield();
  return x;
}

int SlowFail(int x) {
  Slow(x);
  throw std::runtime_error("no value for " + std::to_string(x));
}

RAYMPI_REMOTE(MakeCounter, &Counter::Add, &Counter::Get, &Counter::Node, &Counter::Fail,
              &Counter::Log, &Counter::AddTo, &Counter::Big, Slow, SlowFail, MakeMeeting,
              &Meeting::Meet, MakeOther, &Other::Id, AddByName, AddByHandle, NodeOfTask,
              &Counter::Crash);

// The actor's process dies: it is restarted by its factory (fresh state) while restarts last,
// then its calls raise ActorDiedError naming the cause.
void TestRestartAfterCrash() {
  auto counter = raympi::Actor(MakeCounter).SetMaxRestarts(1).Remote(10);
  CHECK(*raympi::Get(counter.Task(&Counter::Add).Remote(5)) == 15);
  CHECK_THROWS(raympi::Error, "", raympi::Get(counter.Task(&Counter::Crash).Remote(0)));
  CHECK(*raympi::Get(counter.Task(&Counter::Get).Remote()) == 10);  // restarted: state anew
  CHECK_THROWS(raympi::Error, "", raympi::Get(counter.Task(&Counter::Crash).Remote(0)));
  CHECK_THROWS(raympi::ActorDiedError, "SIGABRT",
               raympi::Get(counter.Task(&Counter::Get).Remote()));
}

void TestOrderedCalls() {
  auto counter = raympi::Actor(MakeCounter).Remote(10);
  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 1; i <= 200; ++i) refs.push_back(counter.Task(&Counter::Add).Remote(i));
  auto values = raympi::Get(refs);
  int expected = 10;
  bool in_order = true;
  for (int i = 1; i <= 200; ++i) {
    expected += i;
    in_order &= *values[i - 1] == expected;
  }
  CHECK(in_order);
  CHECK(*raympi::Get(counter.Task(&Counter::Get).Remote()) == expected);
  // A logged sequence shows the order the actor ran them in.
  raympi::ObjectRef<std::vector<int>> last;
  for (int i = 0; i < 50; ++i) last = counter.Task(&Counter::Log).Remote(i);
  auto log = raympi::Get(last);
  bool logged_in_order = log->size() == 50;
  for (int i = 0; logged_in_order && i < 50; ++i) logged_in_order = (*log)[i] == i;
  CHECK(logged_in_order);
  // A large result goes into the object store, like a task's.
  auto big = raympi::Get(counter.Task(&Counter::Big).Remote(1 << 18));
  CHECK(big->size() == (1u << 18) && big->back() == expected);
  // A call whose argument is still being computed holds back the calls made after it.
  auto slow = raympi::Task(Slow).Remote(50);
  counter.Task(&Counter::Log).Remote(slow);
  auto after = raympi::Get(counter.Task(&Counter::Log).Remote(51));
  CHECK(after->size() == 52 && (*after)[50] == 50 && (*after)[51] == 51);
  // One whose argument fails, fails, and does not hold back the next.
  auto failing = raympi::Task(SlowFail).Remote(1);
  auto not_run = counter.Task(&Counter::Log).Remote(failing);
  auto next = counter.Task(&Counter::Log).Remote(52);
  CHECK(raympi::Get(next)->size() == 53);
  CHECK_THROWS(raympi::TaskError, "no value for 1", raympi::Get(not_run));
  // A method that throws raises TaskError, and the actor lives on.
  CHECK_THROWS(raympi::TaskError, "bad call 3",
               raympi::Get(counter.Task(&Counter::Fail).Remote(3)));
  CHECK(*raympi::Get(counter.Task(&Counter::Add).Remote(1)) == expected + 1);
  // An ObjectRef argument passes its value.
  auto five = raympi::Put(5);
  CHECK(*raympi::Get(counter.Task(&Counter::Add).Remote(five)) == expected + 6);
  raympi::Kill(counter);
}

void TestNamedAndHandles() {
  auto counter = raympi::Actor(MakeCounter).SetName("counter").Remote(100);
  CHECK(*raympi::Get(counter.Task(&Counter::Add).Remote(1)) == 101);
  auto same = raympi::GetActor<Counter>("counter");
  CHECK(same == counter);
  CHECK(*raympi::Get(same.Task(&Counter::Add).Remote(1)) == 102);
  // From tasks: by name, and with the handle passed as an argument.
  CHECK(*raympi::Get(raympi::Task(AddByName).Remote(std::string("counter"), 10)) == 112);
  CHECK(*raympi::Get(raympi::Task(AddByHandle).Remote(counter, 100)) == 212);
  // And to another actor.
  auto relay = raympi::Actor(MakeCounter).Remote(0);
  CHECK(*raympi::Get(relay.Task(&Counter::AddTo).Remote(counter, 0)) == 212);
  // Tasks on every node (SPREAD) reach it too.
  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 0; i < 6; ++i) {
    refs.push_back(
        raympi::Task(AddByHandle).SetSchedulingStrategy(raympi::Spread()).Remote(counter, 1));
  }
  raympi::Get(refs);
  CHECK(*raympi::Get(counter.Task(&Counter::Get).Remote()) == 218);

  CHECK_THROWS(raympi::Error, "'counter' is already taken",
               raympi::Actor(MakeCounter).SetName("counter").Remote(0));
  CHECK_THROWS(raympi::Error, "no live actor is named 'nope'", raympi::GetActor<Counter>("nope"));
  CHECK_THROWS(raympi::Error, "is a ", raympi::GetActor<Other>("counter"));
  CHECK_THROWS(raympi::Error, "not registered", counter.Task(&Counter::Reset).Remote());

  raympi::Kill(counter);
  CHECK_THROWS(raympi::ActorDiedError, "killed",
               raympi::Get(counter.Task(&Counter::Add).Remote(1)));
  // Another process's handle learns it too.
  CHECK_THROWS(raympi::TaskError, "killed",
               raympi::Get(raympi::Task(AddByHandle).Remote(counter, 1)));
  CHECK_THROWS(raympi::Error, "no live actor is named 'counter'",
               raympi::GetActor<Counter>("counter"));
  // The name is free again.
  auto again = raympi::Actor(MakeCounter)
                   .SetName("counter")
                   .SetLifetime(raympi::ActorLifetime::kDetached)
                   .Remote(1);
  CHECK(*raympi::Get(again.Task(&Counter::Get).Remote()) == 1);
  auto other = raympi::Actor(MakeOther).Remote();
  CHECK(*raympi::Get(other.Task(&Other::Id).Remote()) == 7);
}

void TestFactoryError() {
  auto broken = raympi::Actor(MakeCounter).SetName("broken").Remote(-1);
  CHECK_THROWS(raympi::ActorDiedError, "start must be >= 0, got -1",
               raympi::Get(broken.Task(&Counter::Get).Remote()));
  CHECK_THROWS(raympi::ActorDiedError, "factory MakeCounter failed",
               raympi::Get(broken.Task(&Counter::Add).Remote(1)));
}

void TestMaxConcurrency() {
  // Three calls meet inside the actor only if they run at once.
  auto meeting = raympi::Actor(MakeMeeting).SetMaxConcurrency(3).Remote();
  std::vector<raympi::ObjectRef<bool>> refs;
  for (int i = 0; i < 3; ++i) refs.push_back(meeting.Task(&Meeting::Meet).Remote(3));
  for (const auto& met : raympi::Get(refs)) CHECK(*met);
  raympi::Kill(meeting);
  CHECK_THROWS(raympi::ActorDiedError, "killed",
               raympi::Get(meeting.Task(&Meeting::Meet).Remote(1)));
  CHECK_THROWS(raympi::Error, "at least 1",
               raympi::Actor(MakeMeeting).SetMaxConcurrency(0).Remote());
}

void TestPlacement(int nodes) {
  // An actor pinned on each node runs there; the driver and tasks on other nodes call it.
  for (int node = 0; node < nodes; ++node) {
    auto counter =
        raympi::Actor(MakeCounter).SetSchedulingStrategy(raympi::NodeAffinity(node)).Remote(0);
    CHECK(*raympi::Get(counter.Task(&Counter::Node).Remote()) == node);
    int from = (node + 1) % nodes;
    int via_task = *raympi::Get(raympi::Task(AddByHandle)
                                    .SetSchedulingStrategy(raympi::NodeAffinity(from))
                                    .Remote(counter, 5));
    CHECK(via_task == 5);
    raympi::Kill(counter);
  }
  // An actor that holds a resource no node has cannot be placed.
  auto huge = raympi::Actor(MakeCounter).SetResource("CPU", 1000).Remote(0);
  CHECK_THROWS(raympi::ActorDiedError, "cannot be scheduled",
               raympi::Get(huge.Task(&Counter::Get).Remote()));
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  int nodes = argc > 1 ? std::atoi(argv[1]) : 1;
  TestOrderedCalls();
  TestNamedAndHandles();
  TestFactoryError();
  TestMaxConcurrency();
  TestPlacement(nodes);
  TestRestartAfterCrash();
  std::fprintf(stderr, "actors_test: %d failure(s)\n", raympi_test::Failures());
  return raympi_test::Failures();
}
