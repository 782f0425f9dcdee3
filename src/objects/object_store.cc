#include "objects/object_store.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>
#include <random>
#include <system_error>
#include <thread>
#include <utility>

#include "common/logging.h"
#include "common/shm_segment.h"

namespace raympi {
namespace {

constexpr uint64_t kMagic = 0x314a424f49504d52ULL;  // "RMPIOBJ1" in memory order
// 2: spill counters; 3: page-aligned table, runs per page; 4: entry serials (one-sided pulls)
constexpr uint32_t kVersion = 5;

constexpr uint64_t kAlign = ObjectStore::kAlignment;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kMaxCapacity = 1ULL << 46;  // 64 TiB: far beyond any node, keeps sums exact
constexpr uint32_t kMaxObjects = 1u << 24;
constexpr uint32_t kNil = UINT32_MAX;
constexpr int kNumBins = 64;  // size classes: bin k holds free blocks of [2^k, 2^(k+1)) bytes

// Entry states. kEmpty must be 0: a zeroed table is an empty one.
constexpr uint32_t kEmpty = 0;
constexpr uint32_t kCreated = 1;
constexpr uint32_t kSealed = 2;

// Block states. kSpare: an unused descriptor on the spare stack.
constexpr uint32_t kSpare = 0;
constexpr uint32_t kFree = 1;
constexpr uint32_t kUsed = 2;

std::atomic<int> g_crash_point{0};

void MaybeCrash(ObjectStore::CrashPoint point) {
  if (g_crash_point.load(std::memory_order_relaxed) == static_cast<int>(point)) {
    _exit(ObjectStore::kCrashExitCode);
  }
}

struct Key {
  uint8_t bytes[ObjectId::kSize];
};

// Same byte order as ObjectId::Binary, without its allocation.
Key ToKey(const ObjectId& id) {
  Key k;
  std::memcpy(k.bytes, &id.owner_node, 4);
  std::memcpy(k.bytes + 4, &id.owner_slot, 4);
  std::memcpy(k.bytes + 8, &id.owner_pid, 4);
  std::memcpy(k.bytes + 12, &id.index, 4);
  return k;
}

ObjectId FromKey(const Key& k) {
  ObjectId id;
  std::memcpy(&id.owner_node, k.bytes, 4);
  std::memcpy(&id.owner_slot, k.bytes + 4, 4);
  std::memcpy(&id.owner_pid, k.bytes + 8, 4);
  std::memcpy(&id.index, k.bytes + 12, 4);
  return id;
}

bool SameKey(const Key& a, const Key& b) {
  return std::memcmp(a.bytes, b.bytes, sizeof(a.bytes)) == 0;
}

// The home slot of an id. An owner numbers its objects in order, so ids of one owner that
// differ only in the counter's last 6 bits get consecutive slots of one 4 KiB page of the table
// (64 entries of 64 bytes; the table starts on a page); everything else is mixed into which
// page. Why: a process's first touch of a table page it has not used lately cost 10-60 us on
// the paravirtualised test VM (docs/performance.md, "Session 8"), in every Create and Get of a
// new object when every id had a random page; now objects made one after another share one.
uint64_t Hash(const Key& k) {
  constexpr uint32_t kSlotsPerPage = kPage / 64;
  uint64_t a;
  uint32_t pid, index;
  std::memcpy(&a, k.bytes, 8);
  std::memcpy(&pid, k.bytes + 8, 4);
  std::memcpy(&index, k.bytes + 12, 4);
  const uint64_t b = pid | (uint64_t{index / kSlotsPerPage} << 32);
  uint64_t x = a ^ (b * 0x9e3779b97f4a7c15ULL);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x * kSlotsPerPage + index % kSlotsPerPage;
}

// One slot of the object table (open addressing, linear probing). One cache line: the table
// starts 64-byte aligned. (No alignas: over-aligned types make GCC print ABI notes.)
struct Entry {
  Key key;
  uint64_t offset;       // in the arena
  uint64_t size;         // as asked; the block is RoundUp(size, 64) bytes
  uint64_t last_access;  // header clock at the last Seal/Get/Release: the LRU order
  uint32_t block;        // allocator descriptor, kNil for a zero-size object
  uint32_t pin_count;
  int32_t creator_pid;
  uint32_t delete_pending;
  uint32_t state;  // written last (PublishState): a slot that is not kEmpty is complete
  // This creation's number in the store (never 0): another node that read the object
  // one-sided checks it in the entry (ObjectStore::EntryHolds).
  uint32_t serial;
};
static_assert(sizeof(Entry) == ObjectStore::kEntryBytes, "one cache line per entry");

// An allocator descriptor. Kept outside the arena so object bytes are nothing but data (an MPI
// window, no header to corrupt) and a free never touches arena pages.
struct Block {
  uint64_t offset;
  uint64_t size;
  uint32_t prev, next;          // neighbours by address, kNil at the ends
  uint32_t bin_prev, bin_next;  // free: its size-class list; spare: bin_next links the stack
  uint32_t state;
  uint32_t pad;
};
static_assert(sizeof(Block) == 40, "compact descriptors");

// Lives at offset 0 of the segment.
struct SegmentHeader {
  std::atomic<uint64_t> magic{0};  // stored last by Create: Attach never sees a half-built store
  uint32_t version = 0;
  uint32_t max_objects = 0;
  uint64_t capacity = 0;
  uint64_t table_slots = 0;
  uint64_t num_blocks = 0;
  uint64_t table_offset = 0;
  uint64_t blocks_offset = 0;
  uint64_t arena_offset = 0;
  uint64_t total_bytes = 0;

  alignas(64) pthread_mutex_t lock;  // process-shared, robust

