// The object half of CoreWorker: values inline or in the node's store, fetching stored objects
// from other nodes through the raylet, and reference counting (docs/objects.md).
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "common/frame.h"
#include "common/logging.h"
#include "raympi/errors.h"
#include "worker/core_worker.h"

namespace raympi {

namespace {

rpc::Address OwnerOf(const ObjectId& id) { return MakeAddress(id.owner_node, id.owner_slot); }

// Where the creator put a stored object in its node's store (offset, table slot, serial), from
// an ObjectValue to a TaskArg or back: the same fields in both. A hint is only ever that of the
// message's own `node`, so the old ones go first.
template <class From, class To>
void CopyStoreHints(const From& from, To* to) {
  to->clear_offset();
  to->clear_table_slot();
  to->clear_serial();
  if (from.has_offset()) to->set_offset(from.offset());
  if (from.has_serial()) {
    to->set_table_slot(from.table_slot());
    to->set_serial(from.serial());
  }
}

// Get pins an object after making it local; a spill in between sends it round again.
constexpr int kMaxPinAttempts = 3;

// A pinned view of a stored object handed to user code; the store outlives the view.
struct PinnedObject {
  std::shared_ptr<ObjectStore> store;
  ObjectView view;
};

}  // namespace

void CoreWorker::MarkReady(const std::string& id, rpc::ObjectValue value, Outbox& out) {
  ObjectEntry& entry = objects_[id];
  if (entry.ready) return;
  entry.ready = true;
  entry.value = std::move(value);
  if (entry.value.in_store()) {
    entry.local = entry.value.node() == config_.node;
    auto parsed = ObjectId::FromBinary(id);
    if (parsed.ok() && Owns(*parsed)) entry.copies.insert(entry.value.node());
  }
  for (const rpc::Address& b : entry.borrowers) {
    rpc::Envelope reply = NewEnvelope(b.node(), b.slot());
    *reply.mutable_object_value() = entry.value;
    out.push_back(std::move(reply));
  }
  entry.borrowers.clear();
  for (Waiter* w : entry.waiters) {
    if (++w->ready == w->num) role_.Notify(*w);
  }
  entry.waiters.clear();
  std::vector<IdKey> dependents;
  dependents.swap(entry.dependent_tasks);
  for (const IdKey& task_id : dependents) {
    auto it = resolving_.find(task_id);
    if (it == resolving_.end()) continue;
    ResolvingTask& task = it->second;
    if (entry.value.is_error()) {
      rpc::TaskSpec spec = std::move(task.spec);
      resolving_.erase(it);
      FailTask(spec, entry.value.error_function(), entry.value.error_message(), out);
      continue;
    }
    for (auto& arg : *task.spec.mutable_args()) {
      if (arg.object_id() == id) ResolveArg(arg, entry.value);
    }
    task.missing.erase(id);
    if (task.missing.empty()) {
      rpc::TaskSpec spec = std::move(task.spec);
      resolving_.erase(it);
      Enqueue(std::move(spec), out);
    }
  }
  NoteRelease(id);
}

void CoreWorker::RequestFromOwner(const std::string& id, ObjectEntry& entry, Outbox& out) {
  if (entry.ready || entry.requested) return;
  auto parsed = ObjectId::FromBinary(id);
  if (!parsed.ok() || Owns(*parsed)) return;
  entry.requested = true;
  rpc::Envelope request = NewEnvelope(parsed->owner_node, parsed->owner_slot);
  request.mutable_get_object()->set_object_id(id);
  out.push_back(std::move(request));
}

std::string CoreWorker::Put(const internal::ValueWriter& writer, const std::string& type) {
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) throw Error("raympi::Put: the job is shutting down");
    id = NextObjectId().Binary();
  }
  rpc::ObjectValue value;
  if (writer.size > config_.max_inline_bytes) {
    auto stored = StoreValue(id, writer.size, writer.write, type);
    if (!stored.ok()) {
      if (stored.status().code() == StatusCode::kUnavailable ||
          stored.status().code() == StatusCode::kInvalidArgument) {
        throw ObjectStoreFullError("raympi::Put: " + stored.status().message());
      }
      throw Error("raympi::Put: " + stored.status().message());
    }
    value = std::move(*stored);
  } else {
    std::string data(writer.size, '\0');
    if (writer.size > 0) writer.write(data.data());
    value.set_object_id(id);
    value.set_data(std::move(data));
    value.set_type(type);
  }
  Outbox out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    objects_[id].local_refs = 1;  // the caller's ObjectRef adopts it
    MarkReady(id, std::move(value), out);
    FlushReleases(out);
  }
  SendAll(out);
  return id;
}

