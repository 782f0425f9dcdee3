// Actors: a class instance that lives on a dedicated worker and runs the methods called on it,
// one at a time, in the order each caller submitted them (Ray's actors). See docs/actors.md.
//
// @code
//   class Counter {
//    public:
//     explicit Counter(int start) : n_(start) {}
//     int Add(int x) { return n_ += x; }
//     int Get() const { return n_; }
//    private:
//     int n_;
//   };
//   Counter* MakeCounter(int start) { return new Counter(start); }
//   RAYMPI_REMOTE(MakeCounter, &Counter::Add, &Counter::Get);
//
//   auto counter = raympi::Actor(MakeCounter).SetName("counter").Remote(10);
//   raympi::ObjectRef<int> r = counter.Task(&Counter::Add).Remote(5);   // 15
//   auto same = raympi::GetActor<Counter>("counter");                   // from any process
//   raympi::Kill(counter);
// @endcode
#pragma once

#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "raympi/api.h"
#include "raympi/errors.h"
#include "raympi/function_registry.h"
#include "raympi/object_ref.h"
#include "raympi/runtime.h"

namespace raympi {

/// Owned actors end when the process that created them leaves; detached ones live until the
/// job ends (or raympi::Kill).
enum class ActorLifetime { kOwned, kDetached };

/// Builds a call of an actor's method: handle.Task(&Class::Method).Remote(args...).
template <typename M>
class ActorTaskCaller {
 public:
  using Traits = internal::FunctionTraits<M>;
  using Return = typename Traits::Return;

  ActorTaskCaller(std::string actor_id, M method)
      : actor_id_(std::move(actor_id)), method_(method) {}

  /// Submits the call; the result is an ObjectRef owned by the caller. Calls from one process
  /// to one actor run in the order they were submitted.
  template <typename... Args>
  ObjectRef<Return> Remote(Args&&... args) {
    static_assert(sizeof...(Args) == Traits::kArity,
                  "Remote() needs exactly as many arguments as the method has parameters");
    const internal::FunctionInfo* info =
        internal::FunctionRegistry::Instance().FindByPointer(method_);
    if (info == nullptr || !info->method) {
      throw Error("raympi: this method of " + internal::TypeName<typename Traits::Class>() +
                  " is not registered; add &" + internal::TypeName<typename Traits::Class>() +
                  "::<Method> to RAYMPI_REMOTE(...) at namespace scope");
    }
    std::vector<internal::TaskArg> task_args;
    MakeArgs(task_args, std::make_index_sequence<sizeof...(Args)>{}, std::forward<Args>(args)...);
    std::string return_type;
    if constexpr (!std::is_void_v<Return>) return_type = internal::TypeName<Return>();
    return ObjectRef<Return>(internal::CurrentRuntime().SubmitActorTask(
                                 actor_id_, info->name, std::move(task_args), return_type),
                             internal::AdoptRef{});
  }

 private:
  template <size_t... I, typename... Args>
  void MakeArgs(std::vector<internal::TaskArg>& out, std::index_sequence<I...>, Args&&... args) {
    (out.push_back(
         internal::MakeTaskArg<typename Traits::template Arg<I>>(std::forward<Args>(args))),
     ...);
  }

  std::string actor_id_;
  M method_;
};

/// A handle to an actor of class T. Copyable and serializable: pass it to tasks and other
/// actors; every copy calls the same actor.
template <typename T>
class ActorHandle {
 public:
  ActorHandle() = default;
  explicit ActorHandle(std::string actor_id) : id_(std::move(actor_id)) {}

  template <typename M>
  ActorTaskCaller<M> Task(M method) const {
    static_assert(std::is_member_function_pointer_v<M>,
                  "ActorHandle::Task takes a method of the actor's class: &Class::Method");
    static_assert(std::is_base_of_v<typename internal::FunctionTraits<M>::Class, T>,
                  "this method belongs to another class than the actor's");
    if (id_.empty()) throw Error("raympi: the ActorHandle is empty (default-constructed)");
    return ActorTaskCaller<M>(id_, method);
  }

  const std::string& ID() const { return id_; }
  bool operator==(const ActorHandle& other) const { return id_ == other.id_; }

  template <class Archive>
  void serialize(Archive& archive) {
    archive(id_);
  }

 private:
  std::string id_;
};

/// Builds an actor from its registered factory: raympi::Actor(MakeCounter).Remote(10).
template <typename F>
class ActorCreator {
 public:
  using Traits = internal::FunctionTraits<F>;
  using Class = std::remove_pointer_t<typename Traits::Return>;
  static_assert(internal::registry_detail::IsFactory<F>(),
                "raympi::Actor takes a factory: a free function returning a pointer to a new "
                "instance (e.g. Counter* MakeCounter(int) { return new Counter(...); })");

