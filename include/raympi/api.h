// The user API: Init, Task(...).Remote, Put, Get, Wait, Shutdown.
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "raympi/array_view.h"
#include "raympi/errors.h"
#include "raympi/function_registry.h"
#include "raympi/object_ref.h"
#include "raympi/placement_group.h"
#include "raympi/runtime.h"
#include "raympi/serialization.h"

namespace raympi {

/// Connects this process to the raympi job it was started in (`mpirun -n N raympi ./app`).
/// In the driver it returns; in a worker it runs tasks and never returns. Call it first in
/// main: code before it also runs in every worker. Throws raympi::Error when the program was
/// not started by raympi.
void Init(int& argc, char** argv);

/// Ends the driver's use of the cluster. Optional: the job also ends when main returns, and
/// the job's exit code is then main's. After Shutdown the job's code is 0 whatever the driver
/// returns later (mpirun does not see it).
void Shutdown();

bool IsInitialized();

/// The node this process runs on (0 is the head node, where the driver runs).
int CurrentNodeId();

/// The nodes of the job: id, host, total and available resources, liveness.
inline std::vector<NodeInfo> Nodes() { return internal::CurrentRuntime().Nodes(); }

/// Objects and bytes in the object store of the caller's node, its pinned objects and largest
/// objects (like `ray memory`).
inline ObjectStoreUsage LocalObjectStoreUsage() {
  return internal::CurrentRuntime().LocalStoreUsage();
}

namespace internal {

template <typename T>
std::shared_ptr<T> DecodeObject(const std::string& id, const FetchedObject& object) {
  if (object.is_error) {
    if (object.actor_died) throw ActorDiedError(object.error_message);
    throw TaskError(object.error_function, object.error_message);
  }
  if constexpr (std::is_void_v<T>) {
    return nullptr;
  } else {
    if (object.type != TypeName<T>()) {
      throw SerializationError("object " + HexId(id) + " holds a value of type " + object.type +
                               ", but Get asked for " + TypeName<T>());
    }
    return std::make_shared<T>(Deserialize<T>(object.data));
  }
}

template <typename Param, typename Arg>
TaskArg MakeTaskArg(Arg&& arg) {
  using A = std::decay_t<Arg>;
  TaskArg out;
  if constexpr (IsObjectRef<A>::value) {
    static_assert(std::is_same_v<A, ObjectRef<Param>>,
                  "an ObjectRef argument must hold exactly the parameter's type");
    out.object_id = arg.ID();
  } else {
    static_assert(std::is_convertible_v<Arg&&, Param>,
                  "a task argument must convert to the function's parameter type");
    out.value = Serialize<Param>(static_cast<Param>(std::forward<Arg>(arg)));
  }
  out.type = TypeName<Param>();
  return out;
}

}  // namespace internal

/// Builds a call of a registered remote function.
/// @code
///   auto ref = raympi::Task(Scale).SetResource("CPU", 1).Remote(data_ref, 2.0);
/// @endcode
template <typename F>
class TaskCaller {
 public:
  using Traits = internal::FunctionTraits<F>;
  using Return = typename Traits::Return;

  explicit TaskCaller(F fn) : fn_(fn) {}

  TaskCaller& SetResource(const std::string& name, double amount) {
    options_.resources[name] = amount;
    return *this;
  }
  /// Sets several resources at once, e.g. {{"CPU", 2}, {"bigmem", 1}}.
  TaskCaller& SetResources(const std::map<std::string, double>& resources) {
    for (const auto& [name, amount] : resources) options_.resources[name] = amount;
    return *this;
  }
  TaskCaller& SetSchedulingStrategy(const SchedulingStrategy& strategy) {
    options_.strategy = strategy;
    return *this;
  }
  /// Runs the task again, up to n times, when the process running it dies (segfault, abort,
  /// kill): 3 by default, as in Ray. With SetRetryExceptions(true), also when it throws.
  TaskCaller& SetMaxRetries(int n) {
    options_.max_retries = n;
    return *this;
  }
  TaskCaller& SetRetryExceptions(bool retry) {
    options_.retry_exceptions = retry;
    return *this;
  }
  TaskCaller& SetName(std::string name) {
    options_.name = std::move(name);
    return *this;
  }
  /// Runs the task in bundle `bundle_index` of `group` (-1: any bundle of it), bound to the
  /// bundle's PUs; its resources come out of the bundle. Remote() waits until the group is
  /// placed.
  TaskCaller& SetPlacementGroup(const PlacementGroup& group, int bundle_index = -1) {
    internal::CheckBundleChoice("raympi::Task", group, bundle_index);
    options_.placement_group_id = group.BinaryId();
    options_.bundle_index = bundle_index;
    return *this;
  }