StatusOr<rpc::ObjectValue> CoreWorker::StoreValue(const std::string& id, size_t size,
                                                  const std::function<void(char*)>& write,
                                                  const std::string& type) {
  auto parsed = ObjectId::FromBinary(id);
  if (!parsed.ok()) return parsed.status();
  if (size > store_->capacity()) {
    return Status::InvalidArgument("an object of " + std::to_string(size) +
                                   " bytes cannot fit in node " + std::to_string(config_.node) +
                                   "'s object store of " + std::to_string(store_->capacity()) +
                                   " bytes; start the job with a larger --object-store-memory");
  }
  auto deadline = std::chrono::steady_clock::now() + config_.store_full_timeout;
  auto backoff = std::chrono::microseconds(500);
  std::string spill_note;  // why the raylet could not spill, for the final error
  uint64_t offset = 0;
  uint32_t table_slot = 0, serial = 0;
  for (;;) {
    auto buffer = store_->Create(*parsed, size);
    if (buffer.ok()) {
      offset = buffer->offset;
      table_slot = buffer->table_slot;
      serial = buffer->serial;
      try {
        write(reinterpret_cast<char*>(buffer->data));
      } catch (...) {
        (void)store_->Abort(*parsed);
        throw;
      }
      RAYMPI_RETURN_IF_ERROR(store_->Seal(*parsed));
      break;
    }
    if (buffer.status().code() != StatusCode::kUnavailable) return buffer.status();
    if (std::chrono::steady_clock::now() >= deadline) {
      ObjectStore::Stats stats = store_->stats(0);
      return Status::Unavailable(
          "node " + std::to_string(config_.node) + "'s object store has no room for " +
          std::to_string(size) + " bytes after waiting " +
          std::to_string(config_.store_full_timeout.count()) + " ms (" +
          std::to_string(stats.bytes_in_use) + " of " + std::to_string(stats.capacity) +
          " bytes in use by " + std::to_string(stats.num_objects) + " objects" + spill_note +
          "); drop ObjectRefs and views you no longer need, or start the job with a larger "
          "--object-store-memory");
    }
    // The raylet spills cold objects to make room (docs/objects.md, "Spilling").
    rpc::Envelope request;
    request.mutable_make_room()->set_bytes(size);
    rpc::Envelope reply;
    try {
      reply = Call(std::move(request), MakeAddress(config_.node, kRayletSlot));
    } catch (const Error& e) {
      return Status::Unavailable(e.what());
    }
    const rpc::MakeRoomReply& room = reply.make_room_reply();
    if (room.room_made()) continue;
    if (!room.error().empty()) {
      return Status::Unavailable("node " + std::to_string(config_.node) +
                                 "'s object store has no room for " + std::to_string(size) +
                                 " bytes and spilling failed: " + room.error());
    }
    spill_note = "; nothing can be spilled: every object is pinned or being written";
    // Room appears when an owner frees objects or views are dropped; nothing signals it, so
    // poll with a backoff.
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::microseconds(50000));
  }
  rpc::ObjectValue value;
  value.set_object_id(id);
  value.set_type(type);
  value.set_in_store(true);
  value.set_node(config_.node);
  value.set_size(size);
  value.set_offset(offset);          // lets another node's raylet start reading at once
  value.set_table_slot(table_slot);  // ... and check without its source's raylet that it read
  value.set_serial(serial);          // the object (one-sided pulls)
  return value;
}

