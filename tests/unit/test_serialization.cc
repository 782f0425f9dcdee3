#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "raympi/errors.h"
#include "raympi/serialization.h"

namespace raympi {
namespace {

using internal::Deserialize;
using internal::Serialize;
using internal::TypeName;

// Trivially copyable, no serialize(): raw bytes.
struct Pod {
  int32_t id;
  double weight;
  char tag;
};

// Has serialize(): goes through cereal.
struct Record {
  std::string name;
  std::vector<int> ids;
  std::map<std::string, double> scores;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, ids, scores);
  }
};

// Trivially copyable but with its own serialize(): the serializer wins over memcpy, so the skipped
// field does not travel.
struct PodWithSerialize {
  int kept = 0;
  int dropped = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(kept);
  }
};

template <class T>
T RoundTrip(const T& value) {
  return Deserialize<T>(Serialize(value));
}

TEST(SerializationTest, ScalarsRoundTrip) {
  EXPECT_EQ(RoundTrip(42), 42);
  EXPECT_EQ(RoundTrip(-7LL), -7LL);
  EXPECT_EQ(RoundTrip(3.25), 3.25);
  EXPECT_EQ(RoundTrip(std::numeric_limits<double>::max()), std::numeric_limits<double>::max());
  EXPECT_EQ(RoundTrip(true), true);
  EXPECT_EQ(Serialize(42).size(), sizeof(int));
}

// Scalars skip cereal's stream; their bytes must stay what cereal writes (a value inside a
// cereal-encoded struct and a value on its own decode alike).
template <class T>
std::string CerealBytes(const T& value) {
  std::ostringstream stream;
  {
    cereal::BinaryOutputArchive archive(stream);
    archive(value);
  }
  return stream.str();
}

enum class Colour : int16_t { kRed = 1, kBlue = 300 };

TEST(SerializationTest, ScalarsEncodeAsCerealDoes) {
  EXPECT_EQ(Serialize(42), CerealBytes(42));
  EXPECT_EQ(Serialize(-7LL), CerealBytes(-7LL));
  EXPECT_EQ(Serialize(3.25), CerealBytes(3.25));
  EXPECT_EQ(Serialize(2.5f), CerealBytes(2.5f));
  EXPECT_EQ(Serialize(true), CerealBytes(true));
  EXPECT_EQ(Serialize('x'), CerealBytes('x'));
  EXPECT_EQ(Serialize(uint64_t{1} << 40), CerealBytes(uint64_t{1} << 40));
  EXPECT_EQ(Serialize(Colour::kBlue), CerealBytes(Colour::kBlue));
  EXPECT_EQ(RoundTrip(Colour::kBlue), Colour::kBlue);
}

TEST(SerializationTest, ScalarOfTheWrongSizeThrows) {
  EXPECT_THROW(Deserialize<int>(std::string(3, '\0')), SerializationError);
  EXPECT_THROW(Deserialize<int>(std::string(5, '\0')), SerializationError);
  EXPECT_THROW(Deserialize<double>(std::string()), SerializationError);
  EXPECT_THROW(Deserialize<Colour>(std::string(1, '\0')), SerializationError);
}

TEST(SerializationTest, StringsRoundTrip) {
  EXPECT_EQ(RoundTrip(std::string()), "");
  EXPECT_EQ(RoundTrip(std::string("hello")), "hello");
  std::string binary("a\0b\xff", 4);
  EXPECT_EQ(RoundTrip(binary), binary);
  EXPECT_EQ(Serialize(std::string("hello")).size(), 8u + 5u);
}

TEST(SerializationTest, LargeDoubleVectorUsesFastPath) {
  const size_t n = size_t{1} << 20;
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<double>(i) * 0.5;
  const std::string bytes = Serialize(v);
  EXPECT_EQ(bytes.size(), 8 + n * sizeof(double));
  EXPECT_EQ(Deserialize<std::vector<double>>(bytes), v);
}

TEST(SerializationTest, EmptyVectorRoundTrips) {
  EXPECT_EQ(Serialize(std::vector<double>()).size(), 8u);
  EXPECT_TRUE(RoundTrip(std::vector<double>()).empty());
}

