#include "objects/peer_store_copier.h"

#include <atomic>
#include <cstring>
#include <string>

#include "common/logging.h"

namespace raympi {

namespace {

std::string NodeText(int node) { return "node " + std::to_string(node) + "'s store"; }

}  // namespace

bool PeerStoreCopier::AddPeer(int node, const ArenaLocation& where) {
  if (!DescribesThisHost(where)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (peers_.count(node) != 0) return false;
  peers_[node].where = where;
  return true;
}

bool PeerStoreCopier::Knows(int node) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(node);
  return it != peers_.end() && !it->second.attach_failed;
}

ObjectStore* PeerStoreCopier::StoreOf(int node) {
  ArenaLocation where;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = peers_.find(node);
    if (it == peers_.end() || it->second.attach_failed) return nullptr;
    if (it->second.store) return it->second.store.get();
    where = it->second.where;
  }
  StatusOr<std::unique_ptr<ObjectStore>> attached = AttachDescribedStore(where);
  std::lock_guard<std::mutex> lock(mu_);
  Peer& peer = peers_.at(node);
  if (peer.store) return peer.store.get();  // another thread attached it meanwhile
  if (!attached.ok()) {
    if (!peer.attach_failed) {
      RAYMPI_LOG_WARN("Gets of node {}'s objects ask the raylet: cannot attach its store {}: {}",
                      node, where.segment, attached.status().ToString());
    }
    peer.attach_failed = true;  // for the job: Gets of that node's objects ask the raylet
    return nullptr;
  }
  peer.store = std::move(*attached);
  return peer.store.get();
}

Status PeerStoreCopier::Copy(int node, const ObjectId& id, uint64_t size,
                             const std::optional<StoredAt>& at, uint8_t* dest) {
  ObjectStore* store = StoreOf(node);
  if (store == nullptr) return Status::NotFound(NodeText(node) + " is not attached here");
  if (!at || at->serial == 0) {
    // No hints: pin it for the copy.
    StatusOr<ObjectView> pin = store->TryGet(id);
    if (!pin.ok()) return pin.status();
    if (pin->size() != size) {
      return Status::InvalidArgument("object " + id.Hex() + " has " + std::to_string(pin->size()) +
                                     " bytes in " + NodeText(node));
    }
    std::memcpy(dest, pin->data(), size);
    return Status::Ok();  // the pin goes with `pin`
  }
  if (at->offset > store->capacity() || size > store->capacity() - at->offset ||
      (uint64_t{at->table_slot} + 1) * ObjectStore::kEntryBytes > store->table_bytes()) {
    return Status::InvalidArgument("object " + id.Hex() + ": its place lies outside " +
                                   NodeText(node));
  }
  const uint8_t* entry = store->table() + uint64_t{at->table_slot} * ObjectStore::kEntryBytes;
  if (!ObjectStore::EntryHolds(entry, id, at->offset, size, at->serial)) {
    return Status::NotFound("object " + id.Hex() + " is no longer where it was made in " +
                            NodeText(node));
  }
  std::memcpy(dest, store->arena() + at->offset, size);
  // The entry is read again after every byte: a free (or spill) changes it, under that store's
  // lock, before anyone can write those bytes again; unchanged, the copy is the object's.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (!ObjectStore::EntryHolds(entry, id, at->offset, size, at->serial)) {
    return Status::NotFound("object " + id.Hex() + " changed in " + NodeText(node) +
                            " while it was copied");
  }
  return Status::Ok();
}

}  // namespace raympi
