#include "worker/core_worker.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/frame.h"
#include "common/logging.h"
#include "raympi/errors.h"
#include "raympi/function_registry.h"
#include "worker/actor_specs.h"

namespace raympi {

namespace {

constexpr int kMaxPendingLeaseRequests = 8;

// Tasks with equal resource demands and the same home raylet share a queue and its leases
// (Ray's scheduling class).
std::string QueueKey(const rpc::TaskSpec& spec, int home_node) {
  const rpc::ResourceSet& resources = spec.resources();
  std::map<std::string, double> sorted(resources.amounts().begin(), resources.amounts().end());
  std::string key = std::to_string(home_node) + "/" + std::to_string(spec.strategy().kind()) + "/" +
                    std::to_string(spec.strategy().node()) + "/" +
                    std::to_string(spec.strategy().soft()) + "/";
  for (const auto& [name, amount] : sorted) key += name + "=" + std::to_string(amount) + ";";
  return key;
}

// Makes `amounts` hold exactly the positive amounts of `wanted`. A reused spec usually holds
// them already: then the map is left alone (a protobuf map frees and mallocs every entry).
void SetPositiveAmounts(const std::map<std::string, double>& wanted,
                        google::protobuf::Map<std::string, double>* amounts) {
  size_t positive = 0;
  bool same = true;
  for (const auto& [name, amount] : wanted) {
    if (amount <= 0) continue;
    ++positive;
    auto it = amounts->find(name);
    if (it == amounts->end() || it->second != amount) {
      same = false;
      break;
    }
  }
  if (same && positive == amounts->size()) return;
  amounts->clear();
  for (const auto& [name, amount] : wanted) {
    if (amount > 0) (*amounts)[name] = amount;
  }
}

// True if a task with `spec` belongs in a queue whose demands are `resources` and `strategy`
// (exactly equal: the slow path's key rounds amounts).
bool SameDemands(const rpc::ResourceSet& resources, const rpc::SchedulingStrategy& strategy,
                 const rpc::TaskSpec& spec) {
  const rpc::SchedulingStrategy& s = spec.strategy();
  if (s.kind() != strategy.kind() || s.node() != strategy.node() || s.soft() != strategy.soft()) {
    return false;
  }
  const auto& want = spec.resources().amounts();
  const auto& have = resources.amounts();
  if (want.size() != have.size()) return false;
  for (const auto& [name, amount] : want) {
    auto it = have.find(name);
    if (it == have.end() || it->second != amount) return false;
  }
  return true;
}

double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

StatusOr<std::unique_ptr<CoreWorker>> CoreWorker::Start(const CoreWorkerConfig& config) {
  auto bus = ShmBus::Attach(config.bus_name);
  if (!bus.ok()) return bus.status();
  auto store = ObjectStore::Attach(config.store_name);
  if (!store.ok()) return store.status();
  std::unique_ptr<CoreWorker> worker(new CoreWorker(
      config, std::move(bus.value()), std::shared_ptr<ObjectStore>(std::move(store.value()))));
  rpc::Envelope ready = worker->NewEnvelope(config.node, kRayletSlot);
  ready.mutable_worker_ready()->set_pid(static_cast<int32_t>(getpid()));
  ready.mutable_worker_ready()->set_is_driver(config.is_driver);
  Outbox out{ready};
  worker->SendAll(out);
  worker->io_thread_ = std::thread([w = worker.get()] { w->IoLoop(); });
  return worker;
}

CoreWorker::CoreWorker(const CoreWorkerConfig& config, std::unique_ptr<ShmBus> bus,
                       std::shared_ptr<ObjectStore> store)
    : config_(config),
      bus_(std::move(bus)),
      store_(std::move(store)),
      pid_(static_cast<uint32_t>(getpid())),
      caller_id_(std::to_string(config_.node) + "." + std::to_string(config_.slot) + "." +
                 std::to_string(pid_)),
      role_(config.receiver_grace, [this] {
        receiver_woken_.store(true, std::memory_order_relaxed);
        bus_->Wake(config_.slot);
      }) {}

CoreWorker::~CoreWorker() { Stop(); }

void CoreWorker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    role_.Stop();  // wakes every waiting thread and whoever receives
  }
  if (io_thread_.joinable()) io_thread_.join();
  for (std::thread& t : actor_threads_) t.join();
  actor_threads_.clear();
}

void CoreWorker::ResetEnvelope(rpc::Envelope* e, int node, int slot) const {
  e->clear_request_id();
  rpc::Address* src = e->mutable_src();
  src->set_node(config_.node);
  src->set_slot(config_.slot);
  rpc::Address* dst = e->mutable_dst();
  dst->set_node(node);
  dst->set_slot(slot);
}

rpc::Envelope CoreWorker::NewEnvelope(int node, int slot) const {
  rpc::Envelope e;
  ResetEnvelope(&e, node, slot);
  return e;
}

int CoreWorker::RouteSlot(const rpc::Address& dst) const {
  return dst.node() == config_.node ? dst.slot() : kRayletSlot;
}

void CoreWorker::SendAll(Outbox& out) {
  for (const Outbox::Message& m : out.messages()) {
    // Another node's processes are reached through our raylet, which forwards over MPI.
    const int slot = m.frame.empty() ? RouteSlot(m.envelope.dst()) : m.slot;
    Status st = bus_->Send(slot, m.frame.empty() ? EncodeFrame(m.envelope) : m.frame);
    if (!st.ok()) RAYMPI_LOG_ERROR("send to slot {} failed: {}", slot, st.ToString());
  }
  out.clear();
}

bool CoreWorker::Owns(const ObjectId& id) const {
  return id.owner_node == config_.node && id.owner_slot == config_.slot && id.owner_pid == pid_;
}

ObjectId CoreWorker::NextObjectId() {
  ObjectId id;
  id.owner_node = config_.node;
  id.owner_slot = config_.slot;
  id.owner_pid = pid_;
  id.index = ++next_index_;
  return id;
}

// ---- receiving: the io thread, or a thread that waits -----------------------------------------