TEST(SerializationTest, VectorOfPodWithoutSerializeIsRawBytes) {
  std::vector<Pod> v = {{1, 0.5, 'a'}, {2, 1.5, 'b'}, {3, -2.0, 'c'}};
  const std::string bytes = Serialize(v);
  EXPECT_EQ(bytes.size(), 8 + v.size() * sizeof(Pod));
  auto back = Deserialize<std::vector<Pod>>(bytes);
  ASSERT_EQ(back.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(back[i].id, v[i].id);
    EXPECT_EQ(back[i].weight, v[i].weight);
    EXPECT_EQ(back[i].tag, v[i].tag);
  }
}

TEST(SerializationTest, SinglePodIsRawBytes) {
  Pod p{9, 2.5, 'z'};
  const std::string bytes = Serialize(p);
  EXPECT_EQ(bytes.size(), sizeof(Pod));
  Pod back = Deserialize<Pod>(bytes);
  EXPECT_EQ(back.id, 9);
  EXPECT_EQ(back.weight, 2.5);
  EXPECT_EQ(back.tag, 'z');
}

TEST(SerializationTest, VectorOfBoolGoesThroughCereal) {
  std::vector<bool> v = {true, false, true, true};
  EXPECT_EQ(RoundTrip(v), v);
}

TEST(SerializationTest, MapOfVectorsRoundTrips) {
  std::map<std::string, std::vector<int>> m = {{"a", {1, 2, 3}}, {"b", {}}, {"c", {-1}}};
  EXPECT_EQ(RoundTrip(m), m);
}

TEST(SerializationTest, OtherStdTypesRoundTrip) {
  std::tuple<int, std::string, std::optional<double>> t{1, "x", std::nullopt};
  EXPECT_EQ(RoundTrip(t), t);
  std::vector<std::string> strings = {"a", "", "ccc"};
  EXPECT_EQ(RoundTrip(strings), strings);
}

TEST(SerializationTest, UserStructWithSerializeRoundTrips) {
  Record r{"run-1", {4, 5, 6}, {{"loss", 0.25}, {"acc", 0.9}}};
  Record back = RoundTrip(r);
  EXPECT_EQ(back.name, r.name);
  EXPECT_EQ(back.ids, r.ids);
  EXPECT_EQ(back.scores, r.scores);
}

TEST(SerializationTest, UserSerializeWinsOverMemcpy) {
  PodWithSerialize p{1, 2};
  PodWithSerialize back = RoundTrip(p);
  EXPECT_EQ(back.kept, 1);
  EXPECT_EQ(back.dropped, 0);
  std::vector<PodWithSerialize> v = {p, p};
  auto vback = RoundTrip(v);
  ASSERT_EQ(vback.size(), 2u);
  EXPECT_EQ(vback[1].kept, 1);
  EXPECT_EQ(vback[1].dropped, 0);
}

// Every strict prefix of a valid encoding must be rejected, never read past the end.
template <class T>
void ExpectEveryTruncationThrows(const T& value) {
  const std::string bytes = Serialize(value);
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_THROW(Deserialize<T>(std::string_view(bytes.data(), len)), SerializationError)
        << TypeName<T>() << " truncated to " << len << " of " << bytes.size() << " bytes";
  }
}

// A chunk of a map (TaskCaller::Map) returns its results as an 8-byte count followed by each
// result encoded alone (CoreWorker::RunCalls); the caller decodes that as std::vector<R>. So the
// two must agree for every kind of R.
template <class R>
std::string AsMapChunk(const std::vector<R>& results) {
  const uint64_t n = results.size();
  std::string out(reinterpret_cast<const char*>(&n), sizeof(n));
  for (const R& r : results) out += Serialize<R>(r);
  return out;
}

