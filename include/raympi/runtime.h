// The abstract runtime behind the user API. The core worker implements it in a raympi job; a
// test can install another implementation. Not for direct use in applications.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace raympi::internal {

struct TaskArg {
  std::string value;      // serialized value, when passed by value
  std::string object_id;  // the object, when passed as an ObjectRef
  std::string type;       // type name of the value
};

}  // namespace raympi::internal

namespace raympi {

/// Where a task may run. Make one with DefaultStrategy(), Spread() or NodeAffinity().
struct SchedulingStrategy {
  enum class Kind { kDefault, kSpread, kNodeAffinity };
  Kind kind = Kind::kDefault;
  int node = -1;
  bool soft = false;
};

/// The caller's node first, then any node with room (spillback).
inline SchedulingStrategy DefaultStrategy() { return {}; }
/// Round-robin over the nodes whose resources fit the task.
inline SchedulingStrategy Spread() { return {SchedulingStrategy::Kind::kSpread, -1, false}; }
/// On node `node` (see raympi::Nodes()). Hard: the task waits for that node, and fails if the
/// node can never run it. Soft: it runs elsewhere when that node cannot run it.
inline SchedulingStrategy NodeAffinity(int node, bool soft = false) {
  return {SchedulingStrategy::Kind::kNodeAffinity, node, soft};
}

/// One node of the job, as raympi::Nodes() reports it.
struct NodeInfo {
  int id = 0;
  std::string host;
  std::map<std::string, double> total;
  std::map<std::string, double> available;
  bool alive = false;  // false once the node is lost (no heartbeat; it never comes back)
  int raylet_pid = 0;  // the node manager's process, on `host`
};

/// One node's object store, as raympi::LocalObjectStoreUsage() reports it (like `ray memory`).
struct ObjectStoreUsage {
  struct Object {
    std::string id;  // hex
    uint64_t size = 0;
    uint32_t pins = 0;  // views held by processes of the node
  };
  int node = 0;
  uint64_t capacity = 0;      // bytes
  uint64_t bytes_in_use = 0;  // held by objects (sizes rounded up to 64 bytes)
  uint64_t pinned_bytes = 0;
  uint64_t num_objects = 0;
  uint64_t num_pinned = 0;
  // Spilling (docs/objects.md): objects written to this node's spill files and read back, in
  // total since the job started; and the spilled copies that are still live.
  uint64_t spilled_objects = 0;
  uint64_t spilled_bytes = 0;
  uint64_t restored_objects = 0;
  uint64_t restored_bytes = 0;
  uint64_t objects_on_disk = 0;
  uint64_t bytes_on_disk = 0;
  std::vector<Object> largest;  // largest first
  std::string summary;          // all of the above as text
};

}  // namespace raympi