void CoreWorker::ReceiveOnce(std::unique_lock<std::mutex>& lock, std::string* frame,
                             std::chrono::steady_clock::time_point deadline, bool spin) {
  using Clock = std::chrono::steady_clock;
  std::chrono::microseconds timeout(100000);
  for (auto& [key, q] : queues_) {
    for (auto& l : q.leases) {
      if (l.in_flight == 0) timeout = std::min(timeout, config_.lease_idle_timeout);
    }
  }
  const Clock::time_point wake_by = std::min(deadline, HandBackDeadline());
  if (wake_by != Clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(wake_by - Clock::now());
    timeout = std::max(std::chrono::microseconds(0), std::min(timeout, left));
  }
  // A fetch of ours in flight: poll until it should have landed, whatever the misses before.
  const Clock::time_point now = Clock::now();
  const auto fetch_spin =
      spin && fetch_spin_until_ > now
          ? std::chrono::duration_cast<std::chrono::microseconds>(fetch_spin_until_ - now)
          : std::chrono::microseconds(0);
  const bool fetch_in_flight = fetch_spin.count() > 0;
  role_.BeginReceive();
  lock.unlock();
  StatusOr<bool> got = false;
  bool woken = false;
  // Spins that found nothing (a long task, an idle worker) make the next ones rarer: after k
  // misses in a row, 2^k - 1 receives (at most 15) sleep at once; a hit spins again every time.
  if (spin && spin_skip_ > 0 && !fetch_in_flight) {
    --spin_skip_;
    spin = false;
  }
  const auto spin_for = std::max(config_.receive_spin, fetch_spin);
  if (spin && spin_for.count() > 0) {
    // A reply to a waiting thread is usually microseconds away: poll, yielding the core to
    // whoever needs it, before paying for a futex sleep and wake-up. TryReceive leaves a Wake
    // pending, so the Receive below still returns at once for a wake-up that ends the spin.
    const auto spin_window = std::min(spin_for, timeout);
    const auto spin_end = now + spin_window;
    receiver_woken_.store(false, std::memory_order_relaxed);  // stale; the bus Wake is sticky
    // The window's first part, without yielding; not while a fetch of ours is in flight: the
    // raylet serving it needs a core, maybe this one, and the answer is tens of us away.
    if (config_.receive_pause.count() > 0 && !fetch_in_flight) {
      bus_->AwaitActivity(config_.slot, std::min(config_.receive_pause, spin_window));
    }
    for (;;) {
      got = bus_->TryReceive(config_.slot, frame);
      if (!got.ok() || *got) break;
      if (receiver_woken_.exchange(false, std::memory_order_relaxed)) {
        woken = true;
        break;
      }
      if (Clock::now() >= spin_end) break;
      sched_yield();
    }
    if (got.ok() && *got) {
      spin_misses_ = 0;
    } else if (!woken) {
      spin_misses_ = std::min(spin_misses_ + 1, 4);
      spin_skip_ = (1 << spin_misses_) - 1;
    }
  }
  if (got.ok() && !*got && !woken) got = bus_->Receive(config_.slot, frame, timeout);
  lock.lock();
  role_.EndReceive();
  Outbox out;
  if (!got.ok()) {
    RAYMPI_LOG_ERROR("mailbox receive failed: {}", got.status().ToString());
  } else if (*got) {
    Status st = DecodeFrame(*frame, &rx_envelope_);
    if (st.ok()) {
      Handle(rx_envelope_, out);
    } else {
      RAYMPI_LOG_ERROR("dropping a malformed message: {}", st.ToString());
    }
  }
  ReturnIdleLeases(out);
  const Clock::time_point hand_back = HandBackDeadline();
  if (hand_back != Clock::time_point::max() && Clock::now() >= hand_back) HandBackQueued(out);
  FlushReleases(out);
  if (!out.empty()) {
    lock.unlock();
    SendAll(out);
    lock.lock();
  }
}

template <typename Done>
void CoreWorker::BlockUntil(std::unique_lock<std::mutex>& lock, ReceiverRole::Seat& seat,
                            const Done& done, std::chrono::steady_clock::time_point deadline) {
  using Clock = std::chrono::steady_clock;
  auto finished = [&] { return stopping_ || done(); };
  thread_local std::string frame;  // keeps its buffer from one wait to the next
  while (!finished()) {
    if (deadline != Clock::time_point::max() && Clock::now() >= deadline) return;
    if (!role_.Acquire(lock, seat, finished, deadline)) continue;
    while (!finished() && (deadline == Clock::time_point::max() || Clock::now() < deadline)) {
      ReceiveOnce(lock, &frame, deadline, /*spin=*/true);
    }
    role_.Release(seat);
  }
}

void CoreWorker::WaitFor(std::unique_lock<std::mutex>& lock, Waiter& waiter,
                         std::chrono::steady_clock::time_point deadline) {
  BlockUntil(
      lock, waiter, [&] { return waiter.ready >= waiter.num; }, deadline);
}

void CoreWorker::IoLoop() {
  std::string frame;
  std::unique_lock<std::mutex> lock(mu_);
  // Receives only while no user thread waits (e.g. the driver runs user code, a worker
  // executes a task), so that borrowers, lease replies and timers are still served then.
  while (role_.IoAcquire(lock)) {
    while (!stopping_ && !role_.IoMustYield()) {
      ReceiveOnce(lock, &frame, std::chrono::steady_clock::time_point::max(), /*spin=*/false);
    }
    role_.IoRelease();
  }
}

