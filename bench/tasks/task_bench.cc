// raympi's task microbenchmark, in the spirit of `ray microbenchmark`: the cost of the task
// path itself, with no-op tasks.
//
//   mpirun -n 1 build/bin/raympi build/bench/tasks/task_bench [flags]
//   mpirun -n 2 build/bin/raympi --ranks-per-node 1 build/bench/tasks/task_bench --label 2vnodes
//
// Scenarios (each: warm-up, then several timed runs; the median run is reported):
//   sync   `*Get(Task(Noop).Remote(i))` in a loop: one task in flight, us per task and tasks/s;
//          compared with the raw MPI round trip (--mpi-half-rtt-us, from mpi_pingpong) and
//          with Ray's published single-client sync figure.
//   async  N tasks submitted, then `Get` of the whole vector: tasks/s, best and median run;
//          compared with Ray's published single-client async figure. Honours
//          RAYMPI_PIPELINE_DEPTH (the row name says the depth when it is not 1).
//   clients  the async scenario from C driver threads at once (default: one per CPU of the
//          job), N tasks in all: what the runtime sustains when the submitter is not the limit.
//   map    the async scenario's N no-op calls through Task(Noop).Map in 64 chunks (N / 64 calls
//          per task): what mpi4py's map(chunksize=...) does; tasks/s counts calls.
//   array  Put a std::vector<double> of --array-mib MiB, pass it to a task that returns it,
//          Get the result: round-trip ms and GB/s (2 x size / time: the value crosses twice).
//          --array-node N pins the task to node N, so the value crosses between nodes.
// --only takes a comma list of these (default all). With --launch-epoch-us T (the wall-clock
// time, in us since the epoch, at which the caller ran mpirun), the first task's result is
// timed from T (start-up), and a line `task_bench: shutdown_epoch_us=...` is printed just
// before raympi::Shutdown so the caller can time the shut-down to the job's exit.
//
// Output: machine-readable rows `name,value,unit,baseline,ratio` (ratio = value / baseline),
// then a human table; `--json PATH` also writes the rows and the raw samples as JSON.
// bench/run_task_bench.sh runs the baseline and both configurations and prints them together.
#include <raympi/raympi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

int Noop(int i) { return i; }
// A task that keeps its CPU for `us` microseconds (for utilisation runs).
int Spin(int i, int us) {
  auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < end) {
  }
  return i;
}
// Returns its argument: the array round trip (the vector crosses to the worker and back).
std::vector<double> Echo(std::vector<double> v) { return v; }
RAYMPI_REMOTE(Noop, Spin, Echo);

namespace {

using Clock = std::chrono::steady_clock;

// Ray's published single-node figures (`ray microbenchmark`, release benchmarks):
// single_client_tasks_sync and single_client_tasks_async, in tasks per second.
constexpr double kRaySyncTasksPerSecond = 1000;
constexpr double kRayAsyncTasksPerSecond = 8000;

struct Options {
  std::string label = "raympi";
  std::string json_path;
  std::string only = "all";    // comma list of sync, async, clients, map, array; or all
  double mpi_half_rtt_us = 0;  // 0: no MPI baseline given
  int warmup = 500;
  int sync_tasks = 2000;
  int sync_runs = 5;
  int async_tasks = 10000;
  int async_runs = 5;
  bool spread = false;  // SPREAD strategy instead of the default
  int task_us = 0;      // > 0: async tasks spin this long instead of returning at once
  int clients = 0;      // threads of the clients scenario; 0: one per CPU of the job
  int array_mib = 64;
  int array_runs = 5;
  int array_node = -1;         // >= 0: the echo task runs on this node (an object crossing nodes)
  double launch_epoch_us = 0;  // > 0: time the first task from this moment (start-up)

