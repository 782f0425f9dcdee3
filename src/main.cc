// The raympi launcher: `mpirun -n N raympi [flags] ./app [args]`. Parses flags, picks this
// rank's role (GCS, raylet, or spare) and runs it. Everything else lives in the role libraries.
#include <google/protobuf/util/json_util.h>
#include <mpi.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/logging.h"
#include "common/mpi_transport.h"
#include "common/rank_loop.h"
#include "common/shm_bus.h"
#include "common/shm_janitor.h"
#include "common/tuning_env.h"
#include "gcs_rank/gcs_server.h"
#include "objects/hdf5_spill_storage.h"
#include "objects/object_manager.h"
#include "objects/object_store.h"
#include "objects/rma_window.h"
#include "objects/same_host_peers.h"
#include "objects/spill_dir.h"
#include "objects/spill_manager.h"
#include "raylet_rank/node_manager.h"
#include "raylet_rank/node_resources.h"
#include "raylet_rank/prelaunched_launcher.h"
#include "raylet_rank/prelaunched_layout.h"
#include "raylet_rank/prelaunched_supervisor.h"
#include "raylet_rank/program_environment.h"
#include "raylet_rank/worker_launcher.h"
#include "raylet_rank/worker_pool.h"
#include "raylet_rank/worker_supervisor.h"

namespace raympi {
namespace {

constexpr int kExitUsage = 2;

struct Flags {
  int ranks_per_node = 0;  // 0: the ranks that share memory form a node
  double num_cpus = 0;     // 0: from hwloc
  int num_workers = -1;    // -1: one per CPU
  std::string log_level;
  bool summary = false;
  std::string summary_json;
  std::string resources;                    // JSON for every node
  std::vector<std::string> node_resources;  // "N:JSON" for node N
  std::vector<std::string> command;         // program and its arguments
  uint64_t object_store_memory = 0;         // 0: a share of the node's memory
  bool object_store_prefault = false;
  std::string spill_dir;         // where each node's spill directory goes; "" = $TMPDIR or /tmp
  double spill_threshold = 0.8;  // share of the store in use at which spilling starts (Ray's)
  bool prelaunched = false;      // no-spawn mode: the ranks are the driver and the workers
};

// Ray's default: 30% of the node's memory for its object store.
constexpr double kDefaultStoreShare = 0.3;

// The launcher's rank, read before MPI_Init so only one rank prints a usage error.
int LauncherRank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID", "PMI_RANK"}) {
    if (const char* v = std::getenv(name)) return std::atoi(v);
  }
  return 0;
}

// Started by srun itself (a Slurm step, but not by mpirun's daemons, which set
// OMPI_COMM_WORLD_RANK). raympi starts its driver and workers with MPI_Comm_spawn, which Slurm's
// PMIx does not support (PLATFORM.md): the spawn fails, and with several ranks it hangs the step.
bool LaunchedBySrun() {
  return std::getenv("SLURM_STEP_ID") != nullptr && std::getenv("OMPI_COMM_WORLD_RANK") == nullptr;
}

// This rank's place among the ranks of its host, before MPI_Init (-1: not started by a
// launcher that says, e.g. a singleton).
int LauncherLocalRank() {
  for (const char* name :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "PMIX_LOCAL_RANK", "MPI_LOCALRANKID"}) {
    if (const char* v = std::getenv(name)) return std::atoi(v);
  }
  return -1;
}

// No-spawn mode decides before MPI_Init which ranks are raylets (each node's first rank: the
// first of its host, or of its group of --ranks-per-node) and which fork the program. The
// layout, computed after MPI_Init, checks that the guess holds.
bool PrelaunchedRayletRank(const Flags& flags) {
  if (flags.ranks_per_node > 0) return LauncherRank() % flags.ranks_per_node == 0;
  return LauncherLocalRank() <= 0;
}

// Only rank 0 prints and fails: the others leave quietly with 0, so that mpirun, which ends
// the job at the first failing rank, does not kill rank 0 before it has said why.
int UsageError(const std::string& message) {
  if (LauncherRank() != 0) return 0;
  std::fprintf(stderr,
               "raympi: %s\nusage: mpirun -n N raympi [flags] ./app [args]  (raympi --help)\n",
               message.c_str());
  return kExitUsage;
}