void CoreWorker::Handle(rpc::Envelope& envelope, Outbox& out) {
  switch (envelope.body_case()) {
    case rpc::Envelope::kLeaseReply:
      OnLeaseReply(envelope, out);
      break;
    case rpc::Envelope::kTaskDone:
      OnTaskDone(*envelope.mutable_task_done(), out);
      break;
    case rpc::Envelope::kWorkerDied:
      OnWorkerDied(envelope.worker_died(), out);
      break;
    case rpc::Envelope::kNodeDied:
      OnNodeDied(envelope.node_died(), out);
      break;
    case rpc::Envelope::kPushTask: {
      rpc::PushTask& push = *envelope.mutable_push_task();
      if (IsActorCall(push.spec())) {
        OnActorPush(std::move(push), out);
        break;
      }
      // A batch runs as single pushes, in order.
      google::protobuf::RepeatedPtrField<rpc::TaskSpec> more;
      more.Swap(push.mutable_more());
      const uint64_t lease_id = push.lease_id();
      if (IsPlainTask(push)) ++queued_plain_;
      pushed_.push_back(std::move(push));
      push.Swap(&spare_push_);  // the next push decodes into a finished one's buffers
      for (rpc::TaskSpec& spec : more) {
        rpc::PushTask single;
        single.set_lease_id(lease_id);
        *single.mutable_spec() = std::move(spec);
        if (IsPlainTask(single)) ++queued_plain_;
        pushed_.push_back(std::move(single));
      }
      role_.Notify(task_seat_);
      break;
    }
    case rpc::Envelope::kReturnTasks:
      OnReturnTasks(envelope.return_tasks(), out);
      break;
    case rpc::Envelope::kCreateActorReply:
    case rpc::Envelope::kMakeRoomReply:
    case rpc::Envelope::kPlacementGroupInfo:
    case rpc::Envelope::kActorInfo: {
      if (envelope.has_actor_info()) OnActorInfo(envelope.actor_info(), out);
      auto call = gcs_calls_.find(envelope.request_id());
      if (envelope.request_id() != 0 && call != gcs_calls_.end()) {
        call->second.reply = std::move(envelope);
        if (++call->second.waiter->ready == call->second.waiter->num) {
          role_.Notify(*call->second.waiter);
        }
      }
      break;
    }
    case rpc::Envelope::kDestroyActor:
      OnDestroyActor(envelope.destroy_actor(), out);
      break;
    case rpc::Envelope::kGetObject: {
      const std::string& id = envelope.get_object().object_id();
      auto it = objects_.find(id);
      if (it == objects_.end()) {
        rpc::Envelope reply = NewEnvelope(envelope.src().node(), envelope.src().slot());
        rpc::ObjectValue* v = reply.mutable_object_value();
        v->set_object_id(id);
        v->set_is_error(true);
        v->set_error_function("Get");
        v->set_error_message("object " + DescribeObjectId(id) +
                             " is unknown to its owner (freed, or never created)");
        out.push_back(std::move(reply));
      } else if (it->second.ready) {
        rpc::Envelope reply = NewEnvelope(envelope.src().node(), envelope.src().slot());
        *reply.mutable_object_value() = it->second.value;
        out.push_back(std::move(reply));
      } else {
        it->second.borrowers.push_back(envelope.src());
      }
      break;
    }
    case rpc::Envelope::kObjectValue: {
      std::string id = envelope.object_value().object_id();
      MarkReady(id, std::move(*envelope.mutable_object_value()), out);
      break;
    }
    case rpc::Envelope::kObjectFetched:
      OnObjectFetched(envelope.object_fetched());
      break;
    case rpc::Envelope::kSameHostStores:
      if (!config_.reader_copies) break;
      for (const rpc::SameHostStores::Store& s : envelope.same_host_stores().stores()) {
        StatusOr<ArenaLocation> where = ArenaLocation::Decode(s.location());
        if (where.ok()) peer_stores_.AddPeer(s.node(), *where);
      }
      break;
    case rpc::Envelope::kObjectLocation: {
      const rpc::ObjectLocation& location = envelope.object_location();
      auto it = objects_.find(location.object_id());
      if (it != objects_.end() && it->second.ready) {
        it->second.copies.insert(location.node());
      } else {
        // Freed before the copy was announced: free the copy too.
        rpc::Envelope free = NewEnvelope(location.node(), kRayletSlot);
        free.mutable_free_objects()->add_object_ids(location.object_id());
        out.push_back(std::move(free));
      }
      break;
    }
    case rpc::Envelope::kClusterView: {
      auto it = node_requests_.find(envelope.request_id());
      if (it != node_requests_.end()) {
        it->second = std::move(*envelope.mutable_cluster_view());
        role_.NotifyAll();
      }
      break;
    }
    case rpc::Envelope::kShutdown:
      stopping_ = true;
      role_.Stop();
      break;
    default:
      RAYMPI_LOG_WARN("core worker ignores message type {}",
                      static_cast<int>(envelope.body_case()));
  }
}

// ---- objects ----------------------------------------------------------------------------------

void CoreWorker::SetBlocked(bool blocked) {
  rpc::Envelope e = NewEnvelope(config_.node, kRayletSlot);
  e.mutable_worker_blocked()->set_blocked(blocked);
  Outbox out{e};
  SendAll(out);
}

std::vector<bool> CoreWorker::Wait(const std::vector<std::string>& ids, int num, int timeout_ms) {
  for (const std::string& id : ids) {
    if (!ObjectId::FromBinary(id).ok())
      throw Error("raympi: invalid ObjectRef (empty or corrupt id)");
  }
  Outbox out;
  // Each object that becomes ready bumps this waiter's count and wakes it only when the count
  // reaches `num`: waiting on N refs costs O(N), not O(N) per arrival.
  Waiter waiter;
  waiter.num = num;
  std::unique_lock<std::mutex> lock(mu_);
  // One lookup per id for both passes (entries stay put while the map grows).
  std::vector<ObjectEntry*> entries(ids.size(), nullptr);
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = objects_.find(ids[i]);
    if (it != objects_.end()) {
      entries[i] = &it->second;
    } else if (Owns(*ObjectId::FromBinary(ids[i]))) {
      throw ObjectLostError("raympi: object " + DescribeObjectId(ids[i]) +
                            " was freed: its last ObjectRef was dropped (or it never existed)");
    }
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    ObjectEntry& entry = entries[i] != nullptr ? *entries[i] : objects_[id];
    RequestFromOwner(id, entry, out);
    if (entry.ready) {
      ++waiter.ready;
    } else {
      entry.waiters.push_back(&waiter);
    }
  }
  bool must_block = waiter.ready < num;
  // A worker blocked in Get lends its CPU back so nested tasks can run (as in Ray).
  bool report_block = must_block && !config_.is_driver && executing_;
  // The tasks queued behind this one may be what it waits for: they run elsewhere.
  if (report_block) HandBackQueued(out);
  if (!out.empty() || report_block) {
    lock.unlock();
    SendAll(out);
    if (report_block) SetBlocked(true);
    lock.lock();
  }
  auto deadline = timeout_ms < 0
                      ? std::chrono::steady_clock::time_point::max()
                      : std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  BlockUntil(
      lock, waiter, [&] { return waiter.ready >= num; }, deadline);
  std::vector<bool> ready;
  // Looked up again: an entry nobody refers to may have been released meanwhile.
  for (const std::string& id : ids) {
    auto it = objects_.find(id);
    bool is_ready = it != objects_.end() && it->second.ready;
    ready.push_back(is_ready);
    if (it == objects_.end()) continue;
    if (!is_ready) {
      auto& w = it->second.waiters;
      w.erase(std::remove(w.begin(), w.end(), &waiter), w.end());
    }
    // Only an object nobody here holds a ref to may go now (MaybeRelease's first test).
    if (it->second.local_refs == 0) NoteRelease(id);
  }
  out.clear();
  FlushReleases(out);
  lock.unlock();
  SendAll(out);
  if (report_block) SetBlocked(false);
  return ready;
}

