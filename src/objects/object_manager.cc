#include "objects/object_manager.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <tuple>
#include <vector>

#include "common/frame.h"
#include "common/logging.h"

namespace raympi {

namespace {

std::string HexOf(const std::string& binary_id) {
  StatusOr<ObjectId> id = ObjectId::FromBinary(binary_id);
  if (id.ok()) return id->Hex();
  return "<invalid id of " + std::to_string(binary_id.size()) + " bytes>";
}

std::string AddressText(const rpc::Address& a) {
  return "(" + std::to_string(a.node()) + ", " + std::to_string(a.slot()) + ")";
}

// Whether [offset, offset + bytes) lies inside `size`, a window's size (an error: no window).
bool InRange(int node, StatusOr<uint64_t> size, uint64_t offset, uint64_t bytes) {
  return size.ok() && CheckReadRange(node, *size, offset, bytes).ok();
}

std::string Seconds(std::chrono::steady_clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g s", std::chrono::duration<double>(d).count());
  return text;
}

}  // namespace

std::string ObjectManagerStats::ToString() const {
  return "pulls: " + std::to_string(pulls_started) + " started, " +
         std::to_string(pulls_completed) + " completed, " + std::to_string(pulls_failed) +
         " failed, " + std::to_string(pulls_in_flight) + " in flight; " +
         std::to_string(bytes_pulled) + " bytes pulled; " + std::to_string(pulls_served) +
         " served (" + std::to_string(objects_pinned_for_peers) + " still pinned); " +
         std::to_string(messages_rejected) + " messages rejected; " + std::to_string(early_reads) +
         " read early (" + std::to_string(early_misses) + " read again); " +
         std::to_string(copied_at_source) + " copied at the source; " +
         std::to_string(pulled_one_sided) + " pulled one-sided (" +
         std::to_string(one_sided_misses) + " asked the source after all)";
}

bool ObjectManager::IdLess::operator()(const ObjectId& a, const ObjectId& b) const {
  return std::tie(a.owner_node, a.owner_slot, a.owner_pid, a.index) <
         std::tie(b.owner_node, b.owner_slot, b.owner_pid, b.index);
}

ObjectManager::ObjectManager(int node, ObjectStore* store, RmaReader* reader, Send send,
                             ObjectManagerConfig config, Clock now)
    : node_(node),
      store_(store),
      reader_(reader),
      send_(std::move(send)),
      config_(config),
      now_(now ? std::move(now) : Clock([] { return std::chrono::steady_clock::now(); })) {
  if (config_.chunk_bytes == 0) config_.chunk_bytes = ObjectManagerConfig().chunk_bytes;
  // One read's count is an int in MPI.
  config_.chunk_bytes = std::min<size_t>(config_.chunk_bytes, size_t{1} << 30);
  if (config_.max_chunks_in_flight < 1) config_.max_chunks_in_flight = 1;
}

ObjectManager::~ObjectManager() {
  // A buffer with reads in flight must stay allocated: the reads still land in it. Only the
  // reader can wait for them, so such buffers are left to the store's end.
  for (auto& [pull_id, pull] : pulls_) {
    if (pull.created && pull.reads_in_flight == 0) store_->Abort(pull.id);
  }
}

bool ObjectManager::Handles(const rpc::Envelope& envelope) {
  switch (envelope.body_case()) {
    case rpc::Envelope::kFetchObject:
    case rpc::Envelope::kFreeObjects:
    case rpc::Envelope::kPullRequest:
    case rpc::Envelope::kPullReply:
    case rpc::Envelope::kPullDone:
    case rpc::Envelope::kMakeRoom:
      return true;
    default:
      return false;
  }
}

void ObjectManager::Handle(rpc::Envelope& envelope) {
  switch (envelope.body_case()) {
    case rpc::Envelope::kFetchObject:
      OnFetchObject(envelope);
      break;
    case rpc::Envelope::kFreeObjects:
      OnFreeObjects(envelope);
      break;
    case rpc::Envelope::kPullRequest:
      OnPullRequest(envelope);
      break;
    case rpc::Envelope::kPullReply:
      OnPullReply(envelope);
      break;
    case rpc::Envelope::kPullDone:
      OnPullDone(envelope);
      break;
    case rpc::Envelope::kMakeRoom:
      OnMakeRoom(envelope);
      break;
    default:
      Reject("message of type " + std::to_string(envelope.body_case()) +
             " is not for the object manager");
  }
}

bool ObjectManager::Tick() {
  if (spill_) spill_->SpillAboveThreshold();
  RetryWaitingRestores();
  RetryWaitingForRoom();
  PollReads();
  StartReads();
  return !reads_.empty() || !read_turns_.empty() ||
         (config_.poll_while_serving && !served_.empty());
}

ObjectManagerStats ObjectManager::stats() const {
  ObjectManagerStats out = stats_;
  out.pulls_in_flight = pulls_.size();
  out.objects_pinned_for_peers = served_.size();
  return out;
}

// ---- requests of local processes ----------------------------------------------------------

void ObjectManager::OnFetchObject(const rpc::Envelope& envelope) {
  const rpc::FetchObject& m = envelope.fetch_object();
  const Waiter waiter{envelope.src(), envelope.request_id(), m.pin_for_requester()};
  StatusOr<ObjectId> id = ObjectId::FromBinary(m.object_id());
  if (!id.ok()) {
    Reject("FetchObject from " + AddressText(envelope.src()) + ": " + id.status().message());
    Reply(waiter, m.object_id(), "cannot fetch: " + id.status().message());
    return;
  }
  if (store_->Contains(*id)) {
    Reply(waiter, m.object_id(), "");
    return;
  }
  if (spill_ && spill_->IsSpilled(*id)) {  // a spilled copy here: no pull needed
    auto waiting = restores_waiting_.find(*id);
    if (waiting != restores_waiting_.end()) {
      waiting->second.waiters.push_back(waiter);
      return;
    }
    Status restored = spill_->Restore(*id);
    // No room now, or a process of this node is copying it in from another node: wait.
    if (restored.code() == StatusCode::kUnavailable ||
        restored.code() == StatusCode::kAlreadyExists) {
      RAYMPI_LOG_INFO("object {}: waiting for room to restore it: {}", id->Hex(),
                      restored.message());
      restores_waiting_[*id] = WaitingRestore{{waiter}, now_() + config_.store_full_wait};
      return;
    }
    Reply(waiter, m.object_id(), restored.ok() ? "" : restored.message());
    return;
  }
  auto running = pull_of_id_.find(*id);
  if (running != pull_of_id_.end()) {
    pulls_.at(running->second).waiters.push_back(waiter);
    return;
  }
  // Built only for an error: a fetch that goes well should not format the id.
  const auto what = [&] {
    return "cannot fetch object " + id->Hex() + " from node " + std::to_string(m.node()) + ": ";
  };
  if (m.size() == 0) {
    Reject("FetchObject from " + AddressText(envelope.src()) + " with size 0");
    Reply(waiter, m.object_id(), what() + "size 0 given (an object to pull has at least 1 byte)");
    return;
  }
  if (m.node() == node_) {
    Reply(waiter, m.object_id(),
          what() + "it is not in node " + std::to_string(node_) + "'s store (freed or lost)");
    return;
  }
  StatusOr<uint64_t> window = reader_->WindowSize(m.node());
  if (!window.ok()) {
    Reject("FetchObject from " + AddressText(envelope.src()) + ": " + window.status().message());
    Reply(waiter, m.object_id(), what() + window.status().message());
    return;
  }
  if (m.size() > *window) {
    Reject("FetchObject from " + AddressText(envelope.src()) + ": size beyond the window");
    Reply(waiter, m.object_id(),
          what() + "its size " + std::to_string(m.size()) + " exceeds that node's whole store (" +
              std::to_string(*window) + " bytes)");
    return;
  }

  const uint64_t pull_id = next_pull_id_++;
  Pull& pull = pulls_[pull_id];
  pull.pull_id = pull_id;
  pull.id = *id;
  pull.source_node = m.node();
  pull.size = m.size();
  if (m.has_offset_hint()) pull.offset_hint = m.offset_hint();
  pull.slot_hint = m.slot_hint();
  pull.serial_hint = m.serial_hint();
  pull.has_owner = m.has_owner();
  if (pull.has_owner) pull.owner = m.owner();
  pull.waiters.push_back(waiter);
  pull.room_deadline = now_() + config_.store_full_wait;
  pull_of_id_[*id] = pull_id;
  ++stats_.pulls_started;

  Status st = TryCreate(pull);
  if (st.code() == StatusCode::kUnavailable) {
    RAYMPI_LOG_INFO("object {}: store full, waiting for room: {}", id->Hex(), st.message());
  } else if (st.code() == StatusCode::kAlreadyExists) {
    // A process of this node is copying it in itself: answer once it is sealed.
  } else if (!st.ok()) {
    FailPull(pull, what() + st.message());
    FinishIfDone(pull_id);
  } else if (pulls_.count(pull_id) != 0) {
    FinishIfDone(pull_id);  // copied at the source, or mapped reads landed: answer now
  }
}

Status ObjectManager::TryCreate(Pull& pull) {
  StatusOr<MutableBuffer> buffer = store_->Create(pull.id, pull.size);
  if (!buffer.ok() && buffer.status().code() == StatusCode::kUnavailable && spill_) {
    Status room = spill_->MakeRoom(pull.size);
    if (room.code() == StatusCode::kIoError) return room;  // the spill disk failed: give up
    if (room.ok()) buffer = store_->Create(pull.id, pull.size);
  }
  if (!buffer.ok()) return buffer.status();
  pull.dest = buffer->data;
  pull.created = true;
  if (CopyAtSource(pull) || StartOneSided(pull)) return Status::Ok();
  SendPullRequest(pull);
  // Read from where the creator put it now, without waiting a round trip for the source to
  // confirm: the object seldom moves (only a spill does that), and the reply says whether it
  // did. The range is checked like a reply's; a hint outside the window is just not used.
  if (HintReadable(pull)) {
    pull.early = true;
    ++stats_.early_reads;
    ReadAtHint(pull);
  }
  return Status::Ok();
}

bool ObjectManager::HintReadable(const Pull& pull) const {
  return pull.offset_hint && InRange(pull.source_node, reader_->WindowSize(pull.source_node),
                                     *pull.offset_hint, pull.size);
}

void ObjectManager::ReadAtHint(Pull& pull) {
  pull.remote_offset = *pull.offset_hint;
  read_turns_.push_back(pull.pull_id);
  StartReads();
}

bool ObjectManager::CopyAtSource(Pull& pull) {
  const uint64_t burst = uint64_t{config_.chunk_bytes} * config_.max_chunks_in_flight;
  if (!source_pins_ || pull.size > burst) return false;
  Status copied = source_pins_->CopyFromSource(pull.source_node, pull.id, pull.dest, pull.size);
  if (!copied.ok()) return false;  // spilled there, say: its raylet restores it for the pull
  pull.state = PullState::kTransferring;
  pull.next_byte = pull.size;
  pull.bytes_done = pull.size;
  ++stats_.copied_at_source;
  return true;
}

bool ObjectManager::StartOneSided(Pull& pull) {
  if (!config_.one_sided_pulls || pull.serial_hint == 0 || !HintReadable(pull) ||
      !InRange(pull.source_node, reader_->TableSize(pull.source_node),
               uint64_t{pull.slot_hint} * ObjectStore::kEntryBytes, ObjectStore::kEntryBytes)) {
    return false;
  }
  pull.one_sided = true;
  pull.state = PullState::kTransferring;
  ReadAtHint(pull);
  return true;
}

void ObjectManager::CheckEntry(Pull& pull) {
  StatusOr<RmaReader::Handle> handle =
      reader_->StartEntryRead(pull.source_node, pull.slot_hint, pull.entry.data());
  if (!handle.ok()) {
    RAYMPI_LOG_INFO("object {}: cannot read its entry on node {}: {}", pull.id.Hex(),
                    pull.source_node, handle.status().message());
    AskSourceRaylet(pull);
    return;
  }
  reads_.push_back(InFlightRead{*handle, pull.pull_id, 0, /*entry=*/true});
  ++pull.reads_in_flight;
}

void ObjectManager::AskSourceRaylet(Pull& pull) {
  ++stats_.one_sided_misses;
  pull.one_sided = false;
  // Every byte has landed: they count as early reads, which the reply confirms (unmoved, same
  // offset) or has read again (OnPullReply).
  pull.early = true;
  SendPullRequest(pull);
}

void ObjectManager::SendPullRequest(Pull& pull) {
  pull.state = PullState::kAwaitingReply;
  pull.request_sent = true;
  rpc::Envelope out = From();
  *out.mutable_dst() = MakeAddress(pull.source_node, kRayletSlot);
  out.mutable_pull_request()->set_object_id(pull.id.Binary());
  out.mutable_pull_request()->set_pull_id(pull.pull_id);
  send_(out);
}

void ObjectManager::RetryWaitingForRoom() {
  std::vector<uint64_t> waiting;
  for (const auto& [pull_id, pull] : pulls_) {
    if (pull.state == PullState::kWaitingForRoom && pull.failure.empty()) {
      waiting.push_back(pull_id);
    }
  }
  for (uint64_t pull_id : waiting) {
    Pull& pull = pulls_.at(pull_id);
    Status st = TryCreate(pull);
    if (st.ok()) {
      if (pulls_.count(pull_id) != 0) FinishIfDone(pull_id);
      continue;
    }
    if (st.code() == StatusCode::kAlreadyExists && store_->Contains(pull.id)) {
      FinishWithLocalCopy(pull_id);  // sealed by the process that copied it in
      continue;
    }
    if ((st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kAlreadyExists) &&
        now_() < pull.room_deadline) {
      continue;
    }
    std::string error = "cannot pull object " + pull.id.Hex() + " (" + std::to_string(pull.size) +
                        " bytes) from node " + std::to_string(pull.source_node) + ": ";
    if (st.code() == StatusCode::kUnavailable) {
      error += "node " + std::to_string(node_) + "'s object store (capacity " +
               std::to_string(store_->capacity()) + " bytes) stayed full for " +
               Seconds(config_.store_full_wait) + ": " + st.message();
    } else if (st.code() == StatusCode::kAlreadyExists) {
      error += "a process of node " + std::to_string(node_) +
               " began copying it in itself and did not finish within " +
               Seconds(config_.store_full_wait) + ": " + st.message();
    } else {
      error += st.message();
    }
    FailPull(pull, std::move(error));
    FinishIfDone(pull_id);
  }
}

void ObjectManager::OnFreeObjects(const rpc::Envelope& envelope) {
  for (const std::string& binary : envelope.free_objects().object_ids()) {
    StatusOr<ObjectId> id = ObjectId::FromBinary(binary);
    if (!id.ok()) {
      Reject("FreeObjects from " + AddressText(envelope.src()) + ": " + id.status().message());
      continue;
    }
    auto running = pull_of_id_.find(*id);
    if (running != pull_of_id_.end()) {
      // Its buffer may be receiving bytes: it is freed when its reads have landed.
      const uint64_t pull_id = running->second;
      const bool ours = pulls_.at(pull_id).created;
      FailPull(pulls_.at(pull_id), "object " + id->Hex() + " was freed while it was pulled");
      FinishIfDone(pull_id);
      // A pull waiting for a process's own copy has no buffer: that copy is deleted below.
      if (ours) continue;
    }
    if (spill_) spill_->OnFreed(*id);
    Status st = store_->Delete(*id);
    // Freed objects are often not here (the owner frees every node it told of).
    if (!st.ok() && st.code() != StatusCode::kNotFound) {
      RAYMPI_LOG_WARN("freeing object {}: {}", id->Hex(), st.ToString());
    }
  }
}

// ---- the source side: pin, say where, unpin ---------------------------------------------------

void ObjectManager::OnPullRequest(const rpc::Envelope& envelope) {
  const rpc::PullRequest& m = envelope.pull_request();
  const int from = envelope.src().node();
  if (envelope.src().slot() != kRayletSlot || from == node_) {
    Reject("PullRequest from " + AddressText(envelope.src()) + ", not another node's raylet");
    return;
  }
  const std::pair<int, uint64_t> key(from, m.pull_id());
  if (served_.count(key) != 0) {
    Reject("duplicate PullRequest " + std::to_string(m.pull_id()) + " from node " +
           std::to_string(from));
    return;
  }
  rpc::Envelope out = From();
  *out.mutable_dst() = envelope.src();
  out.set_request_id(envelope.request_id());
  rpc::PullReply* reply = out.mutable_pull_reply();
  reply->set_object_id(m.object_id());
  reply->set_pull_id(m.pull_id());

  StatusOr<ObjectId> id = ObjectId::FromBinary(m.object_id());
  if (!id.ok()) {
    Reject("PullRequest from node " + std::to_string(from) + ": " + id.status().message());
    reply->set_error(id.status().message());
  } else {
    Status here = EnsureInStore(*id);
    StatusOr<ObjectView> view = here.ok() ? store_->Get(*id) : StatusOr<ObjectView>(here);
    if (!view.ok() && spill_ && spill_->IsSpilled(*id)) {
      reply->set_error("object " + id->Hex() + " is spilled on node " + std::to_string(node_) +
                       " and cannot be restored: " + view.status().message());
    } else if (!view.ok()) {
      reply->set_error("object " + id->Hex() + " is not in node " + std::to_string(node_) +
                       "'s store (freed or lost)");
    } else {
      reply->set_offset(view->offset());
      reply->set_size(view->size());
      // A spill is the only way an object leaves the store before it is freed, and a spilled
      // object stays known as such until it is freed: so not spilled means never moved.
      reply->set_unmoved(!spill_ || !spill_->IsSpilled(*id));
      served_.emplace(key, std::move(*view));
      ++stats_.pulls_served;
    }
  }
  send_(out);
}

void ObjectManager::OnPullDone(const rpc::Envelope& envelope) {
  const uint64_t pull_id = envelope.pull_done().pull_id();
  if (served_.erase({envelope.src().node(), pull_id}) == 0) {
    Reject("PullDone for unknown pull " + std::to_string(pull_id) + " from node " +
           std::to_string(envelope.src().node()));
  }
}

void ObjectManager::OnMakeRoom(const rpc::Envelope& envelope) {
  rpc::Envelope out = From();
  *out.mutable_dst() = envelope.src();
  out.set_request_id(envelope.request_id());
  rpc::MakeRoomReply* reply = out.mutable_make_room_reply();
  if (spill_) {
    Status st = spill_->MakeRoom(envelope.make_room().bytes());
    reply->set_room_made(st.ok());
    if (st.code() != StatusCode::kUnavailable) reply->set_error(st.message());
    if (!st.ok()) RAYMPI_LOG_INFO("node {} cannot make room: {}", node_, st.message());
  }
  send_(out);
}

void ObjectManager::RetryWaitingRestores() {
  for (auto it = restores_waiting_.begin(); it != restores_waiting_.end();) {
    const ObjectId& id = it->first;
    Status st =
        spill_->IsSpilled(id)
            ? spill_->Restore(id)
            : Status::NotFound("object " + id.Hex() + " was freed while it waited for room");
    if ((st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kAlreadyExists) &&
        now_() < it->second.deadline) {
      ++it;
      continue;
    }
    std::string error;
    if (st.code() == StatusCode::kUnavailable) {
      error = st.message() + " (node " + std::to_string(node_) + "'s store stayed full for " +
              Seconds(config_.store_full_wait) + ")";
    } else if (!st.ok()) {
      error = st.message();
    }
    const std::string binary = id.Binary();
    for (const Waiter& waiter : it->second.waiters) Reply(waiter, binary, error);
    it = restores_waiting_.erase(it);
  }
}

Status ObjectManager::EnsureInStore(const ObjectId& id) {
  if (store_->Contains(id) || !spill_ || !spill_->IsSpilled(id)) return Status::Ok();
  return spill_->Restore(id);
}

// ---- the pulling side: read the bytes -------------------------------------------------------

void ObjectManager::OnPullReply(const rpc::Envelope& envelope) {
  const rpc::PullReply& m = envelope.pull_reply();
  auto it = pulls_.find(m.pull_id());
  if (it == pulls_.end() || !it->second.request_sent || it->second.reply_received ||
      envelope.src().node() != it->second.source_node) {
    if (abandoned_.erase(m.pull_id()) != 0) return;  // the pull ended before its reply came
    Reject("PullReply from " + AddressText(envelope.src()) + " for pull " +
           std::to_string(m.pull_id()) + ", which is unknown, answered or not sent there");
    return;
  }
  Pull& pull = it->second;
  const uint64_t pull_id = pull.pull_id;
  pull.reply_received = true;
  pull.source_pinned = m.error().empty();
  const std::string what = "cannot pull object " + pull.id.Hex() + " from node " +
                           std::to_string(pull.source_node) + ": ";
  StatusOr<uint64_t> window = reader_->WindowSize(pull.source_node);
  Status range = window.ok() ? CheckReadRange(pull.source_node, *window, m.offset(), m.size())
                             : window.status();
  if (!pull.failure.empty()) {
    // Failed meanwhile (freed): nothing to read.
  } else if (!m.error().empty()) {
    FailPull(pull, what + m.error());
  } else if (m.object_id() != pull.id.Binary()) {
    Reject("PullReply for pull " + std::to_string(pull_id) + " names another object");
    FailPull(pull, what + "its raylet answered with object " + HexOf(m.object_id()));
  } else if (m.size() != pull.size) {
    FailPull(pull, what + "it has " + std::to_string(m.size()) + " bytes there, but " +
                       std::to_string(pull.size) + " were asked for");
  } else if (!range.ok()) {
    Reject("PullReply for pull " + std::to_string(pull_id) + ": " + range.message());
    FailPull(pull, what + range.message());
  } else if (pull.early) {
    pull.early = false;
    pull.state = PullState::kTransferring;
    if (m.unmoved() && m.offset() == pull.remote_offset) {
      FinishIfDone(pull_id);  // the early reads are the object's bytes: maybe all landed
      return;
    }
    // It moved: what was read (or is still landing) is not the object. No read of it starts
    // again until those have landed, then all of it is read from where it is now.
    ++stats_.early_misses;
    read_turns_.erase(std::remove(read_turns_.begin(), read_turns_.end(), pull_id),
                      read_turns_.end());
    pull.remote_offset = m.offset();
    if (pull.reads_in_flight > 0) {
      pull.restart_pending = true;
      return;
    }
    RestartReads(pull);
    StartReads();
    return;
  } else {
    pull.state = PullState::kTransferring;
    pull.remote_offset = m.offset();
    read_turns_.push_back(pull_id);
    StartReads();
    return;
  }
  FinishIfDone(pull_id);
}

void ObjectManager::RestartReads(Pull& pull) {
  pull.restart_pending = false;
  pull.next_byte = 0;
  pull.bytes_done = 0;
  read_turns_.push_back(pull.pull_id);
}

void ObjectManager::StartReads() {
  const size_t budget = static_cast<size_t>(config_.max_chunks_in_flight);
  while (reads_.size() < budget && !read_turns_.empty()) {
    const uint64_t pull_id = read_turns_.front();
    read_turns_.pop_front();
    auto it = pulls_.find(pull_id);
    if (it == pulls_.end()) continue;
    Pull& pull = it->second;
    if (!pull.failure.empty() || pull.next_byte >= pull.size) continue;
    const uint64_t bytes = std::min<uint64_t>(config_.chunk_bytes, pull.size - pull.next_byte);
    StatusOr<RmaReader::Handle> handle = reader_->StartRead(
        pull.source_node, pull.remote_offset + pull.next_byte, bytes, pull.dest + pull.next_byte);
    if (!handle.ok()) {
      FailPull(pull, "cannot pull object " + pull.id.Hex() + " from node " +
                         std::to_string(pull.source_node) + ": " + handle.status().message());
      FinishIfDone(pull_id);
      continue;
    }
    reads_.push_back(InFlightRead{*handle, pull_id, bytes});
    ++pull.reads_in_flight;
    pull.next_byte += bytes;
    if (pull.next_byte < pull.size) read_turns_.push_back(pull_id);  // the back of the line
  }
}

void ObjectManager::PollReads() {
  for (size_t i = 0; i < reads_.size();) {
    StatusOr<bool> done = reader_->Poll(reads_[i].handle);
    if (done.ok() && !*done) {
      ++i;
      continue;
    }
    const InFlightRead read = reads_[i];
    reads_.erase(reads_.begin() + static_cast<std::ptrdiff_t>(i));
    Pull& pull = pulls_.at(read.pull_id);  // a pull ends only once its reads have landed
    --pull.reads_in_flight;
    if (read.entry && pull.failure.empty()) {
      if (done.ok() && ObjectStore::EntryHolds(pull.entry.data(), pull.id, pull.remote_offset,
                                               pull.size, pull.serial_hint)) {
        pull.entry_matched = true;
      } else {
        AskSourceRaylet(pull);  // a failed read of the entry too: the raylet can still answer
      }
    } else if (!done.ok()) {
      FailPull(pull, "reading object " + pull.id.Hex() + " from node " +
                         std::to_string(pull.source_node) + " failed: " + done.status().message());
    } else if (!pull.restart_pending) {
      pull.bytes_done += read.bytes;
    }
    // Started by the next StartReads (Tick), so that this pull cannot end under our feet.
    if (pull.restart_pending && pull.reads_in_flight == 0 && pull.failure.empty()) {
      RestartReads(pull);
    }
    FinishIfDone(read.pull_id);
  }
}

void ObjectManager::OnNodeDied(int node) {
  std::vector<uint64_t> from_node;
  for (auto& [pull_id, pull] : pulls_) {
    if (pull.source_node != node) continue;
    FailPull(pull,
             "node " + std::to_string(node) + " was lost while the object was pulled from it");
    from_node.push_back(pull_id);
  }
  for (uint64_t pull_id : from_node) FinishIfDone(pull_id);
  for (auto it = served_.begin(); it != served_.end();) {
    it = it->first.first == node ? served_.erase(it) : std::next(it);
  }
}

void ObjectManager::FailPull(Pull& pull, std::string error) {
  if (pull.failure.empty()) pull.failure = std::move(error);  // the first cause is the one
}

void ObjectManager::FinishIfDone(uint64_t pull_id) {
  Pull& pull = pulls_.at(pull_id);
  if (pull.reads_in_flight > 0) return;
  if (pull.failure.empty() && (pull.restart_pending || pull.state != PullState::kTransferring ||
                               pull.bytes_done != pull.size)) {
    return;
  }
  if (pull.failure.empty() && pull.one_sided && !pull.entry_matched) {
    CheckEntry(pull);  // after every byte landed: the entry must be read after them
    return;
  }
  FinishPull(pull_id);
}

ObjectManager::Pull ObjectManager::TakePull(uint64_t pull_id) {
  Pull pull = std::move(pulls_.at(pull_id));
  pulls_.erase(pull_id);
  pull_of_id_.erase(pull.id);
  return pull;
}

void ObjectManager::FinishWithLocalCopy(uint64_t pull_id) {
  const Pull pull = TakePull(pull_id);
  const std::string binary = pull.id.Binary();
  for (const Waiter& waiter : pull.waiters) Reply(waiter, binary, "");
}

void ObjectManager::FinishPull(uint64_t pull_id) {
  Pull pull = TakePull(pull_id);

  std::string error = pull.failure;
  if (error.empty()) {
    Status st = store_->Seal(pull.id);
    if (!st.ok()) error = "sealing pulled object " + pull.id.Hex() + ": " + st.message();
  }
  if (!error.empty() && pull.created) {
    Status st = store_->Abort(pull.id);
    if (!st.ok()) RAYMPI_LOG_ERROR("aborting object {}: {}", pull.id.Hex(), st.ToString());
  }
  if (pull.request_sent && (!pull.reply_received || pull.source_pinned)) {
    // The source pins the object when the request reaches it; messages between two raylets
    // arrive in order, so this PullDone finds the pin even if the reply is still on its way.
    if (!pull.reply_received) abandoned_.insert(pull_id);
    rpc::Envelope out = From();
    *out.mutable_dst() = MakeAddress(pull.source_node, kRayletSlot);
    out.mutable_pull_done()->set_pull_id(pull_id);
    send_(out);
  }
  const std::string binary = pull.id.Binary();
  for (const Waiter& waiter : pull.waiters) Reply(waiter, binary, error);
  if (!error.empty()) {
    RAYMPI_LOG_WARN("pull {} failed: {}", pull_id, error);
    ++stats_.pulls_failed;
    return;
  }
  ++stats_.pulls_completed;
  if (pull.one_sided) ++stats_.pulled_one_sided;
  stats_.bytes_pulled += pull.size;
  if (pull.has_owner) {
    rpc::Envelope out = From();
    *out.mutable_dst() = pull.owner;
    out.mutable_object_location()->set_object_id(binary);
    out.mutable_object_location()->set_node(node_);
    send_(out);
  }
}

// ---- helpers -----------------------------------------------------------------------------------

void ObjectManager::Reply(const Waiter& waiter, const std::string& object_id,
                          const std::string& error) {
  rpc::Envelope out = From();
  *out.mutable_dst() = waiter.address;
  out.set_request_id(waiter.request_id);
  rpc::ObjectFetched* fetched = out.mutable_object_fetched();
  fetched->set_object_id(object_id);
  fetched->set_error(error);
  StatusOr<ObjectId> id = ObjectId::FromBinary(object_id);
  if (error.empty() && waiter.pin && id.ok()) {
    // The requester reads it next: pin it here, on this loop, where the object's table page is
    // warm (the requester's first touch of it cost tens of microseconds on the test VM), and
    // hand the pin over. Not pinned (freed meanwhile): the requester's own Get says why.
    StatusOr<ObjectView> view = store_->Get(*id);
    if (view.ok()) {
      fetched->set_pinned(true);
      fetched->set_offset(view->offset());
      fetched->set_size(view->size());
      view->Leak();  // released by the requester
    }
  }
  send_(out);
}

void ObjectManager::Reject(const std::string& what) {
  ++stats_.messages_rejected;
  RAYMPI_LOG_ERROR("object manager of node {} rejected a message: {}", node_, what);
}

rpc::Envelope ObjectManager::From() const {
  rpc::Envelope out;
  *out.mutable_src() = MakeAddress(node_, kRayletSlot);
  return out;
}

}  // namespace raympi