  // Guarded by lock. All of it derives from the table, which is how Recover rebuilds it.
  uint64_t num_objects = 0;
  uint64_t bytes_in_use = 0;
  uint64_t access_clock = 0;
  uint32_t last_serial = 0;  // the latest Entry::serial handed out
  uint64_t bin_bitmap = 0;   // bit k: bin k is not empty
  uint32_t spare_head = kNil;
  uint32_t bin_heads[kNumBins];

  // Written by the raylet's spill manager only, read by anyone: statistics, not state, so
  // relaxed atomics outside the lock are enough.
  std::atomic<uint64_t> spill[6] = {};
  // Objects this node's processes copied in from other nodes' stores themselves (any writer).
  std::atomic<uint64_t> reader_copies{0};
};

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

uint64_t NextPow2(uint64_t n) {
  uint64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

int BinOf(uint64_t size) { return 63 - __builtin_clzll(size); }

struct Layout {
  uint64_t table_slots;
  uint64_t num_blocks;
  uint64_t table_offset;
  uint64_t blocks_offset;
  uint64_t arena_offset;
  uint64_t total;
};

// Table at <= 50% load keeps probes short and always ends at an empty slot. Blocks: each
// object holds at most one, and coalescing leaves at most one free block between two used
// ones, so 2 * max_objects + 1 descriptors always suffice.
Layout ComputeLayout(uint64_t capacity, uint32_t max_objects) {
  Layout l;
  l.table_slots = NextPow2(2ULL * max_objects);
  l.num_blocks = 2ULL * max_objects + 1;
  l.table_offset = RoundUp(sizeof(SegmentHeader), kPage);  // a page of slots per owner run
  l.blocks_offset = l.table_offset + l.table_slots * sizeof(Entry);
  l.arena_offset = RoundUp(l.blocks_offset + l.num_blocks * sizeof(Block), kPage);
  l.total = RoundUp(l.arena_offset + capacity, kPage);
  return l;
}

Status InitMutex(pthread_mutex_t* mutex) {
  int rc = InitRobustMutex(mutex);
  if (rc != 0) return Status::Internal("object store: pthread_mutex_init: " + ErrnoText(rc));
  return Status::Ok();
}

// bytes_in_use is written under the lock and read without it (ObjectStore::bytes_in_use).
void StoreInUse(SegmentHeader* h, uint64_t bytes) {
  __atomic_store_n(&h->bytes_in_use, bytes, __ATOMIC_RELAXED);
}

// The release store orders the entry's other fields before it, for the compiler too: a
// process killed mid-write leaves a slot that is either empty or complete.
void PublishState(Entry* e, uint32_t state) {
  __atomic_store_n(&e->state, state, __ATOMIC_RELEASE);
}

// Maps this process's page tables for the header, the table and the block descriptors (not
// the arena) at once: every Get, Seal and Release touches a table slot, and the first touch of
// a slot's page was a page fault in the middle of a Get (with the rest of that first access,
// 50-90 us of CPU on the test VM; docs/performance.md, cross-node Get). About 14 MiB with the
// default table, mapped once per process.
void PopulateMetadata(char* base, uint64_t bytes) {
#ifdef MADV_POPULATE_WRITE
  if (madvise(base, bytes, MADV_POPULATE_WRITE) == 0) return;
#endif
  // Kernels before 5.14: touch a byte per page (a read maps shmem pages writable).
  for (uint64_t off = 0; off < bytes; off += kPage) {
    (void)*reinterpret_cast<volatile const char*>(base + off);
  }
}

// Writes one byte per page of a fresh segment, so each page is allocated, zeroed and mapped
// writable in this process before any object lands there. MAP_POPULATE alone is not enough:
// measured on a 512 MiB store (our 2-core test VM), a first copy into populated-but-untouched
// pages ran at ~2 GB/s, into touched ones at 6-15 GB/s, into warm ones at 12-16 GB/s. Large
// segments are touched by several threads (page faults scale with threads); a thread that cannot
// start leaves its share to the caller.
void TouchEveryPage(char* base, uint64_t bytes) {
  const uint64_t pages = bytes / kPage;
  constexpr uint64_t kPagesPerThread = (256ULL << 20) / kPage;
  const uint64_t hw = std::max(1u, std::thread::hardware_concurrency());
  const uint64_t num_threads = std::min<uint64_t>({hw, 16, 1 + pages / kPagesPerThread});
  auto touch = [base, pages, num_threads](uint64_t part) {
    volatile char* p = base;
    const uint64_t first = pages * part / num_threads, last = pages * (part + 1) / num_threads;
    for (uint64_t i = first; i < last; ++i) p[i * kPage] = 0;
  };
  std::vector<std::thread> threads;
  for (uint64_t part = 1; part < num_threads; ++part) {
    try {
      threads.emplace_back(touch, part);
    } catch (const std::system_error&) {
      touch(part);
    }
  }
  touch(0);
  for (std::thread& t : threads) t.join();
}

std::string FormatBytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof(buf), "%" PRIu64 " B", n);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  }
  return buf;
}

}  // namespace

struct ObjectStore::Impl {
  std::string name;
  ShmSegment segment;    // unmaps, and unlinks if created here, on destruction
  char* base = nullptr;  // segment.data()
  // Copied from the header once validated, so later corruption cannot send us out of bounds.
  uint64_t capacity = 0;
  uint32_t max_objects = 0;
  Layout layout{};

  SegmentHeader* header() const { return reinterpret_cast<SegmentHeader*>(base); }
  Entry* table() const { return reinterpret_cast<Entry*>(base + layout.table_offset); }
  Block* blocks() const { return reinterpret_cast<Block*>(base + layout.blocks_offset); }
  uint8_t* arena() const { return reinterpret_cast<uint8_t*>(base + layout.arena_offset); }
  uint64_t mask() const { return layout.table_slots - 1; }

