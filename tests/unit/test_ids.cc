// ObjectId: binary form, hex form, equality and ordering.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/id_key.h"
#include "common/ids.h"

namespace raympi {
namespace {

ObjectId MakeId(int32_t node, int32_t slot, uint32_t pid, uint32_t index) {
  ObjectId id;
  id.owner_node = node;
  id.owner_slot = slot;
  id.owner_pid = pid;
  id.index = index;
  return id;
}

// A spread of ids, including negative nodes (the GCS is node -1) and extreme values.
std::vector<ObjectId> SampleIds() {
  std::vector<ObjectId> ids;
  for (int32_t node : {-2, -1, 0, 1, 255, 256, INT32_MAX, INT32_MIN}) {
    for (int32_t slot : {0, 1, 127}) {
      for (uint32_t pid : {0u, 1u, 4242u, UINT32_MAX}) {
        for (uint32_t index : {0u, 1u, 256u, UINT32_MAX}) {
          ids.push_back(MakeId(node, slot, pid, index));
        }
      }
    }
  }
  return ids;
}

TEST(ObjectIdTest, BinaryIsSixteenBytes) {
  for (const ObjectId& id : SampleIds()) EXPECT_EQ(id.Binary().size(), ObjectId::kSize);
  EXPECT_EQ(ObjectId::kSize, 16u);
}

TEST(ObjectIdTest, BinaryRoundTrip) {
  for (const ObjectId& id : SampleIds()) {
    StatusOr<ObjectId> back = ObjectId::FromBinary(id.Binary());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->owner_node, id.owner_node);
    EXPECT_EQ(back->owner_slot, id.owner_slot);
    EXPECT_EQ(back->owner_pid, id.owner_pid);
    EXPECT_EQ(back->index, id.index);
    EXPECT_TRUE(*back == id);
    EXPECT_EQ(back->Binary(), id.Binary());
  }
}

TEST(ObjectIdTest, EveryBinaryStringOfTheRightSizeRoundTrips) {
  // Any 16 bytes are an id: FromBinary then Binary gives the same bytes back.
  std::string bytes(ObjectId::kSize, '\0');
  for (int fill = 0; fill < 256; fill += 17) {
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((fill + 31 * i) & 255);
    StatusOr<ObjectId> id = ObjectId::FromBinary(bytes);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    EXPECT_EQ(id->Binary(), bytes);
  }
}

TEST(ObjectIdTest, WrongSizesAreRejected) {
  for (size_t size : {0u, 1u, 8u, 15u, 17u, 32u, 1000u}) {
    std::string bytes(size, 'x');
    StatusOr<ObjectId> id = ObjectId::FromBinary(bytes);
    ASSERT_FALSE(id.ok()) << "size " << size << " was accepted";
    EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument) << id.status().ToString();
    // The message says what was wrong.
    EXPECT_NE(id.status().message().find(std::to_string(size)), std::string::npos)
        << id.status().message();
    EXPECT_NE(id.status().message().find("16"), std::string::npos) << id.status().message();
  }
}

TEST(ObjectIdTest, HexIsThirtyTwoLowercaseHexDigitsOfTheBinary) {
  for (const ObjectId& id : SampleIds()) {
    std::string hex = id.Hex();
    ASSERT_EQ(hex.size(), 32u) << hex;
    for (char c : hex) {
      EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(c)) &&
                  !std::isupper(static_cast<unsigned char>(c)))
          << hex;
    }
    // Decoding the hex gives the binary form back.
    std::string bin = id.Binary();
    for (size_t i = 0; i < bin.size(); ++i) {
      unsigned value = std::stoul(hex.substr(2 * i, 2), nullptr, 16);
      EXPECT_EQ(value, static_cast<unsigned char>(bin[i])) << hex << " byte " << i;
    }
  }
}

TEST(ObjectIdTest, HexOfKnownIds) {
  EXPECT_EQ(ObjectId().Hex(), std::string(32, '0'));
  ObjectId all_ones = MakeId(-1, -1, UINT32_MAX, UINT32_MAX);
  EXPECT_EQ(all_ones.Hex(), std::string(32, 'f'));
}

TEST(ObjectIdTest, DistinctIdsHaveDistinctBinaryAndHex) {
  std::vector<ObjectId> ids = SampleIds();
  std::set<std::string> binaries, hexes;
  for (const ObjectId& id : ids) {
    binaries.insert(id.Binary());
    hexes.insert(id.Hex());
  }
  EXPECT_EQ(binaries.size(), ids.size());
  EXPECT_EQ(hexes.size(), ids.size());
}