std::vector<NodeInfo> CoreWorker::Nodes() {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t id = ++next_request_id_;
  node_requests_[id];
  rpc::Envelope request = NewEnvelope(config_.node, kRayletSlot);
  request.set_request_id(id);
  request.mutable_get_nodes();
  Outbox out{request};
  lock.unlock();
  SendAll(out);
  lock.lock();
  ReceiverRole::Seat seat;
  BlockUntil(
      lock, seat, [&] { return node_requests_[id].has_value(); },
      std::chrono::steady_clock::time_point::max());
  std::optional<rpc::ClusterView> view = std::move(node_requests_[id]);
  node_requests_.erase(id);
  if (!view) throw Error("raympi::Nodes: the job is shutting down");
  std::vector<NodeInfo> nodes;
  for (const rpc::NodeInfo& n : view->nodes()) {
    NodeInfo info;
    info.id = n.node();
    info.host = n.host();
    info.total.insert(n.total().amounts().begin(), n.total().amounts().end());
    info.available.insert(n.available().amounts().begin(), n.available().amounts().end());
    info.alive = n.alive();
    info.raylet_pid = n.pid();
    nodes.push_back(std::move(info));
  }
  return nodes;
}

// ---- submitting tasks -------------------------------------------------------------------------

std::string CoreWorker::Submit(const std::string& function, std::vector<internal::TaskArg> args,
                               const std::string& return_type,
                               const internal::TaskOptions& options) {
  Outbox out;
  std::string return_id;
  rpc::ResourceSet group_resources;  // in a placement group: what its bundle provides
  if (!options.placement_group_id.empty()) {
    group_resources =
        PlacementGroupResources("raympi::Task(" + function + ")", options.placement_group_id,
                                options.bundle_index, options.resources);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) throw Error("raympi: cannot submit " + function + ": the job is shutting down");
    ObjectId id = NextObjectId();
    return_id = id.Binary();
    rpc::TaskSpec spec = TakeSpareSpec();
    spec.set_task_id(return_id);
    spec.set_return_id(return_id);
    spec.set_function(function);
    spec.set_return_type(return_type);
    if (!options.name.empty()) spec.set_name(options.name);  // an empty string is a heap block
    if (options.max_retries < 0) {
      throw Error("raympi::Task(" + function + ").SetMaxRetries: must be >= 0, got " +
                  std::to_string(options.max_retries));
    }
    spec.set_max_retries(options.max_retries);
    spec.set_retry_exceptions(options.retry_exceptions);
    if (options.calls > 0) spec.set_calls(static_cast<uint32_t>(options.calls));
    *spec.mutable_owner() = MakeAddress(config_.node, config_.slot);
    rpc::SchedulingStrategy* strategy = spec.mutable_strategy();
    switch (options.strategy.kind) {
      case SchedulingStrategy::Kind::kDefault:
        strategy->set_kind(rpc::SchedulingStrategy::DEFAULT);
        break;
      case SchedulingStrategy::Kind::kSpread:
        strategy->set_kind(rpc::SchedulingStrategy::SPREAD);
        break;
      case SchedulingStrategy::Kind::kNodeAffinity:
        if (options.strategy.node < 0) {
          throw Error("raympi::NodeAffinity: node must be a node id (>= 0), got " +
                      std::to_string(options.strategy.node));
        }
        strategy->set_kind(rpc::SchedulingStrategy::NODE_AFFINITY);
        strategy->set_node(options.strategy.node);
        strategy->set_soft(options.strategy.soft);
        break;
    }
    for (const auto& [name, amount] : options.resources) {
      if (amount < 0) {
        throw Error("raympi::Task(" + function + "): resource " + name +
                    " must not be negative, got " + std::to_string(amount));
      }
    }
    SetPositiveAmounts(options.resources, spec.mutable_resources()->mutable_amounts());
    if (!options.placement_group_id.empty()) *spec.mutable_resources() = group_resources;
    AddArgs([&] { return "raympi::Task(" + function + ")"; }, return_id, args, spec);
    objects_[return_id].local_refs = 1;  // pending until the task is done; the ref adopts it
    StartResolving(std::move(spec), out);
    FlushReleases(out);
  }
  SendAll(out);
  return return_id;
}

rpc::TaskSpec CoreWorker::TakeSpareSpec() {
  if (spare_specs_.empty()) return rpc::TaskSpec();
  rpc::TaskSpec spec = std::move(spare_specs_.back());
  spare_specs_.pop_back();
  // Clear() keeps strings' buffers and argument messages but deletes sub-messages: Submit sets
  // the owner and the strategy of every spec, so those are kept and cleared in place, and the
  // resources stay as they were (Submit rewrites them only when they differ).
  std::unique_ptr<rpc::Address> owner(spec.release_owner());
  std::unique_ptr<rpc::SchedulingStrategy> strategy(spec.release_strategy());
  std::unique_ptr<rpc::ResourceSet> resources(spec.release_resources());
  spec.Clear();
  if (owner) {
    owner->Clear();
    spec.set_allocated_owner(owner.release());
  }
  if (strategy) {
    strategy->Clear();
    spec.set_allocated_strategy(strategy.release());
  }
  spec.set_allocated_resources(resources.release());
  return spec;
}

void CoreWorker::KeepSpareSpec(rpc::TaskSpec&& spec) {
  if (spare_specs_.size() < kMaxSpareSpecs) spare_specs_.push_back(std::move(spec));
}

void CoreWorker::StartResolving(rpc::TaskSpec&& spec, Outbox& out) {
  ResolvingTask task;
  for (const auto& arg : spec.args()) {
    if (arg.object_id().empty()) continue;
    if (!ObjectId::FromBinary(arg.object_id()).ok()) {
      FailTask(spec, spec.function(), "an ObjectRef argument is empty or corrupt", out);
      return;
    }
    ObjectEntry& entry = objects_[arg.object_id()];
    if (entry.ready && entry.value.is_error()) {
      FailTask(spec, entry.value.error_function(), entry.value.error_message(), out);
      return;
    }
    if (!entry.ready) task.missing.insert(arg.object_id());
  }
  for (auto& arg : *spec.mutable_args()) {
    if (!arg.object_id().empty() && !task.missing.count(arg.object_id())) {
      ResolveArg(arg, objects_[arg.object_id()].value);
    }
  }
  if (task.missing.empty()) {
    Enqueue(std::move(spec), out);
    return;
  }
  std::string task_id = spec.task_id();
  for (const std::string& id : task.missing) {
    ObjectEntry& entry = objects_[id];
    entry.dependent_tasks.push_back(task_id);
    RequestFromOwner(id, entry, out);
  }
  task.spec = std::move(spec);
  resolving_[task_id] = std::move(task);
}

