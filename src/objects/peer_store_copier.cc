#include "objects/peer_store_copier.h"

#include <cstring>
#include <string>

#include "common/logging.h"
#include "common/shm_segment.h"

namespace raympi {

bool PeerStoreCopier::AddPeer(int node, const ArenaLocation& where) {
  if (where.boot_id.empty() || where.boot_id != ThisBootId() || where.arena_bytes == 0 ||
      !ShmSegment::ValidateName(where.segment, "object store").ok()) {
    return false;
  }
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
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(node);
  if (it == peers_.end() || it->second.attach_failed) return nullptr;
  Peer& peer = it->second;
  if (!peer.store) {
    StatusOr<std::unique_ptr<ObjectStore>> attached = AttachDescribedStore(peer.where);
    if (!attached.ok()) {
      peer.attach_failed = true;  // for the job: Gets of that node's objects ask the raylet
      RAYMPI_LOG_WARN("Gets of node {}'s objects ask the raylet: cannot attach its store {}: {}",
                      node, peer.where.segment, attached.status().ToString());
      return nullptr;
    }
    peer.store = std::move(*attached);
  }
  return peer.store.get();
}

Status PeerStoreCopier::CopyFromSource(int node, const ObjectId& id, uint8_t* dest, uint64_t size) {
  ObjectStore* store = StoreOf(node);
  if (store == nullptr) {
    return Status::NotFound("node " + std::to_string(node) + "'s store is not attached here");
  }
  StatusOr<ObjectView> pin = store->TryGet(id);
  if (!pin.ok()) return pin.status();
  if (pin->size() != size) {
    return Status::InvalidArgument("object " + id.Hex() + " has " + std::to_string(pin->size()) +
                                   " bytes in node " + std::to_string(node) + "'s store");
  }
  std::memcpy(dest, pin->data(), size);
  return Status::Ok();  // the pin goes with `pin`
}

}  // namespace raympi
