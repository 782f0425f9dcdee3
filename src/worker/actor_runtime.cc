// Default actor and placement-group entry points of internal::Runtime, for runtimes without
// them (test doubles).
#include "raympi/errors.h"
#include "raympi/runtime.h"

namespace raympi::internal {

namespace {
[[noreturn]] void NoActors() { throw Error("raympi: this runtime does not support actors"); }
}  // namespace

std::string Runtime::CreateActor(const std::string&, const std::string&, std::vector<TaskArg>,
                                 const ActorOptions&) {
  NoActors();
}
std::string Runtime::SubmitActorTask(const std::string&, const std::string&, std::vector<TaskArg>,
                                     const std::string&) {
  NoActors();
}
ActorLookup Runtime::GetActor(const std::string&) { NoActors(); }
void Runtime::KillActor(const std::string&) { NoActors(); }

namespace {
[[noreturn]] void NoPlacementGroups() {
  throw Error("raympi: this runtime does not support placement groups");
}
}  // namespace

PlacementGroupStatus Runtime::CreatePlacementGroup(const PlacementGroupSpecification&) {
  NoPlacementGroups();
}
PlacementGroupStatus Runtime::GetPlacementGroup(const std::string&, const std::string&, int64_t) {
  NoPlacementGroups();
}
PlacementGroupStatus Runtime::RemovePlacementGroup(const std::string&) { NoPlacementGroups(); }

}  // namespace raympi::internal