void CoreWorker::FailTask(const rpc::TaskSpec& spec, const std::string& function,
                          const std::string& message, Outbox& out) {
  rpc::ObjectValue v;
  v.set_object_id(spec.return_id());
  v.set_is_error(true);
  v.set_error_function(function);
  v.set_error_message(message);
  MarkReady(spec.return_id(), std::move(v), out);
  ReleaseTaskArgs(spec.task_id());
  // An actor call that failed before it was sent no longer holds back the calls after it.
  if (IsActorCall(spec)) SendActorTasks(spec.actor_id(), out);
}

// Data locality (Ray's lease policy): a task whose arguments are large stored objects asks the
// raylet of the node holding most of their bytes first; others ask the caller's raylet.
int CoreWorker::HomeNode(const rpc::TaskSpec& spec) const {
  if (spec.strategy().kind() != rpc::SchedulingStrategy::DEFAULT) return config_.node;
  std::map<int, uint64_t> bytes;
  for (const auto& arg : spec.args()) {
    if (arg.in_store() && !dead_nodes_.count(arg.node())) bytes[arg.node()] += arg.size();
  }
  int home = config_.node;
  uint64_t most = 0;
  for (const auto& [node, n] : bytes) {
    if (n > most) {
      home = node;
      most = n;
    }
  }
  return home;
}

void CoreWorker::Enqueue(rpc::TaskSpec&& spec, Outbox& out) {
  if (IsActorCall(spec)) {
    EnqueueActorTask(std::move(spec), out);
    return;
  }
  int home = HomeNode(spec);
  SchedulingQueue& q = QueueFor(spec, home);
  q.home_node = home;
  if (q.tasks.empty() && q.leases.empty()) {
    *q.resources.mutable_amounts() = spec.resources().amounts();
    q.strategy = spec.strategy();
  }
  q.tasks.push_back(std::move(spec));
  Pump(q, out);
}

CoreWorker::SchedulingQueue& CoreWorker::QueueFor(const rpc::TaskSpec& spec, int home_node) {
  // A program submits runs of tasks with equal demands: compare with the previous task's queue
  // before building the key (a std::map and a few to_strings per task).
  if (last_queue_ != nullptr && last_queue_->home_node == home_node &&
      SameDemands(last_queue_->resources, last_queue_->strategy, spec)) {
    return *last_queue_;
  }
  last_queue_ = &queues_[QueueKey(spec, home_node)];
  return *last_queue_;
}

void CoreWorker::Pump(SchedulingQueue& q, Outbox& out) {
  // Fill the least loaded leases first so work spreads over all leased workers.
  while (!q.tasks.empty() && !q.leases.empty()) {
    auto least =
        std::min_element(q.leases.begin(), q.leases.end(),
                         [](const Lease& a, const Lease& b) { return a.in_flight < b.in_flight; });
    if (least->in_flight >= config_.pipeline_depth) break;
    const int batch = PushBatchSize(q);
    rpc::Envelope& envelope = push_envelope_;  // its messages are reused (cleared in place)
    ResetEnvelope(&envelope, least->worker.node(), least->worker.slot());
    rpc::PushTask* push = envelope.mutable_push_task();
    // PushTask::Clear() would delete the spec message (empty since the last push moved out).
    std::unique_ptr<rpc::TaskSpec> first_spec(push->release_spec());
    push->Clear();
    push->set_allocated_spec(first_spec.release());
    push->set_lease_id(least->id);
    for (int i = 0; i < batch; ++i) {
      rpc::TaskSpec* spec = i == 0 ? push->mutable_spec() : push->add_more();
      *spec = std::move(q.tasks.front());
      q.tasks.pop_front();
    }
    least->in_flight += batch;
    // Encoded now, the push no longer needs its specs: they move into in_flight_ (kept to run
    // a task again if its worker dies) instead of being copied there.
    out.PushFrame(RouteSlot(envelope.dst()), EncodeFrame(envelope));
    auto keep = [&](rpc::TaskSpec& spec) {
      const IdKey task_id(spec.task_id());
      InFlight* where;
      if (spare_in_flight_) {  // a finished task's node: no malloc, no spec constructed
        spare_in_flight_.key() = task_id;
        auto inserted = in_flight_.insert(std::move(spare_in_flight_));
        where = &inserted.position->second;
        if (!inserted.inserted) spare_in_flight_ = std::move(inserted.node);  // was in flight
      } else {
        where = &in_flight_[task_id];
      }
      where->queue = &q;
      where->lease_id = least->id;
      where->spec.Swap(&spec);
      where->push_order = ++next_push_order_;
    };
    keep(*push->mutable_spec());
    for (rpc::TaskSpec& spec : *push->mutable_more()) keep(spec);
  }
  int wanted = std::min<int>(static_cast<int>(q.tasks.size()), kMaxPendingLeaseRequests);
  while (q.pending_lease_requests < wanted) {
    uint64_t request_id = ++next_lease_request_;
    lease_requests_[request_id] = LeaseRequest{&q, q.home_node};
    ++q.pending_lease_requests;
    out.push_back(MakeLeaseRequest(q.home_node, request_id, q, /*spilled=*/false));
  }
  // Nothing left to run: withdraw the requests still queued at raylets, or they would hold
  // up other owners' requests and end in leases nobody uses.
  if (q.tasks.empty() && q.pending_lease_requests > 0) {
    for (auto it = lease_requests_.begin(); it != lease_requests_.end();) {
      if (it->second.queue != &q) {
        ++it;
        continue;
      }
      rpc::Envelope cancel = NewEnvelope(it->second.node, kRayletSlot);
      cancel.mutable_cancel_lease_request()->set_lease_request_id(it->first);
      out.push_back(std::move(cancel));
      it = lease_requests_.erase(it);
    }
    q.pending_lease_requests = 0;
  }
  std::chrono::steady_clock::time_point now{};  // read only for a lease that just went idle
  for (Lease& l : q.leases) {
    if (l.in_flight == 0 && l.idle_since == std::chrono::steady_clock::time_point{}) {
      if (now == std::chrono::steady_clock::time_point{}) now = std::chrono::steady_clock::now();
      l.idle_since = now;
    }
    if (l.in_flight > 0) l.idle_since = {};
  }
}

