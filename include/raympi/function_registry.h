// Registry of remote functions, filled at static-initialisation time by RAYMPI_REMOTE (Ray's
// RAY_REMOTE). Every rank runs the same binary, so a function's registered name is how a task
// names its code across processes: the caller maps pointer -> name, the executor name -> invoker.
//
// @code
//   int Square(int x) { return x * x; }
//   double Sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
//   RAYMPI_REMOTE(Square, Sum);
//
//   auto& registry = raympi::internal::FunctionRegistry::Instance();
//   const auto* info = registry.FindByPointer(&Square);        // info->name == "Square"
//   std::string arg = raympi::internal::Serialize(7);
//   std::string result = registry.FindByName("Square")->invoker({arg});
//   int squared = raympi::internal::Deserialize<int>(result);   // 49
// @endcode
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "raympi/errors.h"
#include "raympi/serialization.h"

namespace raympi::internal {

// Runs the function on serialized arguments (one string per argument, each encoded with
// Serialize<std::decay_t<Param_i>>) and returns the serialized result ("" for void).
// Throws whatever the function throws; throws SerializationError on bad argument bytes.
using Invoker = std::function<std::string(const std::vector<std::string_view>& args)>;

// Actors (raympi/actor.h): a factory makes an instance from serialized arguments; a method
// runs on an instance.
using Factory = std::function<std::shared_ptr<void>(const std::vector<std::string_view>& args)>;
using MethodInvoker =
    std::function<std::string(void* instance, const std::vector<std::string_view>& args)>;

struct FunctionInfo {
  std::string name;
  size_t arity;
  Invoker invoker;         // free functions
  Factory factory;         // actor factories (a free function returning T*)
  MethodInvoker method;    // actor methods (&T::Method)
  std::string class_name;  // factories and methods: TypeName<T>()
};

template <class F>
struct FunctionTraits;

template <class R, class... Ps>
struct FunctionTraits<R(Ps...)> {
  using Return = R;
  using Args = std::tuple<std::decay_t<Ps>...>;
  // Undecayed, to pass each argument the way the parameter takes it.
  using Params = std::tuple<Ps...>;
  static constexpr size_t kArity = sizeof...(Ps);
  template <size_t I>
  using Arg = std::tuple_element_t<I, Args>;
};
template <class R, class... Ps>
struct FunctionTraits<R(Ps...) noexcept> : FunctionTraits<R(Ps...)> {};
template <class R, class... Ps>
struct FunctionTraits<R (*)(Ps...)> : FunctionTraits<R(Ps...)> {};
template <class R, class... Ps>
struct FunctionTraits<R (*)(Ps...) noexcept> : FunctionTraits<R(Ps...)> {};
// Member functions (actor methods): Class is the actor's class.
template <class R, class C, class... Ps>
struct FunctionTraits<R (C::*)(Ps...)> : FunctionTraits<R(Ps...)> {
  using Class = C;
};
template <class R, class C, class... Ps>
struct FunctionTraits<R (C::*)(Ps...) const> : FunctionTraits<R(Ps...)> {
  using Class = C;
};
template <class R, class C, class... Ps>
struct FunctionTraits<R (C::*)(Ps...) noexcept> : FunctionTraits<R(Ps...)> {
  using Class = C;
};
template <class R, class C, class... Ps>
struct FunctionTraits<R (C::*)(Ps...) const noexcept> : FunctionTraits<R(Ps...)> {
  using Class = C;
};

namespace registry_detail {

template <class F>
inline constexpr bool kIsFunctionPointer =
    std::is_pointer_v<F>&& std::is_function_v<std::remove_pointer_t<F>>;

// Identity of a callable by its bytes: works for function pointers now and for member-function
// pointers (which are wider than void*) when actors need them.
template <class F>
std::string PointerKey(F fn) {
  static_assert(std::is_trivially_copyable_v<F>);
  return std::string(reinterpret_cast<const char*>(&fn), sizeof(F));
}

// Non-const lvalue-reference parameters bind to the decoded value; everything else takes it by
// move so by-value parameters do not copy large arguments.
template <class Param, class Value>
decltype(auto) PassAs(Value& v) {
  if constexpr (std::is_lvalue_reference_v<Param> &&
                !std::is_const_v<std::remove_reference_t<Param>>) {
    return (v);
  } else {
    return std::move(v);
  }
}

template <class F>
inline constexpr bool kIsMemberFunction = std::is_member_function_pointer_v<F>;

// A free function returning a pointer to a class: an actor factory.
template <class F>
constexpr bool IsFactory() {
  if constexpr (kIsFunctionPointer<F>) {
    using R = typename FunctionTraits<F>::Return;
    return std::is_pointer_v<R> && std::is_class_v<std::remove_pointer_t<R>>;
  } else {
    return false;
  }
}

// Decodes the arguments as F's parameters and calls `call` with them; returns what it returns.
template <class F, class Call, size_t... I>
decltype(auto) CallDecoded(const std::string& name, const std::vector<std::string_view>& args,
                           std::index_sequence<I...>, const Call& call) {
  using Traits = FunctionTraits<F>;
  if (args.size() != Traits::kArity) {
    throw Error("function " + name + " expects " + std::to_string(Traits::kArity) +
                " arguments, got " + std::to_string(args.size()));
  }
  // Braced init decodes left to right, so the first bad argument is the one reported.
  [[maybe_unused]]
  typename Traits::Args decoded{Deserialize<typename Traits::template Arg<I>>(args[I])...};
  using Params = typename Traits::Params;
  return call(PassAs<std::tuple_element_t<I, Params>>(std::get<I>(decoded))...);
}

// Calls `call` on decoded arguments and serializes its result ("" for void).
template <class F, class Call>
std::string InvokeWith(const std::string& name, const std::vector<std::string_view>& args,
                       const Call& call) {
  using Traits = FunctionTraits<F>;
  auto seq = std::make_index_sequence<Traits::kArity>{};
  if constexpr (std::is_void_v<typename Traits::Return>) {
    CallDecoded<F>(name, args, seq, call);
    return {};
  } else {
    return Serialize<std::decay_t<typename Traits::Return>>(CallDecoded<F>(name, args, seq, call));
  }
}

template <class F, size_t... I>
std::string Invoke(F fn, const std::string& name, const std::vector<std::string_view>& args,
                   std::index_sequence<I...>) {
  return InvokeWith<F>(name, args, [fn](auto&&... a) -> decltype(auto) {
    return fn(std::forward<decltype(a)>(a)...);
  });
}

// Splits the stringized RAYMPI_REMOTE arguments at top-level commas (a template-id such as
// Foo<int, double> is one name), trimming spaces and a leading '&'.
inline std::vector<std::string> SplitFunctionNames(std::string_view names) {
  std::vector<std::string> out;
  auto flush = [&out](std::string_view part) {
    const auto first = part.find_first_not_of(" \t\n\r");
    part = first == std::string_view::npos ? std::string_view() : part.substr(first);
    const auto last = part.find_last_not_of(" \t\n\r");
    part = part.substr(0, last == std::string_view::npos ? 0 : last + 1);
    if (!part.empty() && part.front() == '&') {
      part.remove_prefix(1);
      const auto next = part.find_first_not_of(" \t\n\r");
      part.remove_prefix(next == std::string_view::npos ? part.size() : next);
    }
    out.emplace_back(part);
  };
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const char c = names[i];
    if (c == '<' || c == '(' || c == '[') ++depth;
    if ((c == '>' || c == ')' || c == ']') && depth > 0) --depth;
    if (c == ',' && depth == 0) {
      flush(names.substr(start, i - start));
      start = i + 1;
    }
  }
  flush(names.substr(start));
  return out;
}

}  // namespace registry_detail