  std::string Prefix(const ObjectId& id) const {
    return "object store " + name + ": object " + id.Hex();
  }

  // --- Locking -------------------------------------------------------------------------

  // Takes the store lock. If its holder died, the table and allocator may be mid-update:
  // rebuild the derived state from the table before anyone uses it.
  Status Lock(bool try_lock = false) {
    bool owner_died = false;
    int rc = try_lock ? TryLockRobust(&header()->lock, &owner_died)
                      : LockRobust(&header()->lock, &owner_died);
    if (rc == EBUSY && try_lock) return Status::Unavailable("object store " + name + " is busy");
    if (rc != 0) return Status::Internal("object store " + name + ": lock: " + ErrnoText(rc));
    if (owner_died) Recover();
    return Status::Ok();
  }

  class Guard {
   public:
    explicit Guard(Impl* impl) : impl_(impl) {}
    ~Guard() { pthread_mutex_unlock(&impl_->header()->lock); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    Impl* impl_;
  };

  // --- Allocator (caller holds the lock) -------------------------------------------------

  uint32_t PopSpare() {
    SegmentHeader* h = header();
    uint32_t i = h->spare_head;
    if (i != kNil) h->spare_head = blocks()[i].bin_next;
    return i;
  }

  void PushSpare(uint32_t i) {
    Block* b = blocks();
    b[i].state = kSpare;
    b[i].bin_next = header()->spare_head;
    header()->spare_head = i;
  }

  void BinInsert(uint32_t i) {
    SegmentHeader* h = header();
    Block* b = blocks();
    const int bin = BinOf(b[i].size);
    b[i].state = kFree;
    b[i].bin_prev = kNil;
    b[i].bin_next = h->bin_heads[bin];
    if (b[i].bin_next != kNil) b[b[i].bin_next].bin_prev = i;
    h->bin_heads[bin] = i;
    h->bin_bitmap |= 1ULL << bin;
  }

  void BinRemove(uint32_t i) {
    SegmentHeader* h = header();
    Block* b = blocks();
    const int bin = BinOf(b[i].size);
    if (b[i].bin_prev != kNil) {
      b[b[i].bin_prev].bin_next = b[i].bin_next;
    } else {
      h->bin_heads[bin] = b[i].bin_next;
      if (b[i].bin_next == kNil) h->bin_bitmap &= ~(1ULL << bin);
    }
    if (b[i].bin_next != kNil) b[b[i].bin_next].bin_prev = b[i].bin_prev;
  }

  // Good fit over size classes: first fit within n's own class, else the head of the smallest
  // larger class (every block there fits). Returns the block, or kNil if nothing fits.
  uint32_t Allocate(uint64_t n) {
    SegmentHeader* h = header();
    Block* b = blocks();
    const int bin = BinOf(n);
    uint32_t found = kNil;
    for (uint32_t i = h->bin_heads[bin]; i != kNil; i = b[i].bin_next) {
      if (b[i].size >= n) {
        found = i;
        break;
      }
    }
    if (found == kNil) {
      const uint64_t larger = bin >= kNumBins - 1 ? 0 : h->bin_bitmap & (~0ULL << (bin + 1));
      if (larger == 0) return kNil;
      found = h->bin_heads[__builtin_ctzll(larger)];
    }
    BinRemove(found);
    if (b[found].size > n) {
      const uint32_t rest = PopSpare();
      if (rest == kNil) {  // cannot happen (see ComputeLayout); stay consistent regardless
        BinInsert(found);
        return kNil;
      }
      b[rest].offset = b[found].offset + n;
      b[rest].size = b[found].size - n;
      b[rest].prev = found;
      b[rest].next = b[found].next;
      if (b[rest].next != kNil) b[b[rest].next].prev = rest;
      b[found].next = rest;
      b[found].size = n;
      BinInsert(rest);
    }
    b[found].state = kUsed;
    return found;
  }

  // Frees a block and merges it with free neighbours, so free space never stays split.
  void FreeBlock(uint32_t i) {
    Block* b = blocks();
    const uint32_t next = b[i].next;
    if (next != kNil && b[next].state == kFree) {
      BinRemove(next);
      b[i].size += b[next].size;
      b[i].next = b[next].next;
      if (b[i].next != kNil) b[b[i].next].prev = i;
      PushSpare(next);
    }
    const uint32_t prev = b[i].prev;
    if (prev != kNil && b[prev].state == kFree) {
      BinRemove(prev);
      b[prev].size += b[i].size;
      b[prev].next = b[i].next;
      if (b[prev].next != kNil) b[b[prev].next].prev = prev;
      PushSpare(i);
      i = prev;
    }
    BinInsert(i);
  }

  uint64_t LargestFreeBlock() const {
    const SegmentHeader* h = header();
    if (h->bin_bitmap == 0) return 0;
    const Block* b = blocks();
    uint64_t largest = 0;
    for (uint32_t i = h->bin_heads[BinOf(h->bin_bitmap)]; i != kNil; i = b[i].bin_next) {
      largest = std::max(largest, b[i].size);
    }
    return largest;
  }

  // --- Table (caller holds the lock) ----------------------------------------------------

  // The slot holding `key`, or -1.
  int64_t Find(const Key& key) const {
    const Entry* t = table();
    uint64_t i = Hash(key) & mask();
    for (uint64_t probes = 0; probes < layout.table_slots; ++probes, i = (i + 1) & mask()) {
      if (t[i].state == kEmpty) return -1;
      if (SameKey(t[i].key, key)) return static_cast<int64_t>(i);
    }
    return -1;
  }