int CoreWorker::PushBatchSize(const SchedulingQueue& q) const {
  // Split the backlog over the workers we hold or asked for, so no lease takes more than its
  // share while others would idle; a short queue goes one task per push, as in Ray.
  const int workers =
      std::max<int>(1, static_cast<int>(q.leases.size()) + q.pending_lease_requests);
  const int share = (static_cast<int>(q.tasks.size()) + workers - 1) / workers;
  return std::clamp(share, 1, std::max(1, config_.max_push_batch));
}

rpc::Envelope CoreWorker::MakeLeaseRequest(int node, uint64_t request_id, const SchedulingQueue& q,
                                           bool spilled) const {
  rpc::Envelope request = NewEnvelope(node, kRayletSlot);
  rpc::RequestLease* r = request.mutable_request_lease();
  r->set_lease_request_id(request_id);
  *r->mutable_resources() = q.resources;
  *r->mutable_strategy() = q.strategy;
  r->set_spilled(spilled);
  return request;
}

void CoreWorker::OnLeaseReply(const rpc::Envelope& envelope, Outbox& out) {
  const rpc::LeaseReply& reply = envelope.lease_reply();
  auto it = lease_requests_.find(reply.lease_request_id());
  if (it == lease_requests_.end()) {
    // Granted after we withdrew the request: hand the worker straight back.
    if (reply.result_case() == rpc::LeaseReply::kWorker) {
      rpc::Envelope ret = NewEnvelope(reply.worker().node(), kRayletSlot);
      ret.mutable_return_lease()->set_lease_id(reply.lease_id());
      out.push_back(std::move(ret));
    }
    return;
  }
  SchedulingQueue& q = *it->second.queue;
  switch (reply.result_case()) {
    case rpc::LeaseReply::kWorker: {
      lease_requests_.erase(it);
      --q.pending_lease_requests;
      RAYMPI_LOG_DEBUG("{}.{} got lease {} on worker {}.{}", config_.node, config_.slot,
                       reply.lease_id(), reply.worker().node(), reply.worker().slot());
      Lease lease;
      lease.id = reply.lease_id();
      lease.worker = reply.worker();
      q.leases.push_back(lease);
      break;
    }
    case rpc::LeaseReply::kSpillbackNode: {
      // Ask the node the raylet pointed at; it queues the request rather than spilling again.
      it->second.node = reply.spillback_node();
      out.push_back(MakeLeaseRequest(reply.spillback_node(), reply.lease_request_id(), q, true));
      return;
    }
    case rpc::LeaseReply::kRejected: {
      it->second.node = q.home_node;
      out.push_back(MakeLeaseRequest(q.home_node, reply.lease_request_id(), q, false));
      return;
    }
    case rpc::LeaseReply::kInfeasible: {
      lease_requests_.erase(it);
      --q.pending_lease_requests;
      std::deque<rpc::TaskSpec> failed;
      failed.swap(q.tasks);
      for (const rpc::TaskSpec& spec : failed) {
        FailTask(spec, spec.function(), "cannot be scheduled: " + reply.infeasible(), out);
      }
      return;
    }
    default:
      return;
  }
  Pump(q, out);
}

void CoreWorker::OnTaskDone(rpc::TaskDone& done, Outbox& out) {
  OnActorTaskDone(done.task_id());
  auto it = in_flight_.find(done.task_id());
  if (it != in_flight_.end()) {
    // Taken out of the table whole (no move of the spec); the node is reused by Pump.
    InFlightNode node = in_flight_.extract(it);
    InFlight& where = node.mapped();
    SchedulingQueue& q = *where.queue;
    for (Lease& l : q.leases) {
      if (l.id == where.lease_id) --l.in_flight;
    }
    if (done.result().is_error() && where.spec.retry_exceptions() &&
        Retry(where.spec, "it failed: " + done.result().error_message(), out)) {
      Pump(q, out);
      return;
    }
    if (done.result().in_store()) {
      auto entry = objects_.find(done.result().object_id());
      if (entry != objects_.end()) entry->second.lineage = std::move(where.spec);
    }
    KeepSpareSpec(std::move(where.spec));
    spare_in_flight_ = std::move(node);
    Pump(q, out);
  }
  std::string id = done.result().object_id();
  MarkReady(id, std::move(*done.mutable_result()), out);
  ReleaseTaskArgs(done.task_id());
}

bool CoreWorker::Retry(rpc::TaskSpec& spec, const std::string& why, Outbox& out) {
  if (spec.attempt() >= spec.max_retries()) return false;
  spec.set_attempt(spec.attempt() + 1);
  RAYMPI_LOG_WARN("task {} runs again (retry {} of {}): {}", spec.function(), spec.attempt(),
                  spec.max_retries(), why);
  Enqueue(std::move(spec), out);
  return true;
}

void CoreWorker::OnWorkerDied(const rpc::WorkerDied& died, Outbox& out) {
  std::set<uint64_t> dead(died.lease_ids().begin(), died.lease_ids().end());
  std::vector<SchedulingQueue*> touched;
  for (auto& [key, q] : queues_) {
    auto gone = [&](const Lease& l) { return dead.count(l.id) > 0; };
    if (std::any_of(q.leases.begin(), q.leases.end(), gone)) touched.push_back(&q);
    q.leases.erase(std::remove_if(q.leases.begin(), q.leases.end(), gone), q.leases.end());
  }
  const std::string where =
      "node " + std::to_string(died.worker().node()) + ", pid " + std::to_string(died.pid());
  std::vector<InFlight> lost;
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (!dead.count(it->second.lease_id)) {
      ++it;
      continue;
    }
    lost.push_back(std::move(it->second));
    it = in_flight_.erase(it);
  }
  // A worker runs its lease's tasks in push order and reports each as it ends, so only the
  // first unreported task of a lease may have been running; the ones behind it never started
  // and run again without using a retry.
  std::sort(lost.begin(), lost.end(),
            [](const InFlight& a, const InFlight& b) { return a.push_order < b.push_order; });
  std::set<uint64_t> charged;
  for (InFlight& task : lost) {
    rpc::TaskSpec spec = std::move(task.spec);
    if (!charged.insert(task.lease_id).second) {
      Enqueue(std::move(spec), out);
      continue;
    }
    // pid 0: every lease of a lost node, whose cause says so.
    const std::string cause =
        died.pid() == 0 ? died.cause() : "its worker (" + where + ") " + died.cause();
    if (Retry(spec, cause, out)) continue;
    std::string retries = spec.max_retries() == 0
                              ? "no retries were allowed (SetMaxRetries)"
                              : "all " + std::to_string(spec.max_retries()) + " retries used";
    FailTask(spec, spec.function(), cause + "; " + retries, out);
  }
  for (SchedulingQueue* q : touched) Pump(*q, out);
}