void CoreWorker::ResolveArg(rpc::TaskArg& arg, const rpc::ObjectValue& value) const {
  if (!value.in_store()) {
    arg.set_value(value.data());
    return;
  }
  arg.clear_value();
  arg.set_in_store(true);
  arg.set_node(value.node());
  arg.set_size(value.size());
  CopyStoreHints(value, &arg);
  auto parsed = ObjectId::FromBinary(value.object_id());
  if (parsed.ok()) *arg.mutable_owner() = OwnerOf(*parsed);
}

std::vector<internal::FetchedObject> CoreWorker::Get(const std::vector<std::string>& ids,
                                                     int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::vector<bool> ready = Wait(ids, static_cast<int>(ids.size()), timeout_ms);
  std::vector<internal::FetchedObject> result;
  std::unique_lock<std::mutex> lock(mu_);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!ready[i]) {
      if (stopping_) throw Error("raympi::Get: the job is shutting down");
      throw TimeoutError("raympi::Get: object " + DescribeObjectId(ids[i]) + " not ready after " +
                         std::to_string(timeout_ms) + " ms");
    }
  }
  // The raylet may spill an object again between its restore and our pin: then fetch again.
  for (int attempt = 1;; ++attempt) {
    Status local = MakeLocal(ids, lock, deadline, timeout_ms >= 0);
    if (!local.ok()) {
      if (local.code() == StatusCode::kTimedOut)
        throw TimeoutError("raympi::Get: " + local.message());
      if (stopping_) throw Error("raympi::Get: the job is shutting down");
      throw ObjectLostError("raympi::Get: " + local.message());
    }
    result.clear();
    result.reserve(ids.size());
    try {
      for (const std::string& id : ids) {
        auto it = objects_.find(id);
        if (it == objects_.end()) {
          throw ObjectLostError("raympi::Get: object " + DescribeObjectId(id) +
                                " was freed meanwhile");
        }
        result.push_back(Fetched(id, it->second));
      }
      return result;
    } catch (const ObjectLostError&) {
      if (attempt >= kMaxPinAttempts) throw;
    }
  }
}