// Where the nodes' spill directories go: --spill-dir, else $TMPDIR, else /tmp.
std::string SpillBase(const Flags& flags) {
  if (!flags.spill_dir.empty()) return flags.spill_dir;
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

// The spill base must exist (it is created if not) and be writable, or the job cannot spill:
// checked before any process starts. The error names the path and the flag.
Status CheckSpillBase(const Flags& flags) {
  const std::string base = SpillBase(flags);
  const std::string which = flags.spill_dir.empty()
                                ? "the default spill directory '" + base + "' ($TMPDIR or /tmp)"
                                : "--spill-dir '" + base + "'";
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  if (ec)
    return Status::InvalidArgument(which + " cannot be created: " + ec.message() +
                                   "; give a writable directory with --spill-dir DIR");
  if (!std::filesystem::is_directory(base, ec)) {
    return Status::InvalidArgument(which +
                                   " is not a directory; give a writable directory "
                                   "with --spill-dir DIR");
  }
  if (access(base.c_str(), W_OK | X_OK) != 0) {
    return Status::InvalidArgument(which + " is not writable: " + std::strerror(errno) +
                                   "; give a writable directory with --spill-dir DIR");
  }
  return Status::Ok();
}

// Resolves the program as execvp would; an error names the problem and the fix.
StatusOr<std::string> ResolveProgram(const std::string& program) {
  std::vector<std::string> candidates;
  if (program.find('/') != std::string::npos) {
    candidates.push_back(program);
  } else if (const char* path = std::getenv("PATH")) {
    std::string dirs = path;
    size_t start = 0;
    while (start <= dirs.size()) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      std::string dir = dirs.substr(start, end - start);
      candidates.push_back((dir.empty() ? "." : dir) + "/" + program);
      start = end + 1;
    }
  }
  for (const std::string& c : candidates) {
    struct stat st;
    if (stat(c.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode))
      return Status::InvalidArgument("'" + c + "' is a directory, not a program");
    if (access(c.c_str(), X_OK) != 0) {
      return Status::InvalidArgument("'" + c + "' is not executable; run: chmod +x " + c);
    }
    char resolved[PATH_MAX];
    return std::string(realpath(c.c_str(), resolved) ? resolved : c.c_str());
  }
  return Status::NotFound("program '" + program +
                          "' not found; give a path such as ./app, or a program on PATH");
}

// A program started as driver or worker must call raympi::Init, or MPI_Comm_spawn would wait
// for it forever. Its binary names the symbol (as an undefined import or a definition).
bool CallsRaympiInit(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return false;
  static const std::string kSymbol = "_ZN6raympi4InitERiPPc";
  std::string window;
  char buffer[1 << 16];
  bool found = false;
  size_t n;
  while (!found && (n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    window.append(buffer, n);
    found = window.find(kSymbol) != std::string::npos;
    window.erase(0, window.size() > kSymbol.size() ? window.size() - kSymbol.size() : 0);
  }
  std::fclose(file);
  return found;
}

// Parses '{"bigmem": 4, "GPU": 1}' into `out`; an error says what was wrong.
Status ParseResources(const std::string& flag, const std::string& json,
                      std::map<std::string, double>* out) {
  rpc::ResourceSet set;
  auto st = google::protobuf::util::JsonStringToMessage("{\"amounts\": " + json + "}", &set);
  if (!st.ok()) {
    return Status::InvalidArgument(flag + ": '" + json +
                                   "' is not a JSON object of numbers, e.g. '{\"bigmem\": 4}'");
  }
  for (const auto& [name, amount] : set.amounts()) {
    if (amount < 0) {
      return Status::InvalidArgument(flag + ": resource '" + name + "' must not be negative");
    }
    (*out)[name] = amount;
  }
  return Status::Ok();
}

// Every node's custom resources: --resources for all, then --node-resources N:JSON on top.
Status CustomResources(const Flags& flags, int node, std::map<std::string, double>* out) {
  if (!flags.resources.empty())
    RAYMPI_RETURN_IF_ERROR(ParseResources("--resources", flags.resources, out));
  for (const std::string& spec : flags.node_resources) {
    size_t colon = spec.find(':');
    char* end = nullptr;
    long n = colon == std::string::npos ? -1 : std::strtol(spec.c_str(), &end, 10);
    if (colon == std::string::npos || end != spec.c_str() + colon || n < 0) {
      return Status::InvalidArgument("--node-resources: '" + spec +
                                     "' must be NODE:JSON, e.g. 1:'{\"GPU\": 1}'");
    }
    std::map<std::string, double> mine;
    RAYMPI_RETURN_IF_ERROR(ParseResources("--node-resources", spec.substr(colon + 1), &mine));
    if (n == node) {
      for (const auto& [name, amount] : mine) (*out)[name] = amount;
    }
  }
  return Status::Ok();
}

// Which node each rank belongs to, and which rank is each node's raylet (its lowest rank).
struct Layout {
  int rank = 0;
  int size = 1;
  int my_node = 0;
  std::vector<int> node_of_rank;
  std::vector<int> raylet_rank_of_node;
  std::vector<int> host_of_rank;  // the lowest rank of each rank's host
  int nodes_on_my_host = 1;       // virtual nodes that share this machine's memory
  int index_on_my_host = 0;       // this node's slice of the machine
};

Layout ComputeLayout(int ranks_per_node) {
  Layout layout;
  MPI_Comm_rank(MPI_COMM_WORLD, &layout.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &layout.size);
  MPI_Comm shared;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &shared);
  int host_key;
  MPI_Allreduce(&layout.rank, &host_key, 1, MPI_INT, MPI_MIN, shared);  // lowest rank of the host
  layout.host_of_rank.resize(layout.size);
  MPI_Allgather(&host_key, 1, MPI_INT, layout.host_of_rank.data(), 1, MPI_INT, MPI_COMM_WORLD);
  int key = ranks_per_node > 0 ? layout.rank / ranks_per_node : host_key;
  std::vector<int> keys(layout.size);
  MPI_Allgather(&key, 1, MPI_INT, keys.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::vector<int> distinct = keys;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  layout.raylet_rank_of_node.assign(distinct.size(), -1);
  for (int r = 0; r < layout.size; ++r) {
    int node = static_cast<int>(std::lower_bound(distinct.begin(), distinct.end(), keys[r]) -
                                distinct.begin());
    layout.node_of_rank.push_back(node);
    if (layout.raylet_rank_of_node[node] < 0) layout.raylet_rank_of_node[node] = r;
  }
  layout.my_node = layout.node_of_rank[layout.rank];
  // Virtual nodes on one machine each get a slice of its cores and memory.
  int shared_size;
  MPI_Comm_size(shared, &shared_size);
  std::vector<int> host_nodes(shared_size);
  MPI_Allgather(&layout.my_node, 1, MPI_INT, host_nodes.data(), 1, MPI_INT, shared);
  std::sort(host_nodes.begin(), host_nodes.end());
  host_nodes.erase(std::unique(host_nodes.begin(), host_nodes.end()), host_nodes.end());
  layout.nodes_on_my_host = static_cast<int>(host_nodes.size());
  layout.index_on_my_host = static_cast<int>(
      std::lower_bound(host_nodes.begin(), host_nodes.end(), layout.my_node) - host_nodes.begin());
  MPI_Comm_free(&shared);
  return layout;
}

// A name no other job on this machine uses, agreed by all ranks.
std::string MakeJobKey() {
  char key[17] = {0};
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    std::random_device rd;
    std::snprintf(key, sizeof(key), "%08x%08x", rd(), static_cast<unsigned>(getpid()));
  }
  MPI_Bcast(key, 16, MPI_CHAR, 0, MPI_COMM_WORLD);
  return key;
}