  template <typename... Args>
  ObjectRef<Return> Remote(Args&&... args) {
    static_assert(sizeof...(Args) == Traits::kArity,
                  "Remote() needs exactly as many arguments as the function has parameters");
    const internal::FunctionInfo* info = internal::FunctionRegistry::Instance().FindByPointer(fn_);
    if (info == nullptr) {
      throw Error(
          "raympi::Task: this function is not registered as a remote function; add "
          "RAYMPI_REMOTE(<function>) at namespace scope in the program");
    }
    std::vector<internal::TaskArg> task_args;
    MakeArgs(task_args, std::make_index_sequence<sizeof...(Args)>{}, std::forward<Args>(args)...);
    std::string return_type;
    if constexpr (!std::is_void_v<Return>) return_type = internal::TypeName<Return>();
    return ObjectRef<Return>(
        internal::CurrentRuntime().Submit(info->name, std::move(task_args), return_type, options_),
        internal::AdoptRef{});
  }

  /// Calls the function once per element of `inputs`, packing `chunk_size` calls into each
  /// task, as mpi4py's map(chunksize=...) and Ray's Pool.map(chunksize=...) do: one message, one
  /// scheduling decision and one result object per chunk instead of per call. For a function of
  /// several parameters each element is a std::tuple of its arguments (ObjectRefs allowed, as in
  /// Remote). Returns one ObjectRef per chunk, holding that chunk's results in input order; the
  /// map is their concatenation. A call that throws fails its chunk (TaskError at Get), and the
  /// options (resources, retries, placement) apply to each chunk as to one task.
  /// @code
  ///   auto parts = raympi::Task(Square).Map(std::vector<int>{1, 2, 3, 4, 5}, 2);  // 3 tasks
  ///   std::vector<int> squares;
  ///   for (const auto& part : raympi::Get(parts)) squares.insert(squares.end(), part->begin(),
  ///                                                            part->end());
  /// @endcode
  template <typename Input>
  std::vector<ObjectRef<std::vector<Return>>> Map(const std::vector<Input>& inputs,
                                                  size_t chunk_size) {
    static_assert(!std::is_void_v<Return>,
                  "raympi::Task(...).Map needs a function that returns a value");
    static_assert(Traits::kArity >= 1, "raympi::Task(...).Map needs a function with parameters");
    if (chunk_size == 0) {
      throw Error("raympi::Task(...).Map: chunk_size must be at least 1 (calls per task)");
    }
    const internal::FunctionInfo* info = internal::FunctionRegistry::Instance().FindByPointer(fn_);
    if (info == nullptr) {
      throw Error(
          "raympi::Task: this function is not registered as a remote function; add "
          "RAYMPI_REMOTE(<function>) at namespace scope in the program");
    }
    std::vector<ObjectRef<std::vector<Return>>> out;
    out.reserve((inputs.size() + chunk_size - 1) / chunk_size);
    for (size_t begin = 0; begin < inputs.size(); begin += chunk_size) {
      const size_t end = std::min(inputs.size(), begin + chunk_size);
      std::vector<internal::TaskArg> task_args;
      task_args.reserve((end - begin) * Traits::kArity);
      for (size_t i = begin; i < end; ++i) AddCallArgs(task_args, inputs[i]);
      internal::TaskOptions options = options_;
      options.calls = static_cast<int>(end - begin);
      out.emplace_back(
          internal::CurrentRuntime().Submit(info->name, std::move(task_args),
                                            internal::TypeName<std::vector<Return>>(), options),
          internal::AdoptRef{});
    }
    return out;
  }

 private:
  template <typename T>
  struct IsTuple : std::false_type {};
  template <typename... Ts>
  struct IsTuple<std::tuple<Ts...>> : std::true_type {};

  template <typename Input>
  void AddCallArgs(std::vector<internal::TaskArg>& out, const Input& input) {
    if constexpr (Traits::kArity == 1) {
      out.push_back(internal::MakeTaskArg<typename Traits::template Arg<0>>(input));
    } else {
      static_assert(IsTuple<Input>::value && std::tuple_size_v<Input> == Traits::kArity,
                    "Map of a function of several parameters takes a std::tuple of its "
                    "arguments per call");
      AddTupleArgs(out, input, std::make_index_sequence<Traits::kArity>{});
    }
  }
  template <typename Tuple, size_t... I>
  void AddTupleArgs(std::vector<internal::TaskArg>& out, const Tuple& input,
                    std::index_sequence<I...>) {
    (out.push_back(internal::MakeTaskArg<typename Traits::template Arg<I>>(std::get<I>(input))),
     ...);
  }