  // The table is at most half full, so an empty slot is always found. Returns the slot.
  uint64_t Insert(const Entry& e) {
    Entry* t = table();
    uint64_t i = Hash(e.key) & mask();
    while (t[i].state != kEmpty) i = (i + 1) & mask();
    Entry copy = e;
    copy.state = kEmpty;
    t[i] = copy;
    PublishState(&t[i], e.state);
    return i;
  }

  // Backward-shift deletion: no tombstones, so probe lengths do not grow with churn. Each
  // entry is copied before its old slot is cleared: a crash here duplicates, never loses.
  void RemoveAt(uint64_t hole) {
    Entry* t = table();
    PublishState(&t[hole], kEmpty);
    for (uint64_t j = (hole + 1) & mask(); t[j].state != kEmpty; j = (j + 1) & mask()) {
      const uint64_t home = Hash(t[j].key) & mask();
      // t[j] may move back to the hole unless its home lies cyclically in (hole, j].
      const bool home_in_range =
          hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (home_in_range) continue;
      Entry copy = t[j];
      copy.state = kEmpty;
      t[hole] = copy;
      PublishState(&t[hole], t[j].state);
      PublishState(&t[j], kEmpty);
      hole = j;
    }
  }

  // Frees the object in slot i and its block.
  void FreeSlot(uint64_t i) {
    Entry* t = table();
    SegmentHeader* h = header();
    if (t[i].block != kNil) {
      FreeBlock(t[i].block);
      StoreInUse(h, h->bytes_in_use - RoundUp(t[i].size, kAlign));
    }
    MaybeCrash(CrashPoint::kDeleteAfterFree);
    RemoveAt(i);
    h->num_objects -= 1;
  }

  // --- Recovery ---------------------------------------------------------------------------

  // Rebuilds the table, the allocator and the counters from `live` (valid, unique,
  // non-overlapping entries). Also how Create initialises an empty store.
  void Rebuild(std::vector<Entry> live) {
    SegmentHeader* h = header();
    Block* b = blocks();
    std::memset(static_cast<void*>(table()), 0, layout.table_slots * sizeof(Entry));
    h->spare_head = kNil;
    for (uint64_t i = layout.num_blocks; i-- > 0;) PushSpare(static_cast<uint32_t>(i));
    h->bin_bitmap = 0;
    std::fill(std::begin(h->bin_heads), std::end(h->bin_heads), kNil);

    std::sort(live.begin(), live.end(),
              [](const Entry& x, const Entry& y) { return x.offset < y.offset; });
    uint32_t last = kNil;
    auto append = [&](uint64_t offset, uint64_t size, bool used) {
      const uint32_t i = PopSpare();
      b[i].offset = offset;
      b[i].size = size;
      b[i].prev = last;
      b[i].next = kNil;
      if (last != kNil) b[last].next = i;
      last = i;
      if (used) {
        b[i].state = kUsed;
      } else {
        BinInsert(i);
      }
      return i;
    };
    uint64_t cursor = 0, in_use = 0, clock = h->access_clock;
    for (Entry& e : live) {
      clock = std::max(clock, e.last_access);
      if (e.size == 0) {
        e.block = kNil;
        e.offset = 0;
        continue;
      }
      const uint64_t bytes = RoundUp(e.size, kAlign);
      if (e.offset > cursor) append(cursor, e.offset - cursor, false);
      e.block = append(e.offset, bytes, true);
      cursor = e.offset + bytes;
      in_use += bytes;
    }
    if (cursor < capacity) append(cursor, capacity - cursor, false);
    for (const Entry& e : live) Insert(e);
    h->num_objects = live.size();
    StoreInUse(h, in_use);
    h->access_clock = clock;
  }

  // A process died holding the lock, maybe mid-update. The table is the source of truth (its
  // slots are empty or complete, at worst one entry is duplicated); everything else is
  // derived from it again. Pins the dead process held stay (we cannot tell them apart).
  void Recover() {
    const Entry* t = table();
    std::vector<Entry> all;
    for (uint64_t i = 0; i < layout.table_slots; ++i) {
      if (t[i].state == kCreated || t[i].state == kSealed) all.push_back(t[i]);
    }
    const size_t seen = all.size();
    std::sort(all.begin(), all.end(), [](const Entry& x, const Entry& y) {
      return std::memcmp(x.key.bytes, y.key.bytes, sizeof(x.key.bytes)) < 0;
    });
    all.erase(std::unique(all.begin(), all.end(),
                          [](const Entry& x, const Entry& y) { return SameKey(x.key, y.key); }),
              all.end());
    std::vector<Entry> live;
    for (const Entry& e : all) {
      // Its last Release died before freeing it; nobody else would.
      if (e.delete_pending && e.pin_count == 0) continue;
      if (e.size > capacity) continue;
      if (e.size > 0 && (e.offset % kAlign != 0 || e.offset > capacity - RoundUp(e.size, kAlign))) {
        continue;
      }
      live.push_back(e);
    }
    std::sort(live.begin(), live.end(),
              [](const Entry& x, const Entry& y) { return x.offset < y.offset; });
    std::vector<Entry> kept;
    uint64_t end = 0;
    for (const Entry& e : live) {
      if (e.size > 0 && e.offset < end) continue;  // overlaps: cannot both be right
      if (e.size > 0) end = e.offset + RoundUp(e.size, kAlign);
      kept.push_back(e);
    }
    Rebuild(kept);
    RAYMPI_LOG_WARN(
        "object store {}: a process died holding its lock; rebuilt the allocator from the "
        "table ({} objects kept, {} dropped as duplicate, invalid or freed, {} in use)",
        name, kept.size(), seen - kept.size(), FormatBytes(header()->bytes_in_use));
  }

