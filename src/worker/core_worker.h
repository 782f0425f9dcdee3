// CoreWorker: the runtime inside the driver and every worker process. It owns the objects it
// creates, resolves task arguments, leases workers from raylets and pushes tasks straight to
// them (Ray's direct task path), and, in a worker, executes the tasks pushed to it.
//
// Thread-safety: the public methods are safe from any thread. One thread at a time receives this
// process's mailbox (ReceiverRole): a user thread that blocks (Get/Wait, a worker's idle task
// thread) receives and handles messages itself, and the io thread does while no user thread
// waits. State is guarded by mu_; messages are sent after mu_ is released so a full peer
// mailbox can never block a thread that holds it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/id_key.h"
#include "common/ids.h"
#include "common/shm_bus.h"
#include "common/status.h"
#include "objects/object_store.h"
#include "objects/peer_store_copier.h"
#include "raympi.pb.h"
#include "raympi/function_registry.h"
#include "raympi/runtime.h"
#include "worker/receiver_role.h"

namespace raympi {

struct CoreWorkerConfig {
  int node = 0;
  int slot = 0;
  bool is_driver = false;
  std::string bus_name;
  std::string store_name;  // the node's object store
  // Values up to this size travel inline in messages; larger ones go into the object store
  // (Ray's max_direct_call_object_size).
  size_t max_inline_bytes = 100 << 10;
  // How long Put (or a task's return) waits for room in a full store before it fails.
  std::chrono::milliseconds store_full_timeout{10000};
  // Tasks in flight per leased worker. 1, as in Ray: a deeper pipeline queues tasks behind a
  // running one on a worker while other CPUs may be free (and can deadlock nested Gets).
  int pipeline_depth = 1;
  // Tasks in one push when the queue is longer than the leases can take one at a time: the
  // backlog is split evenly over the leases (and those asked for), up to this many per push.
  // One message and one wake-up then carry many tasks (docs/performance.md, "Batched pushes").
  int max_push_batch = 32;
  // A worker whose task has run this long, or blocks in Get, hands the tasks queued behind it
  // back to their owner, so a long task never holds up short ones while other CPUs idle.
  std::chrono::microseconds hand_back_after{2000};
  std::chrono::microseconds lease_idle_timeout{10000};
  // How long the mailbox may go unreceived after a user thread stopped waiting before the io
  // thread takes it over: short gaps between waits (a loop of synchronous tasks) then cost no
  // thread hand-off. Also bounds how late a busy worker or driver answers a message (up to 8
  // graces right after a loop of short waits: the io thread backs off while the role churns).
  std::chrono::microseconds receiver_grace{500};
  // A user thread that receives polls its mailbox, yielding the core, this long before it
  // sleeps on the mailbox futex (a wake-up from that sleep costs tens of microseconds on a VM).
  std::chrono::microseconds receive_spin{50};
  // The first part of that spin checks the mailbox with CPU pauses instead of sched_yield,
  // which costs over a microsecond per call on a VM: a reply due within microseconds is seen
  // at once. Longer waits yield the core, so the peer sharing it can run.
  std::chrono::microseconds receive_pause{20};
  // While a fetch of its own is in flight, a waiting thread polls (yielding) for as long as the
  // transfer should take, up to this, instead of receive_spin: a pull of a small object ends
  // a few hundred microseconds later, and the futex wake-up that ends a sleep (the raylet's
  // send, then the waiter's wake-up) cost ~65 us of it on the test VM. 0: never.
  std::chrono::microseconds fetch_spin_max{1000};
  // Objects of other nodes of this host (SameHostStores from the raylet) are copied in by the
  // process that needs them (src/objects/peer_store_copier.h); false: the raylet pulls them.
  bool reader_copies = true;
  // ... of objects up to this size. Larger ones the raylet pulls: its mappings of the other
  // stores are populated and it reads in chunks; ours fault page by page on first touch (a
  // 1 GiB Get took 93-101 ms this way against 66-77 ms through the raylet on the test VM).
  uint64_t reader_copy_max_bytes = 32 << 20;
};

class CoreWorker : public internal::Runtime {
 public:
  static StatusOr<std::unique_ptr<CoreWorker>> Start(const CoreWorkerConfig& config);
  ~CoreWorker() override;