// The raylets' communicator (spare ranks get MPI_COMM_NULL) and each node's rank in it: the
// object stores' RMA window spans exactly the raylets.
MPI_Comm SplitRaylets(const Layout& layout, bool is_raylet, std::map<int, int>* rank_of_node) {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, is_raylet ? 0 : MPI_UNDEFINED, layout.rank, &comm);
  std::vector<int> world_ranks = layout.raylet_rank_of_node;
  std::sort(world_ranks.begin(), world_ranks.end());
  for (size_t node = 0; node < layout.raylet_rank_of_node.size(); ++node) {
    auto at =
        std::lower_bound(world_ranks.begin(), world_ranks.end(), layout.raylet_rank_of_node[node]);
    (*rank_of_node)[static_cast<int>(node)] = static_cast<int>(at - world_ranks.begin());
  }
  return comm;
}

// Open MPI's default one-sided component (osc rdma) cannot make a window between hosts that
// only have TCP (PLATFORM.md); osc pt2pt can, with MPI_THREAD_FUNNELED. So a job that spans
// hosts without RDMA devices uses pt2pt, unless the user chose a component. Decided before
// MPI_Init from the launcher's environment: the ranks on this host versus all ranks.
void ChooseOneSidedComponent() {
  if (std::getenv("OMPI_MCA_osc") != nullptr) return;
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const char* all = std::getenv("OMPI_COMM_WORLD_SIZE");
  const char* srun_nodes = std::getenv("SLURM_STEP_NUM_NODES");  // srun direct launch
  if (local != nullptr && all != nullptr) {
    if (std::atoi(local) >= std::atoi(all)) return;  // one host
  } else if (srun_nodes == nullptr || !LaunchedBySrun() || std::atoi(srun_nodes) <= 1) {
    return;
  }
  std::error_code ec;
  std::filesystem::directory_iterator rdma("/sys/class/infiniband", ec);
  if (!ec && rdma != std::filesystem::directory_iterator()) return;  // IB/RoCE: rdma or ucx
  setenv("OMPI_MCA_osc", "pt2pt", 0);
}

// One-sided pulls (docs/objects.md) read another node's store without its raylet: only where
// a read needs nothing of the target's CPU, i.e. not over osc pt2pt (chosen above between hosts
// without RDMA, or by the user). So on by default only when Open MPI chooses (rdma or ucx), or
// was told to use rdma or ucx alone; RAYMPI_ONE_SIDED_PULLS=0 or 1 decides instead.
bool OneSidedPulls() {
  const char* osc = std::getenv("OMPI_MCA_osc");
  const bool truly_one_sided =
      osc == nullptr ||
      (osc[0] != '^' && std::strstr(osc, "pt2pt") == nullptr &&
       (std::strstr(osc, "rdma") != nullptr || std::strstr(osc, "ucx") != nullptr));
  return TuningInt("RAYMPI_ONE_SIDED_PULLS", truly_one_sided ? 1 : 0) != 0;
}

// `mpirun --enable-recovery` keeps the job alive when a rank dies (a node's raylet), but
// Open MPI 4.1's mpirun then exits 0 whatever its processes returned (docs/failures.md).
bool UnderMpirunRecovery() {
  const char* v = std::getenv("OMPI_MCA_orte_enable_recovery");
  return v != nullptr && (std::strcmp(v, "1") == 0 || std::strcmp(v, "true") == 0);
}