  bool Runs(const std::string& scenario) const {
    if (only == "all") return true;
    std::stringstream list(only);
    std::string item;
    while (std::getline(list, item, ',')) {
      if (item == scenario) return true;
    }
    return false;
  }
  bool OnlyKnownScenarios() const {
    if (only == "all") return true;
    std::stringstream list(only);
    std::string item;
    while (std::getline(list, item, ',')) {
      if (item != "sync" && item != "async" && item != "clients" && item != "map" &&
          item != "array") {
        return false;
      }
    }
    return true;
  }
};

void Usage() {
  std::fprintf(stderr,
               "usage: mpirun -n K raympi [raympi flags] task_bench [--label NAME] [--json PATH]\n"
               "  [--only all|sync,async,clients,map,array] [--mpi-half-rtt-us X] [--warmup N]\n"
               "  [--sync-tasks N] [--sync-runs N] [--async-tasks N] [--async-runs N]\n"
               "  [--spread 0|1] [--task-us N] [--clients N] [--array-mib N] [--array-runs N]\n"
               "  [--array-node N] [--launch-epoch-us T]\n");
}

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return false;
    std::string v = argv[++i];
    if (a == "--label") {
      o->label = v;
    } else if (a == "--json") {
      o->json_path = v;
    } else if (a == "--only") {
      o->only = v;
    } else if (a == "--mpi-half-rtt-us") {
      o->mpi_half_rtt_us = std::atof(v.c_str());
    } else if (a == "--warmup") {
      o->warmup = std::atoi(v.c_str());
    } else if (a == "--sync-tasks") {
      o->sync_tasks = std::atoi(v.c_str());
    } else if (a == "--sync-runs") {
      o->sync_runs = std::atoi(v.c_str());
    } else if (a == "--async-tasks") {
      o->async_tasks = std::atoi(v.c_str());
    } else if (a == "--spread") {
      o->spread = v == "1";
    } else if (a == "--task-us") {
      o->task_us = std::atoi(v.c_str());
    } else if (a == "--async-runs") {
      o->async_runs = std::atoi(v.c_str());
    } else if (a == "--clients") {
      o->clients = std::atoi(v.c_str());
    } else if (a == "--array-mib") {
      o->array_mib = std::atoi(v.c_str());
    } else if (a == "--array-node") {
      o->array_node = std::atoi(v.c_str());
    } else if (a == "--array-runs") {
      o->array_runs = std::atoi(v.c_str());
    } else if (a == "--launch-epoch-us") {
      o->launch_epoch_us = std::atof(v.c_str());
    } else {
      return false;
    }
  }
  return o->OnlyKnownScenarios() && o->warmup >= 0 && o->sync_tasks > 0 && o->sync_runs > 0 &&
         o->async_tasks > 0 && o->async_runs > 0 && o->clients >= 0 && o->array_mib > 0 &&
         o->array_runs > 0;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(idx, v.size() - 1)];
}

struct Row {
  std::string name;
  double value;
  std::string unit;
  double baseline;  // 0: none
};

// A failed check must fail the run: a benchmark that measures a broken path is worse than none.
int g_errors = 0;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "task_bench: check failed: %s\n", what);
    ++g_errors;
  }
}

// One task at a time, submitted and fetched synchronously. Returns per-run us per task;
// `latencies` gets every timed call's latency in us.
std::vector<double> RunSync(const Options& o, std::vector<double>* latencies) {
  for (int i = 0; i < o.warmup; ++i) Check(*raympi::Get(raympi::Task(Noop).Remote(i)) == i, "sync");
  std::vector<double> per_task_us;
  for (int run = 0; run < o.sync_runs; ++run) {
    auto start = Clock::now();
    auto last = start;
    for (int i = 0; i < o.sync_tasks; ++i) {
      int v = *raympi::Get(raympi::Task(Noop).Remote(i));
      auto now = Clock::now();
      latencies->push_back(Seconds(now - last) * 1e6);
      last = now;
      if (v != i) Check(false, "sync task returned the wrong value");
    }
    per_task_us.push_back(Seconds(last - start) * 1e6 / o.sync_tasks);
  }
  return per_task_us;
}