  std::string Put(const internal::ValueWriter& value, const std::string& type) override;
  std::string Submit(const std::string& function, std::vector<internal::TaskArg> args,
                     const std::string& return_type, const internal::TaskOptions& options) override;
  std::vector<internal::FetchedObject> Get(const std::vector<std::string>& ids,
                                           int timeout_ms) override;
  std::vector<bool> Wait(const std::vector<std::string>& ids, int num, int timeout_ms) override;
  std::vector<NodeInfo> Nodes() override;
  void AddLocalRef(const std::string& id) override;
  void RemoveLocalRef(const std::string& id) override;
  void OnRefSerialized(const std::string& id) override;
  ObjectStoreUsage LocalStoreUsage() override;
  // Actors: calling them (actor_caller.cc) and hosting them (actor_host.cc).
  std::string CreateActor(const std::string& factory, const std::string& class_name,
                          std::vector<internal::TaskArg> args,
                          const internal::ActorOptions& options) override;
  std::string SubmitActorTask(const std::string& actor_id, const std::string& method,
                              std::vector<internal::TaskArg> args,
                              const std::string& return_type) override;
  internal::ActorLookup GetActor(const std::string& name) override;
  void KillActor(const std::string& actor_id) override;
  // Placement groups (placement_group_client.cc).
  internal::PlacementGroupStatus CreatePlacementGroup(
      const internal::PlacementGroupSpecification& spec) override;
  internal::PlacementGroupStatus GetPlacementGroup(const std::string& id, const std::string& name,
                                                   int64_t wait_ms) override;
  internal::PlacementGroupStatus RemovePlacementGroup(const std::string& id) override;

  // Objects this process tracks (owned, borrowed or cached): for tests of reference counting.
  size_t NumTrackedObjects();
  ObjectStore& store() { return *store_; }

  // Worker mode: executes pushed tasks until the raylet ends the job.
  void RunTaskLoop();
  // Worker mode: reports what this worker ran, as it leaves the job.
  void ReportStats();
  // Driver mode: reports the driver's exit code to the raylet.
  void ReportDriverExit(int exit_code);
  int node() const { return config_.node; }
  // Stops the io thread; no message is handled afterwards.
  void Stop();

 private:
  // What a handler sends once mu_ is released, in order. Most messages are envelopes, encoded
  // by SendAll; a push is encoded under mu_ (Pump), so that its specs then move into in_flight_
  // instead of being copied (docs/performance.md,
  // "Fewer lookups, copies and allocations per task on the owner").
  class Outbox {
   public:
    struct Message {
      rpc::Envelope envelope;  // when `frame` is empty
      std::string frame;       // already encoded, for mailbox `slot`
      int slot = 0;
    };
    Outbox() = default;
    Outbox(std::initializer_list<rpc::Envelope> envelopes) {
      for (const rpc::Envelope& e : envelopes) push_back(e);
    }
    void push_back(rpc::Envelope envelope) { messages_.push_back({std::move(envelope), {}, 0}); }
    void PushFrame(int slot, std::string frame) {
      messages_.push_back({rpc::Envelope(), std::move(frame), slot});
    }
    bool empty() const { return messages_.empty(); }
    void clear() { messages_.clear(); }
    const std::vector<Message>& messages() const { return messages_; }