TEST(ObjectIdTest, EqualityComparesEveryField) {
  ObjectId a = MakeId(1, 2, 3, 4);
  EXPECT_TRUE(a == MakeId(1, 2, 3, 4));
  EXPECT_FALSE(a == MakeId(9, 2, 3, 4));
  EXPECT_FALSE(a == MakeId(1, 9, 3, 4));
  EXPECT_FALSE(a == MakeId(1, 2, 9, 4));
  EXPECT_FALSE(a == MakeId(1, 2, 3, 9));
}

TEST(ObjectIdTest, OrderingIsAStrictWeakOrderConsistentWithEquality) {
  std::vector<ObjectId> ids = SampleIds();
  for (const ObjectId& a : ids) {
    EXPECT_FALSE(a < a);
    for (const ObjectId& b : ids) {
      bool equivalent = !(a < b) && !(b < a);
      EXPECT_EQ(equivalent, a == b);
      if (a < b) {
        EXPECT_FALSE(b < a);
      }
    }
  }
  // Transitivity, checked on a sorted sequence: sorting must yield a chain where each element is
  // strictly less than every later one.
  std::vector<ObjectId>& sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    for (size_t j = i + 1; j < sorted.size(); ++j) {
      ASSERT_TRUE(sorted[i] < sorted[j]) << sorted[i].Hex() << " vs " << sorted[j].Hex();
    }
  }
}

TEST(ObjectIdTest, UsableAsOrderedKey) {
  std::set<ObjectId> set;
  for (const ObjectId& id : SampleIds()) set.insert(id);
  for (const ObjectId& id : SampleIds()) set.insert(id);  // duplicates are found
  EXPECT_EQ(set.size(), SampleIds().size());
  EXPECT_EQ(set.count(MakeId(1, 1, 4242, 256)), 1u);
  EXPECT_EQ(set.count(MakeId(1, 1, 4242, 257)), 0u);
}

// IdKey: the core worker's fixed-size map key for binary ids (issue 7).
TEST(IdKeyTest, RoundTripsAndKeepsTheFields) {
  for (const ObjectId& id : SampleIds()) {
    IdKey key(id.Binary());
    EXPECT_TRUE(key.valid());
    EXPECT_EQ(key.Binary(), id.Binary());
    EXPECT_EQ(key.ToObjectId(), id);
  }
}

TEST(IdKeyTest, EqualityFollowsTheBytes) {
  for (const ObjectId& a : SampleIds()) {
    for (const ObjectId& b : SampleIds()) {
      EXPECT_EQ(IdKey(a.Binary()) == IdKey(b.Binary()), a == b) << a.Hex() << " " << b.Hex();
      if (a == b) {
        EXPECT_EQ(IdKey(a.Binary()).Hash(), IdKey(b.Binary()).Hash());
      }
    }
  }
}

TEST(IdKeyTest, AStringOfTheWrongSizeIsTheInvalidKeyAndMatchesNoValidId) {
  for (const std::string& bad : {std::string(), std::string(15, 'x'), std::string(17, 'x')}) {
    IdKey key(bad);
    EXPECT_FALSE(key.valid()) << bad.size();
    for (const ObjectId& id : SampleIds()) EXPECT_NE(key, IdKey(id.Binary()));
  }
  std::unordered_map<IdKey, int, IdKeyHash> map;
  for (const ObjectId& id : SampleIds()) map[id.Binary()] = 1;
  EXPECT_EQ(map.count(std::string(3, 'y')), 0u);
}

TEST(IdKeyTest, OneOwnersIdsSpreadOverTheBuckets) {
  // The per-owner counter is what varies in a process's ids: they must not collide in a table.
  std::unordered_set<size_t> buckets;
  constexpr size_t kBuckets = 16384;
  constexpr uint32_t kIds = 10000;
  for (uint32_t i = 1; i <= kIds; ++i) {
    buckets.insert(IdKey(MakeId(0, 1, 4242, i).Binary()).Hash() % kBuckets);
  }
  // Random placement would fill ~7,600 distinct buckets of 16,384 with 10,000 keys.
  EXPECT_GT(buckets.size(), 7000u);
}

}  // namespace
}  // namespace raympi