Status CoreWorker::MakeLocal(const std::vector<std::string>& ids,
                             std::unique_lock<std::mutex>& lock,
                             std::chrono::steady_clock::time_point deadline, bool has_deadline) {
  Outbox out;
  Waiter waiter;
  std::vector<std::string> fetched;
  struct Copy {
    std::string id;
    int node;
    uint64_t size;
    std::optional<StoredAt> at;
    bool done = false;
  };
  std::vector<Copy> copies;  // objects of this host's other nodes: we copy them ourselves
  for (const std::string& id : ids) {
    auto it = objects_.find(id);
    if (it == objects_.end() || !it->second.ready) continue;
    ObjectEntry& entry = it->second;
    if (!entry.value.in_store() || entry.value.is_error()) continue;
    // A local object may have been spilled: the raylet restores it on FetchObject.
    if (entry.local && (entry.value.size() == 0 || IsInLocalStore(id))) continue;
    if (std::find(fetched.begin(), fetched.end(), id) != fetched.end()) continue;
    fetched.push_back(id);
    entry.fetch_error.clear();
    ++waiter.num;
    entry.fetch_waiters.push_back(&waiter);
    if (entry.fetching) continue;
    entry.fetching = true;
    const rpc::ObjectValue& v = entry.value;
    if (!entry.local && v.node() != config_.node && v.size() > 0 &&
        v.size() <= config_.reader_copy_max_bytes && peer_stores_.Knows(v.node())) {
      std::optional<StoredAt> at;
      if (v.has_offset() && v.has_serial()) at = StoredAt{v.offset(), v.table_slot(), v.serial()};
      copies.push_back(Copy{id, v.node(), v.size(), at});
    } else {
      out.push_back(FetchRequest(id, entry));
    }
  }
  if (waiter.num == 0) return Status::Ok();
  if (!out.empty()) fetch_spin_until_ = std::max(fetch_spin_until_, ExpectedFetchEnd(out));
  lock.unlock();
  SendAll(out);
  for (Copy& copy : copies) copy.done = CopyFromPeer(copy.id, copy.node, copy.size, copy.at).ok();
  lock.lock();
  for (const Copy& copy : copies) {
    auto it = objects_.find(copy.id);
    // The value may have changed meanwhile (its node was lost: made again, or an error now).
    const bool same = it != objects_.end() && it->second.ready && it->second.value.in_store() &&
                      !it->second.value.is_error() && it->second.value.node() == copy.node;
    if (copy.done && same) {
      AdoptCopy(copy.id, it->second, out);
    } else if (copy.done) {
      DropCopy(copy.id);
      if (it != objects_.end()) EndFetchWait(it->second);
    } else if (same) {
      // Not copied (spilled or freed there, being pulled here, no room): the raylet knows why.
      out.push_back(FetchRequest(copy.id, it->second));
    } else if (it != objects_.end()) {
      EndFetchWait(it->second);
    }
  }
  if (!out.empty()) {
    fetch_spin_until_ = std::max(fetch_spin_until_, ExpectedFetchEnd(out));
    lock.unlock();
    SendAll(out);
    lock.lock();
  }
  WaitFor(lock, waiter, has_deadline ? deadline : std::chrono::steady_clock::time_point::max());
  Status status = Status::Ok();
  for (const std::string& id : fetched) {
    auto it = objects_.find(id);
    if (it == objects_.end()) continue;
    ObjectEntry& entry = it->second;
    auto& w = entry.fetch_waiters;
    w.erase(std::remove(w.begin(), w.end(), &waiter), w.end());
    if ((entry.local && entry.fetch_error.empty()) || !status.ok()) continue;
    if (!entry.ready || !entry.value.in_store() || entry.value.is_error()) continue;  // changed
    if (!entry.fetch_error.empty()) {
      status = Status::NotFound(entry.fetch_error);
    } else if (stopping_) {
      status = Status::Unavailable("the job is shutting down");
    } else {
      status = Status::TimedOut("object " + DescribeObjectId(id) + " (" +
                                std::to_string(entry.value.size()) + " bytes on node " +
                                std::to_string(entry.value.node()) + ") not here in time");
    }
  }
  return status;
}

rpc::Envelope CoreWorker::FetchRequest(const std::string& id, const ObjectEntry& entry) const {
  rpc::Envelope fetch = NewEnvelope(config_.node, kRayletSlot);
  rpc::FetchObject* f = fetch.mutable_fetch_object();
  f->set_object_id(id);
  f->set_node(entry.value.node());
  f->set_size(entry.value.size());
  f->set_pin_for_requester(true);
  if (entry.value.has_offset()) f->set_offset_hint(entry.value.offset());
  if (entry.value.has_serial()) {
    f->set_slot_hint(entry.value.table_slot());
    f->set_serial_hint(entry.value.serial());
  }
  auto parsed = ObjectId::FromBinary(id);
  if (parsed.ok()) *f->mutable_owner() = OwnerOf(*parsed);
  return fetch;
}

Status CoreWorker::CopyFromPeer(const std::string& id, int node, uint64_t size,
                                const std::optional<StoredAt>& at) {
  StatusOr<ObjectId> parsed = ObjectId::FromBinary(id);
  if (!parsed.ok()) return parsed.status();
  // Exists already (our raylet is pulling it) or no room (the raylet spills to make some).
  StatusOr<MutableBuffer> buffer = store_->Create(*parsed, size);
  if (!buffer.ok()) return buffer.status();
  Status copied = peer_stores_.Copy(node, *parsed, size, at, buffer->data);
  if (copied.ok()) copied = store_->Seal(*parsed);
  if (!copied.ok()) {
    (void)store_->Abort(*parsed);
    return copied;
  }
  store_->CountReaderCopy();
  return Status::Ok();
}

