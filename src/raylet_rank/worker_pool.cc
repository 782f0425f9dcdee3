#include "raylet_rank/worker_pool.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/tuning_env.h"

namespace raympi {

int NodeProcessSlots(double num_cpus, int prelaunched_workers) {
  constexpr int kMinSlots = 128;
  const int cpus = std::max(1, static_cast<int>(std::ceil(num_cpus)));
  int slots = prelaunched_workers > 0 ? 2 * (prelaunched_workers + 2) : 2 + 4 * cpus;
  slots = std::max(kMinSlots, slots);
  // Whatever is asked, every pre-launched rank (and the raylet and driver) needs its slot.
  return std::max(prelaunched_workers + 2, TuningInt("RAYMPI_NODE_PROCESS_SLOTS", slots));
}

WorkerPool::WorkerPool(WorkerLauncher* launcher, LaunchRequest base, int first_slot, int max_slots)
    : launcher_(launcher), base_(std::move(base)), next_slot_(first_slot), max_slots_(max_slots) {}

Status WorkerPool::Start(int num_workers, bool with_driver) {
  // A fixed pool (pre-launched ranks) starts what it can; the rest of the demand queues.
  num_workers = std::min(num_workers, launcher_->StartableWorkers());
  if (num_workers <= 0 && !with_driver) return Status::Ok();
  const int room = std::max(0, max_slots_ - next_slot_);
  if (num_workers > room) {
    if (room == 0 && !with_driver) {
      return Status::Unavailable(
          "node " + std::to_string(base_.node) + " has started a process in each of its " +
          std::to_string(max_slots_) +
          " bus slots (a slot per worker over the job, replacements included); tasks and "
          "actors that need another worker wait for a leased one to come back. Set "
          "RAYMPI_NODE_PROCESS_SLOTS higher to allow more");
    }
    num_workers = room;
  }
  LaunchRequest request = base_;
  request.with_driver = with_driver;
  request.num_workers = num_workers;
  request.first_worker_slot = next_slot_;
  RAYMPI_RETURN_IF_ERROR(launcher_->Launch(request));
  for (int i = 0; i < num_workers; ++i) state_[next_slot_ + i] = State::kStarting;
  next_slot_ += num_workers;
  num_starting_ += num_workers;
  driver_started_ = driver_started_ || with_driver;
  return Status::Ok();
}

void WorkerPool::OnReady(int slot) {
  auto it = state_.find(slot);
  if (it == state_.end() || it->second != State::kStarting) return;
  it->second = State::kIdle;
  --num_starting_;
  idle_.push_back(slot);
}

std::optional<int> WorkerPool::PopIdle() {
  if (idle_.empty()) return std::nullopt;
  int slot = idle_.front();
  idle_.pop_front();
  state_[slot] = State::kLeased;
  return slot;
}

void WorkerPool::Release(int slot) {
  auto it = state_.find(slot);
  if (it == state_.end() || it->second != State::kLeased) return;
  it->second = State::kIdle;
  idle_.push_back(slot);
}

bool WorkerPool::MarkDead(int slot) {
  auto it = state_.find(slot);
  if (it == state_.end() || it->second == State::kDead) return false;
  bool was_ready = it->second != State::kStarting;
  if (it->second == State::kStarting) --num_starting_;
  if (it->second == State::kIdle) idle_.erase(std::find(idle_.begin(), idle_.end(), slot));
  it->second = State::kDead;
  launcher_->OnProcessEnded(slot);
  return was_ready;
}

bool WorkerPool::IsAlive(int slot) const {
  auto it = state_.find(slot);
  return it != state_.end() && it->second != State::kDead;
}

std::vector<int> WorkerPool::StartedSlots() const {
  std::vector<int> slots;
  if (driver_started_) slots.push_back(base_.driver_slot);
  for (const auto& [slot, state] : state_) slots.push_back(slot);
  return slots;
}

}  // namespace raympi