  StatusOr<uint64_t> FindOr(const ObjectId& id, const Key& key) const {
    const int64_t i = Find(key);
    if (i < 0) return Status::NotFound(Prefix(id) + " is not in the store");
    return static_cast<uint64_t>(i);
  }
};

// --- ObjectView ---------------------------------------------------------------------------

ObjectView::ObjectView(ObjectView&& other) noexcept
    : store_(std::exchange(other.store_, nullptr)),
      id_(other.id_),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      offset_(std::exchange(other.offset_, 0)) {}

ObjectView& ObjectView::operator=(ObjectView&& other) noexcept {
  if (this != &other) {
    Reset();
    store_ = std::exchange(other.store_, nullptr);
    id_ = other.id_;
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    offset_ = std::exchange(other.offset_, 0);
  }
  return *this;
}

void ObjectView::Reset() {
  if (store_ == nullptr) return;
  // Cannot fail for a pin we hold, short of a broken lock; nothing useful to do then.
  (void)store_->Release(id_);
  store_ = nullptr;
  data_ = nullptr;
  size_ = 0;
  offset_ = 0;
}

// --- ObjectStore --------------------------------------------------------------------------

ObjectStore::ObjectStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ObjectStore::~ObjectStore() = default;

const std::string& ObjectStore::name() const { return impl_->name; }
size_t ObjectStore::capacity() const { return impl_->capacity; }
uint32_t ObjectStore::max_objects() const { return impl_->max_objects; }
uint8_t* ObjectStore::arena() const { return impl_->arena(); }

const uint8_t* ObjectStore::table() const {
  return reinterpret_cast<const uint8_t*>(impl_->table());
}

uint64_t ObjectStore::table_bytes() const { return impl_->layout.table_slots * sizeof(Entry); }

bool ObjectStore::EntryHolds(const void* entry, const ObjectId& id, uint64_t offset, uint64_t size,
                             uint32_t serial) {
  Entry e;
  std::memcpy(static_cast<void*>(&e), entry, sizeof(e));
  return e.state == kSealed && e.serial == serial && serial != 0 && SameKey(e.key, ToKey(id)) &&
         e.offset == offset && e.size == size;
}
uint64_t ObjectStore::arena_offset_in_segment() const { return impl_->layout.arena_offset; }

void ObjectStore::SetCrashPointForTesting(CrashPoint point) {
  g_crash_point.store(static_cast<int>(point), std::memory_order_relaxed);
}

StatusOr<std::unique_ptr<ObjectStore>> ObjectStore::Create(const std::string& name,
                                                           size_t capacity_bytes,
                                                           uint32_t max_objects, bool prefault) {
  RAYMPI_RETURN_IF_ERROR(ShmSegment::ValidateName(name, "object store"));
  if (capacity_bytes < kAlign || capacity_bytes > kMaxCapacity) {
    return Status::InvalidArgument(
        "object store " + name + ": capacity " + std::to_string(capacity_bytes) +
        " bytes not in [" + std::to_string(kAlign) + ", " + std::to_string(kMaxCapacity) + "]");
  }
  if (max_objects < 1 || max_objects > kMaxObjects) {
    return Status::InvalidArgument("object store " + name + ": max_objects " +
                                   std::to_string(max_objects) + " not in [1, " +
                                   std::to_string(kMaxObjects) + "]");
  }
  const uint64_t capacity = RoundUp(capacity_bytes, kAlign);
  const Layout layout = ComputeLayout(capacity, max_objects);

  // Pre-fault: a first MPI_Get into fresh pages runs several times slower than into warm
  // ones. MAP_POPULATE maps every page in one call, the touch makes them writable and dirty.
  StatusOr<ShmSegment> segment =
      ShmSegment::Create(name, layout.total, "object store",
                         "lower the capacity, or enlarge /dev/shm", /*populate=*/prefault,
                         /*reserve=*/prefault);
  if (!segment.ok()) return segment.status();
  void* base = segment->data();
  if (prefault) TouchEveryPage(static_cast<char*>(base), layout.total);

  auto impl = std::make_unique<Impl>();  // unmaps and unlinks on every error path below
  impl->name = name;
  impl->segment = std::move(*segment);
  impl->base = static_cast<char*>(base);
  impl->capacity = capacity;
  impl->max_objects = max_objects;
  impl->layout = layout;

  auto* header = new (base) SegmentHeader();
  header->version = kVersion;
  header->max_objects = max_objects;
  header->capacity = capacity;
  header->table_slots = layout.table_slots;
  header->num_blocks = layout.num_blocks;
  header->table_offset = layout.table_offset;
  header->blocks_offset = layout.blocks_offset;
  header->arena_offset = layout.arena_offset;
  header->total_bytes = layout.total;
  RAYMPI_RETURN_IF_ERROR(InitMutex(&header->lock));
  // Serials start at a random number per store, so the same serial in two stores is unlikely
  // too (a one-sided check reads the store its hints came from; this is a second fence).
  header->last_serial = std::random_device{}();
  impl->Rebuild({});
  header->magic.store(kMagic, std::memory_order_release);
  return std::unique_ptr<ObjectStore>(new ObjectStore(std::move(impl)));
}

StatusOr<std::unique_ptr<ObjectStore>> ObjectStore::Attach(const std::string& name, bool populate) {
  StatusOr<ShmSegment> segment = ShmSegment::Attach(name, sizeof(SegmentHeader), "object store",
                                                    "raympi object store", populate);
  if (!segment.ok()) return segment.status();
  const uint64_t size = segment->size();

  auto impl = std::make_unique<Impl>();  // unmaps on every error path below
  impl->name = name;
  impl->segment = std::move(*segment);
  impl->base = impl->segment.data();
  const SegmentHeader* header = impl->header();
  if (header->magic.load(std::memory_order_acquire) != kMagic) {
    return Status::InvalidArgument("shm segment " + name +
                                   " is not a raympi object store (bad magic), or its creator " +
                                   "has not finished initialising it");
  }
  if (header->version != kVersion) {
    return Status::InvalidArgument(
        "object store " + name + " has layout version " + std::to_string(header->version) +
        ", this build expects " + std::to_string(kVersion) + " (mixed raympi builds on one node?)");
  }
  if (header->capacity < kAlign || header->capacity > kMaxCapacity ||
      header->capacity % kAlign != 0 || header->max_objects < 1 ||
      header->max_objects > kMaxObjects) {
    return Status::InvalidArgument("object store " + name +
                                   " has an inconsistent header (mixed raympi builds?)");
  }
  const Layout layout = ComputeLayout(header->capacity, header->max_objects);
  if (header->table_slots != layout.table_slots || header->num_blocks != layout.num_blocks ||
      header->table_offset != layout.table_offset ||
      header->blocks_offset != layout.blocks_offset ||
      header->arena_offset != layout.arena_offset || header->total_bytes != layout.total) {
    return Status::InvalidArgument("object store " + name +
                                   " has an inconsistent header (mixed raympi builds?)");
  }
  if (size < layout.total) {
    return Status::InvalidArgument("shm segment " + name +
                                   " is too small: " + std::to_string(size) +
                                   " bytes, its header needs " + std::to_string(layout.total));
  }
  impl->capacity = header->capacity;
  impl->max_objects = header->max_objects;
  impl->layout = layout;
  if (!populate) PopulateMetadata(impl->base, layout.arena_offset);
  return std::unique_ptr<ObjectStore>(new ObjectStore(std::move(impl)));
}

StatusOr<MutableBuffer> ObjectStore::Create(const ObjectId& id, size_t size) {
  Impl* s = impl_.get();
  const Key key = ToKey(id);
  RAYMPI_RETURN_IF_ERROR(s->Lock());
  Impl::Guard guard(s);
  SegmentHeader* h = s->header();
  if (int64_t i = s->Find(key); i >= 0) {
    const Entry& e = s->table()[i];
    const char* what = e.state == kCreated ? "being written (created, not sealed)"
                       : e.delete_pending  ? "deleted, waiting for its pins to be released"
                                           : "sealed";
    return Status::AlreadyExists(s->Prefix(id) + " already exists (" + what + ")");
  }
  if (h->num_objects >= s->max_objects) {
    return Status::Unavailable("object store " + s->name +
                               ": object table full: " + std::to_string(h->num_objects) +
                               " objects (max_objects " + std::to_string(s->max_objects) + ")");
  }
  if (size > s->capacity) {
    return Status::InvalidArgument(
        "object store " + s->name + ": cannot allocate " + std::to_string(size) +
        " bytes: more than the whole store (capacity " + std::to_string(s->capacity) + ")");
  }
  Entry e{};
  e.key = key;
  e.size = size;
  e.block = kNil;
  e.creator_pid = static_cast<int32_t>(getpid());
  e.state = kCreated;
  if (++h->last_serial == 0) h->last_serial = 1;  // 0 means "none"
  e.serial = h->last_serial;
  if (size > 0) {
    const uint64_t bytes = RoundUp(size, kAlign);
    e.block = s->Allocate(bytes);
    if (e.block == kNil) {
      return Status::Unavailable("object store full: cannot allocate " + std::to_string(size) +
                                 " bytes (capacity " + std::to_string(s->capacity) + ", in use " +
                                 std::to_string(h->bytes_in_use) + ", largest free block " +
                                 std::to_string(s->LargestFreeBlock()) + ")");
    }
    e.offset = s->blocks()[e.block].offset;
    MaybeCrash(CrashPoint::kCreateAfterAllocate);
    StoreInUse(h, h->bytes_in_use + bytes);
  }
  const uint64_t slot = s->Insert(e);
  h->num_objects += 1;
  MutableBuffer buffer;
  buffer.id = id;
  buffer.data = s->arena() + e.offset;
  buffer.size = size;
  buffer.offset = e.offset;
  buffer.table_slot = static_cast<uint32_t>(slot);
  buffer.serial = e.serial;
  return buffer;
}

template <class Result, class Body>
Result ObjectStore::WithEntry(const ObjectId& id, Body&& body, bool try_lock) {
  Impl* s = impl_.get();
  const Key key = ToKey(id);
  RAYMPI_RETURN_IF_ERROR(s->Lock(try_lock));
  Impl::Guard guard(s);
  StatusOr<uint64_t> i = s->FindOr(id, key);
  if (!i.ok()) return i.status();
  return body(s, *i);
}

Status ObjectStore::Seal(const ObjectId& id) {
  return WithEntry<Status>(id, [&](Impl* s, uint64_t index) -> Status {
    Entry& e = s->table()[index];
    if (e.state != kCreated) return Status::InvalidArgument(s->Prefix(id) + " is already sealed");
    e.last_access = ++s->header()->access_clock;
    PublishState(&e, kSealed);
    return Status::Ok();
  });
}

Status ObjectStore::Abort(const ObjectId& id) {
  return WithEntry<Status>(id, [&](Impl* s, uint64_t index) -> Status {
    if (s->table()[index].state != kCreated) {
      return Status::InvalidArgument(s->Prefix(id) + " is sealed: Delete it, Abort is for writers");
    }
    s->FreeSlot(index);
    return Status::Ok();
  });
}

StatusOr<ObjectView> ObjectStore::Get(const ObjectId& id) { return GetPinned(id, false); }

StatusOr<ObjectView> ObjectStore::TryGet(const ObjectId& id) { return GetPinned(id, true); }

StatusOr<ObjectView> ObjectStore::GetPinned(const ObjectId& id, bool try_lock) {
  return WithEntry<StatusOr<ObjectView>>(
      id,
      [&](Impl* s, uint64_t index) -> StatusOr<ObjectView> {
        Entry& e = s->table()[index];
        if (e.state != kSealed) return Status::NotFound(s->Prefix(id) + " is not sealed yet");
        if (e.delete_pending) return Status::NotFound(s->Prefix(id) + " was deleted");
        e.pin_count += 1;
        e.last_access = ++s->header()->access_clock;
        return ObjectView(this, id, s->arena() + e.offset, e.size, e.offset);
      },
      try_lock);
}

StatusOr<uint64_t> ObjectStore::TableSlotForTesting(const ObjectId& id) {
  return WithEntry<StatusOr<uint64_t>>(
      id, [](Impl*, uint64_t index) -> StatusOr<uint64_t> { return index; });
}

void ObjectStore::LockForTesting() { (void)impl_->Lock(); }

void ObjectStore::UnlockForTesting() { pthread_mutex_unlock(&impl_->header()->lock); }

StatusOr<ObjectView> ObjectStore::AdoptPin(const ObjectId& id, uint64_t offset, size_t size) {
  Impl* s = impl_.get();
  // Two comparisons, so that a huge offset cannot wrap offset + size around.
  if (offset > s->capacity || size > s->capacity - offset || offset % kAlign != 0) {
    return Status::InvalidArgument(s->Prefix(id) + ": a pin handed over at offset " +
                                   std::to_string(offset) + " with " + std::to_string(size) +
                                   " bytes lies outside the arena of " +
                                   std::to_string(s->capacity) + " bytes");
  }
  return ObjectView(this, id, s->arena() + offset, size, offset);
}

Status ObjectStore::Release(const ObjectId& id) {
  return WithEntry<Status>(id, [&](Impl* s, uint64_t index) -> Status {
    Entry& e = s->table()[index];
    if (e.pin_count == 0) return Status::InvalidArgument(s->Prefix(id) + " is not pinned");
    e.pin_count -= 1;
    e.last_access = ++s->header()->access_clock;
    if (e.pin_count == 0 && e.delete_pending) s->FreeSlot(index);
    return Status::Ok();
  });
}

Status ObjectStore::Delete(const ObjectId& id) {
  return WithEntry<Status>(id, [&](Impl* s, uint64_t index) -> Status {
    Entry& e = s->table()[index];
    if (e.state != kSealed) {
      return Status::InvalidArgument(s->Prefix(id) + " is not sealed: its writer must Abort it");
    }
    if (e.pin_count > 0) {
      e.delete_pending = 1;  // a second Delete meanwhile is a no-op
    } else {
      s->FreeSlot(index);
    }
    return Status::Ok();
  });
}

Status ObjectStore::Evict(const ObjectId& id) {
  return WithEntry<Status>(id, [&](Impl* s, uint64_t index) -> Status {
    Entry& e = s->table()[index];
    if (e.state != kSealed || e.delete_pending) {
      return Status::NotFound(s->Prefix(id) + " is not a sealed, live object");
    }
    if (e.pin_count > 0) return Status::Unavailable(s->Prefix(id) + " is pinned");
    s->FreeSlot(index);
    return Status::Ok();
  });
}

void ObjectStore::PublishSpillCounters(const SpillCounters& c) {
  std::atomic<uint64_t>* out = impl_->header()->spill;
  const uint64_t values[6] = {c.spilled_objects, c.spilled_bytes,   c.restored_objects,
                              c.restored_bytes,  c.objects_on_disk, c.bytes_on_disk};
  for (int i = 0; i < 6; ++i) out[i].store(values[i], std::memory_order_relaxed);
}

void ObjectStore::CountReaderCopy() {
  impl_->header()->reader_copies.fetch_add(1, std::memory_order_relaxed);
}

bool ObjectStore::Contains(const ObjectId& id) {
  Impl* s = impl_.get();
  const Key key = ToKey(id);
  if (!s->Lock().ok()) return false;
  Impl::Guard guard(s);
  const int64_t i = s->Find(key);
  return i >= 0 && s->table()[i].state == kSealed && !s->table()[i].delete_pending;
}

size_t ObjectStore::bytes_in_use() {
  // Without the lock: the raylet reads this on every pass of its loop (many per millisecond
  // while it polls), and the node's processes should not meet it on their lock for a number
  // that only steers spilling. Writers hold the lock.
  return __atomic_load_n(&impl_->header()->bytes_in_use, __ATOMIC_RELAXED);
}

ObjectStore::ChangeStamp ObjectStore::change_stamp() {
  Impl* s = impl_.get();
  if (!s->Lock().ok()) return {};
  Impl::Guard guard(s);
  return {s->header()->access_clock, s->header()->bytes_in_use};
}

ObjectStore::Stats ObjectStore::stats(size_t top_k) {
  Impl* s = impl_.get();
  Stats out;
  out.capacity = s->capacity;
  out.max_objects = s->max_objects;
  const std::atomic<uint64_t>* spill = s->header()->spill;
  out.spill.spilled_objects = spill[0].load(std::memory_order_relaxed);
  out.spill.spilled_bytes = spill[1].load(std::memory_order_relaxed);
  out.spill.restored_objects = spill[2].load(std::memory_order_relaxed);
  out.spill.restored_bytes = spill[3].load(std::memory_order_relaxed);
  out.spill.objects_on_disk = spill[4].load(std::memory_order_relaxed);
  out.spill.bytes_on_disk = spill[5].load(std::memory_order_relaxed);
  out.reader_copies = impl_->header()->reader_copies.load(std::memory_order_relaxed);
  if (!s->Lock().ok()) return out;
  Impl::Guard guard(s);
  const SegmentHeader* h = s->header();
  out.bytes_in_use = h->bytes_in_use;
  out.num_objects = h->num_objects;
  out.largest_free_block = s->LargestFreeBlock();
  const Entry* t = s->table();
  for (uint64_t i = 0; i < s->layout.table_slots; ++i) {
    const Entry& e = t[i];
    if (e.state == kEmpty) continue;
    if (e.state == kCreated) out.num_unsealed += 1;
    if (e.pin_count > 0) {
      out.num_pinned += 1;
      out.pinned_bytes += RoundUp(e.size, kAlign);
    }
    if (top_k == 0) continue;
    ObjectInfo info;
    info.id = FromKey(e.key);
    info.size = e.size;
    info.sealed = e.state == kSealed;
    info.delete_pending = e.delete_pending != 0;
    info.pin_count = e.pin_count;
    info.creator_pid = e.creator_pid;
    out.largest.push_back(info);
    // Keep the list short while scanning a large table.
    if (out.largest.size() >= 2 * top_k) {
      std::nth_element(out.largest.begin(), out.largest.begin() + top_k, out.largest.end(),
                       [](const ObjectInfo& a, const ObjectInfo& b) { return a.size > b.size; });
      out.largest.resize(top_k);
    }
  }
  std::sort(out.largest.begin(), out.largest.end(), [](const ObjectInfo& a, const ObjectInfo& b) {
    return a.size != b.size ? a.size > b.size : a.id < b.id;
  });
  if (out.largest.size() > top_k) out.largest.resize(top_k);
  return out;
}

std::vector<ObjectId> ObjectStore::EvictionCandidates(size_t bytes_needed) {
  Impl* s = impl_.get();
  std::vector<ObjectId> out;
  if (bytes_needed == 0 || !s->Lock().ok()) return out;
  struct Candidate {
    uint64_t last_access;
    uint64_t bytes;
    Key key;
  };
  std::vector<Candidate> candidates;
  {
    Impl::Guard guard(s);
    const Entry* t = s->table();
    for (uint64_t i = 0; i < s->layout.table_slots; ++i) {
      const Entry& e = t[i];
      if (e.state != kSealed || e.pin_count > 0 || e.delete_pending) continue;
      candidates.push_back({e.last_access, RoundUp(e.size, kAlign), e.key});
    }
  }
  // Sorted outside the lock: a spill decision may scan tens of thousands of objects.
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.last_access < b.last_access; });
  uint64_t total = 0;
  for (const Candidate& c : candidates) {
    if (total >= bytes_needed) break;
    out.push_back(FromKey(c.key));
    total += c.bytes;
  }
  return out;
}

