// What kind of actor work a TaskSpec carries (docs/actors.md).
#pragma once

#include "raympi.pb.h"

namespace raympi {

// A method call on an actor (not its creation).
inline bool IsActorCall(const rpc::TaskSpec& spec) {
  return !spec.actor_id().empty() && !spec.actor_creation() && !spec.function().empty();
}

// A marker the worker queues behind a killed actor's calls: destroy its instance there.
inline bool IsActorRetirement(const rpc::TaskSpec& spec) {
  return !spec.actor_id().empty() && !spec.actor_creation() && spec.function().empty();
}

}  // namespace raympi
