// Actor-call microbenchmarks of a raympi job (run under the launcher), after Ray's
// microbenchmark (1_1_actor_calls_sync, 1_1_actor_calls_async, n_n_actor_calls_async):
//   actors.1_1.sync   one caller waits for each call to one actor, calls per second
//   actors.1_1.async  one caller submits 1000 calls to one actor, waits for them, and again
//                     (Ray's shape), calls/s; async_all_at_once: every call before any wait
//   actors.n_n.async  n caller tasks each call n actors round-robin (n = CPUs), calls/s
// Prints rows `name,value,unit,,` (bench/run's format); bench/suite/report.py compares them
// with Ray's published figures.
#include <raympi/raympi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

class Sink {
 public:
  int Call(int x) { return ++calls_ + x * 0; }

 private:
  int calls_ = 0;
};
Sink* MakeSink() { return new Sink(); }

constexpr int kRayBatch = 1000;  // calls per batch in Ray's 1:1 async benchmark

// A caller task: `calls` calls spread round-robin over the actors, `batch` in flight at most.
int CallActors(std::vector<raympi::ActorHandle<Sink>> actors, int calls, int batch) {
  int done = 0;
  while (done < calls) {
    int n = std::min(batch, calls - done);
    std::vector<raympi::ObjectRef<int>> refs;
    refs.reserve(n);
    for (int i = 0; i < n; ++i) {
      refs.push_back(actors[(done + i) % actors.size()].Task(&Sink::Call).Remote(i));
    }
    raympi::Get(refs);
    done += n;
  }
  return done;
}
RAYMPI_REMOTE(MakeSink, &Sink::Call, CallActors);

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void Row(const std::string& name, double value, const std::string& unit) {
  std::printf("%s,%.1f,%s,,\n", name.c_str(), value, unit.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  int calls = 20000;
  int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--calls") calls = std::atoi(argv[i + 1]);
    if (a == "--n") n = std::atoi(argv[i + 1]);
  }

  auto sink = raympi::Actor(MakeSink).Remote();
  raympi::Get(sink.Task(&Sink::Call).Remote(0));  // alive, and the path warm
  for (int i = 0; i < 1000; ++i) raympi::Get(sink.Task(&Sink::Call).Remote(i));
  auto start = Clock::now();
  for (int i = 0; i < calls; ++i) raympi::Get(sink.Task(&Sink::Call).Remote(i));
  Row("actors.1_1.sync.calls_per_s", calls / Seconds(Clock::now() - start), "calls/s");

  // Ray's shape: batches of 1000 calls, each batch waited for (ray_perf.py's actor_async).
  start = Clock::now();
  std::vector<raympi::ObjectRef<int>> refs;
  for (int done = 0; done < calls; done += kRayBatch) {
    refs.clear();
    for (int i = 0; i < std::min(kRayBatch, calls - done); ++i) {
      refs.push_back(sink.Task(&Sink::Call).Remote(i));
    }
    raympi::Get(refs);
  }
  Row("actors.1_1.async.calls_per_s", calls / Seconds(Clock::now() - start), "calls/s");

  // Every call submitted before the first is waited for: the caller's tables and the actor's
  // queue hold all of them (informative; no Ray figure to compare with).
  start = Clock::now();
  refs.clear();
  refs.reserve(calls);
  for (int i = 0; i < calls; ++i) refs.push_back(sink.Task(&Sink::Call).Remote(i));
  raympi::Get(refs);
  Row("actors.1_1.async_all_at_once.calls_per_s", calls / Seconds(Clock::now() - start), "calls/s");
  refs.clear();

  std::vector<raympi::ActorHandle<Sink>> actors;
  for (int i = 0; i < n; ++i) actors.push_back(raympi::Actor(MakeSink).Remote());
  for (auto& a : actors) raympi::Get(a.Task(&Sink::Call).Remote(0));
  // Warm the caller workers, then time.
  std::vector<raympi::ObjectRef<int>> callers;
  for (int i = 0; i < n; ++i) callers.push_back(raympi::Task(CallActors).Remote(actors, 100, 100));
  raympi::Get(callers);
  callers.clear();
  int per_caller = std::max(1, calls / n);
  start = Clock::now();
  for (int i = 0; i < n; ++i) {
    callers.push_back(raympi::Task(CallActors).Remote(actors, per_caller, 1000));
  }
  long total = 0;
  for (const auto& c : raympi::Get(callers)) total += *c;
  Row("actors.n_n.async.calls_per_s", total / Seconds(Clock::now() - start), "calls/s");
  Row("actors.n_n.n", n, "actors and callers");
  for (auto& a : actors) raympi::Kill(a);
  raympi::Kill(sink);
  return 0;
}