   private:
    std::vector<Message> messages_;
  };
  // A thread in Wait/Get: woken when `ready` reaches `num` (or the job stops).
  struct Waiter : ReceiverRole::Seat {
    int num = 0;
    int ready = 0;
  };
  struct ObjectEntry {
    bool ready = false;
    rpc::ObjectValue value;  // for an object in a store: where it is, not its bytes
    // Reference counts (docs/objects.md). The owner frees the object when all are zero.
    int local_refs = 0;    // ObjectRefs in this process
    int task_refs = 0;     // owner: pending tasks that take it as an argument
    bool escaped = false;  // serialized into a value: kept until the job ends
    std::set<int> copies;  // owner: nodes whose store holds a copy
    // An object in another node's store is fetched into ours before it is read.
    bool local = false;     // in this node's store
    bool fetching = false;  // FetchObject sent to our raylet
    std::string fetch_error;
    std::vector<Waiter*> fetch_waiters;
    // A pin our raylet took for us with ObjectFetched: the next Fetched uses it instead of a
    // store lookup (released with the entry if nobody does).
    ObjectView raylet_pin;
    // Owner, stored task results: the task that made it, to make it again if every copy is lost
    // (lineage reconstruction).
    std::optional<rpc::TaskSpec> lineage;
    bool requested = false;               // borrowed: GetObject sent to the owner
    std::vector<rpc::Address> borrowers;  // owner: who asked before it was ready
    std::vector<IdKey> dependent_tasks;   // tasks whose arguments wait for it (each once)
    std::vector<Waiter*> waiters;         // threads in Wait that count it
  };
  struct ResolvingTask {
    rpc::TaskSpec spec;
    std::set<std::string> missing;  // object ids not yet inlined
  };
  struct Lease {
    uint64_t id = 0;
    rpc::Address worker;
    int in_flight = 0;
    std::chrono::steady_clock::time_point idle_since;
  };
  struct SchedulingQueue {
    rpc::ResourceSet resources;
    rpc::SchedulingStrategy strategy;
    std::deque<rpc::TaskSpec> tasks;
    std::vector<Lease> leases;
    int pending_lease_requests = 0;
    int home_node = 0;  // whose raylet gets the lease requests first
  };
  struct InFlight {
    SchedulingQueue* queue = nullptr;  // queues_ never erases, so this stays valid
    uint64_t lease_id = 0;
    rpc::TaskSpec spec;       // to run it again if its worker dies
    uint64_t push_order = 0;  // a worker runs its lease's tasks in this order
  };

  // Caller side of one actor: calls in submission order, sent once the actor is alive.
  struct ActorCalls {
    bool subscribed = false;  // the GCS sends us the actor's state changes
    bool known = false;       // `info` came from the GCS
    rpc::ActorInfo info;
    int epoch = -1;  // num_restarts of the instance that next_sequence numbers for
    uint64_t next_sequence = 0;
    std::deque<std::string> order;                            // unsent task ids
    std::unordered_map<std::string, rpc::TaskSpec> resolved;  // ready to send
    std::map<uint64_t, rpc::TaskSpec> sent;                   // by sequence, awaiting TaskDone
    std::unordered_map<std::string, int> retries;             // task id -> retries used
  };
  // A threaded actor's calls (SetMaxConcurrency > 1) and its idle threads.
  struct ActorPool {
    std::deque<rpc::PushTask> queue;
    std::vector<Waiter*> idle;
    bool retired = false;
  };
  // Executor side: an actor instance on this worker.
  struct HostedActor {
    std::shared_ptr<void> instance;
    std::shared_ptr<ActorPool> pool;           // threaded actors only
    std::map<std::string, uint64_t> expected;  // caller -> next sequence to run
    std::map<std::string, std::map<uint64_t, rpc::PushTask>> early;  // arrived out of order
  };

  CoreWorker(const CoreWorkerConfig& config, std::unique_ptr<ShmBus> bus,
             std::shared_ptr<ObjectStore> store);
  void IoLoop();
  // Requires mu_ (held by `lock`). Returns when done() holds, `deadline` passes or the job
  // stops; meanwhile receives and handles messages on this thread whenever it can take the
  // receiver role.
  template <typename Done>
  void BlockUntil(std::unique_lock<std::mutex>& lock, ReceiverRole::Seat& seat, const Done& done,
                  std::chrono::steady_clock::time_point deadline);
  // Requires mu_ and the receiver role: receives one message (waiting up to the next timer or
  // `deadline`), handles it and sends what it produced; mu_ is released while receiving and
  // sending.
  void ReceiveOnce(std::unique_lock<std::mutex>& lock, std::string* frame,
                   std::chrono::steady_clock::time_point deadline, bool spin);
  // BlockUntil the waiter's count reaches its number (time_point::max(): no deadline).
  void WaitFor(std::unique_lock<std::mutex>& lock, Waiter& waiter,
               std::chrono::steady_clock::time_point deadline);
  void Handle(rpc::Envelope& envelope, Outbox& out);
  // When the pulls of the FetchObject messages in `fetches` should have landed (bounded by
  // fetch_spin_max from now); now when none pulls from another node.
  std::chrono::steady_clock::time_point ExpectedFetchEnd(const Outbox& fetches) const;
  void SendAll(Outbox& out);
  // The mailbox a message to `dst` goes to: its own on this node, else our raylet's.
  int RouteSlot(const rpc::Address& dst) const;
  rpc::Envelope NewEnvelope(int node, int slot) const;
  // Makes a reused envelope one from us to (node, slot), keeping its body for the caller.
  void ResetEnvelope(rpc::Envelope* e, int node, int slot) const;
  bool Owns(const ObjectId& id) const;

