#include "common/shm_bus.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "common/shm_segment.h"

namespace raympi {
namespace {

constexpr uint64_t kMagic = 0x3153554249504d52ULL;  // "RMPIBUS1" in memory order
constexpr uint32_t kVersion = 2;

// Frame kinds. A frame is [u32 kind | u32 length | payload], padded to 8 bytes so the
// header never straddles the end of the ring.
constexpr uint32_t kFrameInline = 1;
constexpr uint32_t kFrameSideSegment = 2;  // payload: u64 size | side segment name
constexpr uint64_t kFrameHeaderBytes = 8;

constexpr int kMaxSlots = 1 << 16;
// Frame lengths are u32; keeping the ring below 2 GiB keeps every length representable.
constexpr uint64_t kMaxRingBytes = 1ULL << 31;
// ShmSegment::kMaxNameBytes leaves room for the "-m<pid>-<counter>" suffix of side segments
// under NAME_MAX.
constexpr uint64_t kMaxSideRefBytes = 8 + NAME_MAX + 1;
// ~ a few microseconds of spinning before paying for a futex sleep.
constexpr int kSpinIterations = 256;
// A producer waiting for ring space re-checks this often even without a wake-up, so a
// consumer that died between publishing tail and waking cannot wedge it.
constexpr std::chrono::milliseconds kProducerWaitSlice(50);

static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared-memory atomics need no locks");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shared-memory atomics need no locks");
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex words are 32-bit");

// Lives at offset 0 of the segment.
struct SegmentHeader {
  std::atomic<uint64_t> magic{0};  // stored last by Create: Attach never sees a half-built bus
  uint32_t version = 0;
  uint32_t num_slots = 0;
  uint64_t ring_bytes = 0;
  uint64_t large_message_bytes = 0;
  uint64_t mailbox_stride = 0;
  uint64_t total_bytes = 0;
  // The job's end as the raylet learnt it, set before it passes Shutdown on (JobEnd values).
  std::atomic<uint32_t> job_end{0};
};

// One per slot, followed by its ring. Producer-written and consumer-written fields sit on
// separate cache lines.
struct Mailbox {
  pthread_mutex_t producer_lock;  // process-shared, robust

  // Written by producers (head under producer_lock).
  alignas(64) std::atomic<uint64_t> head{0};  // bytes ever published
  std::atomic<uint32_t> seq{0};               // futex word the consumer sleeps on
  std::atomic<uint32_t> wake_pending{0};      // set by Wake, consumed by Receive
  std::atomic<uint32_t> producer_waiting{0};  // the lock holder waits for space

