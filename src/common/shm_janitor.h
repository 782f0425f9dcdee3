// Keeps /dev/shm clean. Every segment of a raylet is named "raympi-p<raylet pid>-...", so a
// segment whose raylet is gone is known to be stale, whatever killed the job.
#pragma once

#include <string>

namespace raympi {

// "raympi-p<pid>-<job key>-n<node>": the prefix of every segment this raylet creates.
std::string ShmPrefix(const std::string& job_key, int node);
// The same for the raylet with pid `pid` (another raylet of this host, e.g. one that was lost).
std::string ShmPrefixOf(int pid, const std::string& job_key, int node);

// The node's object store segment, named after its bus so every process finds both.
std::string StoreNameForBus(const std::string& bus_name);

// The pid of the raylet that made segment `name` ("/raympi-p<pid>-..." or without the '/'),
// 0 if the name is not a raympi segment's.
int RayletPidOfSegment(const std::string& name);

// Removes the segments of raylets that no longer run (a job that was killed or aborted).
void RemoveStaleShm();

// On SIGTERM/SIGINT/SIGHUP (mpirun aborting the job), unlinks the node's bus and object store
// before dying, so only side segments, if any, are left for RemoveStaleShm. With a pidfd, only
// if that process has ended (a supervisor: only when its raylet is gone, else the raylet does),
// waiting up to 0.7 s for it: a raylet that Open MPI ends itself runs no handler of ours.
void UnlinkOnTerminationSignal(const std::string& bus_name, int only_if_ended_pidfd = -1);

}  // namespace raympi
