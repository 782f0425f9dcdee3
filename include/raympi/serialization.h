// Byte encoding of task arguments, return values and objects put into the object store.
//
// Encoding, chosen per type at compile time:
//  - std::vector<T> of a trivially copyable T without its own serializer (doubles, ints, plain
//    structs), and std::string: 8-byte element count + the raw elements (one memcpy). This is the
//    same layout cereal's binary archive produces for these types, just without the stream.
//  - numbers and enums: their bytes, again as cereal writes them, without the stream.
//  - anything cereal can serialize (arithmetic, std containers, types with serialize(Archive&)):
//    cereal's portable-within-one-architecture binary archive.
//  - a trivially copyable T without a serializer (a POD struct): its raw bytes.
// Everything is in native byte order: all ranks of one job run the same binary on the same
// architecture.
//
// @code
//   struct Point { double x, y; };                       // POD: raw bytes, no serializer needed
//   struct Named {
//     std::string name; std::vector<int> ids;
//     template <class Archive> void serialize(Archive& ar) { ar(name, ids); }
//   };
//   std::string bytes = raympi::internal::Serialize(std::vector<Point>{{1, 2}, {3, 4}});
//   auto points = raympi::internal::Deserialize<std::vector<Point>>(bytes);
//   auto named = raympi::internal::Deserialize<Named>(raympi::internal::Serialize(Named{"a",
//   {1}}));
// @endcode
#pragma once

#include <array>
#include <cereal/archives/binary.hpp>
#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/common.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <streambuf>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#if defined(__GNUG__)
#include <cxxabi.h>
#endif

#include "raympi/errors.h"

namespace raympi::internal {

template <class T>
std::string TypeName();

namespace serialization_detail {

// "cereal has some serializer for T". Counted rather than is_output_serializable (== 1) so that a
// type with two ambiguous serializers still goes to cereal and gets cereal's own diagnostic.
template <class T>
inline constexpr bool kHasCerealSave =
    cereal::traits::detail::count_output_serializers<T, cereal::BinaryOutputArchive>::value > 0;
template <class T>
inline constexpr bool kHasCerealLoad =
    cereal::traits::detail::count_input_serializers<T, cereal::BinaryInputArchive>::value > 0;

// cereal declares its container serializers for any element type and only fails deep inside
// the instantiation; look into the std types we include so a bad element gets our message.
template <class T>
struct CerealOk : std::bool_constant<kHasCerealSave<T> && !std::is_pointer_v<T> &&
                                     !std::is_member_pointer_v<T>> {};
template <class T>
inline constexpr bool kCerealOk = CerealOk<T>::value;

template <class T, class A>
struct CerealOk<std::vector<T, A>> : std::bool_constant<kCerealOk<T>> {};
template <class K, class V, class C, class A>
struct CerealOk<std::map<K, V, C, A>> : std::bool_constant<kCerealOk<K> && kCerealOk<V>> {};
template <class K, class V, class H, class E, class A>
struct CerealOk<std::unordered_map<K, V, H, E, A>>
    : std::bool_constant<kCerealOk<K> && kCerealOk<V>> {};
template <class K, class C, class A>
struct CerealOk<std::set<K, C, A>> : std::bool_constant<kCerealOk<K>> {};
template <class A, class B>
struct CerealOk<std::pair<A, B>> : std::bool_constant<kCerealOk<A> && kCerealOk<B>> {};
template <class... Ts>
struct CerealOk<std::tuple<Ts...>> : std::bool_constant<(kCerealOk<Ts> && ...)> {};
template <class... Ts>
struct CerealOk<std::variant<Ts...>> : std::bool_constant<(kCerealOk<Ts> && ...)> {};
template <class T, size_t N>
struct CerealOk<std::array<T, N>> : std::bool_constant<kCerealOk<T>> {};
template <class T>
struct CerealOk<std::optional<T>> : std::bool_constant<kCerealOk<T>> {};
template <class T>
struct CerealOk<std::shared_ptr<T>> : std::bool_constant<kCerealOk<T>> {};
template <class T, class D>
struct CerealOk<std::unique_ptr<T, D>> : std::bool_constant<kCerealOk<T>> {};

// Raw memcpy is only meaningful when the bytes are the whole value; a user-written serialize()
// wins over memcpy because it may skip or transform fields.
template <class T>
inline constexpr bool kIsRaw =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
    !std::is_array_v<T> && !kHasCerealSave<T>;

// Numbers and enums: their encoding is their bytes, as in cereal's binary archive.
template <class T>
inline constexpr bool kIsScalar = std::is_arithmetic_v<T> || std::is_enum_v<T>;

// Element types the contiguous fast path copies with one memcpy. bool is excluded because
// std::vector<bool> is bit-packed, not contiguous.
template <class T>
inline constexpr bool kIsFastElement =
    !std::is_same_v<T, bool> && std::is_trivially_copyable_v<T> &&
    std::is_default_constructible_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
    (std::is_arithmetic_v<T> || std::is_enum_v<T> || !kHasCerealSave<T>);

template <class T>
struct FastContainer : std::false_type {};
template <class T>
struct FastContainer<std::vector<T, std::allocator<T>>> : std::bool_constant<kIsFastElement<T>> {};
template <>
struct FastContainer<std::string> : std::true_type {};

template <class T>
inline constexpr bool kIsFastContainer = FastContainer<T>::value;

using Count = std::uint64_t;

// Appends to a std::string so Serialize needs no extra copy out of an ostringstream.
class StringSink : public std::streambuf {
 public:
  explicit StringSink(std::string& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.append(s, static_cast<size_t>(n));
    return n;
  }
  int_type overflow(int_type ch) override {
    if (!traits_type::eq_int_type(ch, traits_type::eof()))
      out_.push_back(traits_type::to_char_type(ch));
    return traits_type::not_eof(ch);
  }