  template <size_t... I, typename... Args>
  void MakeArgs(std::vector<internal::TaskArg>& out, std::index_sequence<I...>, Args&&... args) {
    (out.push_back(
         internal::MakeTaskArg<typename Traits::template Arg<I>>(std::forward<Args>(args))),
     ...);
  }

  F fn_;
  internal::TaskOptions options_;
};

template <typename F>
TaskCaller<F> Task(F fn) {
  return TaskCaller<F>(fn);
}

/// Stores a value in the cluster; the caller owns it. Large values go into the node's object
/// store (one copy for vectors of plain elements); raympi::ObjectStoreFullError if it has no room.
template <typename T>
ObjectRef<std::decay_t<T>> Put(T&& value) {
  using V = std::decay_t<T>;
  internal::ValueWriter writer;
  if constexpr (internal::kWritesInPlace<V>) {
    writer.size = internal::InPlaceSize(value);
    writer.write = [&value](char* out) { internal::SerializeInPlace(value, out); };
  } else {
    auto bytes = std::make_shared<std::string>(internal::Serialize<V>(value));
    writer.size = bytes->size();
    writer.write = [bytes](char* out) { std::memcpy(out, bytes->data(), bytes->size()); };
  }
  return ObjectRef<V>(internal::CurrentRuntime().Put(writer, internal::TypeName<V>()),
                      internal::AdoptRef{});
}

/// Waits for an object and returns its value. Rethrows a failed task's error as
/// raympi::TaskError. timeout_ms = -1 waits forever; on timeout throws raympi::TimeoutError.
template <typename T>
std::shared_ptr<T> Get(const ObjectRef<T>& ref, int timeout_ms = -1) {
  auto objects = internal::CurrentRuntime().Get(std::vector<std::string>(1, ref.ID()), timeout_ms);
  return internal::DecodeObject<T>(ref.ID(), objects.at(0));
}

template <typename T>
std::vector<std::shared_ptr<T>> Get(const std::vector<ObjectRef<T>>& refs, int timeout_ms = -1) {
  std::vector<std::string> ids;
  ids.reserve(refs.size());
  for (const auto& r : refs) ids.push_back(r.ID());
  auto objects = internal::CurrentRuntime().Get(ids, timeout_ms);
  std::vector<std::shared_ptr<T>> out;
  out.reserve(refs.size());
  for (size_t i = 0; i < refs.size(); ++i)
    out.push_back(internal::DecodeObject<T>(ids[i], objects[i]));
  return out;
}

/// Like Get for a vector of plain elements (double, int, POD structs), without copying it: the
/// view points into the node's object store (or at a small object's bytes) and keeps the object
/// pinned while any copy of the view lives.
/// @code
///   raympi::ArrayView<double> v = raympi::GetView(ref);   // ObjectRef<std::vector<double>>
///   double sum = std::accumulate(v.begin(), v.end(), 0.0);
/// @endcode
template <typename E>
ArrayView<E> GetView(const ObjectRef<std::vector<E>>& ref, int timeout_ms = -1) {
  static_assert(internal::kWritesInPlace<std::vector<E>>,
                "raympi::GetView needs a vector of trivially copyable elements");
  auto objects = internal::CurrentRuntime().Get({ref.ID()}, timeout_ms);
  internal::FetchedObject& object = objects.at(0);
  if (object.is_error) throw TaskError(object.error_function, object.error_message);
  if (object.type != internal::TypeName<std::vector<E>>()) {
    throw SerializationError("object " + internal::HexId(ref.ID()) + " holds a value of type " +
                             object.type + ", but GetView asked for " +
                             internal::TypeName<std::vector<E>>());
  }
  return ArrayView<E>::FromEncoded(std::move(object.holder), object.data);
}

template <typename T>
struct WaitResult {
  std::vector<ObjectRef<T>> ready;
  std::vector<ObjectRef<T>> unready;
};

/// Returns once `num` of `refs` are ready or timeout_ms passed (-1: no limit); ready holds at
/// most `num` refs, in the order given.
template <typename T>
WaitResult<T> Wait(const std::vector<ObjectRef<T>>& refs, int num, int timeout_ms = -1) {
  if (num < 0 || static_cast<size_t>(num) > refs.size()) {
    throw Error("raympi::Wait: num must be between 0 and the number of refs (" +
                std::to_string(refs.size()) + "), got " + std::to_string(num));
  }
  std::vector<std::string> ids;
  for (const auto& r : refs) ids.push_back(r.ID());
  std::vector<bool> ready = internal::CurrentRuntime().Wait(ids, num, timeout_ms);
  WaitResult<T> out;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (ready[i] && out.ready.size() < static_cast<size_t>(num)) {
      out.ready.push_back(refs[i]);
    } else {
      out.unready.push_back(refs[i]);
    }
  }
  return out;
}

}  // namespace raympi
