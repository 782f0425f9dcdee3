// raympi::Init and friends: start the core worker of a driver or worker process.
#include <mpi.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "common/bootstrap.h"
#include "common/logging.h"
#include "common/shm_janitor.h"
#include "common/tuning_env.h"
#include "raympi/api.h"
#include "worker/core_worker.h"

namespace raympi {
namespace {

std::unique_ptr<CoreWorker> g_worker;
MPI_Comm g_parent = MPI_COMM_NULL;
bool g_in_mpi = false;  // not when a supervisor started us (the usual case)
bool g_shutdown = false;
bool g_is_driver = false;

// Removes the bootstrap argument so the application sees only its own arguments.
std::string TakeBootstrapArgument(int& argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], kBootstrapFlag, std::strlen(kBootstrapFlag)) != 0) continue;
    std::string value = argv[i] + std::strlen(kBootstrapFlag);
    for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
    argv[--argc] = nullptr;
    return value;
  }
  return "";
}

void LeaveJob() {
  g_worker->Stop();
  g_worker.reset();
  if (!g_in_mpi) return;
  if (g_parent != MPI_COMM_NULL) MPI_Comm_disconnect(&g_parent);
  MPI_Finalize();
}

// The job's exit code is the driver's: report it when the driver's process exits.
void OnDriverExit(int exit_code, void*) {
  if (!g_worker) return;
  std::fflush(stdout);
  g_worker->ReportDriverExit(exit_code);
  LeaveJob();
}

}  // namespace

void Init(int& argc, char** argv) {
  if (g_worker) throw Error("raympi::Init was already called");
  std::string bootstrap_text = TakeBootstrapArgument(argc, argv);
  // A pre-launched program waits here for its place (no-spawn mode); none: the job ended first.
  if (IsBootstrapFd(bootstrap_text)) {
    bootstrap_text = ReadBootstrapFd(bootstrap_text);
    if (bootstrap_text.empty()) std::_Exit(0);
  }
  Bootstrap bootstrap;
  if (bootstrap_text.empty()) {
    throw Error(
        "raympi::Init: this program was not started by raympi; run it as "
        "`mpirun -n N raympi " +
        std::string(argc > 0 ? argv[0] : "./app") + "` or `raympi " +
        std::string(argc > 0 ? argv[0] : "./app") + "`");
  }
  if (!ParseBootstrap(bootstrap_text, &bootstrap)) {
    throw Error("raympi::Init: malformed " + std::string(kBootstrapFlag) + bootstrap_text);
  }
  int provided;
  int rank = 0;
  if (!bootstrap.supervised) {
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_get_parent(&g_parent);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    g_in_mpi = true;
  }
  CoreWorkerConfig config;
  config.node = bootstrap.node;
  config.slot = bootstrap.Slot(rank);
  config.is_driver = bootstrap.driver;
  config.bus_name = bootstrap.bus_name;
  config.store_name = StoreNameForBus(bootstrap.bus_name);
  using std::chrono::microseconds;
  auto micros = [](const char* name, microseconds fallback) {
    return microseconds(TuningInt(name, static_cast<int>(fallback.count())));
  };
  config.max_inline_bytes =
      TuningInt("RAYMPI_MAX_INLINE_BYTES", static_cast<int>(config.max_inline_bytes));
  config.store_full_timeout = std::chrono::milliseconds(TuningInt(
      "RAYMPI_STORE_FULL_TIMEOUT_MS", static_cast<int>(config.store_full_timeout.count())));
  config.pipeline_depth = TuningInt("RAYMPI_PIPELINE_DEPTH", config.pipeline_depth);
  config.max_push_batch = TuningInt("RAYMPI_PUSH_BATCH", config.max_push_batch);
  config.hand_back_after = micros("RAYMPI_HAND_BACK_US", config.hand_back_after);
  config.receive_spin = micros("RAYMPI_RECEIVE_SPIN_US", config.receive_spin);
  config.receive_pause = micros("RAYMPI_RECEIVE_PAUSE_US", config.receive_pause);
  config.fetch_spin_max = micros("RAYMPI_FETCH_SPIN_MAX_US", config.fetch_spin_max);
  config.reader_copies = TuningInt("RAYMPI_READER_COPIES", 1) != 0;
  config.receiver_grace = micros("RAYMPI_RECEIVER_GRACE_US", config.receiver_grace);
  InitLogging(bootstrap.driver
                  ? "driver"
                  : "worker-" + std::to_string(config.node) + "." + std::to_string(config.slot));
  auto worker = CoreWorker::Start(config);
  if (!worker.ok()) {
    std::fprintf(stderr, "raympi: cannot join the job: %s\n", worker.status().ToString().c_str());
    if (g_in_mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    std::exit(1);
  }
  g_worker = std::move(worker.value());
  if (bootstrap.driver) {
    g_is_driver = true;
    on_exit(OnDriverExit, nullptr);
    return;
  }
  g_worker->RunTaskLoop();
  g_worker->ReportStats();
  std::fflush(stdout);
  LeaveJob();
  std::exit(0);
}

void Shutdown() {
  // Ends the job now, with exit code 0: workers and runtime ranks exit. The driver's process
  // may go on, but mpirun does not see its later exit code (README).
  if (!g_worker || g_shutdown) return;
  if (!g_is_driver) throw Error("raympi::Shutdown is for the driver: a task cannot end the job");
  g_shutdown = true;
  std::fflush(stdout);
  g_worker->ReportDriverExit(0);
  LeaveJob();
}

bool IsInitialized() { return g_worker != nullptr && !g_shutdown; }

int CurrentNodeId() { return static_cast<CoreWorker&>(internal::CurrentRuntime()).node(); }

namespace internal {

// ObjectRefs outlive the runtime (globals, refs held past Shutdown): count only while it runs.
void AddLocalRef(const std::string& id) {
  if (g_worker && !g_shutdown) g_worker->AddLocalRef(id);
}
void RemoveLocalRef(const std::string& id) {
  if (g_worker && !g_shutdown) g_worker->RemoveLocalRef(id);
}
void OnRefSerialized(const std::string& id) {
  if (g_worker && !g_shutdown) g_worker->OnRefSerialized(id);
}

Runtime& CurrentRuntime() {
  if (g_shutdown) throw Error("raympi: the API was used after raympi::Shutdown()");
  if (!g_worker) throw Error("raympi: call raympi::Init(argc, argv) before using the API");
  return *g_worker;
}

}  // namespace internal
}  // namespace raympi
