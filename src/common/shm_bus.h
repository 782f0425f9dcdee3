// ShmBus: a node's message bus in shared memory. One mailbox per process slot on the node
// (slot 0 = the raylet, others = driver and workers). Any process of the node sends to any
// mailbox; only the slot's owner receives. An idle receiver sleeps on a futex (no CPU) and is
// woken in tens of microseconds, which MPI cannot do (see docs/design.md).
//
// Thread-safety: Send and Wake are safe from any thread of any process. Receive/TryReceive
// for a given slot must be called by one thread at a time (single consumer).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace raympi {

class ShmBus {
 public:
  struct Options {
    std::string name;             // shm object name, e.g. "/raympi-<job>-n0-bus"
    int num_slots = 64;           // mailboxes
    size_t ring_bytes = 1 << 20;  // bytes per mailbox ring
    // Messages larger than this travel in a side segment named name + "-m<pid>-<n>" whose
    // name goes through the ring; the receiver maps, copies and unlinks it.
    size_t large_message_bytes = 64 << 10;
  };

  // Creates the segment (mode 0600) and owns it: the destructor unlinks it.
  static StatusOr<std::unique_ptr<ShmBus>> Create(const Options& options);
  // Maps an existing segment created by Create (no unlink on destruction).
  static StatusOr<std::unique_ptr<ShmBus>> Attach(const std::string& name);

  ~ShmBus();
  ShmBus(const ShmBus&) = delete;
  ShmBus& operator=(const ShmBus&) = delete;

  int num_slots() const;

  // How the job ends, set by the raylet before it passes the job's Shutdown on, so that a
  // supervisor whose program already left (and may have taken the Shutdown) still learns it.
  // kAbandoned: a node or the GCS was lost; every process leaves without MPI's collective end.
  enum class JobEnd : uint32_t { kRunning = 0, kNormal = 1, kAbandoned = 2 };
  void MarkJobEnd(JobEnd end);
  JobEnd job_end() const;

  // Appends one message to `slot`'s mailbox and wakes its receiver. Blocks while the ring is
  // full. Messages are delivered whole and in order per sender thread.
  Status Send(int slot, std::string_view message);

  // Takes the next message of `slot` if there is one; false if the mailbox is empty.
  StatusOr<bool> TryReceive(int slot, std::string* message);

  // Spins on the CPU (no syscall) until `slot` has a message or a pending Wake, or `budget`
  // passes; true if there is something to receive. For a receiver that expects a reply within
  // microseconds: a sched_yield costs over a microsecond on a VM, a pause a few nanoseconds.
  bool AwaitActivity(int slot, std::chrono::nanoseconds budget);

  // Like TryReceive, but first spins briefly and then sleeps on the futex until a message
  // arrives, Wake(slot) is called, or `timeout` passes. false when nothing arrived.
  StatusOr<bool> Receive(int slot, std::string* message, std::chrono::microseconds timeout);

  // Makes a Receive blocked on `slot` return (used to post local work to an event loop).
  // Sticky: if no Receive is blocked, the next one to find the mailbox empty returns false at
  // once, so a Wake issued just before the receiver goes to sleep is not lost.
  void Wake(int slot);

 private:
  struct Impl;
  explicit ShmBus(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Removes every /dev/shm entry whose name starts with `prefix` (without the leading '/').
// The raylet calls it at shut-down so a crashed process leaves no segment behind.
void RemoveShmWithPrefix(const std::string& prefix);

}  // namespace raympi
