// ObjectManager: the raylet's object plane. Makes objects local on request (FetchObject) by
// pulling their bytes from another node's store with one-sided reads (RmaReader), serves the
// pulls of other nodes from the local store, and frees objects (FreeObjects). The transfer
// protocol is described in src/objects/README.md ("Moving objects between nodes").
//
//   process --FetchObject--> raylet A --PullRequest--> raylet B (pins the object)
//                            raylet A <--PullReply{offset, size}--
//                            raylet A reads the bytes in chunks from B's window
//                            raylet A --PullDone--> raylet B (unpins)
//   process <--ObjectFetched-- raylet A --ObjectLocation--> owner
//
// When the FetchObject carries the creator's offset, raylet A starts reading there together
// with the PullRequest; the PullReply then only confirms (unmoved) or sends it to read again.
// When the source's store is shared memory of this host (SourcePins), raylet A copies the object
// out of it itself, pinned there for the copy: no message to or from raylet B at all. With the
// creator's table slot and serial too (one_sided_pulls), it reads the bytes, then B's table
// entry, and asks B only if the entry no longer holds the object.
// A process that asks with pin_for_requester gets the object pinned for it in the reply, with
// its offset: its Get then touches no store metadata (docs/objects.md, "Getting an object
// from another node").
//
// Thread-safety: single-threaded, driven by the raylet's event loop (Handle for each message,
// Tick on every pass). `send` must not call back into the manager (queue, don't recurse).
// Destruction order: the manager, then the reader (closing it waits for reads in flight into
// the store's arena), then the store.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "objects/object_store.h"
#include "objects/rma_window.h"
#include "objects/source_pins.h"
#include "objects/spill_manager.h"
#include "raympi.pb.h"