size_t ObjectStore::AbortCreatedBy(pid_t pid) {
  Impl* s = impl_.get();
  if (!s->Lock().ok()) return 0;
  Impl::Guard guard(s);
  // Collect first: removals shift entries backwards under a scan.
  std::vector<Key> doomed;
  const Entry* t = s->table();
  for (uint64_t i = 0; i < s->layout.table_slots; ++i) {
    if (t[i].state == kCreated && t[i].creator_pid == static_cast<int32_t>(pid)) {
      doomed.push_back(t[i].key);
    }
  }
  for (const Key& key : doomed) {
    const int64_t i = s->Find(key);
    if (i >= 0) s->FreeSlot(static_cast<uint64_t>(i));
  }
  return doomed.size();
}

std::string ObjectStore::Stats::ToString() const {
  char line[256];
  std::string out;
  const double percent =
      capacity == 0 ? 0.0
                    : 100.0 * static_cast<double>(bytes_in_use) / static_cast<double>(capacity);
  std::snprintf(line, sizeof(line),
                "object store: %s of %s in use (%.1f%%), %s pinned, largest free block %s\n",
                FormatBytes(bytes_in_use).c_str(), FormatBytes(capacity).c_str(), percent,
                FormatBytes(pinned_bytes).c_str(), FormatBytes(largest_free_block).c_str());
  out += line;
  std::snprintf(line, sizeof(line), "objects: %zu (%zu unsealed, %zu pinned), table for %zu\n",
                num_objects, num_unsealed, num_pinned, max_objects);
  out += line;
  if (spill.spilled_objects > 0 || spill.restored_objects > 0) {
    std::snprintf(line, sizeof(line),
                  "spilled: %s in %" PRIu64 " objects in total, %s in %" PRIu64
                  " objects on disk now; restored: %s in %" PRIu64 " objects\n",
                  FormatBytes(spill.spilled_bytes).c_str(), spill.spilled_objects,
                  FormatBytes(spill.bytes_on_disk).c_str(), spill.objects_on_disk,
                  FormatBytes(spill.restored_bytes).c_str(), spill.restored_objects);
    out += line;
  }
  if (!largest.empty()) out += "largest objects:\n";
  for (const ObjectInfo& o : largest) {
    std::snprintf(line, sizeof(line), "  %s  %10s  %-8s  pins %u%s  creator pid %d\n",
                  o.id.Hex().c_str(), FormatBytes(o.size).c_str(), o.sealed ? "sealed" : "unsealed",
                  o.pin_count, o.delete_pending ? "  (deleted)" : "",
                  static_cast<int>(o.creator_pid));
    out += line;
  }
  return out;
}

}  // namespace raympi