void AnnounceRecoveryMode(int num_nodes) {
  if (UnderMpirunRecovery()) {
    RAYMPI_LOG_WARN(
        "mpirun --enable-recovery: a node whose raylet dies is survived, but mpirun will exit 0 "
        "whatever the job's result; raympi prints the job's exit code as its last line instead "
        "(docs/failures.md)");
  } else if (num_nodes > 1) {
    RAYMPI_LOG_INFO(
        "mpirun without --enable-recovery: crashed workers are retried, a stalled node is "
        "declared lost, but the death of a node's raylet rank ends the job (docs/failures.md)");
  }
}

// Under --enable-recovery the job's exit code is only seen here (mpirun reports 0).
void ReportExitCodeUnderRecovery(int exit_code) {
  if (UnderMpirunRecovery()) {
    std::fprintf(stderr, "raympi: job exit code %d\n", exit_code);
    std::fflush(stderr);
  }
}

// How long a node (or the GCS) may be silent before it is declared lost.
std::chrono::milliseconds NodeTimeout() {
  return std::chrono::milliseconds(TuningInt("RAYMPI_NODE_TIMEOUT_MS", 10000));
}

RankMap RankMapOf(const Flags& flags, const Layout& layout) {
  return {layout.node_of_rank, layout.raylet_rank_of_node, layout.host_of_rank,
          flags.ranks_per_node};
}

// A supervisor rank's place: its node's bus, and its slot among the node's other ranks.
PrelaunchedPlace PlaceOfSupervisor(const RankMap& map, const Layout& layout,
                                   const std::string& job_key, const std::vector<int>& pids) {
  PrelaunchedPlace place;
  place.node = layout.my_node;
  const SupervisorSlot slot = SupervisorSlotOf(map, layout.rank);
  place.driver = slot.driver;
  place.home_slot = slot.home_slot;
  place.raylet_pid = pids[layout.raylet_rank_of_node[layout.my_node]];
  place.bus_name = "/" + ShmPrefixOf(place.raylet_pid, job_key, layout.my_node);
  return place;
}