namespace raympi {

struct ObjectManagerConfig {
  // Bytes per one-sided read. Large enough to amortise a read's cost, small enough that several
  // pulls interleave and that a failure wastes little.
  size_t chunk_bytes = 8 << 20;
  // Reads in flight over all pulls together; pulls share them round-robin.
  int max_chunks_in_flight = 4;
  // How long a pull waits for room when the local store is full before it fails.
  std::chrono::steady_clock::duration store_full_wait = std::chrono::seconds(10);
  // Tick reports activity while other nodes hold pins here (they are reading this arena), so
  // the loop keeps making MPI calls. osc pt2pt (between hosts over TCP) moves a read only when
  // the target calls MPI; osc rdma or ucx do not need it.
  bool poll_while_serving = true;
  // A pull that knows where the creator put the object and its table entry (FetchObject's
  // hints) reads it without asking the source's raylet, then reads the entry to check that the
  // object was there all along; else it asks the raylet as before (docs/objects.md,
  // "Pulls without the source raylet"). Only where reads need nothing of the target's CPU:
  // not over osc pt2pt, where the source would have to be polling.
  bool one_sided_pulls = false;
};

// The object plane's numbers for the job summary.
struct ObjectManagerStats {
  uint64_t pulls_started = 0;    // pulls this node made (one per object, however many waited)
  uint64_t pulls_completed = 0;  // sealed in the local store
  uint64_t pulls_failed = 0;     // every waiter got an error
  uint64_t bytes_pulled = 0;     // bytes of completed pulls
  uint64_t pulls_in_flight = 0;  // started and not finished yet
  uint64_t pulls_served = 0;     // PullRequests of other nodes answered with a pinned object
  uint64_t objects_pinned_for_peers = 0;  // served and not yet released by PullDone
  uint64_t messages_rejected = 0;         // malformed or unexpected messages (logged)
  uint64_t early_reads = 0;       // pulls that read from the creator's offset before the reply
  uint64_t early_misses = 0;      // ... whose object had moved: read again from the reply's offset
  uint64_t copied_at_source = 0;  // pulls copied out of the source's store, pinned there
  uint64_t pulled_one_sided = 0;  // completed without a message to the source's raylet
  uint64_t one_sided_misses = 0;  // ... whose entry did not match: asked the raylet after all
  std::string ToString() const;
};

class ObjectManager {
 public:
  using Send = std::function<void(const rpc::Envelope&)>;
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `store` is this node's store, `reader` reads other nodes' windows (its window sizes bound
  // every remote offset); `send` delivers an envelope (to a process of this node, or another
  // raylet); `now` defaults to steady_clock::now (tests pass a fake clock).
  ObjectManager(int node, ObjectStore* store, RmaReader* reader, Send send,
                ObjectManagerConfig config = {}, Clock now = {});
  // Spilling (optional, off without it): a full store spills instead of failing, spilled
  // objects are restored for local processes and for other nodes' pulls, and freed objects'
  // spilled copies are deleted. `spill` outlives the manager.
  void SetSpillManager(SpillManager* spill) { spill_ = spill; }
  // Pulls from nodes whose stores `pins` reaches copy the object out of it without the source
  // raylet, when it fits in one burst of reads (chunk_bytes * max_chunks_in_flight: the copy
  // runs on the loop at once). Optional; `pins` outlives the manager. Larger objects, and
  // objects not found that way (spilled, say), are pulled with a PullRequest as before.
  void SetSourcePins(SourcePins* pins) { source_pins_ = pins; }
  ~ObjectManager();
  ObjectManager(const ObjectManager&) = delete;
  ObjectManager& operator=(const ObjectManager&) = delete;

  // True for the message types Handle takes (the raylet routes these here).
  static bool Handles(const rpc::Envelope& envelope);
  // FetchObject, FreeObjects, PullRequest, PullReply, PullDone, MakeRoom. Bad input is logged and
  // counted (stats().messages_rejected), never trusted.
  void Handle(rpc::Envelope& envelope);
  // Completes reads, starts new ones, retries pulls waiting for room. True while bytes are
  // moving (reads in flight or waiting to start, or, with poll_while_serving, other nodes
  // reading from here): the loop should poll again, not sleep.
  bool Tick();

  ObjectManagerStats stats() const;

  // `node` is lost: pulls from it fail (their waiters get an error), pins it held here go.
  void OnNodeDied(int node);

 private:
  struct Waiter {
    rpc::Address address;
    uint64_t request_id = 0;
    bool pin = false;  // FetchObject.pin_for_requester: the reply hands it a pin
  };
  enum class PullState {
    // The local store is full, or a process of this node is copying the object in itself
    // (copies by the reader): Create is retried until the deadline, and the wait ends as soon
    // as that copy is sealed.
    kWaitingForRoom,
    kAwaitingReply,  // PullRequest sent
    kTransferring,   // reads in progress
  };
  struct Pull {
    uint64_t pull_id = 0;
    ObjectId id;
    int source_node = 0;
    uint64_t size = 0;
    rpc::Address owner;
    bool has_owner = false;
    std::vector<Waiter> waiters;
    PullState state = PullState::kWaitingForRoom;
    std::chrono::steady_clock::time_point room_deadline;
    uint8_t* dest = nullptr;      // the CREATED object's bytes in the local store
    bool created = false;         // Create succeeded: Seal or Abort it
    bool request_sent = false;    // PullRequest sent
    bool reply_received = false;  // PullReply arrived
    bool source_pinned = false;   // ... without an error: the source pinned the object
    uint64_t remote_offset = 0;
    std::optional<uint64_t> offset_hint;  // FetchObject.offset_hint: where the creator put it
    uint32_t slot_hint = 0;               // FetchObject.slot_hint: its table entry there
    uint32_t serial_hint = 0;             // FetchObject.serial_hint, 0 if none
    // Read one-sided (no PullRequest): done once the entry read after the bytes holds them.
    bool one_sided = false;
    bool entry_matched = false;
    std::array<uint8_t, ObjectStore::kEntryBytes> entry{};  // the entry read's destination
    // Reads started at offset_hint before the PullReply: the reply says whether they count.
    bool early = false;
    // The early reads were at the wrong place: read again once they have all landed.
    bool restart_pending = false;
    uint64_t next_byte = 0;  // first byte not asked for yet
    uint64_t bytes_done = 0;
    int reads_in_flight = 0;
    // Set when the pull has failed or was freed: no new reads; it ends once its reads drain.
    std::string failure;
  };
  struct InFlightRead {
    RmaReader::Handle handle = 0;
    uint64_t pull_id = 0;
    uint64_t bytes = 0;
    bool entry = false;  // the one-sided pull's check, not its bytes
  };
  struct IdLess {
    bool operator()(const ObjectId& a, const ObjectId& b) const;
  };

  void OnFetchObject(const rpc::Envelope& envelope);
  void OnFreeObjects(const rpc::Envelope& envelope);
  void OnPullRequest(const rpc::Envelope& envelope);
  void OnPullReply(const rpc::Envelope& envelope);
  void OnPullDone(const rpc::Envelope& envelope);
  void OnMakeRoom(const rpc::Envelope& envelope);
  // Spilled objects whose restore found the store full of pinned objects: retried on every
  // Tick until store_full_wait has passed, as a pull waits for room.
  void RetryWaitingRestores();
  // Ok if the object is in the store now: it was there, or it was spilled and is restored.
  Status EnsureInStore(const ObjectId& id);

  // Creates the local buffer and copies the object at the source (CopyAtSource), else sends
  // the PullRequest. Unavailable: no room yet (retry). The pull may be done on return: the
  // caller ends it (FinishIfDone) once it no longer uses it.
  Status TryCreate(Pull& pull);
  // Copies the whole object out of its source's store (SourcePins); false if it cannot (the
  // caller asks the source's raylet).
  bool CopyAtSource(Pull& pull);
  // Whether the pull has an offset hint inside the source's window (else it is not used).
  bool HintReadable(const Pull& pull) const;
  // Starts reading the whole object from its offset hint.
  void ReadAtHint(Pull& pull);
  // Starts reading the object one-sided from its hinted place; false if it cannot (no hints,
  // turned off, no table window, or a hint out of range): the caller asks the source's raylet.
  bool StartOneSided(Pull& pull);
  // The one-sided pull's bytes have landed: reads the table entry to check them.
  void CheckEntry(Pull& pull);
  // The entry did not hold the object (spilled, freed, or moved in the table meanwhile): asks
  // the source's raylet after all, keeping the bytes as early reads (its reply may confirm
  // them: an object that moved only in the table is not read again).
  void AskSourceRaylet(Pull& pull);
  void SendPullRequest(Pull& pull);
  void RetryWaitingForRoom();
  // Starts reads while the in-flight budget allows, one per pull in turn.
  void StartReads();
  // Reads the whole object again from remote_offset (none of its reads may be in flight); the
  // caller starts them (StartReads).
  void RestartReads(Pull& pull);
  void PollReads();
  // Marks the pull failed; it ends (FinishPull) once none of its reads is in flight.
  void FailPull(Pull& pull, std::string error);
  void FinishIfDone(uint64_t pull_id);
  // Seals (or aborts) the buffer, unpins at the source, answers every waiter; forgets the pull.
  void FinishPull(uint64_t pull_id);
  // Removes a pull from the books (pulls_, pull_of_id_) and returns it.
  Pull TakePull(uint64_t pull_id);
  // Ends a pull that found the object sealed here by a process of the node: nothing to seal or
  // announce (that process told the owner), only the waiters to answer.
  void FinishWithLocalCopy(uint64_t pull_id);
  void Reply(const Waiter& waiter, const std::string& object_id, const std::string& error);
  void Reject(const std::string& what);
  rpc::Envelope From() const;

  int node_;
  ObjectStore* store_;
  RmaReader* reader_;
  Send send_;
  ObjectManagerConfig config_;
  Clock now_;
  SpillManager* spill_ = nullptr;
  SourcePins* source_pins_ = nullptr;

  std::map<uint64_t, Pull> pulls_;                   // by pull id
  std::map<ObjectId, uint64_t, IdLess> pull_of_id_;  // one pull per object
  struct WaitingRestore {
    std::vector<Waiter> waiters;
    std::chrono::steady_clock::time_point deadline;
  };
  std::map<ObjectId, WaitingRestore, IdLess> restores_waiting_;
  std::deque<uint64_t> read_turns_;  // pulls with bytes not asked for yet, round-robin
  std::vector<InFlightRead> reads_;
  // Pulls that ended before their PullReply came: that reply is expected, not an error.
  std::set<uint64_t> abandoned_;
  uint64_t next_pull_id_ = 1;
  // Objects pinned for other nodes' pulls, by (pulling node, its pull id).
  std::map<std::pair<int, uint64_t>, ObjectView> served_;
  ObjectManagerStats stats_;
};

}  // namespace raympi
