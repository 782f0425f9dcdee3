// A node's shared-memory bus and object store inside one test process, for tests that put a
// real CoreWorker on the bus and play the processes around it (raylet, GCS, workers, owner).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/frame.h"
#include "common/shm_bus.h"
#include "objects/object_store.h"
#include "worker/core_worker.h"

namespace raympi {

class NodeHarness {
 public:
  // Creates the bus (4 slots) and a 1 MiB store, named after `test` and this process.
  explicit NodeHarness(const std::string& test)
      : prefix_("/raympi-test-" + test + "-" + std::to_string(getpid())) {
    ShmBus::Options options;
    options.name = prefix_ + "-bus";
    options.num_slots = 4;
    options.ring_bytes = 1 << 20;
    auto bus = ShmBus::Create(options);
    EXPECT_TRUE(bus.ok()) << bus.status().ToString();
    if (bus.ok()) bus_ = std::move(*bus);
    auto store = ObjectStore::Create(prefix_ + "-store", 1 << 20, 1024, false);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (store.ok()) store_ = std::move(*store);
  }
  bool ok() const { return bus_ && store_; }
  ShmBus& bus() { return *bus_; }

  // A CoreWorker config for `slot` on this node.
  CoreWorkerConfig Config(int slot, bool is_driver) const {
    CoreWorkerConfig config;
    config.node = 0;
    config.slot = slot;
    config.is_driver = is_driver;
    config.bus_name = prefix_ + "-bus";
    config.store_name = prefix_ + "-store";
    return config;
  }

  // The next message for `slot`, waiting up to 10 s (a test failure if none comes).
  rpc::Envelope Next(int slot) {
    std::string frame;
    rpc::Envelope e;
    auto got = bus_->Receive(slot, &frame, std::chrono::seconds(10));
    EXPECT_TRUE(got.ok() && *got) << "nothing arrived for slot " << slot;
    if (got.ok() && *got) {
      EXPECT_TRUE(DecodeFrame(frame, &e).ok());
    }
    return e;
  }
  // Sends `e` to `slot` on this node.
  void Send(int slot, rpc::Envelope e) {
    *e.mutable_dst() = MakeAddress(0, slot);
    EXPECT_TRUE(bus_->Send(slot, EncodeFrame(e)).ok());
  }

 private:
  std::string prefix_;
  std::unique_ptr<ShmBus> bus_;
  std::unique_ptr<ObjectStore> store_;
};

}  // namespace raympi