void CoreWorker::OnNodeDied(const rpc::NodeDied& died, Outbox& out) {
  const int node = died.node();
  if (!dead_nodes_.insert(node).second) return;
  const std::string cause = "node " + std::to_string(node) + " was lost (" + died.cause() + ")";
  // Its leases: their tasks run again elsewhere.
  rpc::WorkerDied leases;
  *leases.mutable_worker() = MakeAddress(node, -1);
  leases.set_cause("its " + cause);
  for (const auto& [key, q] : queues_) {
    for (const Lease& l : q.leases) {
      if (l.worker.node() == node) leases.add_lease_ids(l.id);
    }
  }
  OnWorkerDied(leases, out);
  // Lease requests waiting at its raylet: ask at home again.
  for (auto& [request_id, request] : lease_requests_) {
    if (request.node != node) continue;
    SchedulingQueue& q = *request.queue;
    if (q.home_node == node) q.home_node = config_.node;
    request.node = q.home_node;
    out.push_back(MakeLeaseRequest(q.home_node, request_id, q, /*spilled=*/false));
  }
  // Objects whose every copy was there.
  for (auto& [key, entry] : objects_) {
    if (!entry.ready || !entry.value.in_store() || !entry.copies.count(node)) continue;
    const std::string id = key.Binary();
    entry.copies.erase(node);
    if (!entry.copies.empty()) {
      if (entry.value.node() == node) {
        entry.value.set_node(*entry.copies.begin());
        // The hints describe the lost node's store, not that one.
        entry.value.clear_offset();
        entry.value.clear_table_slot();
        entry.value.clear_serial();
      }
      continue;
    }
    if (entry.lineage) {
      RAYMPI_LOG_WARN("object {} was lost with node {}; running {} again to make it",
                      DescribeObjectId(id), node, entry.lineage->function());
      rpc::TaskSpec spec = *entry.lineage;
      spec.set_attempt(0);
      entry.ready = false;
      entry.local = false;
      entry.lineage.reset();
      entry.value = rpc::ObjectValue();
      Enqueue(std::move(spec), out);
      continue;
    }
    rpc::ObjectValue lost;
    lost.set_object_id(id);
    lost.set_is_error(true);
    lost.set_error_function("Get");
    lost.set_error_message("object " + DescribeObjectId(id) + " is lost: its only copy was on " +
                           cause);
    entry.value = std::move(lost);
  }
}

void CoreWorker::ReturnIdleLeases(Outbox& out) {
  auto now = std::chrono::steady_clock::now();
  for (auto& [key, q] : queues_) {
    for (auto it = q.leases.begin(); it != q.leases.end();) {
      bool idle = it->in_flight == 0 && q.tasks.empty() &&
                  it->idle_since != std::chrono::steady_clock::time_point{} &&
                  now - it->idle_since >= config_.lease_idle_timeout;
      if (!idle) {
        ++it;
        continue;
      }
      RAYMPI_LOG_DEBUG("{}.{} returns lease {} of node {}", config_.node, config_.slot, it->id,
                       it->worker.node());
      rpc::Envelope ret = NewEnvelope(it->worker.node(), kRayletSlot);
      ret.mutable_return_lease()->set_lease_id(it->id);
      out.push_back(std::move(ret));
      it = q.leases.erase(it);
    }
  }
}

void CoreWorker::OnReturnTasks(const rpc::ReturnTasks& returned, Outbox& out) {
  std::vector<SchedulingQueue*> touched;
  std::vector<InFlight> back;
  for (const std::string& task_id : returned.task_ids()) {
    auto it = in_flight_.find(task_id);
    if (it == in_flight_.end() || it->second.lease_id != returned.lease_id()) continue;
    back.push_back(std::move(it->second));
    in_flight_.erase(it);
  }
  // Back to the front of their queue, in the order they were pushed: they were next.
  std::sort(back.begin(), back.end(),
            [](const InFlight& a, const InFlight& b) { return a.push_order > b.push_order; });
  for (InFlight& task : back) {
    SchedulingQueue& q = *task.queue;
    for (Lease& l : q.leases) {
      if (l.id == task.lease_id) --l.in_flight;
    }
    q.tasks.push_front(std::move(task.spec));
    if (std::find(touched.begin(), touched.end(), &q) == touched.end()) touched.push_back(&q);
  }
  for (SchedulingQueue* q : touched) Pump(*q, out);
}

// ---- executing tasks (worker mode) ------------------------------------------------------------

bool CoreWorker::IsPlainTask(const rpc::PushTask& push) { return push.spec().actor_id().empty(); }

std::chrono::steady_clock::time_point CoreWorker::HandBackDeadline() const {
  // A count, not a scan of pushed_: an actor's queue may hold many thousands of calls, and
  // this runs on every receive.
  if (!executing_ || queued_plain_ == 0) return std::chrono::steady_clock::time_point::max();
  return executing_since_ + config_.hand_back_after;
}

void CoreWorker::HandBackQueued(Outbox& out) {
  // Plain tasks only: an actor's creation (from the GCS) is never queued behind other work.
  if (queued_plain_ == 0) return;  // nothing to hand back (an actor's queue is left alone)
  std::map<std::pair<std::pair<int, int>, uint64_t>, rpc::Envelope> returns;  // owner, lease
  std::deque<rpc::PushTask> kept;
  for (rpc::PushTask& push : pushed_) {
    const rpc::TaskSpec& spec = push.spec();
    if (!IsPlainTask(push)) {
      kept.push_back(std::move(push));
      continue;
    }
    auto key =
        std::make_pair(std::make_pair(spec.owner().node(), spec.owner().slot()), push.lease_id());
    auto it = returns.find(key);
    if (it == returns.end()) {
      it = returns.emplace(key, NewEnvelope(spec.owner().node(), spec.owner().slot())).first;
      it->second.mutable_return_tasks()->set_lease_id(push.lease_id());
    }
    it->second.mutable_return_tasks()->add_task_ids(spec.task_id());
  }
  pushed_.swap(kept);
  queued_plain_ = 0;
  for (auto& [key, envelope] : returns) out.push_back(std::move(envelope));
}