  // All below require mu_.
  ObjectId NextObjectId();
  void MarkReady(const std::string& id, rpc::ObjectValue value, Outbox& out);
  void StartResolving(rpc::TaskSpec&& spec, Outbox& out);
  void RequestFromOwner(const std::string& id, ObjectEntry& entry, Outbox& out);
  int HomeNode(const rpc::TaskSpec& spec) const;
  void Enqueue(rpc::TaskSpec&& spec, Outbox& out);
  // The queue of tasks with the spec's demands and home node (created when new).
  SchedulingQueue& QueueFor(const rpc::TaskSpec& spec, int home_node);
  void Pump(SchedulingQueue& q, Outbox& out);
  void FailTask(const rpc::TaskSpec& spec, const std::string& function, const std::string& message,
                Outbox& out);
  void OnLeaseReply(const rpc::Envelope& envelope, Outbox& out);
  void OnTaskDone(rpc::TaskDone& done, Outbox& out);
  // The raylet says a worker we leased died: its leases are gone; retry or fail its tasks.
  void OnWorkerDied(const rpc::WorkerDied& died, Outbox& out);
  // A node is lost: its leases end (tasks retried), requests waiting there go home, objects
  // whose only copies were there are made again from their lineage or become errors.
  void OnNodeDied(const rpc::NodeDied& died, Outbox& out);
  // Runs the task again if it has retries left; false if not.
  bool Retry(rpc::TaskSpec& spec, const std::string& why, Outbox& out);
  void ReturnIdleLeases(Outbox& out);
  // How many queued tasks the next push to one of the queue's leases carries.
  int PushBatchSize(const SchedulingQueue& q) const;
  // A worker handed back tasks it will not start: they are queued again, uncharged.
  void OnReturnTasks(const rpc::ReturnTasks& returned, Outbox& out);
  // Worker: returns the plain tasks queued behind the running one to their owners.
  void HandBackQueued(Outbox& out);
  // Worker: when the io thread must next check for a task that runs past hand_back_after.
  std::chrono::steady_clock::time_point HandBackDeadline() const;
  rpc::Envelope MakeLeaseRequest(int node, uint64_t request_id, const SchedulingQueue& q,
                                 bool spilled) const;
  void SetBlocked(bool blocked);
  void ExecuteTask(rpc::PushTask& push);

  // The resources a task or actor in a placement group asks for (the bundle's named
  // resources, common/bundle_resources.h). Waits until the group is placed; throws when it
  // was removed, failed, or the bundle cannot hold the request. Takes no lock.
  rpc::ResourceSet PlacementGroupResources(const std::string& what, const std::string& group_id,
                                           int bundle_index,
                                           const std::map<std::string, double>& resources);

  // Actors, caller side (actor_caller.cc; all but CallGcs require mu_).
  // Sends a request to the GCS and blocks until its reply (same request id) arrives.
  rpc::Envelope CallGcs(rpc::Envelope request);
  // The same to any process (our raylet: MakeRoom). Throws Error when the job stops.
  rpc::Envelope Call(rpc::Envelope request, const rpc::Address& dst);
  void EnqueueActorTask(rpc::TaskSpec&& spec, Outbox& out);
  void SendActorTasks(const std::string& actor_id, Outbox& out);
  void OnActorInfo(const rpc::ActorInfo& info, Outbox& out);
  void OnActorTaskDone(const std::string& task_id);
  void FailActorTask(const rpc::TaskSpec& spec, const std::string& message, Outbox& out);
  // Actors, executor side (actor_host.cc).
  void OnActorPush(rpc::PushTask push, Outbox& out);                   // requires mu_
  void OnDestroyActor(const rpc::DestroyActor& destroy, Outbox& out);  // requires mu_
  // Runs a creation task (keeps the instance) or a method; takes mu_ briefly. Throws what the
  // user code throws, ActorDiedError when the instance is gone.
  // A chunk of a map (TaskSpec.calls): the function on each slice of `args`; the encoded
  // std::vector of the results.
  static std::string RunCalls(const rpc::TaskSpec& spec, const internal::FunctionInfo& info,
                              const std::vector<std::string_view>& args);
  std::string RunActorTask(const rpc::TaskSpec& spec, const internal::FunctionInfo& info,
                           const std::vector<std::string_view>& args);
  // Ends a killed actor's instance on the task thread (outside mu_).
  void DestroyRetired(const std::string& actor_id);
  // Requires mu_: queues a call for the task thread, or a threaded actor's own threads.
  void QueueActorCall(HostedActor& actor, rpc::PushTask push);
  // A threaded actor's thread: runs its calls until it is killed or the job stops.
  void RunActorThread(std::shared_ptr<ActorPool> pool);