int RunRank(const Flags& flags, const std::string& program, WaitingProgram* waiting) {
  Layout layout = ComputeLayout(flags.ranks_per_node);
  std::string job_key = MakeJobKey();
  bool is_gcs = layout.rank == 0;
  bool is_raylet = layout.raylet_rank_of_node[layout.my_node] == layout.rank;
  std::string role = is_gcs              ? "gcs"
                     : is_raylet         ? "raylet-" + std::to_string(layout.my_node)
                     : flags.prelaunched ? "supervisor-" + std::to_string(layout.my_node)
                                         : "spare";
  InitLogging(role, flags.log_level);
  std::vector<int> pids(layout.size);
  int workers_of_my_node = 0;  // no-spawn mode: the node's ranks but its raylet and the driver
  if (flags.prelaunched) {
    int candidate = waiting->pid < 0 ? 1 : 0;  // did not fork the program: meant as raylet
    std::vector<int> candidates(layout.size);
    MPI_Allgather(&candidate, 1, MPI_INT, candidates.data(), 1, MPI_INT, MPI_COMM_WORLD);
    int pid = static_cast<int>(getpid());
    MPI_Allgather(&pid, 1, MPI_INT, pids.data(), 1, MPI_INT, MPI_COMM_WORLD);
    std::string problem = CheckPrelaunchedLayout(RankMapOf(flags, layout), candidates);
    if (!problem.empty()) {  // every rank found the same: all leave, rank 0 says why
      EndWaitingProgram(waiting);
      if (layout.rank != 0) return 0;
      std::fprintf(stderr, "raympi: %s\n", problem.c_str());
      return kExitUsage;
    }
    workers_of_my_node = PrelaunchedWorkersOf(RankMapOf(flags, layout), layout.my_node);
    if (layout.rank == 0) {
      const int nodes = static_cast<int>(layout.raylet_rank_of_node.size());
      const int worker_ranks = layout.size - nodes - 1;  // all but the raylets and the driver
      RAYMPI_LOG_INFO("no-spawn mode: {} ranks on {} node(s) run the driver and {} worker(s)",
                      layout.size, nodes, worker_ranks);
      if (worker_ranks == 0) {
        RAYMPI_LOG_WARN(
            "no-spawn mode with no worker rank: tasks cannot run; ask for more ranks than "
            "nodes + 1");
      }
    }
  }

  MpiTransport transport(MPI_COMM_WORLD);
  RankLoopConfig loop_config;
  loop_config.my_rank = layout.rank;
  loop_config.my_node = layout.my_node;
  loop_config.raylet_rank_of_node = layout.raylet_rank_of_node;
  // A lone node exchanges no MPI traffic but shut-down; sleep longer between polls.
  if (layout.raylet_rank_of_node.size() == 1)
    loop_config.max_idle_sleep = std::chrono::milliseconds(5);

  std::string bus_prefix = ShmPrefix(job_key, layout.my_node);
  std::unique_ptr<ShmBus> bus;
  std::unique_ptr<ObjectStore> store;
  std::unique_ptr<MpiRmaWindow> window;
  std::unique_ptr<SameHostReader> same_host_reader;  // reads this host's nodes, else `window`
  std::unique_ptr<Hdf5SpillStorage> spill_storage;
  std::unique_ptr<SpillManager> spill;
  std::unique_ptr<ObjectManager> objects;
  std::unique_ptr<WorkerLauncher> launcher;
  std::unique_ptr<WorkerPool> pool;
  std::unique_ptr<NodeManager> raylet;
  NodeManagerConfig config;
  if (is_raylet) {
    auto resources = DiscoverNodeResources(layout.index_on_my_host, layout.nodes_on_my_host);
    if (!resources.ok()) {
      RAYMPI_LOG_ERROR("cannot discover node resources: {}", resources.status().ToString());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (flags.num_cpus > 0) resources->num_cpus = flags.num_cpus;
    // A fixed pool runs at most one task per worker: offering more CPUs would queue tasks
    // here that another node's idle workers could run.
    if (flags.prelaunched && resources->num_cpus > workers_of_my_node) {
      RAYMPI_LOG_INFO("node {} offers {} CPU(s): one per pre-launched worker", layout.my_node,
                      workers_of_my_node);
      resources->num_cpus = workers_of_my_node;
    }
    RemoveStaleShm();
    ShmBus::Options options;
    options.name = "/" + bus_prefix;
    const int bus_slots =
        NodeProcessSlots(resources->num_cpus, flags.prelaunched ? workers_of_my_node : 0);
    options.num_slots = bus_slots;
    options.ring_bytes = 256 << 10;
    auto created = ShmBus::Create(options);
    if (!created.ok()) {
      RAYMPI_LOG_ERROR("cannot create the node's shared memory: {}", created.status().ToString());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    bus = std::move(created.value());
    UnlinkOnTerminationSignal(options.name);
    uint64_t capacity = flags.object_store_memory > 0
                            ? flags.object_store_memory
                            : static_cast<uint64_t>(resources->memory_bytes * kDefaultStoreShare);
    auto made = ObjectStore::Create(StoreNameForBus(options.name), capacity,
                                    ObjectStore::kDefaultMaxObjects, flags.object_store_prefault);
    if (!made.ok()) {
      RAYMPI_LOG_ERROR(
          "node {} cannot create its object store of {} bytes: {}; set "
          "--object-store-memory",
          layout.my_node, capacity, made.status().ToString());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    store = std::move(made.value());
    // One spill directory per job and node, removed at the end (docs/objects.md, "Spilling").
    const int stale = RemoveStaleSpillDirs(SpillBase(flags), resources->host);
    if (stale > 0) RAYMPI_LOG_INFO("removed {} spill directories of ended jobs", stale);
    const std::string spill_dir =
        SpillDirPath(SpillBase(flags), resources->host, getpid(), job_key, layout.my_node);
    auto storage = Hdf5SpillStorage::Create(spill_dir);
    if (!storage.ok()) {
      RAYMPI_LOG_ERROR(
          "node {} cannot spill objects: {}; give a writable directory with "
          "--spill-dir DIR",
          layout.my_node, storage.status().message());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    spill_storage = std::move(storage.value());
    SpillConfig spill_config;
    spill_config.threshold = flags.spill_threshold;
    spill = std::make_unique<SpillManager>(store.get(), spill_storage.get(), spill_config);

    LaunchRequest base;
    std::error_code ec;
    base.supervisor = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    base.program = program;
    base.driver_args.assign(flags.command.begin() + 1, flags.command.end());
    base.bus_name = options.name;
    base.node = layout.my_node;
    bool is_head = layout.my_node == 0;
    const int first_worker_slot = is_head ? 2 : 1;
    if (flags.prelaunched) {
      std::vector<int> worker_slots;
      for (int i = 0; i < workers_of_my_node; ++i) worker_slots.push_back(first_worker_slot + i);
      ShmBus* node_bus = bus.get();
      launcher = std::make_unique<PrelaunchedLauncher>(
          layout.my_node, is_head ? base.driver_slot : -1, worker_slots,
          [node_bus](const rpc::Envelope& e) {
            (void)node_bus->Send(e.dst().slot(), EncodeFrame(e));
          });
    } else {
      launcher = std::make_unique<MpiSpawnLauncher>();
    }
    pool = std::make_unique<WorkerPool>(launcher.get(), base, first_worker_slot, bus_slots);
    config.node = layout.my_node;
    config.rank = layout.rank;
    config.resources = *resources;
    config.is_head = is_head;
    config.num_nodes = static_cast<int>(layout.raylet_rank_of_node.size());
    config.gcs_timeout = NodeTimeout();
    Status custom = CustomResources(flags, layout.my_node, &config.custom_resources);
    if (!custom.ok()) {
      RAYMPI_LOG_ERROR("{}", custom.message());
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    config.initial_workers = flags.prelaunched ? workers_of_my_node
                             : flags.num_workers >= 0
                                 ? flags.num_workers
                                 : std::max(1, static_cast<int>(std::ceil(resources->num_cpus)));
    RAYMPI_LOG_INFO("node {}: {} CPUs, {} MiB, host {}", config.node, resources->num_cpus,
                    resources->memory_bytes >> 20, resources->host);
  }

  std::map<int, int> rank_of_node;
  MPI_Comm raylet_comm = SplitRaylets(layout, is_raylet, &rank_of_node);
  if (flags.prelaunched) {
    MPI_Barrier(MPI_COMM_WORLD);  // every node's bus exists
    if (!is_raylet) {
      // This rank supervises the node's driver or a worker until the job's end; the raylets
      // tell it over the bus, so it runs no event loop.
      bool abandoned = RunPrelaunchedSupervisor(
          PlaceOfSupervisor(RankMapOf(flags, layout), layout, job_key, pids), *waiting, [&] {
            std::vector<std::string> command = flags.command;
            command[0] = program;
            return command;
          }());
      if (abandoned) std::_Exit(0);  // the raylets leave without MPI's collective end
      return 0;
    }
  }
  NoRemoteReader no_remote_reader;
  if (is_raylet && layout.raylet_rank_of_node.size() > 1) {
    auto created_window = MpiRmaWindow::Create(raylet_comm, store->arena(), store->capacity(),
                                               rank_of_node, store->table(), store->table_bytes());
    if (!created_window.ok()) {
      RAYMPI_LOG_ERROR(
          "node {}: cannot expose its object store for one-sided MPI: {}. Between hosts over "
          "TCP, run mpirun with --mca osc pt2pt (see docs/objects.md)",
          layout.my_node, created_window.status().ToString());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    window = std::move(created_window.value());
    // Nodes of this host read each other's stores through mappings (docs/objects.md).
    SameHostOptions same_host;
    same_host.enabled = TuningInt("RAYMPI_SAME_HOST_READS", 1) != 0;
    same_host.populate = flags.object_store_prefault;
    auto connected = ConnectSameHostPeers(raylet_comm, *store, window.get(), rank_of_node,
                                          layout.my_node, same_host);
    if (!connected.ok()) {
      RAYMPI_LOG_ERROR("node {}: cannot exchange object store locations: {}", layout.my_node,
                       connected.status().ToString());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    same_host_reader = std::move(connected.value());
  }

  RankLoop loop(loop_config, &transport, bus.get());
  std::unique_ptr<GcsServer> gcs;
  bool spare_done = false;
  bool abandon = false;  // a node was lost: leave without MPI's collective end
  if (is_gcs) {
    GcsServer::Callbacks callbacks;
    callbacks.send = [&](const rpc::Envelope& e) { loop.Send(e); };
    callbacks.end_job = [&](int code) {
      rpc::Envelope stop;
      stop.mutable_shutdown()->set_exit_code(code);
      stop.mutable_shutdown()->set_abandon(!gcs->lost_nodes().empty());
      for (int r = 1; r < layout.size; ++r) {
        int node = layout.node_of_rank[r];
        bool raylet_rank = layout.raylet_rank_of_node[node] == r;
        if (flags.prelaunched && !raylet_rank) continue;  // supervisors: told by their raylet
        *stop.mutable_dst() = MakeAddress(raylet_rank ? node : kThisRankNode, kRayletSlot);
        loop.SendToRank(r, stop);
      }
      if (is_raylet) {
        *stop.mutable_dst() = MakeAddress(layout.my_node, kRayletSlot);
        loop.Send(stop);
      }
    };
    GcsOptions gcs_options;
    gcs_options.print_summary = flags.summary;
    gcs_options.summary_json = flags.summary_json;
    gcs_options.node_timeout = NodeTimeout();
    gcs = std::make_unique<GcsServer>(callbacks, gcs_options);
    AnnounceRecoveryMode(static_cast<int>(layout.raylet_rank_of_node.size()));
    loop.SetGcsHandler([&](rpc::Envelope& e) { gcs->Handle(e); });
  }
  if (is_raylet && same_host_reader && TuningInt("RAYMPI_READER_COPIES", 1) != 0) {
    // The node's processes copy these nodes' objects themselves (docs/objects.md).
    for (const auto& [node, where] : same_host_reader->MappedPeers()) {
      rpc::SameHostStores::Store* s = config.same_host_stores.add_stores();
      s->set_node(node);
      s->set_location(where.Encode());
    }
  }
  if (is_raylet) {
    config.add_object_stats = [&](rpc::NodeSummary* summary) {
      ObjectStore::Stats stats = store->stats(0);
      summary->set_store_capacity(stats.capacity);
      summary->set_store_bytes_in_use(stats.bytes_in_use);
      summary->set_store_objects(stats.num_objects);
      if (objects) {
        summary->set_objects_pulled(objects->stats().pulls_completed);
        summary->set_objects_copied_at_source(objects->stats().copied_at_source);
        summary->set_objects_pulled_one_sided(objects->stats().pulled_one_sided);
        summary->set_objects_copied_by_readers(stats.reader_copies);
        summary->set_bytes_pulled(objects->stats().bytes_pulled);
      }
      if (spill) {
        const SpillCounters c = spill->stats().counters;
        summary->set_objects_spilled(c.spilled_objects);
        summary->set_bytes_spilled(c.spilled_bytes);
        summary->set_objects_restored(c.restored_objects);
        summary->set_bytes_restored(c.restored_bytes);
      }
    };
    raylet = std::make_unique<NodeManager>(config, pool.get(),
                                           [&](const rpc::Envelope& e) { loop.Send(e); });
    RmaReader* reader =
        same_host_reader ? static_cast<RmaReader*>(same_host_reader.get()) : &no_remote_reader;
    ObjectManagerConfig object_config;
    object_config.one_sided_pulls = OneSidedPulls();
    objects = std::make_unique<ObjectManager>(
        layout.my_node, store.get(), reader, [&](const rpc::Envelope& e) { loop.Send(e); },
        object_config);
    objects->SetSpillManager(spill.get());
    // Pulls from a node of this host pin the object in its store themselves (no round trip to
    // its raylet); RAYMPI_SAME_HOST_PINS=0 asks the source raylet every time.
    if (same_host_reader && TuningInt("RAYMPI_SAME_HOST_PINS", 1) != 0) {
      objects->SetSourcePins(same_host_reader.get());
    }
    loop.SetRayletHandler([&](rpc::Envelope& e) {
      if (ObjectManager::Handles(e)) {
        objects->Handle(e);
      } else {
        // A dead worker's half-written objects would never be sealed.
        if (e.has_worker_died()) store->AbortCreatedBy(e.worker_died().pid());
        if (e.has_node_died()) objects->OnNodeDied(e.node_died().node());
        // Before the raylet passes Shutdown on: supervisors read it once their program left.
        if (e.has_shutdown()) {
          abandon = abandon || e.shutdown().abandon();
          bus->MarkJobEnd(abandon ? ShmBus::JobEnd::kAbandoned : ShmBus::JobEnd::kNormal);
        }
        raylet->Handle(e);
      }
    });
  } else {
    loop.SetFallbackHandler([&](rpc::Envelope& e) {
      if (e.has_shutdown()) {
        spare_done = true;
        abandon = e.shutdown().abandon();
      }
    });
  }
  loop.SetTick([&] {
    if (raylet) raylet->Tick();
    if (gcs) gcs->Tick();
    return objects && objects->Tick();
  });
  if (raylet) {
    Status st = raylet->Start();
    if (!st.ok()) {
      RAYMPI_LOG_ERROR("node {} cannot start its processes: {}", layout.my_node, st.ToString());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
  loop.Run([&] {
    if (raylet) return raylet->done() && (!gcs || gcs->finished());
    return spare_done || (gcs && gcs->finished());
  });
  int exit_code = gcs ? gcs->exit_code() : 0;
  if (raylet && raylet->gcs_lost()) {
    abandon = true;
    bus->MarkJobEnd(ShmBus::JobEnd::kAbandoned);
    exit_code = 1;
  }
  if (abandon || (gcs && !gcs->lost_nodes().empty())) {
    // A lost peer cannot join the collective end (window free, disconnects, finalize): leave
    // without it, with the driver's exit code (1 if it was 0).
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    for (const auto& [node, cause] : gcs ? gcs->lost_nodes() : std::map<int, std::string>{}) {
      std::fprintf(stderr,
                   "raympi: node %d was lost during the job (%s); ending the job without it\n",
                   node, cause.c_str());
      // A stalled raylet on this host is ended here (fencing): mpirun's abort may wait on it.
      const rpc::NodeInfo& info = gcs->nodes().at(node);
      if (info.host() == host && info.pid() > 0) {
        kill(info.pid(), SIGKILL);
        RemoveShmWithPrefix(ShmPrefixOf(info.pid(), job_key, node));
      }
    }
    std::fflush(stderr);
    // Names first: mpirun may kill this rank during the teardown below (the lost node ended the
    // job), and an unlinked name leaves nothing behind while the mappings stay valid.
    if (is_raylet) RemoveShmWithPrefix(bus_prefix);
    objects.reset();
    spill.reset();
    spill_storage.reset();  // removes the node's spill directory
    bus.reset();
    store.reset();
    // Not MPI_Abort: with a stopped peer, mpirun's abort sometimes waited forever here. A rank
    // that leaves without MPI_Finalize makes plain mpirun end the job at once (as for a
    // crash); under --enable-recovery the job ends once every process has left this way.
    if (gcs) ReportExitCodeUnderRecovery(exit_code != 0 ? exit_code : 1);
    std::_Exit(exit_code != 0 ? exit_code : 1);
  }
  if (launcher) launcher->ReleaseAll();
  // The manager first, then the window (collective over the raylets: each gets here once its
  // loop is done; it waits for reads into the arena), then the store.
  objects.reset();
  same_host_reader.reset();
  spill.reset();
  spill_storage.reset();  // removes the node's spill directory
  if (window) {
    Status closed = window->Close();
    if (!closed.ok()) RAYMPI_LOG_WARN("closing the object window: {}", closed.ToString());
    window.reset();
  }
  if (raylet_comm != MPI_COMM_NULL) MPI_Comm_free(&raylet_comm);
  bus.reset();
  store.reset();
  if (is_raylet) RemoveShmWithPrefix(bus_prefix);
  if (gcs) ReportExitCodeUnderRecovery(exit_code);
  return exit_code;
}

}  // namespace
}  // namespace raympi

int main(int argc, char** argv) {
  using namespace raympi;
  // Before any thread or program starts: every program this process or its supervisors start
  // inherits it (src/raylet_rank/program_environment.h).
  PrepareProgramEnvironment();
  if (argc > 1 && std::strncmp(argv[1], kSuperviseFlag, std::strlen(kSuperviseFlag)) == 0) {
    return RunSupervisor(argc, argv);
  }
  Flags flags;
  CLI::App app{
      "raympi: run a C++ program's remote tasks on the ranks of an MPI job.\n"
      "  mpirun -n N raympi [flags] ./app [args]"};
  app.prefix_command();  // everything from the program on belongs to the program
  app.add_option(
         "--ranks-per-node", flags.ranks_per_node,
         "split the ranks into virtual nodes of K ranks each (default: one node per machine)")
      ->check(CLI::PositiveNumber);
  app.add_option("--num-cpus", flags.num_cpus,
                 "CPUs each node offers to tasks (default: from hwloc)")
      ->check(CLI::PositiveNumber);
  app.add_option("--num-workers", flags.num_workers,
                 "workers each node starts up front (default: one per CPU)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--resources", flags.resources,
                 "custom resources of every node as JSON, e.g. '{\"bigmem\": 4}'");
  app.add_option("--node-resources", flags.node_resources,
                 "custom resources of one node, NODE:JSON, e.g. 1:'{\"GPU\": 1}' (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--object-store-memory", flags.object_store_memory,
                 "bytes of each node's object store, e.g. 4GiB (default: 30% of the node's memory)")
      ->transform(CLI::AsSizeValue(false));
  app.add_flag("--object-store-prefault", flags.object_store_prefault,
               "reserve and touch every page of the object stores at start: slower start-up, "
               "full speed for the first transfers");
  app.add_option("--spill-dir", flags.spill_dir,
                 "where nodes spill objects when their store is full (HDF5 files, one "
                 "directory per job and node, removed at the end; default: $TMPDIR or /tmp)");
  app.add_option("--spill-threshold", flags.spill_threshold,
                 "share of the object store in use at which spilling starts (default 0.8)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--prelaunched", flags.prelaunched,
               "no-spawn mode: every rank of a node but its raylet runs the driver (on node 0) "
               "or a worker; the pool is fixed. Chosen by itself under srun direct launch");
  app.add_flag("--summary", flags.summary,
               "print a job summary at the end: tasks, busy CPU time and utilisation per node");
  app.add_option("--summary-json", flags.summary_json,
                 "write the job summary as JSON to this file");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn (default), error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    if (LauncherRank() == 0) std::printf("%s", app.help().c_str());
    return 0;
  } catch (const CLI::ParseError& e) {
    return UsageError(e.what());
  }
  flags.command = app.remaining();
  if (flags.command.empty()) return UsageError("no program given");
  if (!flags.command[0].empty() && flags.command[0][0] == '-') {
    return UsageError("unknown flag '" + flags.command[0] + "'");
  }
  std::map<std::string, double> check_resources;  // bad JSON is a usage error, before MPI starts
  Status resources_ok = CustomResources(flags, 0, &check_resources);
  if (!resources_ok.ok()) return UsageError(resources_ok.message());
  Status spill_ok = CheckSpillBase(flags);
  if (!spill_ok.ok()) return UsageError(spill_ok.message());
  Status tuning_ok = CheckTuningEnvironment();
  if (!tuning_ok.ok()) return UsageError(tuning_ok.message());
  auto program = ResolveProgram(flags.command[0]);
  if (!program.ok()) return UsageError(program.status().message());
  if (!CallsRaympiInit(*program)) {
    return UsageError("'" + *program +
                      "' does not call raympi::Init: build it against raympi (see examples/) "
                      "and call raympi::Init(argc, argv) first thing in main");
  }

  // Under srun direct launch MPI_Comm_spawn is not supported (and a failed spawn hangs the
  // step): the ranks srun started are the driver and the workers.
  if (LaunchedBySrun()) flags.prelaunched = true;
  if (flags.prelaunched && flags.num_workers >= 0) {
    return UsageError(
        "--num-workers has no effect in no-spawn mode (--prelaunched, or srun direct launch): "
        "each node's workers are its ranks but the raylet (and the driver on node 0); ask for "
        "more ranks instead");
  }
  // No-spawn mode: a rank that will supervise the driver or a worker forks the program now,
  // before MPI_Init, so the program never joins MPI (PLATFORM.md); it waits for its place.
  WaitingProgram waiting;
  if (flags.prelaunched && !PrelaunchedRayletRank(flags)) {
    std::vector<std::string> command = flags.command;
    command[0] = *program;
    waiting = ForkWaitingProgram(command);
    if (waiting.pid < 0) {
      std::fprintf(stderr, "raympi: cannot fork %s: %s\n", program->c_str(), std::strerror(errno));
      return 1;
    }
  }

  // The event loop sleeps for tens of microseconds between MPI polls; the default 50 us timer
  // slack would stretch every such sleep (PLATFORM.md measured this).
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  ChooseOneSidedComponent();
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int code = RunRank(flags, *program, &waiting);
  MPI_Finalize();
  return code;
}
