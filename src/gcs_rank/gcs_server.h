// GcsServer: the control store on rank 0. Holds the node table (resources, liveness) and the
// cluster resource view that it spreads to raylets, runs the actor manager (actor_manager.h)
// and the placement-group manager (placement_group_manager.h), and ends the job when the driver
// exits.
//
// Thread-safety: single-threaded, driven by the rank's event loop.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "common/own_stall.h"
#include "gcs_rank/actor_manager.h"
#include "gcs_rank/placement_group_manager.h"
#include "raympi.pb.h"

namespace raympi {

struct GcsOptions {
  // The view is also spread at this period when nothing changed: raylets count the requests
  // they spill against their copy of it, and only a fresh copy undoes a wrong guess.
  std::chrono::steady_clock::duration view_refresh_period = std::chrono::milliseconds(100);
  // At the end of the job, how long to wait for the raylets' summaries.
  std::chrono::steady_clock::duration summary_timeout = std::chrono::seconds(5);
  // A node not heard from (heartbeat: a resource report every second) for this long is lost.
  // Ray's default is 30 s; HPC nodes rarely stall for long, and a stalled node holds up tasks.
  std::chrono::steady_clock::duration node_timeout = std::chrono::seconds(10);
  // A pause between two ticks longer than this is the GCS's own stall (a blocking spawn), not
  // the nodes' silence: reports waiting in MPI were not read meanwhile, so it counts for none.
  std::chrono::steady_clock::duration own_stall = std::chrono::milliseconds(200);
  bool print_summary = false;  // the job summary table on stderr
  std::string summary_json;    // and/or as JSON in this file
};

// Fills utilisation and the totals from the nodes' summaries.
rpc::JobSummary MakeJobSummary(const std::map<int, rpc::NodeSummary>& nodes);
std::string FormatJobSummary(const rpc::JobSummary& summary);

class GcsServer {
 public:
  using Clock = std::chrono::steady_clock;
  struct Callbacks {
    std::function<void(const rpc::Envelope&)> send;  // to a raylet (by dst address)
    std::function<void(int exit_code)> end_job;      // broadcast Shutdown to every rank
    std::function<Clock::time_point()> now;          // defaults to Clock::now
  };
  explicit GcsServer(Callbacks callbacks, GcsOptions options = GcsOptions());

  void Handle(rpc::Envelope& envelope);
  // Spreads the resource view if it changed since the last tick, or the refresh period passed.
  void Tick();

  bool job_ended() const { return job_ended_; }
  // The job ended and every raylet's summary arrived (or the wait timed out).
  bool finished() const { return finished_; }
  int exit_code() const { return exit_code_; }
  const std::map<int, rpc::NodeInfo>& nodes() const { return nodes_; }
  // Nodes declared lost, with the cause.
  const std::map<int, std::string>& lost_nodes() const { return lost_nodes_; }
  // When the GCS last heard from a node (registration or resource report = heartbeat).
  Clock::time_point LastHeard(int node) const;
  const ActorManager& actors() const { return actors_; }
  const PlacementGroupManager& placement_groups() const { return placement_groups_; }

 private:
  void BroadcastView();
  void Finish();
  void CheckHeartbeats(Clock::time_point now);
  void MarkLost(int node, const std::string& cause);
  size_t NumAlive() const;

  Callbacks callbacks_;
  GcsOptions options_;
  OwnStall own_stall_;
  Clock::time_point last_broadcast_{};
  std::map<int, rpc::NodeInfo> nodes_;
  std::map<int, Clock::time_point> last_heard_;
  bool view_dirty_ = false;
  bool job_ended_ = false;
  bool finished_ = false;
  Clock::time_point summary_deadline_{};
  std::map<int, rpc::NodeSummary> summaries_;
  int exit_code_ = 0;
  std::map<int, std::string> lost_nodes_;
  ActorManager actors_;
  PlacementGroupManager placement_groups_;
};

}  // namespace raympi