  // Objects in stores (require mu_ unless noted).
  // Writes a value of `size` bytes into this node's store as `id`, waiting up to
  // store_full_timeout for room; the ObjectValue says where it is. Takes no lock.
  StatusOr<rpc::ObjectValue> StoreValue(const std::string& id, size_t size,
                                        const std::function<void(char*)>& write,
                                        const std::string& type);
  // Points a task argument at a resolved object: its bytes inline, or where it is stored.
  void ResolveArg(rpc::TaskArg& arg, const rpc::ObjectValue& value) const;
  // Makes every stored object among `ids` local (fetching through our raylet), then pins them.
  // Returns the error of an object that could not be made local.
  Status MakeLocal(const std::vector<std::string>& ids, std::unique_lock<std::mutex>& lock,
                   std::chrono::steady_clock::time_point deadline, bool has_deadline);
  void OnObjectFetched(const rpc::ObjectFetched& fetched);
  // The end of a fetch, from the raylet's ObjectFetched or our own copy: records the outcome
  // and wakes the threads waiting for it.
  void FinishFetch(const std::string& id, const std::string& error, ObjectView pin);
  // Asks our raylet to make `id` local (ObjectFetched answers).
  rpc::Envelope FetchRequest(const std::string& id, const ObjectEntry& entry) const;
  void EndFetchWait(ObjectEntry& entry);  // wakes the fetch's waiters, nothing recorded
  // Copies `id` (`size` bytes) from `node`'s store of this host (where `at` says, if known)
  // into a new object of ours, sealed. Takes no lock of ours; on any error nothing is left
  // behind: ask the raylet.
  Status CopyFromPeer(const std::string& id, int node, uint64_t size,
                      const std::optional<StoredAt>& at);
  // A copy of ours made for `entry`: the owner learns of it, the entry holds a pin of it.
  void AdoptCopy(const std::string& id, ObjectEntry& entry, Outbox& out);
  // A copy made for a value that changed meanwhile: deleted again.
  void DropCopy(const std::string& id);
  // Worker: makes the task's stored arguments local and pins them, in argument order.
  Status PinStoredArgs(const rpc::TaskSpec& spec, std::vector<internal::FetchedObject>* pinned,
                       std::vector<std::string>* ids);
  // True if this node's store has the object now (not spilled, not freed). Takes no lock.
  bool IsInLocalStore(const std::string& id) const;
  // The bytes of a ready object, kept alive by the result's holder.
  internal::FetchedObject Fetched(const std::string& id, ObjectEntry& entry);
  // Frees (owner) or forgets (borrower) an object nobody here refers to any more.
  // Releases are noted while handling and done at the end (FlushReleases), never in the middle
  // of code that still holds a reference to the entry.
  void NoteRelease(const IdKey& id) { pending_release_.push_back(id); }
  void FlushReleases(Outbox& out);
  void MaybeRelease(const IdKey& id, Outbox& out);
  void ReleaseTaskArgs(const IdKey& task_id);
  // Moves `args` into the spec; the objects they refer to live at least until the task with
  // `return_id` is done (ReleaseTaskArgs). Throws ObjectLostError, naming `what()`, for a freed
  // object of ours (built only then: a string per task is measurable on the sync path).
  void AddArgs(const std::function<std::string()>& what, const std::string& return_id,
               std::vector<internal::TaskArg>& args, rpc::TaskSpec& spec);
  // A spec of a finished task, cleared for the next Submit (see spare_specs_).
  rpc::TaskSpec TakeSpareSpec();
  void KeepSpareSpec(rpc::TaskSpec&& spec);

  const CoreWorkerConfig config_;
  std::unique_ptr<ShmBus> bus_;
  // Shared with the holders of pinned views handed to user code, which may outlive us.
  std::shared_ptr<ObjectStore> store_;
  PeerStoreCopier peer_stores_;  // the other nodes' stores of this host (SameHostStores)
  const uint32_t pid_;
  const std::string caller_id_;  // "node.slot.pid": numbers this process's actor calls

