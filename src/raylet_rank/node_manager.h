// NodeManager: the raylet of one node. Registers the node with the GCS, grants worker leases
// (one CPU per running task), spills requests back to nodes with free resources, rejects
// requests no node can ever satisfy, and ends its processes when the job ends.
//
// Thread-safety: single-threaded, driven by the rank's event loop.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "common/own_stall.h"
#include "raylet_rank/bundle_manager.h"
#include "raylet_rank/node_resources.h"
#include "raylet_rank/process_control.h"
#include "raylet_rank/worker_pool.h"
#include "raympi.pb.h"

namespace raympi {

struct NodeManagerConfig {
  int node = 0;
  int rank = 0;
  NodeResources resources;
  bool is_head = false;     // starts the driver
  int num_nodes = 1;        // the head starts its processes once all have registered
  int initial_workers = 0;  // pool started up front
  // Custom resources ({"bigmem": 4}) added to the discovered ones.
  std::map<std::string, double> custom_resources;
  // A resource report goes to the GCS on every change and at least this often (the heartbeat).
  std::chrono::steady_clock::duration heartbeat_period = std::chrono::seconds(1);
  // The GCS spreads its view every 100 ms; a raylet that hears nothing from it for this long
  // concludes the job lost its control store and ends its node (not on the head: same rank).
  std::chrono::steady_clock::duration gcs_timeout = std::chrono::seconds(10);
  // A pause between two ticks longer than this is this rank's own stall (a blocking spawn), not
  // the GCS's silence: views waiting in MPI were not read meanwhile.
  std::chrono::steady_clock::duration own_stall = std::chrono::milliseconds(200);
  std::function<std::chrono::steady_clock::time_point()> now;  // defaults to steady_clock::now
  // Adds the object plane's figures to the node's summary at the end (optional).
  std::function<void(rpc::NodeSummary*)> add_object_stats;
  // Sent to each process of the node once it is ready, unless empty: the stores of this host
  // it may copy objects from itself (src/objects/peer_store_copier.h).
  rpc::SameHostStores same_host_stores;
  // Binds and kills workers for placement groups; nullptr: the real one (Linux).
  ProcessControl* process_control = nullptr;
};

class NodeManager {
 public:
  using Send = std::function<void(const rpc::Envelope&)>;
  NodeManager(const NodeManagerConfig& config, WorkerPool* pool, Send send);

  // Registers with the GCS and starts the initial pool. The head node starts its pool and the
  // driver once the GCS's view holds every node, so the driver sees the whole cluster.
  Status Start();
  void Handle(rpc::Envelope& envelope);
  // Reports changed availability to the GCS (once per loop pass, not per change).
  void Tick();
  bool done() const { return done_; }
  // The GCS went silent for longer than gcs_timeout: the job cannot go on (done() too).
  bool gcs_lost() const { return gcs_lost_; }

 private:
  struct PendingLease {
    rpc::Address owner;
    uint64_t request_id = 0;
    rpc::ResourceSet resources;
    bool pinned = false;  // node affinity: stays on this node
  };
  struct Lease {
    int worker_slot = 0;
    rpc::ResourceSet resources;
    bool blocked = false;  // worker blocked in Get: its CPU is lent out
    rpc::Address owner;    // told when the worker dies
  };

  void OnRequestLease(const rpc::Envelope& envelope);
  // Node affinity and SPREAD; true when the request was answered or queued.
  bool PlaceByAffinity(PendingLease& request, const rpc::SchedulingStrategy& strategy);
  bool PlaceBySpread(PendingLease& request);
  void Queue(PendingLease request);
  void Infeasible(const PendingLease& request, const std::string& reason);
  void Spillback(const PendingLease& request, int node);
  void OnGetNodes(const rpc::Envelope& envelope);
  // This node as the GCS and Nodes() show it.
  rpc::NodeInfo SelfInfo() const;
  void OnCancelLeaseRequest(const rpc::Address& owner, uint64_t request_id);
  void OnReturnLease(uint64_t lease_id);
  void OnWorkerBlocked(int slot, bool blocked);
  void OnShutdown(const rpc::Envelope& envelope);
  // A worker's supervisor saw it end: give back its leases' resources, tell their owners (who
  // retry the tasks) and the GCS, and let the pool start another when needed.
  void OnWorkerDied(const rpc::WorkerDied& died);
  void OnDriverExit(rpc::Envelope& envelope);
  void OnNodeDied(const rpc::Envelope& envelope);
  // Placement-group bundles: the GCS's two-phase commit (node_manager_bundles.cc).
  void OnPrepareBundles(const rpc::Envelope& envelope);
  void OnCommitBundles(const rpc::Envelope& envelope);
  void OnReturnBundles(const rpc::ReturnBundles& ret);
  void ReplyBundles(const rpc::Envelope& request, rpc::BundlesReply reply);
  void OnWorkerStats(int slot, const rpc::TaskStats& stats);
  // Sends the node's summary to the GCS; the raylet is done.
  void FinishShutdown();
  void GrantQueued();
  // Free resources minus what queued requests will take, in queue order.
  rpc::ResourceSet Unreserved() const;
  // Sends the request to another node that the view shows free; false if there is none.
  bool TrySpill(const PendingLease& request);
  void SpillQueued();
  void Reply(const PendingLease& request, rpc::LeaseReply reply);
  // Another node whose `available` (or `total`) fits; -1 if none.
  int FindOtherNode(const rpc::ResourceSet& request, bool by_total) const;
  std::string LargestNodeDescription() const;
  rpc::ResourceSet CpuPart(const rpc::ResourceSet& set) const;
  Status LaunchProcesses();

  NodeManagerConfig config_;
  WorkerPool* pool_;
  Send send_;
  LinuxProcessControl linux_control_;
  BundleManager bundles_;
  rpc::ResourceSet total_;
  rpc::ResourceSet available_;
  std::map<int, rpc::NodeInfo> view_;  // other nodes, as last spread by the GCS
  std::deque<PendingLease> queue_;
  std::map<uint64_t, Lease> leases_;
  uint64_t next_lease_id_ = 0;
  size_t spread_next_ = 0;  // SPREAD: where the round-robin goes on
  bool report_due_ = false;
  bool total_changed_ = false;  // bundles were committed or returned: report the total too
  std::chrono::steady_clock::time_point last_report_{};
  // The end of the job: waiting (up to a deadline) for the workers' statistics.
  bool shutting_down_ = false;
  std::set<int> awaiting_stats_;
  std::chrono::steady_clock::time_point stats_deadline_;
  rpc::TaskStats stats_;
  uint64_t leases_granted_ = 0;
  bool done_ = false;
  bool gcs_lost_ = false;
  std::chrono::steady_clock::time_point last_heard_gcs_{};
  OwnStall own_stall_;
  bool started_ = false;        // the pool (and on the head, the driver) was launched
  bool driver_ready_ = false;   // the driver called raympi::Init
  bool driver_exited_ = false;  // its exit was forwarded to the GCS (once)
  // Workers that died before raympi::Init: after a few, no more are started (the program
  // cannot run as a worker, and starting more would only repeat that).
  int startup_failures_ = 0;
  bool said_start_failure_ = false;  // the last pool start failed and was logged
};

}  // namespace raympi