 private:
  std::string& out_;
};

// Reads from a string_view without copying it; never reads past its end (sgetn returns short).
class ViewSource : public std::streambuf {
 public:
  explicit ViewSource(std::string_view bytes) {
    // The get area is never written through; streambuf just wants char*.
    char* begin = const_cast<char*>(bytes.data());
    setg(begin, begin, begin + bytes.size());
  }
  size_t remaining() const { return static_cast<size_t>(egptr() - gptr()); }
};

inline std::string Demangle(const char* mangled) {
#if defined(__GNUG__)
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  if (status == 0 && demangled) return demangled.get();
#endif
  return mangled;
}

[[noreturn]] inline void Fail(const std::string& type, const std::string& why) {
  throw SerializationError("cannot deserialize " + type + ": " + why);
}

// A value whose encoding is exactly its sizeof(T) bytes.
template <class T>
T ReadScalar(std::string_view bytes) {
  if (bytes.size() != sizeof(T)) {
    Fail(TypeName<T>(),
         "expected " + std::to_string(sizeof(T)) + " bytes, got " + std::to_string(bytes.size()));
  }
  T value;
  std::memcpy(&value, bytes.data(), sizeof(T));
  return value;
}

template <class T>
constexpr void CheckSerializable() {
  static_assert(!std::is_void_v<T>, "void cannot be serialized");
  static_assert(!std::is_pointer_v<T> && !std::is_member_pointer_v<T>,
                "raympi: pointers cannot be serialized; their targets do not exist in another "
                "process. Pass the pointed-to value instead.");
  // Trivially copyable elements are memcpy'd only directly inside a top-level std::vector; inside
  // other containers cereal needs a serialize() for them.
  static_assert(kIsFastContainer<T> || kIsRaw<T> || kCerealOk<T> || std::is_pointer_v<T> ||
                    std::is_member_pointer_v<T>,
                "raympi: the type has no serializer; add a serialize(Archive&) member (cereal) or "
                "make it trivially copyable. (Elements of std containers other than a top-level "
                "std::vector need serialize(Archive&) even when trivially copyable.)");
}

template <class Container>
void AppendContiguous(const Container& c, std::string& out) {
  using Elem = typename Container::value_type;
  const Count n = c.size();
  out.resize(sizeof(Count) + c.size() * sizeof(Elem));
  std::memcpy(out.data(), &n, sizeof(Count));
  // data() may be null for an empty vector, and memcpy(null, 0) is undefined.
  if (!c.empty()) std::memcpy(out.data() + sizeof(Count), c.data(), c.size() * sizeof(Elem));
}

template <class Container>
Container ReadContiguous(std::string_view bytes) {
  using Elem = typename Container::value_type;
  if (bytes.size() < sizeof(Count)) {
    Fail(TypeName<Container>(), "need at least " + std::to_string(sizeof(Count)) +
                                    " bytes for the element count, got " +
                                    std::to_string(bytes.size()));
  }
  Count n = 0;
  std::memcpy(&n, bytes.data(), sizeof(Count));
  const size_t payload = bytes.size() - sizeof(Count);
  // Compare by division so a corrupt count cannot overflow n * sizeof(Elem).
  if (payload % sizeof(Elem) != 0 || payload / sizeof(Elem) != n) {
    Fail(TypeName<Container>(), "element count " + std::to_string(n) + " does not match " +
                                    std::to_string(payload) + " payload bytes");
  }
  // Built from the range in one pass: resize-then-copy would also zero-fill every page first.
  if (n == 0) return Container();
  if constexpr (std::is_same_v<Container, std::string>) {
    return Container(bytes.data() + sizeof(Count), payload);
  } else {
    const Elem* first = reinterpret_cast<const Elem*>(bytes.data() + sizeof(Count));
    if (reinterpret_cast<std::uintptr_t>(first) % alignof(Elem) == 0) {
      return Container(first, first + n);
    }
    Container c;  // unaligned bytes (an inline value at an odd offset): copy bytewise
    c.resize(static_cast<size_t>(n));
    std::memcpy(c.data(), bytes.data() + sizeof(Count), payload);
    return c;
  }
}

}  // namespace serialization_detail

// Name of T for error messages. Stable within one binary (not across compilers).
template <class T>
std::string TypeName() {
  static const std::string name = serialization_detail::Demangle(typeid(T).name());
  return name;
}

template <class T>
std::string Serialize(const T& value) {
  namespace d = serialization_detail;
  d::CheckSerializable<T>();
  std::string out;
  if constexpr (d::kIsScalar<T>) {
    // cereal's binary archive writes exactly these bytes; a stream per value costs ~0.1 us.
    out.resize(sizeof(T));
    std::memcpy(out.data(), &value, sizeof(T));
  } else if constexpr (d::kIsFastContainer<T>) {
    d::AppendContiguous(value, out);
  } else if constexpr (d::kCerealOk<T>) {
    d::StringSink sink(out);
    std::ostream stream(&sink);
    cereal::BinaryOutputArchive archive(stream);
    archive(value);
  } else if constexpr (d::kIsRaw<T>) {
    out.resize(sizeof(T));
    std::memcpy(out.data(), &value, sizeof(T));
  }
  return out;
}

// Types whose encoding can be written straight into a buffer of a known size (the store):
// vectors of plain elements and strings. Their bytes are an 8-byte count and the elements.
template <class T>
inline constexpr bool kWritesInPlace = serialization_detail::kIsFastContainer<T>;

template <class T>
size_t InPlaceSize(const T& value) {
  static_assert(kWritesInPlace<T>);
  return sizeof(serialization_detail::Count) + value.size() * sizeof(typename T::value_type);
}

// Writes exactly InPlaceSize(value) bytes to `out`.
template <class T>
void SerializeInPlace(const T& value, char* out) {
  static_assert(kWritesInPlace<T>);
  const serialization_detail::Count n = value.size();
  std::memcpy(out, &n, sizeof(n));
  if (!value.empty()) {
    std::memcpy(out + sizeof(n), value.data(), value.size() * sizeof(typename T::value_type));
  }
}

// Throws SerializationError if bytes are not exactly one encoded T (truncated, trailing bytes,
// corrupt length prefixes). Never reads outside bytes. Bytes of a different type of the same shape
// (e.g. an int read as a float) are not detected: the encoding carries no type tag.
template <class T>
T Deserialize(std::string_view bytes) {
  namespace d = serialization_detail;
  static_assert(!std::is_reference_v<T> && !std::is_const_v<T> && !std::is_array_v<T>,
                "Deserialize<T>: T must be a plain value type");
  d::CheckSerializable<T>();
  static_assert(std::is_default_constructible_v<T>,
                "raympi: Deserialize needs a default-constructible type");
  if constexpr (d::kIsScalar<T>) {
    return d::ReadScalar<T>(bytes);
  } else if constexpr (d::kIsFastContainer<T>) {
    return d::ReadContiguous<T>(bytes);
  } else if constexpr (d::kCerealOk<T>) {
    static_assert(d::kHasCerealLoad<T>,
                  "raympi: the type can be saved but not loaded; add a load(Archive&) to match "
                  "save(Archive&), or use serialize(Archive&)");
    d::ViewSource source(bytes);
    std::istream stream(&source);
    T value{};
    try {
      cereal::BinaryInputArchive archive(stream);
      archive(value);
    } catch (const SerializationError&) {
      throw;
    } catch (const std::exception& e) {
      // cereal::Exception on short reads; length_error/bad_alloc from a corrupt length prefix.
      d::Fail(TypeName<T>(), e.what());
    }
    if (source.remaining() != 0) {
      d::Fail(TypeName<T>(),
              std::to_string(source.remaining()) + " trailing bytes after the value");
    }
    return value;
  } else {
    return d::ReadScalar<T>(bytes);
  }
}

}  // namespace raympi::internal