  std::mutex mu_;
  ReceiverRole role_;                        // who receives the mailbox
  std::atomic<bool> receiver_woken_{false};  // role_ woke the receiver (ends a spin early)
  int spin_misses_ = 0;  // spins in a row that found no message (used by the role's holder)
  int spin_skip_ = 0;    // receives left that sleep without spinning
  // Until then a fetch of ours is expected to land: receives poll up to it (fetch_spin_max;
  // under mu_, read before a receive unlocks it).
  std::chrono::steady_clock::time_point fetch_spin_until_;
  ReceiverRole::Seat task_seat_;  // worker: the task thread waiting for a task
  bool stopping_ = false;
  uint32_t next_index_ = 0;
  uint64_t next_lease_request_ = 0;
  uint64_t next_push_order_ = 0;
  std::unordered_map<IdKey, ObjectEntry, IdKeyHash> objects_;
  std::unordered_map<IdKey, ResolvingTask, IdKeyHash> resolving_;
  std::map<std::string, SchedulingQueue> queues_;
  SchedulingQueue* last_queue_ = nullptr;  // QueueFor's answer for the previous task
  struct LeaseRequest {
    SchedulingQueue* queue = nullptr;
    int node = 0;  // whose raylet holds the request now
  };
  std::unordered_map<uint64_t, LeaseRequest> lease_requests_;
  std::unordered_map<IdKey, InFlight, IdKeyHash> in_flight_;  // task id -> where it runs
  using InFlightNode = std::unordered_map<IdKey, InFlight, IdKeyHash>::node_type;
  InFlightNode spare_in_flight_;  // a finished task's entry, for the next push to reuse
  // Owner: the objects each pending task takes (their task_refs), by task id.
  std::unordered_map<IdKey, std::vector<std::string>, IdKeyHash> task_args_;
  std::vector<IdKey> pending_release_;
  std::set<int> dead_nodes_;
  std::deque<rpc::PushTask> pushed_;  // worker: tasks to execute
  size_t queued_plain_ = 0;           // of them, plain tasks (not actor calls): may be handed back
  // A task, not an actor's creation or call (only those are handed back, HandBackQueued).
  static bool IsPlainTask(const rpc::PushTask& push);
  // Reused messages (under mu_): protobuf keeps the buffers of a message cleared in place, so
  // decoding or building the next one of the same kind needs few mallocs (docs/performance.md).
  rpc::Envelope rx_envelope_;    // every received frame is decoded into it
  rpc::PushTask spare_push_;     // worker: a finished push, for the next one to decode into
  rpc::Envelope push_envelope_;  // owner: the pushes Pump encodes
  // Specs of finished tasks: protobuf's Clear keeps their strings' buffers and argument
  // messages, so the next Submit builds its spec with fewer mallocs.
  static constexpr size_t kMaxSpareSpecs = 16;
  std::vector<rpc::TaskSpec> spare_specs_;
  uint64_t next_request_id_ = 0;
  std::map<uint64_t, std::optional<rpc::ClusterView>> node_requests_;  // Nodes() in progress
  bool executing_ = false;
  std::chrono::steady_clock::time_point executing_since_;
  rpc::TaskStats stats_;
  // Actors (see the structs above).
  std::unordered_map<std::string, ActorCalls> actor_calls_;                       // by actor id
  std::unordered_map<std::string, std::pair<std::string, uint64_t>> actor_task_;  // sent call
  struct GcsCall {
    Waiter* waiter = nullptr;  // its num is 1; ready becomes 1 with the reply
    std::optional<rpc::Envelope> reply;
  };
  std::map<uint64_t, GcsCall> gcs_calls_;                           // CallGcs in progress
  std::unordered_map<std::string, HostedActor> hosted_;             // by actor id
  std::unordered_map<std::string, std::string> dead_hosted_;        // actor id -> cause
  std::unordered_map<std::string, std::shared_ptr<void>> retired_;  // killed, to destroy
  std::vector<std::thread> actor_threads_;  // threaded actors' threads, joined by Stop
  // Placement groups this process created or used, by id, as last heard from the GCS.
  std::map<std::string, rpc::PlacementGroupInfo> placement_groups_;

  std::thread io_thread_;
};

}  // namespace raympi