  explicit ActorCreator(F factory) : factory_(factory) {}

  /// A name to find it by (raympi::GetActor); unique among live actors.
  ActorCreator& SetName(std::string name) {
    options_.name = std::move(name);
    return *this;
  }
  /// Resources held while the actor lives (none by default: see docs/actors.md).
  ActorCreator& SetResource(const std::string& name, double amount) {
    options_.resources[name] = amount;
    return *this;
  }
  ActorCreator& SetResources(const std::map<std::string, double>& resources) {
    for (const auto& [name, amount] : resources) options_.resources[name] = amount;
    return *this;
  }
  /// Places the actor in bundle `bundle_index` of `group` (-1: any bundle), bound to the
  /// bundle's PUs. Remote() waits until the group is placed.
  ActorCreator& SetPlacementGroup(const PlacementGroup& group, int bundle_index = -1) {
    internal::CheckBundleChoice("raympi::Actor", group, bundle_index);
    options_.placement_group_id = group.BinaryId();
    options_.bundle_index = bundle_index;
    return *this;
  }
  ActorCreator& SetSchedulingStrategy(const SchedulingStrategy& strategy) {
    options_.strategy = strategy;
    return *this;
  }
  /// How often it is re-created after its worker dies (-1: always). Default 0.
  ActorCreator& SetMaxRestarts(int n) {
    options_.max_restarts = n;
    return *this;
  }
  /// How often a call interrupted by a restart is sent again (-1: always). Default 0: it fails
  /// with ActorDiedError.
  ActorCreator& SetMaxTaskRetries(int n) {
    options_.max_task_retries = n;
    return *this;
  }
  /// Runs up to `k` calls at once, on k threads of its worker (a threaded actor: the methods
  /// must be thread-safe, and calls from one caller may then overlap). Default 1.
  ActorCreator& SetMaxConcurrency(int k) {
    options_.max_concurrency = k;
    return *this;
  }
  ActorCreator& SetLifetime(ActorLifetime lifetime) {
    options_.detached = lifetime == ActorLifetime::kDetached;
    return *this;
  }

  /// Creates the actor; returns at once with its handle (calls wait until it is alive). Throws
  /// raympi::Error when its name is taken.
  template <typename... Args>
  ActorHandle<Class> Remote(Args&&... args) {
    static_assert(sizeof...(Args) == Traits::kArity,
                  "Remote() needs exactly as many arguments as the factory has parameters");
    static_assert((!IsObjectRef<std::decay_t<Args>>::value && ...),
                  "actor factory arguments are passed by value (Get an ObjectRef first)");
    const internal::FunctionInfo* info =
        internal::FunctionRegistry::Instance().FindByPointer(factory_);
    if (info == nullptr || !info->factory) {
      throw Error(
          "raympi::Actor: this factory is not registered; add RAYMPI_REMOTE(<factory>, "
          "&" +
          internal::TypeName<Class>() + "::<Method>, ...) at namespace scope");
    }
    std::vector<internal::TaskArg> task_args;
    MakeArgs(task_args, std::make_index_sequence<sizeof...(Args)>{}, std::forward<Args>(args)...);
    return ActorHandle<Class>(internal::CurrentRuntime().CreateActor(
        info->name, info->class_name, std::move(task_args), options_));
  }

 private:
  template <size_t... I, typename... Args>
  void MakeArgs(std::vector<internal::TaskArg>& out, std::index_sequence<I...>, Args&&... args) {
    (out.push_back(
         internal::MakeTaskArg<typename Traits::template Arg<I>>(std::forward<Args>(args))),
     ...);
  }

  F factory_;
  internal::ActorOptions options_;
};

template <typename F>
ActorCreator<F> Actor(F factory) {
  return ActorCreator<F>(factory);
}

/// The live actor named `name`, from the driver or any task. Throws raympi::Error when no live
/// actor has that name, or when it is not of class T.
template <typename T>
ActorHandle<T> GetActor(const std::string& name) {
  internal::ActorLookup found = internal::CurrentRuntime().GetActor(name);
  if (found.class_name != internal::TypeName<T>()) {
    throw Error("raympi::GetActor<" + internal::TypeName<T>() + ">(\"" + name +
                "\"): that actor is a " + found.class_name);
  }
  return ActorHandle<T>(found.actor_id);
}

/// Ends the actor now (no restart); its calls from then on raise ActorDiedError ("killed").
template <typename T>
void Kill(const ActorHandle<T>& actor) {
  internal::CurrentRuntime().KillActor(actor.ID());
}

}  // namespace raympi