// N tasks submitted back to back, then fetched with one Get. Returns per-run tasks/s;
// `submit_us` gets the per-run submission cost per task.
std::vector<double> RunAsync(const Options& o, std::vector<double>* submit_us) {
  auto round = [&](int n, double* submit_per_task) {
    std::vector<raympi::ObjectRef<int>> refs;
    refs.reserve(static_cast<size_t>(n));
    auto start = Clock::now();
    raympi::SchedulingStrategy strategy = o.spread ? raympi::Spread() : raympi::DefaultStrategy();
    for (int i = 0; i < n; ++i) {
      refs.push_back(o.task_us > 0
                         ? raympi::Task(Spin).SetSchedulingStrategy(strategy).Remote(i, o.task_us)
                         : raympi::Task(Noop).SetSchedulingStrategy(strategy).Remote(i));
    }
    auto submitted = Clock::now();
    auto values = raympi::Get(refs);
    auto end = Clock::now();
    for (int i = 0; i < n; ++i) {
      if (*values[static_cast<size_t>(i)] != i) {
        Check(false, "async task returned the wrong value");
        break;
      }
    }
    if (submit_per_task) *submit_per_task = Seconds(submitted - start) * 1e6 / n;
    return n / Seconds(end - start);
  };
  round(std::max(1, std::min(o.warmup * 2, o.async_tasks)), nullptr);
  std::vector<double> tasks_per_s;
  for (int run = 0; run < o.async_runs; ++run) {
    double submit = 0;
    tasks_per_s.push_back(round(o.async_tasks, &submit));
    submit_us->push_back(submit);
  }
  return tasks_per_s;
}

// The async scenario's calls as a chunked map: 64 tasks of N / 64 calls each. Returns per-run
// calls/s.
std::vector<double> RunMap(const Options& o) {
  auto round = [&](int n) {
    std::vector<int> inputs(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) inputs[static_cast<size_t>(i)] = i;
    auto start = Clock::now();
    auto parts = raympi::Task(Noop).Map(inputs, static_cast<size_t>(std::max(1, n / 64)));
    auto values = raympi::Get(parts);
    auto end = Clock::now();
    int next = 0;
    for (const auto& part : values) {
      for (int v : *part) {
        if (v != next++) {
          Check(false, "map returned the wrong value");
          return 0.0;
        }
      }
    }
    Check(next == n, "map returned too few values");
    return n / Seconds(end - start);
  };
  round(std::max(64, std::min(o.warmup * 2, o.async_tasks)));
  std::vector<double> calls_per_s;
  for (int run = 0; run < o.async_runs; ++run) calls_per_s.push_back(round(o.async_tasks));
  return calls_per_s;
}

// The async scenario from `clients` threads at once, `n` tasks in all. Returns tasks/s.
double ClientsRound(int clients, int n) {
  std::vector<std::thread> threads;
  std::vector<int> wrong(static_cast<size_t>(clients), 0);
  auto start = Clock::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([c, clients, n, &wrong] {
      std::vector<raympi::ObjectRef<int>> refs;
      for (int i = c; i < n; i += clients) refs.push_back(raympi::Task(Noop).Remote(i));
      auto values = raympi::Get(refs);
      for (size_t k = 0; k < values.size(); ++k) {
        if (*values[k] != c + static_cast<int>(k) * clients) ++wrong[static_cast<size_t>(c)];
      }
    });
  }
  for (auto& t : threads) t.join();
  double rate = n / Seconds(Clock::now() - start);
  for (int w : wrong) Check(w == 0, "a clients task returned the wrong value");
  return rate;
}

std::vector<double> RunClients(const Options& o, int clients) {
  ClientsRound(clients, std::max(clients, std::min(o.warmup * 2, o.async_tasks)));
  std::vector<double> tasks_per_s;
  for (int run = 0; run < o.async_runs; ++run) {
    tasks_per_s.push_back(ClientsRound(clients, o.async_tasks));
  }
  return tasks_per_s;
}

// One CPU per client: the CPUs the job's nodes offer.
int JobCpus() {
  double cpus = 0;
  for (const raympi::NodeInfo& node : raympi::Nodes()) {
    auto it = node.total.find("CPU");
    if (it != node.total.end()) cpus += it->second;
  }
  return std::max(1, static_cast<int>(cpus));
}