  // Written by the consumer.
  alignas(64) std::atomic<uint64_t> tail{0};  // bytes ever consumed
  std::atomic<uint32_t> tail_seq{0};          // futex word a waiting producer sleeps on
  std::atomic<uint32_t> consumer_sleeping{0};
};

// The consumer's view: a message waits, or a Wake does (both end a spin).
bool HasActivity(const Mailbox* mb) {
  return mb->head.load(std::memory_order_acquire) != mb->tail.load(std::memory_order_relaxed) ||
         mb->wake_pending.load(std::memory_order_relaxed) != 0;
}

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

struct Layout {
  uint64_t mailbox_offset;  // first mailbox, from the segment start
  uint64_t ring_offset;     // ring, from its mailbox start
  uint64_t stride;          // mailbox + ring
  uint64_t total;
};

Layout ComputeLayout(uint32_t num_slots, uint64_t ring_bytes) {
  Layout l;
  l.mailbox_offset = RoundUp(sizeof(SegmentHeader), 64);
  l.ring_offset = RoundUp(sizeof(Mailbox), 64);
  l.stride = l.ring_offset + RoundUp(ring_bytes, 64);
  l.total = l.mailbox_offset + l.stride * num_slots;
  return l;
}

// Non-private futex ops: the words live in memory shared between processes.
long FutexWait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout) {
  if (timeout.count() < 0) timeout = std::chrono::nanoseconds(0);
  timespec ts;
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr,
                 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

void RingWrite(char* ring, uint64_t ring_bytes, uint64_t counter, const void* src, uint64_t n) {
  if (n == 0) return;
  uint64_t pos = counter % ring_bytes;
  uint64_t first = std::min(n, ring_bytes - pos);
  std::memcpy(ring + pos, src, first);
  if (first < n) std::memcpy(ring, static_cast<const char*>(src) + first, n - first);
}

void RingRead(const char* ring, uint64_t ring_bytes, uint64_t counter, void* dst, uint64_t n) {
  if (n == 0) return;
  uint64_t pos = counter % ring_bytes;
  uint64_t first = std::min(n, ring_bytes - pos);
  std::memcpy(dst, ring + pos, first);
  if (first < n) std::memcpy(static_cast<char*>(dst) + first, ring, n - first);
}

// Takes the producer lock, recovering it if its previous holder died. A producer publishes
// head only after its frame is complete, so a dead holder leaves the ring consistent.
Status LockProducers(Mailbox* mb) {
  bool owner_died = false;
  int rc = LockRobust(&mb->producer_lock, &owner_died);
  if (rc != 0) return Status::Internal("shm bus: producer lock: " + ErrnoText(rc));
  if (owner_died) {
    // It may have died waiting for space; a stale flag would cost the consumer a futex wake
    // per message forever.
    mb->producer_waiting.store(0, std::memory_order_relaxed);
  }
  return Status::Ok();
}

Status InitMutex(pthread_mutex_t* mutex) {
  int rc = InitRobustMutex(mutex);
  if (rc != 0) return Status::Internal("shm bus: pthread_mutex_init: " + ErrnoText(rc));
  return Status::Ok();
}

// Removes the /dev/shm entries starting with `prefix` for which `match(entry_name)` holds.
template <typename Match>
void RemoveShmMatching(const std::string& prefix, const Match& match) {
  for (const std::string& name : ListShm(prefix)) {
    if (match(name)) shm_unlink(("/" + name).c_str());
  }
}

// Side segments of bus "/x" are named "x-m<pid>-<counter>" in /dev/shm.
void RemoveSideSegments(const std::string& bus_name) {
  const std::string prefix = bus_name.substr(1) + "-m";
  RemoveShmMatching(prefix, [&](const std::string& entry) {
    return entry.size() > prefix.size() && entry[prefix.size()] >= '0' &&
           entry[prefix.size()] <= '9';
  });
}

}  // namespace

struct ShmBus::Impl {
  std::string name;
  ShmSegment segment;    // unmaps, and unlinks if created here, on destruction
  char* base = nullptr;  // segment.data()
  // Copied from the header once validated, so later corruption cannot send us out of bounds.
  int num_slots = 0;
  uint64_t ring_bytes = 0;
  uint64_t large_message_bytes = 0;
  Layout layout{};

  ~Impl() {
    const bool owner = segment.owner();
    segment = ShmSegment();  // unmap and unlink the bus first
    // Nobody can receive them any more.
    if (owner) RemoveSideSegments(name);
  }

  Mailbox* mailbox(int slot) const {
    return reinterpret_cast<Mailbox*>(base + layout.mailbox_offset + layout.stride * slot);
  }
  char* ring(int slot) const {
    return base + layout.mailbox_offset + layout.stride * slot + layout.ring_offset;
  }

  Status CheckSlot(int slot) const {
    if (slot < 0 || slot >= num_slots) {
      return Status::InvalidArgument("shm bus " + name + ": slot " + std::to_string(slot) +
                                     " out of range (num_slots " + std::to_string(num_slots) + ")");
    }
    return Status::Ok();
  }

  // Tells a sleeping consumer that `seq` moved (new frame or Wake).
  static void NotifyConsumer(Mailbox* mb) {
    mb->seq.fetch_add(1, std::memory_order_seq_cst);
    if (mb->consumer_sleeping.load(std::memory_order_seq_cst) != 0) FutexWakeAll(&mb->seq);
  }