void CoreWorker::RunTaskLoop() {
  for (;;) {
    rpc::PushTask push;
    {
      // Idle, this thread receives the mailbox itself and runs the next pushed task without a
      // hand-off; while it executes, the io thread takes over (after the receiver grace).
      std::unique_lock<std::mutex> lock(mu_);
      BlockUntil(
          lock, task_seat_, [&] { return !pushed_.empty(); },
          std::chrono::steady_clock::time_point::max());
      if (stopping_) return;
      push = std::move(pushed_.front());
      pushed_.pop_front();
      if (IsPlainTask(push)) --queued_plain_;
      executing_ = true;
      executing_since_ = std::chrono::steady_clock::now();
    }
    double start = UnixSeconds();
    ExecuteTask(push);
    double end = UnixSeconds();
    std::lock_guard<std::mutex> lock(mu_);
    spare_push_.Swap(&push);
    executing_ = false;
    stats_.set_tasks(stats_.tasks() + 1);
    stats_.set_busy_seconds(stats_.busy_seconds() + (end - start));
    if (stats_.first_start() == 0) stats_.set_first_start(start);
    stats_.set_last_end(end);
  }
}

void CoreWorker::ExecuteTask(rpc::PushTask& push) {
  const rpc::TaskSpec& spec = push.spec();
  if (IsActorRetirement(spec)) {
    DestroyRetired(spec.actor_id());
    return;
  }
  // Built in this thread's previous reply, whose strings keep their buffers (fewer mallocs).
  thread_local rpc::Envelope last_reply;
  rpc::Envelope reply;
  reply.Swap(&last_reply);  // a nested call (none today) would start from an empty one
  ResetEnvelope(&reply, spec.owner().node(), spec.owner().slot());
  rpc::TaskDone* done = reply.mutable_task_done();
  // TaskDone::Clear() would delete the result message; every reply sets one, so keep it.
  std::unique_ptr<rpc::ObjectValue> kept_result(done->release_result());
  done->Clear();
  if (kept_result) {
    kept_result->Clear();
    done->set_allocated_result(kept_result.release());
  }
  done->set_task_id(spec.task_id());
  rpc::ObjectValue* result = done->mutable_result();
  result->set_object_id(spec.return_id());
  auto fail = [&](const std::string& message) {
    result->set_is_error(true);
    result->set_error_function(spec.function());
    result->set_error_message(message);
  };
  std::vector<internal::FetchedObject> stored;  // pinned large arguments
  std::vector<std::string> stored_ids;
  Status args_ok = PinStoredArgs(spec, &stored, &stored_ids);
  const internal::FunctionInfo* info =
      internal::FunctionRegistry::Instance().FindByName(spec.function());
  if (!args_ok.ok()) {
    fail("cannot fetch an argument: " + args_ok.message());
  } else if (info == nullptr) {
    fail("function '" + spec.function() +
         "' is not registered in this program; add RAYMPI_REMOTE(" + spec.function() + ")");
  } else if (spec.actor_id().empty() && !info->invoker) {
    fail("'" + spec.function() + "' is an actor factory or method: use raympi::Actor(...)");
  } else if (info->arity * std::max<size_t>(spec.calls(), 1) !=
             static_cast<size_t>(spec.args_size())) {
    fail("takes " + std::to_string(info->arity) + " arguments, the task passed " +
         std::to_string(spec.args_size()) +
         (spec.calls() > 0 ? " for " + std::to_string(spec.calls()) + " calls" : ""));
  } else if (spec.calls() > 0 && !spec.actor_id().empty()) {
    fail("a map runs free functions, not actor methods");
  } else {
    std::vector<std::string_view> args;
    size_t next_stored = 0;
    for (const auto& a : spec.args()) {
      args.emplace_back(a.in_store() ? stored[next_stored++].data : std::string_view(a.value()));
    }
    try {
      std::string data = spec.calls() > 0          ? RunCalls(spec, *info, args)
                         : spec.actor_id().empty() ? info->invoker(args)
                                                   : RunActorTask(spec, *info, args);
      if (data.size() > config_.max_inline_bytes) {
        auto value = StoreValue(
            spec.return_id(), data.size(),
            [&data](char* out) { std::memcpy(out, data.data(), data.size()); }, spec.return_type());
        if (value.ok()) {
          *result = std::move(*value);
        } else {
          fail("cannot store its result: " + value.status().message());
        }
      } else {
        result->set_data(std::move(data));
        result->set_type(spec.return_type());
      }
    } catch (const ActorDiedError& e) {
      fail(e.what());
      // The called actor is gone; in a plain task it is that task's failure (TaskError).
      result->set_actor_died(IsActorCall(spec));
    } catch (const std::exception& e) {
      fail(e.what());
    } catch (...) {
      fail("an exception that is not a std::exception");
    }
  }
  stored.clear();  // unpin before the owner may free them
  Outbox out;
  out.PushFrame(RouteSlot(reply.dst()), EncodeFrame(reply));
  last_reply.Swap(&reply);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& id : stored_ids) NoteRelease(id);
    FlushReleases(out);
  }
  SendAll(out);
}

void CoreWorker::ReportStats() {
  rpc::Envelope e = NewEnvelope(config_.node, kRayletSlot);
  {
    std::lock_guard<std::mutex> lock(mu_);
    *e.mutable_worker_stats() = stats_;
  }
  Outbox out{e};
  SendAll(out);
}

void CoreWorker::ReportDriverExit(int exit_code) {
  rpc::Envelope e = NewEnvelope(config_.node, kRayletSlot);
  e.mutable_driver_exit()->set_exit_code(exit_code);
  Outbox out{e};
  SendAll(out);
}

std::string CoreWorker::RunCalls(const rpc::TaskSpec& spec, const internal::FunctionInfo& info,
                                 const std::vector<std::string_view>& args) {
  // The encoding of std::vector<R>: an 8-byte count, then each element as R encodes alone
  // (raympi/serialization.h; tests/unit/test_serialization.cc checks the equivalence).
  const uint64_t calls = spec.calls();
  std::string out(reinterpret_cast<const char*>(&calls), sizeof(calls));
  std::vector<std::string_view> one(info.arity);
  for (uint64_t i = 0; i < calls; ++i) {
    std::copy(args.begin() + static_cast<std::ptrdiff_t>(i * info.arity),
              args.begin() + static_cast<std::ptrdiff_t>((i + 1) * info.arity), one.begin());
    out += info.invoker(one);
  }
  return out;
}

}  // namespace raympi