TEST(SerializationTest, AMapChunksResultsAreTheVectorOfThem) {
  EXPECT_EQ(AsMapChunk(std::vector<int>{1, -2, 3}), Serialize(std::vector<int>{1, -2, 3}));
  EXPECT_EQ(AsMapChunk(std::vector<double>{0.5, 2}), Serialize(std::vector<double>{0.5, 2}));
  EXPECT_EQ(AsMapChunk(std::vector<bool>{true, false}), Serialize(std::vector<bool>{true, false}));
  EXPECT_EQ(AsMapChunk(std::vector<std::string>{"a", "", "ccc"}),
            Serialize(std::vector<std::string>{"a", "", "ccc"}));
  const std::vector<Pod> pods{{1, 2.5, 'x'}, {3, 4.5, 'y'}};
  EXPECT_EQ(AsMapChunk(pods), Serialize(pods));
  const std::vector<Record> records{{"r", {1, 2}, {{"s", 1.5}}}, {"", {}, {}}};
  EXPECT_EQ(AsMapChunk(records), Serialize(records));
  const std::vector<std::vector<double>> nested{{1, 2}, {}, {3}};
  EXPECT_EQ(AsMapChunk(nested), Serialize(nested));
  const std::vector<std::map<std::string, int>> maps{{{"a", 1}}, {}};
  EXPECT_EQ(AsMapChunk(maps), Serialize(maps));
  const std::vector<std::tuple<int, std::string>> tuples{{1, "a"}, {2, "bb"}};
  EXPECT_EQ(AsMapChunk(tuples), Serialize(tuples));
  const std::vector<PodWithSerialize> own{{1, 9}, {2, 9}};
  EXPECT_EQ(AsMapChunk(own), Serialize(own));
  EXPECT_EQ(AsMapChunk(std::vector<int>{}), Serialize(std::vector<int>{}));
}

TEST(SerializationTest, TruncatedBytesThrow) {
  ExpectEveryTruncationThrows(12345);
  ExpectEveryTruncationThrows(2.5);
  ExpectEveryTruncationThrows(std::string("hello"));
  ExpectEveryTruncationThrows(std::vector<double>{1, 2, 3});
  ExpectEveryTruncationThrows(std::vector<Pod>{{1, 2, 'x'}});
  ExpectEveryTruncationThrows(Pod{1, 2, 'x'});
  ExpectEveryTruncationThrows(std::map<std::string, std::vector<int>>{{"k", {1, 2}}});
  ExpectEveryTruncationThrows(Record{"n", {1}, {{"s", 1.0}}});
}

template <class T>
void ExpectTrailingBytesThrow(const T& value) {
  const std::string bytes = Serialize(value) + "junk";
  EXPECT_THROW(Deserialize<T>(bytes), SerializationError) << TypeName<T>();
}

TEST(SerializationTest, TrailingBytesThrow) {
  ExpectTrailingBytesThrow(7);
  ExpectTrailingBytesThrow(std::string("hello"));
  ExpectTrailingBytesThrow(std::vector<double>{1, 2});
  ExpectTrailingBytesThrow(Pod{1, 2, 'x'});
  ExpectTrailingBytesThrow(std::map<std::string, std::vector<int>>{{"k", {1}}});
  ExpectTrailingBytesThrow(Record{"n", {1}, {}});
}

TEST(SerializationTest, HugeLengthPrefixThrows) {
  // A corrupt count must not overflow count * sizeof(double) or allocate.
  std::string bytes(8, '\xff');
  bytes += std::string(16, '\0');
  EXPECT_THROW(Deserialize<std::vector<double>>(bytes), SerializationError);
  EXPECT_THROW(Deserialize<std::string>(bytes), SerializationError);
  // Through cereal: the nested vector's size is absurd; resize fails or the read runs short.
  std::string nested(8, '\0');
  nested[0] = 1;                     // one inner vector
  nested += std::string(8, '\x7f');  // with ~2^63 ints
  EXPECT_THROW(Deserialize<std::vector<std::vector<int>>>(nested), SerializationError);
}

TEST(SerializationTest, ErrorNamesTheType) {
  try {
    Deserialize<Record>("x");
    FAIL() << "expected SerializationError";
  } catch (const SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("Record"), std::string::npos) << e.what();
  }
}

// The encoding has no type tag. Reading a string's bytes as vector<double> throws here only
// because the 8-byte count (5) does not match the 5 payload bytes; same-shaped types (an int read
// as a float) silently yield a reinterpreted value.
TEST(SerializationTest, WrongTypeDoesNotCrash) {
  const std::string bytes = Serialize(std::string("hello"));
  EXPECT_THROW(Deserialize<std::vector<double>>(bytes), SerializationError);
  EXPECT_THROW(Deserialize<Record>(bytes), SerializationError);
  EXPECT_NO_THROW(Deserialize<float>(Serialize(1)));
}

TEST(SerializationTest, TypeNameIsReadable) {
  EXPECT_EQ(TypeName<int>(), "int");
  EXPECT_EQ(TypeName<int>(), TypeName<int>());
  EXPECT_NE(TypeName<int>(), TypeName<double>());
}

}  // namespace
}  // namespace raympi