  // Caller holds producer_lock. Returns once `need` bytes are free.
  void WaitForSpace(Mailbox* mb, uint64_t head, uint64_t need) const {
    bool announced = false;
    for (;;) {
      uint64_t tail = mb->tail.load(std::memory_order_acquire);
      if (ring_bytes - (head - tail) >= need) break;
      // Announce, then re-check: the consumer publishes tail before reading the flag, so one
      // of us sees the other (seq_cst on both sides).
      mb->producer_waiting.store(1, std::memory_order_seq_cst);
      announced = true;
      uint32_t seen = mb->tail_seq.load(std::memory_order_seq_cst);
      tail = mb->tail.load(std::memory_order_seq_cst);
      if (ring_bytes - (head - tail) >= need) break;
      FutexWait(&mb->tail_seq, seen, kProducerWaitSlice);
    }
    if (announced) mb->producer_waiting.store(0, std::memory_order_relaxed);
  }

  Status SendFrame(int slot, uint32_t kind, std::string_view payload) {
    Mailbox* mb = mailbox(slot);
    char* r = ring(slot);
    const uint64_t frame_bytes = kFrameHeaderBytes + RoundUp(payload.size(), 8);
    RAYMPI_RETURN_IF_ERROR(LockProducers(mb));
    // Only lock holders write head, so relaxed is enough (the mutex orders us).
    const uint64_t head = mb->head.load(std::memory_order_relaxed);
    WaitForSpace(mb, head, frame_bytes);
    const uint32_t header[2] = {kind, static_cast<uint32_t>(payload.size())};
    RingWrite(r, ring_bytes, head, header, sizeof(header));
    RingWrite(r, ring_bytes, head + kFrameHeaderBytes, payload.data(), payload.size());
    mb->head.store(head + frame_bytes, std::memory_order_release);
    pthread_mutex_unlock(&mb->producer_lock);
    NotifyConsumer(mb);
    return Status::Ok();
  }

  Status SendViaSideSegment(int slot, std::string_view message) {
    static std::atomic<uint64_t> counter{0};
    const std::string side = name + "-m" + std::to_string(getpid()) + "-" +
                             std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
    int fd = shm_open(side.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
      return Status::IoError("shm bus: creating side segment " + side + ": " + ErrnoText(errno));
    }
    // write() rather than a mapping: a full /dev/shm then gives ENOSPC instead of SIGBUS.
    size_t done = 0;
    while (done < message.size()) {
      ssize_t n = write(fd, message.data() + done, message.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int err = n < 0 ? errno : EIO;
        close(fd);
        shm_unlink(side.c_str());
        return Status::IoError("shm bus: writing " + std::to_string(message.size()) +
                               " bytes to side segment " + side + ": " + ErrnoText(err));
      }
      done += static_cast<size_t>(n);
    }
    close(fd);
    std::string ref(8, '\0');
    const uint64_t size = message.size();
    std::memcpy(&ref[0], &size, sizeof(size));
    ref += side;
    Status st = SendFrame(slot, kFrameSideSegment, ref);
    if (!st.ok()) shm_unlink(side.c_str());
    return st;
  }

  // Frees ring space and wakes a producer that waits for it.
  static void PublishTail(Mailbox* mb, uint64_t tail) {
    mb->tail.store(tail, std::memory_order_seq_cst);
    if (mb->producer_waiting.load(std::memory_order_seq_cst) != 0) {
      mb->tail_seq.fetch_add(1, std::memory_order_seq_cst);
      FutexWakeAll(&mb->tail_seq);
    }
  }