namespace raympi::internal {

// How an actor is created (raympi::Actor(factory).Set...).
struct ActorOptions {
  std::map<std::string, double> resources;  // held while the actor lives; none by default
  std::string name;                         // empty: unnamed
  SchedulingStrategy strategy;
  int max_restarts = 0;      // -1: forever
  int max_task_retries = 0;  // -1: forever
  bool detached = false;
  int max_concurrency = 1;         // calls that may run at once (threads of the actor)
  std::string placement_group_id;  // empty: none (raympi/placement_group.h)
  int bundle_index = -1;           // -1: any bundle of the group
};

// An actor as the GCS knows it (raympi::GetActor).
struct ActorLookup {
  std::string actor_id;
  std::string class_name;
};

struct TaskOptions {
  std::map<std::string, double> resources{{"CPU", 1.0}};
  std::string name;
  SchedulingStrategy strategy;
  int max_retries = 3;  // Ray's default
  bool retry_exceptions = false;
  std::string placement_group_id;  // empty: none (raympi/placement_group.h)
  int bundle_index = -1;           // -1: any bundle of the group
  // A chunk of a map: the function runs `calls` times on consecutive slices of the arguments,
  // and the task returns the std::vector of the results (TaskCaller::Map). 0: one plain call.
  int calls = 0;
};

// A placement group as created (raympi/placement_group.h).
struct PlacementGroupSpecification {
  std::string id;  // binary, made by the runtime when empty
  std::string name;
  int strategy = 0;  // raympi::PlacementStrategy
  std::vector<std::map<std::string, double>> bundles;
};

// A placement group as the GCS knows it.
struct PlacementGroupStatus {
  enum class State { kPending, kCreated, kRemoved, kFailed };
  PlacementGroupSpecification spec;
  State state = State::kPending;
  std::string failure;                       // kFailed, kRemoved: why
  std::vector<int> bundle_nodes;             // per bundle, -1 until placed
  std::vector<std::vector<int>> bundle_pus;  // per bundle: the PUs it reserved
};

// An object's content as fetched by Get, or the error that stands for it. `data` points into
// memory that `holder` keeps alive: a copy of a small value, or a pinned view of a large one in
// the node's object store (no copy).
struct FetchedObject {
  std::shared_ptr<const void> holder;
  std::string_view data;
  std::string type;
  bool is_error = false;
  bool actor_died = false;  // with is_error: raise ActorDiedError
  std::string error_function;
  std::string error_message;
};

// A value to store: its encoded size and a function that writes exactly that many bytes. Large
// values are written straight into the object store, so Put copies them once.
struct ValueWriter {
  size_t size = 0;
  std::function<void(char*)> write;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  // Stores a value owned by the caller; returns its object id, counted as one reference
  // (adopted by the ObjectRef the caller makes of it).
  virtual std::string Put(const ValueWriter& value, const std::string& type) = 0;
  // Submits a task; returns the id of its return object, counted as one reference.
  virtual std::string Submit(const std::string& function, std::vector<TaskArg> args,
                             const std::string& return_type, const TaskOptions& options) = 0;
  // Blocks until every object is available or timeout_ms passes (-1: forever); throws
  // raympi::TimeoutError on timeout.
  virtual std::vector<FetchedObject> Get(const std::vector<std::string>& ids, int timeout_ms) = 0;
  // Returns, for each id, whether it is ready, once `num` are ready or timeout_ms passed.
  virtual std::vector<bool> Wait(const std::vector<std::string>& ids, int num, int timeout_ms) = 0;
  // The nodes of the job, as the caller's raylet last heard from the GCS.
  virtual std::vector<NodeInfo> Nodes() = 0;
  // Reference counting: an ObjectRef was copied (or deserialized) / destroyed in this process,
  // or serialized into a value (its object then lives as long as the job: see docs/objects.md).
  virtual void AddLocalRef(const std::string& id) = 0;
  virtual void RemoveLocalRef(const std::string& id) = 0;
  virtual void OnRefSerialized(const std::string& id) = 0;
  // The object store of the caller's node.
  virtual ObjectStoreUsage LocalStoreUsage() = 0;

  // Actors (raympi/actor.h). Creates an actor by running `factory` on a dedicated worker;
  // returns its id once the GCS registered it (throws raympi::Error for a taken name).
  virtual std::string CreateActor(const std::string& factory, const std::string& class_name,
                                  std::vector<TaskArg> args, const ActorOptions& options);
  // Calls a method; returns the id of its result, counted as one reference.
  virtual std::string SubmitActorTask(const std::string& actor_id, const std::string& method,
                                      std::vector<TaskArg> args, const std::string& return_type);
  // Looks up a live named actor; throws raympi::Error when there is none.
  virtual ActorLookup GetActor(const std::string& name);
  // Ends an actor; later calls raise ActorDiedError.
  virtual void KillActor(const std::string& actor_id);

  // Placement groups (raympi/placement_group.h). Registers a group with the GCS (throws
  // raympi::Error for a bad spec, a taken name or a group that can never be placed).
  virtual PlacementGroupStatus CreatePlacementGroup(const PlacementGroupSpecification& spec);
  // By id, or by name when the id is empty; waits up to wait_ms (-1: forever) while PENDING.
  virtual PlacementGroupStatus GetPlacementGroup(const std::string& id, const std::string& name,
                                                 int64_t wait_ms);
  virtual PlacementGroupStatus RemovePlacementGroup(const std::string& id);
};

// The runtime of this process; throws raympi::Error when raympi::Init was not called.
Runtime& CurrentRuntime();

}  // namespace raympi::internal