class FunctionRegistry {
 public:
  // Meyers singleton: constructed on first use, so RAYMPI_REMOTE initialisers in any translation
  // unit can register regardless of static-initialisation order.
  static FunctionRegistry& Instance() {
    static FunctionRegistry registry;
    return registry;
  }

  FunctionRegistry() = default;
  FunctionRegistry(const FunctionRegistry&) = delete;
  FunctionRegistry& operator=(const FunctionRegistry&) = delete;

  // fn must be a free function pointer, or a member function pointer (an actor method, e.g.
  // &Counter::Add). A free function returning T* (T a class) is an actor factory. A name already
  // taken by another function keeps its first function and the clash is recorded in
  // Conflicts(); re-registering the same pair is a no-op.
  template <class F>
  void Register(std::string name, F fn) {
    static_assert(registry_detail::kIsFunctionPointer<F> || registry_detail::kIsMemberFunction<F>,
                  "raympi: RAYMPI_REMOTE / Register take free functions and actor methods "
                  "(&Class::Method), not lambdas or functors");
    if constexpr (registry_detail::kIsMemberFunction<F>) {
      using Traits = FunctionTraits<F>;
      using Class = typename Traits::Class;
      FunctionInfo info{name, Traits::kArity, nullptr, nullptr, nullptr, TypeName<Class>()};
      info.method = [fn, name](void* instance, const std::vector<std::string_view>& args) {
        Class* object = static_cast<Class*>(instance);
        return registry_detail::InvokeWith<F>(
            name, args, [fn, object](auto&&... a) -> decltype(auto) {
              return (object->*fn)(std::forward<decltype(a)>(a)...);
            });
      };
      Add(std::move(info), registry_detail::PointerKey(fn));
    } else if constexpr (registry_detail::IsFactory<F>()) {
      using Traits = FunctionTraits<F>;
      using Class = std::remove_pointer_t<typename Traits::Return>;
      FunctionInfo info{name, Traits::kArity, nullptr, nullptr, nullptr, TypeName<Class>()};
      info.factory = [fn, name](const std::vector<std::string_view>& args) {
        Class* object = registry_detail::CallDecoded<F>(
            name, args, std::make_index_sequence<Traits::kArity>{},
            [fn](auto&&... a) { return fn(std::forward<decltype(a)>(a)...); });
        if (object == nullptr) throw Error("actor factory " + name + " returned nullptr");
        return std::shared_ptr<void>(std::shared_ptr<Class>(object));
      };
      Add(std::move(info), registry_detail::PointerKey(fn));
    } else if constexpr (registry_detail::kIsFunctionPointer<F>) {
      using Traits = FunctionTraits<F>;
      Invoker invoker = [fn, name](const std::vector<std::string_view>& args) {
        return registry_detail::Invoke(fn, name, args, std::make_index_sequence<Traits::kArity>{});
      };
      Add(FunctionInfo{std::move(name), Traits::kArity, std::move(invoker), nullptr, nullptr, {}},
          registry_detail::PointerKey(fn));
    }
  }

