#include "common/tuning_env.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace raympi {

namespace {

struct IntegerVariable {
  const char* name;
  long long min;
  const char* meaning;
};

// Each variable, its least valid value, and what it sets (read with TuningInt in
// worker/runtime.cc, main.cc and raylet_rank/worker_launcher.cc).
constexpr IntegerVariable kVariables[] = {
    {"RAYMPI_MAX_INLINE_BYTES", 0, "largest value sent inside messages, bytes"},
    {"RAYMPI_STORE_FULL_TIMEOUT_MS", 0, "how long Put waits for room in a full store, ms"},
    {"RAYMPI_PIPELINE_DEPTH", 1, "tasks in flight per leased worker"},
    {"RAYMPI_PUSH_BATCH", 1, "most tasks in one push"},
    {"RAYMPI_HAND_BACK_US", 0, "run time after which a worker hands back queued tasks, us"},
    {"RAYMPI_RECEIVE_SPIN_US", 0, "how long a waiting thread polls before sleeping, us"},
    {"RAYMPI_RECEIVE_PAUSE_US", 0, "first part of that poll that does not yield the core, us"},
    {"RAYMPI_FETCH_SPIN_MAX_US", 0, "longest poll during a cross-node fetch, us"},
    {"RAYMPI_RECEIVER_GRACE_US", 0, "mailbox grace before the io thread takes over, us"},
    {"RAYMPI_NODE_TIMEOUT_MS", 1, "silence after which a node is lost, ms"},
    {"RAYMPI_SPAWN_TIMEOUT_S", 1, "how long a worker spawn may take, s"},
    {"RAYMPI_NODE_PROCESS_SLOTS", 3, "processes a node may start over the job"},
    {"RAYMPI_SAME_HOST_READS", 0,
     "whether nodes of one host read each other's stores directly (0: over MPI)"},
    {"RAYMPI_MALLOC_HUGEPAGES", 0, "whether programs' malloc asks for huge pages (0: not)"},
    {"RAYMPI_SAME_HOST_PINS", 0,
     "whether a pull from a node of this host copies the object out of its store itself "
     "(0: asks its raylet)"},
    {"RAYMPI_ONE_SIDED_PULLS", 0,
     "whether a pull reads another node's store and the object's table entry one-sided, "
     "without its raylet (0: asks its raylet)"},
    {"RAYMPI_READER_COPIES", 0,
     "whether a process copies another node's object of this host itself on Get "
     "(0: asks its raylet)"},
};

// Where `text` is a whole number of at least `v.min` (and at most INT_MAX), its value.
std::optional<int> Parse(const IntegerVariable& v, const char* text) {
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  const bool whole = end != text && *end == '\0' && errno == 0 && value <= INT_MAX;
  if (!whole || value < v.min) return std::nullopt;
  return static_cast<int>(value);
}

}  // namespace

Status CheckTuningEnvironment(const EnvLookup& lookup) {
  for (const IntegerVariable& v : kVariables) {
    const char* text = lookup(v.name);
    if (text == nullptr || Parse(v, text)) continue;
    return Status::InvalidArgument(std::string(v.name) + "='" + text + "' is not valid: it sets " +
                                   v.meaning + " and must be a whole number from " +
                                   std::to_string(v.min) + " to " + std::to_string(INT_MAX) +
                                   "; fix or unset it");
  }
  return Status::Ok();
}

int TuningInt(const char* name, int fallback, const EnvLookup& lookup) {
  for (const IntegerVariable& v : kVariables) {
    if (std::strcmp(v.name, name) != 0) continue;
    const char* text = lookup(name);
    if (text == nullptr) return fallback;
    return Parse(v, text).value_or(fallback);
  }
  // A name missing from the table would be read as its default forever, whatever the user set
  // (RAYMPI_RECEIVE_PAUSE_US once was): a programming error, so stop at the first read.
  std::fprintf(stderr, "raympi: internal error: %s is read but not in the tuning table\n", name);
  std::abort();
}

}  // namespace raympi