void CoreWorker::AdoptCopy(const std::string& id, ObjectEntry& entry, Outbox& out) {
  // The owner frees every copy it knows of; the raylet tells it of the copies it pulls.
  auto parsed = ObjectId::FromBinary(id);
  if (parsed.ok() && Owns(*parsed)) {
    entry.copies.insert(config_.node);
  } else if (parsed.ok()) {
    rpc::Envelope location = NewEnvelope(parsed->owner_node, parsed->owner_slot);
    location.mutable_object_location()->set_object_id(id);
    location.mutable_object_location()->set_node(config_.node);
    out.push_back(std::move(location));
  }
  // Pinned at once, so that a spill between now and the caller's read cannot take it away.
  StatusOr<ObjectView> pin =
      parsed.ok() ? store_->Get(*parsed) : StatusOr<ObjectView>(parsed.status());
  FinishFetch(id, "", pin.ok() ? std::move(*pin) : ObjectView());
}

void CoreWorker::DropCopy(const std::string& id) {
  auto parsed = ObjectId::FromBinary(id);
  if (!parsed.ok()) return;
  Status deleted = store_->Delete(*parsed);
  if (!deleted.ok()) RAYMPI_LOG_WARN("dropping a stale copy: {}", deleted.ToString());
}

std::chrono::steady_clock::time_point CoreWorker::ExpectedFetchEnd(const Outbox& fetches) const {
  // A pull's fixed cost (hops between processes) plus its copy at a rate this VM's RMA reads
  // reach even on cold pages; a longer pull ends after the spin, in a futex sleep.
  constexpr std::chrono::microseconds kFixed{150};
  constexpr uint64_t kBytesPerMicrosecond = 4000;  // 4 GB/s
  uint64_t bytes = 0;
  for (const Outbox::Message& m : fetches.messages()) {
    const rpc::Envelope& e = m.envelope;
    if (e.has_fetch_object() && e.fetch_object().node() != config_.node) {
      bytes += e.fetch_object().size();
    }
  }
  const auto now = std::chrono::steady_clock::now();
  if (bytes == 0) return now;
  const auto expected = kFixed + std::chrono::microseconds(bytes / kBytesPerMicrosecond);
  return now + std::min(expected, config_.fetch_spin_max);
}

void CoreWorker::OnObjectFetched(const rpc::ObjectFetched& fetched) {
  // A pin the raylet took for us is ours from here: adopted into the entry, or released now.
  ObjectView pin;
  auto parsed = ObjectId::FromBinary(fetched.object_id());
  if (fetched.pinned() && parsed.ok()) {
    auto adopted = store_->AdoptPin(*parsed, fetched.offset(), fetched.size());
    if (adopted.ok()) {
      pin = std::move(*adopted);
    } else {
      RAYMPI_LOG_ERROR("ObjectFetched with a bad pin: {}", adopted.status().ToString());
      (void)store_->Release(*parsed);
    }
  }
  FinishFetch(fetched.object_id(), fetched.error(), std::move(pin));
}

void CoreWorker::FinishFetch(const std::string& id, const std::string& error, ObjectView pin) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectEntry& entry = it->second;
  if (error.empty()) {
    entry.local = true;
    entry.fetch_error.clear();
    if (pin.valid()) entry.raylet_pin = std::move(pin);
  } else {
    entry.fetch_error = error;
  }
  EndFetchWait(entry);
}

void CoreWorker::EndFetchWait(ObjectEntry& entry) {
  entry.fetching = false;
  for (Waiter* w : entry.fetch_waiters) {
    if (++w->ready == w->num) role_.Notify(*w);
  }
  entry.fetch_waiters.clear();
}

bool CoreWorker::IsInLocalStore(const std::string& id) const {
  auto parsed = ObjectId::FromBinary(id);
  return parsed.ok() && store_->Contains(*parsed);
}

