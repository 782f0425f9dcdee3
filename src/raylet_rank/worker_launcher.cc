#include "raylet_rank/worker_launcher.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/logging.h"
#include "common/tuning_env.h"
#include "raylet_rank/worker_supervisor.h"

namespace raympi {

namespace {

// Ends the process (SIGTERM: the raylet's handler unlinks its segments, mpirun ends the job)
// when a spawn has not returned after RAYMPI_SPAWN_TIMEOUT_S seconds (default 120).
class SpawnWatchdog {
 public:
  SpawnWatchdog(const std::string& program, int count) {
    const int seconds = TuningInt("RAYMPI_SPAWN_TIMEOUT_S", 120);
    thread_ = std::thread([this, program, count, seconds] {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) return;
      std::fprintf(stderr,
                   "raympi: %d process(es) of %s did not call raympi::Init within %d s; does "
                   "main return or block before raympi::Init? (RAYMPI_SPAWN_TIMEOUT_S sets the "
                   "limit)\n",
                   count, program.c_str(), seconds);
      std::fflush(stderr);
      raise(SIGTERM);
    });
  }
  ~SpawnWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The name the MPI allocation gives this rank's node, for the spawn's "host" key. Under Slurm,
// Open MPI's allocation lists Slurm's node names (SLURMD_NODENAME), which need not be the
// hostname (NodeHostname=, FQDNs, several slurmd per host); elsewhere it is gethostname().
std::string SpawnHostName() {
  const char* slurm_node = std::getenv("SLURMD_NODENAME");
  if (slurm_node != nullptr && slurm_node[0] != '\0') return slurm_node;
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return host;
}

// argv for MPI_Comm_spawn: NULL-terminated, program name excluded.
struct Argv {
  std::vector<std::string> storage;
  std::vector<char*> pointers;
  char** Get() {
    pointers.clear();
    for (auto& s : storage) pointers.push_back(s.data());
    pointers.push_back(nullptr);
    return pointers.data();
  }
};

std::string MpiErrorString(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, length);
}

}  // namespace

Status MpiSpawnLauncher::Launch(const LaunchRequest& request) {
  std::vector<char*> commands;
  std::vector<Argv> argvs;
  std::vector<int> counts;
  std::vector<std::string> program(2, request.supervisor);
  if (request.with_driver) {
    Argv a;
    a.storage.push_back(
        SuperviseArgument(true, request.bus_name, request.node, request.driver_slot, 0));
    a.storage.push_back(request.program);
    for (const auto& arg : request.driver_args) a.storage.push_back(arg);
    argvs.push_back(std::move(a));
    counts.push_back(1);
  }
  if (request.num_workers > 0) {
    int offset = request.with_driver ? 1 : 0;
    Argv a;
    a.storage.push_back(SuperviseArgument(false, request.bus_name, request.node,
                                          request.first_worker_slot, offset));
    a.storage.push_back(request.program);
    // Workers see the driver's arguments too: main runs in them up to raympi::Init, and a
    // program that checks its arguments first must not stop there.
    for (const auto& arg : request.driver_args) a.storage.push_back(arg);
    argvs.push_back(std::move(a));
    counts.push_back(request.num_workers);
  }
  if (counts.empty()) return Status::Ok();

  // Children go on this rank's host, and may outnumber the job's slots (the raylet decides how
  // many run at once, not the MPI allocation).
  const std::string host = SpawnHostName();
  std::vector<MPI_Info> infos(counts.size());
  std::vector<char**> argv_pointers;
  for (size_t i = 0; i < counts.size(); ++i) {
    MPI_Info_create(&infos[i]);
    MPI_Info_set(infos[i], "host", host.c_str());
    MPI_Info_set(infos[i], "map_by", ":OVERSUBSCRIBE");
    commands.push_back(program[i].data());
    argv_pointers.push_back(argvs[i].Get());
  }
  int total = 0;
  for (int c : counts) total += c;
  std::vector<int> errors(total, MPI_SUCCESS);
  MPI_Comm intercomm = MPI_COMM_NULL;
  MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
  // MPI_Comm_spawn waits for every child's MPI_Init; a program whose main returns before
  // raympi::Init would hang the job, so a watchdog ends it with a message instead.
  SpawnWatchdog watchdog(request.program, total);
  int rc = MPI_Comm_spawn_multiple(static_cast<int>(counts.size()), commands.data(),
                                   argv_pointers.data(), counts.data(), infos.data(), 0,
                                   MPI_COMM_SELF, &intercomm, errors.data());
  for (auto& info : infos) MPI_Info_free(&info);
  if (rc != MPI_SUCCESS) {
    return Status::Unavailable(
        "MPI_Comm_spawn of " + std::to_string(total) + " process(es) of " + request.program +
        " on host '" + host + "' failed: " + MpiErrorString(rc) +
        ". Processes start on the raylet's own host, which the allocation (hostfile, Slurm) must "
        "name exactly as SLURMD_NODENAME or else gethostname() does ('" +
        host + "')");
  }
  intercomms_.push_back(intercomm);
  RAYMPI_LOG_INFO("node {} spawned {} process(es)", request.node, total);
  return Status::Ok();
}

void MpiSpawnLauncher::ReleaseAll() {
  // MPI_Finalize waits for every connected process; disconnecting lets each side end alone.
  for (MPI_Comm& c : intercomms_) MPI_Comm_disconnect(&c);
  intercomms_.clear();
}

}  // namespace raympi