// Put, a task that returns the vector, Get: per-run round-trip seconds (after one warm-up, so
// the first touch of fresh memory is not what is timed).
std::vector<double> RunArray(const Options& o) {
  const size_t count = static_cast<size_t>(o.array_mib) * (1 << 20) / sizeof(double);
  std::vector<double> data(count);
  for (size_t i = 0; i < count; ++i) data[i] = static_cast<double>(i);
  std::vector<double> seconds;
  for (int run = 0; run <= o.array_runs; ++run) {
    auto start = Clock::now();
    auto ref = raympi::Put(data);
    auto strategy =
        o.array_node >= 0 ? raympi::NodeAffinity(o.array_node) : raympi::DefaultStrategy();
    auto back = raympi::Get(raympi::Task(Echo).SetSchedulingStrategy(strategy).Remote(ref));
    double s = Seconds(Clock::now() - start);
    Check(back->size() == count && (*back)[count - 1] == data[count - 1] && (*back)[1] == 1.0,
          "the array came back different");
    if (run > 0) seconds.push_back(s);
  }
  return seconds;
}

double EpochUs() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

std::string JsonArray(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Number(v[i]);
  return s + "]";
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);  // first: code before it runs in every worker too
  Options o;
  if (!ParseOptions(argc, argv, &o)) {
    Usage();
    return 2;
  }
  const char* depth_env = std::getenv("RAYMPI_PIPELINE_DEPTH");
  const int depth = depth_env ? std::max(1, std::atoi(depth_env)) : 1;
  const std::string async_name = depth == 1 ? "async" : "async_depth" + std::to_string(depth);

  std::vector<Row> rows;
  if (o.launch_epoch_us > 0) {
    // Start-up as a user sees it: from mpirun to the first task's result in hand.
    double init_done = EpochUs();
    Check(*raympi::Get(raympi::Task(Noop).Remote(7)) == 7, "first task");
    double first = EpochUs();
    rows.push_back({o.label + ".startup.init_ms", (init_done - o.launch_epoch_us) / 1e3, "ms", 0});
    rows.push_back(
        {o.label + ".startup.first_result_ms", (first - o.launch_epoch_us) / 1e3, "ms", 0});
  }
  std::vector<double> sync_runs, sync_latencies, async_runs, async_submit, clients_runs,
      array_seconds;
  if (o.Runs("sync")) {
    sync_runs = RunSync(o, &sync_latencies);
    double us = Median(sync_runs);
    double mpi_rtt = 2 * o.mpi_half_rtt_us;  // a task round trip against an MPI round trip
    rows.push_back({o.label + ".sync.us_per_task", us, "us", mpi_rtt});
    rows.push_back({o.label + ".sync.tasks_per_s", 1e6 / us, "tasks/s", kRaySyncTasksPerSecond});
    rows.push_back({o.label + ".sync.latency_p50", Percentile(sync_latencies, 50), "us", 0});
    rows.push_back({o.label + ".sync.latency_p99", Percentile(sync_latencies, 99), "us", 0});
  }
  if (o.Runs("async")) {
    async_runs = RunAsync(o, &async_submit);
    double best = *std::max_element(async_runs.begin(), async_runs.end());
    rows.push_back({o.label + "." + async_name + ".tasks_per_s_best", best, "tasks/s",
                    kRayAsyncTasksPerSecond});
    rows.push_back({o.label + "." + async_name + ".tasks_per_s_median", Median(async_runs),
                    "tasks/s", kRayAsyncTasksPerSecond});
    rows.push_back(
        {o.label + "." + async_name + ".submit_us_per_task", Median(async_submit), "us", 0});
  }
  if (o.Runs("clients")) {
    const int clients = o.clients > 0 ? o.clients : JobCpus();
    clients_runs = RunClients(o, clients);
    rows.push_back({o.label + ".async_clients" + std::to_string(clients) + ".tasks_per_s_median",
                    Median(clients_runs), "tasks/s", kRayAsyncTasksPerSecond});
  }
  std::vector<double> map_runs;
  if (o.Runs("map")) {
    map_runs = RunMap(o);
    rows.push_back({o.label + ".async_map_chunked.tasks_per_s_median", Median(map_runs), "tasks/s",
                    kRayAsyncTasksPerSecond});
  }
  if (o.Runs("array")) {
    array_seconds = RunArray(o);
    const double s = Median(array_seconds);
    const std::string name = o.label + ".array_" + std::to_string(o.array_mib) + "MiB";
    rows.push_back({name + ".round_trip_ms", s * 1e3, "ms", 0});
    rows.push_back({name + ".GBps", 2.0 * o.array_mib * (1 << 20) / s / 1e9, "GB/s", 0});
  }

  std::printf("name,value,unit,baseline,ratio\n");
  for (const Row& r : rows) {
    if (r.baseline > 0) {
      std::printf("%s,%.3f,%s,%.3f,%.3f\n", r.name.c_str(), r.value, r.unit.c_str(), r.baseline,
                  r.value / r.baseline);
    } else {
      std::printf("%s,%.3f,%s,,\n", r.name.c_str(), r.value, r.unit.c_str());
    }
  }
  std::printf("\n%-44s %12s %-8s %12s %8s\n", "benchmark", "value", "unit", "baseline", "ratio");
  for (const Row& r : rows) {
    if (r.baseline > 0) {
      std::printf("%-44s %12.2f %-8s %12.2f %8.2f\n", r.name.c_str(), r.value, r.unit.c_str(),
                  r.baseline, r.value / r.baseline);
    } else {
      std::printf("%-44s %12.2f %-8s %12s %8s\n", r.name.c_str(), r.value, r.unit.c_str(), "-",
                  "-");
    }
  }
  std::printf(
      "(sync baseline: MPI 8 B round trip = 2 x half; tasks/s baselines: Ray's published "
      "single-client figures; ratio = value / baseline)\n");
  std::fflush(stdout);

  if (!o.json_path.empty()) {
    std::ofstream json(o.json_path);
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    json << "{\n  \"benchmark\": \"task_bench\",\n  \"label\": \"" << o.label
         << "\",\n  \"host\": \"" << host
         << "\",\n  \"online_cpus\": " << sysconf(_SC_NPROCESSORS_ONLN)
         << ",\n  \"pipeline_depth\": " << depth << ",\n  \"rows\": [\n";
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      json << "    {\"name\": \"" << r.name << "\", \"value\": " << Number(r.value)
           << ", \"unit\": \"" << r.unit
           << "\", \"baseline\": " << (r.baseline > 0 ? Number(r.baseline) : "null")
           << ", \"ratio\": " << (r.baseline > 0 ? Number(r.value / r.baseline) : "null") << "}"
           << (i + 1 < rows.size() ? "," : "") << "\n";
    }
    json << "  ],\n  \"samples\": {\n    \"sync_us_per_task_runs\": " << JsonArray(sync_runs)
         << ",\n    \"async_tasks_per_s_runs\": " << JsonArray(async_runs)
         << ",\n    \"async_submit_us_per_task_runs\": " << JsonArray(async_submit)
         << ",\n    \"clients_tasks_per_s_runs\": " << JsonArray(clients_runs)
         << ",\n    \"map_tasks_per_s_runs\": " << JsonArray(map_runs)
         << ",\n    \"array_round_trip_s_runs\": " << JsonArray(array_seconds) << "\n  }\n}\n";
    if (!json) {
      std::fprintf(stderr, "task_bench: cannot write %s\n", o.json_path.c_str());
      ++g_errors;
    }
  }
  if (o.launch_epoch_us > 0) {
    std::printf("task_bench: shutdown_epoch_us=%.0f\n", EpochUs());
    std::fflush(stdout);
  }
  raympi::Shutdown();
  return g_errors == 0 ? 0 : 1;
}