internal::FetchedObject CoreWorker::Fetched(const std::string& id, ObjectEntry& entry) {
  const rpc::ObjectValue& v = entry.value;
  internal::FetchedObject f;
  f.type = v.type();
  f.is_error = v.is_error();
  f.actor_died = v.actor_died();
  f.error_function = v.error_function();
  f.error_message = v.error_message();
  if (v.is_error()) return f;
  if (!v.in_store()) {
    auto copy = std::make_shared<std::string>(v.data());
    f.data = *copy;
    f.holder = std::move(copy);
    return f;
  }
  auto parsed = ObjectId::FromBinary(id);
  StatusOr<ObjectView> view =
      entry.raylet_pin.valid()
          ? StatusOr<ObjectView>(std::move(entry.raylet_pin))
          : (parsed.ok() ? store_->Get(*parsed) : StatusOr<ObjectView>(parsed.status()));
  if (!view.ok()) {
    throw ObjectLostError("raympi::Get: object " + DescribeObjectId(id) + " (" +
                          std::to_string(v.size()) + " bytes) is not in node " +
                          std::to_string(config_.node) +
                          "'s object store: " + view.status().message());
  }
  auto pinned = std::make_shared<PinnedObject>(PinnedObject{store_, std::move(*view)});
  f.data = pinned->view.bytes();
  f.holder = std::move(pinned);
  return f;
}

void CoreWorker::AddArgs(const std::function<std::string()>& what, const std::string& return_id,
                         std::vector<internal::TaskArg>& args, rpc::TaskSpec& spec) {
  for (const auto& a : args) {
    auto parsed = ObjectId::FromBinary(a.object_id);
    if (parsed.ok() && Owns(*parsed) && !objects_.count(a.object_id)) {
      throw ObjectLostError(what() + ": argument object " + parsed->Hex() +
                            " was freed (its last ObjectRef was dropped)");
    }
  }
  // Most tasks take plain values: only ref arguments get an entry (one lookup fewer per task).
  std::vector<std::string>* arg_ids = nullptr;
  for (auto& a : args) {
    if (ObjectId::FromBinary(a.object_id).ok()) {
      ++objects_[a.object_id].task_refs;
      if (arg_ids == nullptr) arg_ids = &task_args_[return_id];
      arg_ids->push_back(a.object_id);
    }
    rpc::TaskArg* arg = spec.add_args();
    arg->set_value(std::move(a.value));
    arg->set_object_id(std::move(a.object_id));
    arg->set_type(std::move(a.type));
  }
}

void CoreWorker::ReleaseTaskArgs(const IdKey& task_id) {
  if (task_args_.empty()) return;
  auto it = task_args_.find(task_id);
  if (it == task_args_.end()) return;
  for (const std::string& id : it->second) {
    auto entry = objects_.find(id);
    if (entry != objects_.end() && entry->second.task_refs > 0) --entry->second.task_refs;
    NoteRelease(id);
  }
  task_args_.erase(it);
}

void CoreWorker::FlushReleases(Outbox& out) {
  while (!pending_release_.empty()) {
    std::vector<IdKey> ids;
    ids.swap(pending_release_);
    for (const IdKey& id : ids) MaybeRelease(id, out);
  }
}

void CoreWorker::MaybeRelease(const IdKey& id, Outbox& out) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectEntry& e = it->second;
  if (e.local_refs > 0 || e.task_refs > 0 || e.escaped || !e.waiters.empty() ||
      !e.fetch_waiters.empty() || !e.dependent_tasks.empty() || e.fetching) {
    return;
  }
  const ObjectId parsed = id.ToObjectId();  // entries have valid keys
  if (Owns(parsed)) {
    if (!e.ready || !e.borrowers.empty()) return;  // a pending task still writes it
    if (e.value.in_store()) {
      for (int node : e.copies) {
        if (node == config_.node) {
          Status st = store_->Delete(parsed);
          if (!st.ok() && st.code() != StatusCode::kNotFound) {
            RAYMPI_LOG_WARN("freeing object {}: {}", parsed.Hex(), st.ToString());
          }
          // Freed here at once; our raylet also deletes a spilled copy, if it made one.
        }
        rpc::Envelope free = NewEnvelope(node, kRayletSlot);
        free.mutable_free_objects()->add_object_ids(id.Binary());
        out.push_back(std::move(free));
      }
    }
  }
  objects_.erase(it);
}