  // nullptr if no function has this name.
  const FunctionInfo* FindByName(std::string_view name) const {
    std::shared_lock lock(mutex_);
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &it->second.info;
  }

  // nullptr if fn was never registered.
  template <class F>
  const FunctionInfo* FindByPointer(F fn) const {
    const std::string key = registry_detail::PointerKey(fn);
    std::shared_lock lock(mutex_);
    auto it = by_pointer_.find(key);
    return it == by_pointer_.end() ? nullptr : it->second;
  }

  // Human-readable descriptions of rejected registrations (name clashes, unparsable macro
  // arguments), so the runtime can explain a later "function not found".
  std::vector<std::string> Conflicts() const {
    std::shared_lock lock(mutex_);
    return conflicts_;
  }

  void RecordConflict(std::string description) {
    std::unique_lock lock(mutex_);
    conflicts_.push_back(std::move(description));
  }

 private:
  struct Entry {
    FunctionInfo info;
    std::string key;  // PointerKey of the function, to tell a re-registration from a clash
  };

  void Add(FunctionInfo info, std::string key) {
    std::unique_lock lock(mutex_);
    const std::string name = info.name;
    auto [it, inserted] = by_name_.try_emplace(name, Entry{std::move(info), key});
    if (!inserted) {
      if (it->second.key != key) {
        conflicts_.push_back("function name " + name +
                             " registered for two different functions; keeping the first");
      }
      return;
    }
    // One function under several names (e.g. with and without a namespace qualifier): the first
    // name is the one callers send.
    by_pointer_.try_emplace(std::move(key), &it->second.info);
  }

  mutable std::shared_mutex mutex_;
  // std::map: node-based, so FunctionInfo pointers handed out stay valid; std::less<> allows
  // lookup by string_view.
  std::map<std::string, Entry, std::less<>> by_name_;
  std::unordered_map<std::string, const FunctionInfo*> by_pointer_;
  std::vector<std::string> conflicts_;
};

// Registers each function under its name from the stringized macro arguments, e.g.
// RegisterFunctions("Square, &Scale", Square, &Scale). Returns true (it initialises a static), or
// false if the names could not be matched to the functions (recorded in Conflicts()).
template <class... Fs>
bool RegisterFunctions(const char* names, Fs... fns) {
  std::vector<std::string> parsed = registry_detail::SplitFunctionNames(names);
  FunctionRegistry& registry = FunctionRegistry::Instance();
  if (parsed.size() != sizeof...(Fs)) {
    registry.RecordConflict("RAYMPI_REMOTE(" + std::string(names) + "): found " +
                            std::to_string(parsed.size()) + " names for " +
                            std::to_string(sizeof...(Fs)) + " functions; none registered");
    return false;
  }
  size_t i = 0;
  (registry.Register(std::move(parsed[i++]), fns), ...);
  return true;
}

}  // namespace raympi::internal

#define RAYMPI_INTERNAL_CONCAT_IMPL(a, b) a##b
#define RAYMPI_INTERNAL_CONCAT(a, b) RAYMPI_INTERNAL_CONCAT_IMPL(a, b)

// RAYMPI_REMOTE(f1, f2, ...); at namespace scope, after the functions are declared. Registers
// them at static-initialisation time; may appear many times per file and in many files.
#define RAYMPI_REMOTE(...)                                                             \
  [[maybe_unused]] static const bool RAYMPI_INTERNAL_CONCAT(raympi_remote_registered_, \
                                                            __COUNTER__) =             \
      ::raympi::internal::RegisterFunctions(#__VA_ARGS__, __VA_ARGS__)
