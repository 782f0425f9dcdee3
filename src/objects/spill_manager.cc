#include "objects/spill_manager.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <tuple>

#include "common/logging.h"

namespace raympi {

namespace {

std::string Mib(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

}  // namespace

std::string SpillStats::ToString() const {
  char text[256];
  std::snprintf(text, sizeof(text),
                "spilled %" PRIu64 " objects (%s), restored %" PRIu64 " (%s), %" PRIu64
                " objects (%s) in %" PRIu64 " files now",
                counters.spilled_objects, Mib(counters.spilled_bytes).c_str(),
                counters.restored_objects, Mib(counters.restored_bytes).c_str(),
                counters.objects_on_disk, Mib(counters.bytes_on_disk).c_str(), files_live);
  return text;
}

bool SpillManager::IdLess::operator()(const ObjectId& a, const ObjectId& b) const {
  return std::tie(a.owner_node, a.owner_slot, a.owner_pid, a.index) <
         std::tie(b.owner_node, b.owner_slot, b.owner_pid, b.index);
}

SpillManager::SpillManager(ObjectStore* store, SpillStorage* storage, SpillConfig config)
    : store_(store), storage_(storage), config_(config) {}

SpillManager::~SpillManager() {
  for (const auto& [file, live] : live_in_file_) (void)storage_->Remove(file);
}

uint64_t SpillManager::BatchBytes(uint64_t at_least) const {
  return std::max<uint64_t>(at_least,
                            std::min<uint64_t>(config_.min_batch_bytes, store_->capacity() / 4));
}

Status SpillManager::MakeRoom(uint64_t bytes) {
  if (stuck_ && store_->change_stamp() == stuck_at_) return stuck_status_;
  stuck_ = false;
  for (;;) {
    ObjectStore::Stats now = store_->stats(0);
    if (now.largest_free_block >= bytes) return Status::Ok();
    // Free space may be fragmented: ask for the whole shortfall, at least a batch.
    const uint64_t free_bytes = now.capacity - std::min(now.capacity, now.bytes_in_use);
    const uint64_t shortfall = bytes > free_bytes ? bytes - free_bytes : bytes;
    const ObjectStore::ChangeStamp stamp = store_->change_stamp();
    std::vector<ObjectId> candidates = store_->EvictionCandidates(BatchBytes(shortfall));
    if (candidates.empty()) {
      stuck_ = true;
      stuck_at_ = stamp;
      stuck_status_ = Status::Unavailable(
          "nothing left to spill: " + Mib(now.pinned_bytes) + " of " + Mib(now.bytes_in_use) +
          " in use are pinned (views held by processes) or being written");
      return stuck_status_;
    }
    uint64_t freed = 0;
    RAYMPI_RETURN_IF_ERROR(Spill(candidates, &freed));
    // Objects pinned meanwhile stay: when none could be freed, nothing more can be now.
    if (freed == 0) {
      return Status::Unavailable("nothing left to spill: every candidate was pinned meanwhile");
    }
  }
}

bool SpillManager::SpillAboveThreshold() {
  if (config_.threshold > 1.0) return false;
  const uint64_t in_use = store_->bytes_in_use();  // cheap: this runs on every loop pass
  const auto limit =
      static_cast<uint64_t>(config_.threshold * static_cast<double>(store_->capacity()));
  // A pass that could not spill is not repeated until the store changes: the candidate scan
  // costs milliseconds with tens of thousands of objects.
  if (in_use <= limit || in_use == fruitless_at_) return false;
  std::vector<ObjectId> candidates = store_->EvictionCandidates(BatchBytes(in_use - limit));
  uint64_t freed = 0;
  Status st = candidates.empty() ? Status::Ok() : Spill(candidates, &freed);
  if (!st.ok()) RAYMPI_LOG_ERROR("spilling above the threshold: {}", st.message());
  fruitless_at_ = freed > 0 ? 0 : in_use;
  return freed > 0;
}

Status SpillManager::Spill(const std::vector<ObjectId>& ids, uint64_t* freed) {
  *freed = 0;
  std::vector<ObjectView> views;  // pinned while written: nobody frees or moves them
  std::vector<SpillItem> items;
  std::vector<ObjectId> already;  // restored objects whose spilled copy is still live
  for (const ObjectId& id : ids) {
    if (IsSpilled(id)) {
      already.push_back(id);
      continue;
    }
    StatusOr<ObjectView> view = store_->Get(id);
    if (!view.ok()) continue;  // freed or deleted since it was chosen
    items.push_back(SpillItem{id, view->data(), view->size()});
    views.push_back(std::move(*view));
  }
  if (!items.empty()) {
    uint64_t bytes = 0;
    for (const SpillItem& item : items) bytes += item.size;
    StatusOr<SpilledBatch> batch = storage_->WriteBatch(items);
    if (!batch.ok()) {
      return Status::IoError("cannot spill " + std::to_string(items.size()) +
                             (items.size() == 1 ? " object (" : " objects (") + Mib(bytes) +
                             ") to " + storage_->Describe() + ": " + batch.status().message() +
                             " (free space there, or give another directory with --spill-dir)");
    }
    // Only now, with the batch written and flushed, are the objects spilled.
    for (size_t i = 0; i < items.size(); ++i) {
      spilled_[items[i].id] = Location{batch->file, batch->offsets[i], items[i].size};
    }
    live_in_file_[batch->file] = items.size();
    ++stats_.files_written;
    stats_.counters.spilled_objects += items.size();
    stats_.counters.spilled_bytes += bytes;
    stats_.counters.objects_on_disk += items.size();
    stats_.counters.bytes_on_disk += bytes;
    RAYMPI_LOG_DEBUG("spilled {} objects ({}) to {}", items.size(), Mib(bytes), batch->file);
  }
  views.clear();  // unpin, then free what nobody else pinned meanwhile
  for (const SpillItem& item : items) already.push_back(item.id);
  for (const ObjectId& id : already) {
    const uint64_t size = spilled_.at(id).size;
    Status st = store_->Evict(id);
    if (st.ok()) {
      *freed += size;
    } else if (st.code() == StatusCode::kNotFound) {
      OnFreed(id);  // its owner freed it meanwhile; its FreeObjects finds nothing to do
    }               // pinned meanwhile: it stays in the store too, and goes on a later spill
  }
  Publish();
  return Status::Ok();
}

Status SpillManager::Restore(const ObjectId& id) {
  auto it = spilled_.find(id);
  if (it == spilled_.end()) {
    return Status::NotFound("object " + id.Hex() + " was not spilled on this node");
  }
  if (store_->Contains(id)) return Status::Ok();
  const Location where = it->second;
  StatusOr<MutableBuffer> buffer = store_->Create(id, where.size);
  if (!buffer.ok() && buffer.status().code() == StatusCode::kUnavailable) {
    Status room = MakeRoom(where.size);
    if (!room.ok()) {
      // Unavailable: wait for frees. IoError (the spill disk failed): waiting will not help.
      const std::string m = "cannot restore spilled object " + id.Hex() + " (" + Mib(where.size) +
                            "): no room in the store: " + room.message();
      return room.code() == StatusCode::kIoError ? Status::IoError(m) : Status::Unavailable(m);
    }
    buffer = store_->Create(id, where.size);
  }
  if (!buffer.ok()) {
    const std::string m =
        "cannot restore spilled object " + id.Hex() + ": " + buffer.status().message();
    // AlreadyExists: a process of this node is copying it in from another node right now.
    if (buffer.status().code() == StatusCode::kUnavailable) return Status::Unavailable(m);
    if (buffer.status().code() == StatusCode::kAlreadyExists) return Status::AlreadyExists(m);
    return Status::Internal(m);
  }
  Status read = storage_->Read(where.file, where.offset, where.size, buffer->data);
  if (!read.ok()) {
    (void)store_->Abort(id);
    return Status::IoError("cannot restore spilled object " + id.Hex() + " from " + where.file +
                           ": " + read.message());
  }
  RAYMPI_RETURN_IF_ERROR(store_->Seal(id));
  ++stats_.counters.restored_objects;
  stats_.counters.restored_bytes += where.size;
  Publish();
  return Status::Ok();
}

void SpillManager::OnFreed(const ObjectId& id) {
  auto it = spilled_.find(id);
  if (it == spilled_.end()) return;
  const Location where = it->second;
  spilled_.erase(it);
  --stats_.counters.objects_on_disk;
  stats_.counters.bytes_on_disk -= where.size;
  Publish();  // before the file goes: whoever sees it gone sees the counters updated
  auto file = live_in_file_.find(where.file);
  if (file != live_in_file_.end() && --file->second == 0) {
    live_in_file_.erase(file);
    Status st = storage_->Remove(where.file);
    if (!st.ok()) RAYMPI_LOG_WARN("removing spill file {}: {}", where.file, st.message());
    ++stats_.files_removed;
  }
}

SpillStats SpillManager::stats() const {
  SpillStats out = stats_;
  out.files_live = live_in_file_.size();
  return out;
}

void SpillManager::Publish() { store_->PublishSpillCounters(stats_.counters); }

}  // namespace raympi