void CoreWorker::AddLocalRef(const std::string& id) {
  auto parsed = ObjectId::FromBinary(id);
  if (!parsed.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) {
    if (Owns(*parsed)) return;  // freed already: Get on it will say so
    it = objects_.emplace(id, ObjectEntry{}).first;
  }
  ++it->second.local_refs;
}

void CoreWorker::RemoveLocalRef(const std::string& id) {
  Outbox out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(id);
    if (it == objects_.end()) return;
    if (it->second.local_refs > 0) --it->second.local_refs;
    NoteRelease(id);
    FlushReleases(out);
  }
  SendAll(out);
}

void CoreWorker::OnRefSerialized(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.find(id);
  if (it != objects_.end()) it->second.escaped = true;
}

size_t CoreWorker::NumTrackedObjects() {
  std::lock_guard<std::mutex> lock(mu_);
  return objects_.size();
}

Status CoreWorker::PinStoredArgs(const rpc::TaskSpec& spec,
                                 std::vector<internal::FetchedObject>* pinned,
                                 std::vector<std::string>* ids) {
  std::unique_lock<std::mutex> lock(mu_);
  for (const auto& arg : spec.args()) {
    if (!arg.in_store()) continue;
    if (!ObjectId::FromBinary(arg.object_id()).ok()) {
      return Status::InvalidArgument("a stored argument has a corrupt object id");
    }
    ids->push_back(arg.object_id());
    ObjectEntry& entry = objects_[arg.object_id()];
    if (entry.ready) continue;
    entry.ready = true;
    entry.value.set_object_id(arg.object_id());
    entry.value.set_type(arg.type());
    entry.value.set_in_store(true);
    entry.value.set_node(arg.node());
    entry.value.set_size(arg.size());
    CopyStoreHints(arg, &entry.value);
    entry.local = arg.node() == config_.node;
  }
  for (int attempt = 1;; ++attempt) {
    RAYMPI_RETURN_IF_ERROR(MakeLocal(*ids, lock, {}, false));
    try {
      pinned->clear();
      for (const std::string& id : *ids) pinned->push_back(Fetched(id, objects_.at(id)));
      return Status::Ok();
    } catch (const std::exception& e) {
      if (attempt >= kMaxPinAttempts) return Status::NotFound(e.what());
    }
  }
}

ObjectStoreUsage CoreWorker::LocalStoreUsage() {
  ObjectStore::Stats stats = store_->stats(10);
  ObjectStoreUsage usage;
  usage.node = config_.node;
  usage.capacity = stats.capacity;
  usage.bytes_in_use = stats.bytes_in_use;
  usage.pinned_bytes = stats.pinned_bytes;
  usage.num_objects = stats.num_objects;
  usage.num_pinned = stats.num_pinned;
  usage.spilled_objects = stats.spill.spilled_objects;
  usage.spilled_bytes = stats.spill.spilled_bytes;
  usage.restored_objects = stats.spill.restored_objects;
  usage.restored_bytes = stats.spill.restored_bytes;
  usage.objects_on_disk = stats.spill.objects_on_disk;
  usage.bytes_on_disk = stats.spill.bytes_on_disk;
  for (const ObjectStore::ObjectInfo& o : stats.largest) {
    usage.largest.push_back({o.id.Hex(), o.size, o.pin_count});
  }
  usage.summary = "node " + std::to_string(config_.node) + " " + stats.ToString();
  return usage;
}
}  // namespace raympi