  Status ReadSideSegment(const std::string& side, uint64_t size, std::string* message) {
    int fd = shm_open(side.c_str(), O_RDONLY, 0);
    if (fd < 0) {
      return Status::IoError("shm bus " + name + ": opening side segment " + side + ": " +
                             ErrnoText(errno));
    }
    // We are its only reader; unlinking now means nothing leaks even if the copy fails.
    shm_unlink(side.c_str());
    struct stat st;
    if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < size) {
      close(fd);
      return Status::IoError("shm bus " + name + ": side segment " + side + " is shorter than " +
                             std::to_string(size) + " bytes");
    }
    void* data = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    int err = errno;
    close(fd);
    if (data == MAP_FAILED) {
      return Status::IoError("shm bus " + name + ": mapping side segment " + side + ": " +
                             ErrnoText(err));
    }
    message->assign(static_cast<const char*>(data), size);
    munmap(data, size);
    return Status::Ok();
  }

  StatusOr<bool> TryReceive(int slot, std::string* message) {
    RAYMPI_RETURN_IF_ERROR(CheckSlot(slot));
    if (message == nullptr) return Status::InvalidArgument("shm bus: null message");
    Mailbox* mb = mailbox(slot);
    const char* r = ring(slot);
    const uint64_t tail = mb->tail.load(std::memory_order_relaxed);  // only we write it
    const uint64_t head = mb->head.load(std::memory_order_acquire);
    if (head == tail) return false;
    uint32_t header[2] = {0, 0};
    if (head - tail >= kFrameHeaderBytes) RingRead(r, ring_bytes, tail, header, sizeof(header));
    const uint64_t frame_bytes = kFrameHeaderBytes + RoundUp(header[1], 8);
    if (head - tail < kFrameHeaderBytes || frame_bytes > head - tail ||
        (header[0] != kFrameInline && header[0] != kFrameSideSegment)) {
      // Cannot find the next frame boundary: drop what is queued so the mailbox recovers.
      PublishTail(mb, head);
      return Status::Internal("shm bus " + name + ": corrupt frame in slot " +
                              std::to_string(slot) + "; dropped " + std::to_string(head - tail) +
                              " queued bytes");
    }
    if (header[0] == kFrameInline) {
      message->resize(header[1]);
      RingRead(r, ring_bytes, tail + kFrameHeaderBytes, &(*message)[0], header[1]);
      PublishTail(mb, tail + frame_bytes);
      return true;
    }
    // Side segment: free the ring first, the copy can be long.
    std::string ref(header[1], '\0');
    RingRead(r, ring_bytes, tail + kFrameHeaderBytes, &ref[0], header[1]);
    PublishTail(mb, tail + frame_bytes);
    if (ref.size() <= 8) {
      return Status::Internal("shm bus " + name + ": malformed side segment reference");
    }
    uint64_t size;
    std::memcpy(&size, ref.data(), sizeof(size));
    RAYMPI_RETURN_IF_ERROR(ReadSideSegment(ref.substr(8), size, message));
    return true;
  }
};

ShmBus::ShmBus(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ShmBus::~ShmBus() = default;

int ShmBus::num_slots() const { return impl_->num_slots; }

void ShmBus::MarkJobEnd(JobEnd end) {
  auto* header = reinterpret_cast<SegmentHeader*>(impl_->base);
  uint32_t current = header->job_end.load(std::memory_order_acquire);
  // Abandoned is final; a normal end does not undo it.
  while (static_cast<uint32_t>(end) > current &&
         !header->job_end.compare_exchange_weak(current, static_cast<uint32_t>(end),
                                                std::memory_order_acq_rel)) {
  }
}

ShmBus::JobEnd ShmBus::job_end() const {
  return static_cast<JobEnd>(
      reinterpret_cast<const SegmentHeader*>(impl_->base)->job_end.load(std::memory_order_acquire));
}

StatusOr<std::unique_ptr<ShmBus>> ShmBus::Create(const Options& options) {
  const std::string& name = options.name;
  RAYMPI_RETURN_IF_ERROR(ShmSegment::ValidateName(name, "shm bus"));
  if (options.num_slots < 1 || options.num_slots > kMaxSlots) {
    return Status::InvalidArgument("shm bus " + name + ": num_slots " +
                                   std::to_string(options.num_slots) + " not in [1, " +
                                   std::to_string(kMaxSlots) + "]");
  }
  const uint64_t ring_bytes = RoundUp(options.ring_bytes, 8);
  const uint64_t min_ring = std::max(kFrameHeaderBytes + RoundUp(options.large_message_bytes, 8),
                                     kFrameHeaderBytes + RoundUp(kMaxSideRefBytes, 8));
  if (options.large_message_bytes >= kMaxRingBytes || ring_bytes < min_ring ||
      ring_bytes > kMaxRingBytes) {
    return Status::InvalidArgument(
        "shm bus " + name + ": ring_bytes " + std::to_string(options.ring_bytes) +
        " must hold one frame of large_message_bytes (" +
        std::to_string(options.large_message_bytes) + "), i.e. be in [" + std::to_string(min_ring) +
        ", " + std::to_string(kMaxRingBytes) + "]");
  }
  const Layout layout = ComputeLayout(static_cast<uint32_t>(options.num_slots), ring_bytes);

  // Reserving the pages up front: a too-small /dev/shm (e.g. Docker's 64 MiB default) fails
  // here with a clear error rather than SIGBUS in some later Send.
  StatusOr<ShmSegment> segment = ShmSegment::Create(
      name, layout.total, "shm bus", "lower num_slots or ring_bytes, or enlarge /dev/shm");
  if (!segment.ok()) return segment.status();
  void* base = segment->data();

  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->segment = std::move(*segment);
  impl->base = static_cast<char*>(base);
  impl->num_slots = options.num_slots;
  impl->ring_bytes = ring_bytes;
  impl->large_message_bytes = options.large_message_bytes;
  impl->layout = layout;

  auto* header = new (base) SegmentHeader();
  header->version = kVersion;
  header->num_slots = static_cast<uint32_t>(options.num_slots);
  header->ring_bytes = ring_bytes;
  header->large_message_bytes = options.large_message_bytes;
  header->mailbox_stride = layout.stride;
  header->total_bytes = layout.total;
  for (int slot = 0; slot < options.num_slots; ++slot) {
    Mailbox* mb = new (impl->mailbox(slot)) Mailbox();
    RAYMPI_RETURN_IF_ERROR(InitMutex(&mb->producer_lock));  // impl's destructor cleans up
  }
  header->magic.store(kMagic, std::memory_order_release);
  return std::unique_ptr<ShmBus>(new ShmBus(std::move(impl)));
}

StatusOr<std::unique_ptr<ShmBus>> ShmBus::Attach(const std::string& name) {
  StatusOr<ShmSegment> segment =
      ShmSegment::Attach(name, sizeof(SegmentHeader), "shm bus", "raympi bus");
  if (!segment.ok()) return segment.status();
  const uint64_t size = segment->size();
  void* base = segment->data();

  auto impl = std::make_unique<Impl>();  // unmaps on every error path below
  impl->name = name;
  impl->segment = std::move(*segment);
  impl->base = static_cast<char*>(base);
  const auto* header = static_cast<const SegmentHeader*>(base);
  const uint64_t magic = header->magic.load(std::memory_order_acquire);
  if (magic != kMagic) {
    return Status::InvalidArgument("shm segment " + name +
                                   " is not a raympi bus (bad magic), or its creator has not " +
                                   "finished initialising it");
  }
  if (header->version != kVersion) {
    return Status::InvalidArgument(
        "shm bus " + name + " has layout version " + std::to_string(header->version) +
        ", this build expects " + std::to_string(kVersion) + " (mixed raympi builds on one node?)");
  }
  const Layout layout = ComputeLayout(header->num_slots, header->ring_bytes);
  if (header->num_slots < 1 || header->num_slots > static_cast<uint32_t>(kMaxSlots) ||
      header->ring_bytes == 0 || header->ring_bytes > kMaxRingBytes ||
      header->ring_bytes % 8 != 0 || header->large_message_bytes >= kMaxRingBytes ||
      kFrameHeaderBytes + RoundUp(header->large_message_bytes, 8) > header->ring_bytes ||
      header->mailbox_stride != layout.stride || header->total_bytes != layout.total) {
    return Status::InvalidArgument("shm bus " + name +
                                   " has an inconsistent header (mixed raympi builds?)");
  }
  if (size < layout.total) {
    return Status::InvalidArgument("shm segment " + name +
                                   " is too small: " + std::to_string(size) +
                                   " bytes, its header needs " + std::to_string(layout.total));
  }
  impl->num_slots = static_cast<int>(header->num_slots);
  impl->ring_bytes = header->ring_bytes;
  impl->large_message_bytes = header->large_message_bytes;
  impl->layout = layout;
  return std::unique_ptr<ShmBus>(new ShmBus(std::move(impl)));
}

Status ShmBus::Send(int slot, std::string_view message) {
  RAYMPI_RETURN_IF_ERROR(impl_->CheckSlot(slot));
  if (message.size() > impl_->large_message_bytes) {
    return impl_->SendViaSideSegment(slot, message);
  }
  return impl_->SendFrame(slot, kFrameInline, message);
}

StatusOr<bool> ShmBus::TryReceive(int slot, std::string* message) {
  return impl_->TryReceive(slot, message);
}

bool ShmBus::AwaitActivity(int slot, std::chrono::nanoseconds budget) {
  if (!impl_->CheckSlot(slot).ok()) return false;
  const Mailbox* mb = impl_->mailbox(slot);
  const auto end = std::chrono::steady_clock::now() + budget;
  for (;;) {
    // The clock is read once per 64 checks: a pause is a few nanoseconds, a clock read ~25.
    for (int i = 0; i < 64; ++i) {
      if (HasActivity(mb)) return true;
      CpuRelax();
    }
    if (std::chrono::steady_clock::now() >= end) return HasActivity(mb);
  }
}

StatusOr<bool> ShmBus::Receive(int slot, std::string* message, std::chrono::microseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::max(timeout, std::chrono::microseconds(0));
  bool spun = false;
  for (;;) {
    StatusOr<bool> got = impl_->TryReceive(slot, message);
    if (!got.ok() || *got) return got;
    Mailbox* mb = impl_->mailbox(slot);
    // Wake is sticky: one that lands before we sleep still makes this call return.
    if (mb->wake_pending.exchange(0, std::memory_order_acq_rel) != 0) return false;
    const auto now = Clock::now();
    if (now >= deadline) return false;
    const uint64_t tail = mb->tail.load(std::memory_order_relaxed);
    if (!spun) {
      // A reply often arrives within microseconds; spinning avoids the futex round trip.
      spun = true;
      for (int i = 0; i < kSpinIterations; ++i) {
        CpuRelax();
        if (HasActivity(mb)) break;
      }
      continue;
    }
    // Announce, then re-check: producers bump seq before reading the flag, so either we see
    // their frame or they see us asleep (seq_cst on both sides), and FUTEX_WAIT fails if seq
    // moved since we read it.
    mb->consumer_sleeping.store(1, std::memory_order_seq_cst);
    const uint32_t seen = mb->seq.load(std::memory_order_seq_cst);
    if (mb->head.load(std::memory_order_seq_cst) == tail &&
        mb->wake_pending.load(std::memory_order_seq_cst) == 0) {
      long rc = FutexWait(&mb->seq, seen, deadline - now);
      if (rc != 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
        int err = errno;
        mb->consumer_sleeping.store(0, std::memory_order_relaxed);
        return Status::Internal("shm bus: futex wait: " + ErrnoText(err));
      }
    }
    mb->consumer_sleeping.store(0, std::memory_order_relaxed);
  }
}

void ShmBus::Wake(int slot) {
  // No Status to return: an out-of-range slot has no receiver to wake.
  if (!impl_->CheckSlot(slot).ok()) return;
  Mailbox* mb = impl_->mailbox(slot);
  mb->wake_pending.store(1, std::memory_order_seq_cst);
  Impl::NotifyConsumer(mb);
}

void RemoveShmWithPrefix(const std::string& prefix) {
  std::string p = prefix;
  while (!p.empty() && p[0] == '/') p.erase(0, 1);
  if (p.empty()) return;  // an empty prefix would wipe every segment of every user
  RemoveShmMatching(p, [](const std::string&) { return true; });
}

}  // namespace raympi
