// Frames (routing header + envelope) and the resource-set helpers.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/frame.h"
#include "common/resources.h"

namespace raympi {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr size_t kHeader = 8;

rpc::ResourceSet Res(std::initializer_list<std::pair<const char*, double>> amounts) {
  rpc::ResourceSet set;
  for (const auto& [name, value] : amounts) (*set.mutable_amounts())[name] = value;
  return set;
}

rpc::Envelope Base(int dst_node, int dst_slot) {
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(3, 7);
  *e.mutable_dst() = MakeAddress(dst_node, dst_slot);
  e.set_request_id(0x123456789abcULL);
  return e;
}

// Envelopes with different bodies, including a big binary payload and an empty body.
std::vector<rpc::Envelope> SampleEnvelopes() {
  std::vector<rpc::Envelope> out;
  {
    rpc::Envelope e = Base(0, 0);
    e.mutable_request_lease()->set_lease_request_id(42);
    *e.mutable_request_lease()->mutable_resources() = Res({{"CPU", 2}, {"bigmem", 0.5}});
    e.mutable_request_lease()->set_spilled(true);
    out.push_back(e);
  }
  {
    rpc::Envelope e = Base(1, 5);
    e.mutable_lease_reply()->set_lease_request_id(42);
    *e.mutable_lease_reply()->mutable_worker() = MakeAddress(1, 9);
    e.mutable_lease_reply()->set_lease_id(77);
    out.push_back(e);
  }
  {
    rpc::Envelope e = Base(2, 1);
    e.mutable_lease_reply()->set_lease_request_id(43);
    e.mutable_lease_reply()->set_infeasible("no node can ever provide {CPU: 1000}");
    out.push_back(e);
  }
  {
    rpc::Envelope e = Base(0, 3);
    rpc::TaskSpec* spec = e.mutable_push_task()->mutable_spec();
    spec->set_task_id(std::string("\x00\x01\x02\xff", 4));
    spec->set_function("Square");
    spec->add_args()->set_value(std::string(1000, 'v'));
    spec->mutable_args(0)->set_type("int");
    spec->add_args()->set_object_id(std::string(16, '\x07'));
    spec->set_return_id(std::string(16, '\x09'));
    *spec->mutable_owner() = MakeAddress(0, 1);
    *spec->mutable_resources() = Res({{"CPU", 1}});
    spec->set_name("step");
    spec->set_return_type("int");
    e.mutable_push_task()->set_lease_id(77);
    out.push_back(e);
  }
  {
    rpc::Envelope e = Base(0, 1);
    rpc::ObjectValue* v = e.mutable_task_done()->mutable_result();
    v->set_object_id(std::string(16, '\x09'));
    v->set_is_error(true);
    v->set_error_function("Square");
    v->set_error_message("boom");
    out.push_back(e);
  }
  {
    rpc::Envelope e = Base(kGcsNode, 0);
    for (int n = 0; n < 3; ++n) {
      rpc::NodeInfo* info = e.mutable_cluster_view()->add_nodes();
      info->set_node(n);
      info->set_host("host" + std::to_string(n));
      info->set_rank(n * 2);
      *info->mutable_total() = Res({{"CPU", 4.0 + n}, {"memory", 1e9}});
      *info->mutable_available() = Res({{"CPU", 1.0 * n}});
      info->set_alive(true);
    }
    out.push_back(e);
  }
  {
    rpc::Envelope e = Base(kThisRankNode, kRayletSlot);
    e.mutable_shutdown()->set_exit_code(-3);
    out.push_back(e);
  }
  out.push_back(Base(INT32_MAX, INT32_MIN));  // no body at all
  return out;
}

::testing::AssertionResult SameEnvelope(const rpc::Envelope& a, const rpc::Envelope& b) {
  std::string diff;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  if (differencer.Compare(a, b)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << diff;
}

TEST(FrameTest, EncodeDecodeRoundTrip) {
  for (const rpc::Envelope& e : SampleEnvelopes()) {
    std::string frame = EncodeFrame(e);
    ASSERT_GE(frame.size(), kHeader);
    rpc::Envelope back;
    Status st = DecodeFrame(frame, &back);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(back.body_case(), e.body_case());
    EXPECT_TRUE(SameEnvelope(back, e)) << e.DebugString();
  }
}

TEST(FrameTest, DecodingReplacesWhatTheEnvelopeHeld) {
  std::vector<rpc::Envelope> samples = SampleEnvelopes();
  rpc::Envelope reused;
  for (const rpc::Envelope& e : samples) {
    ASSERT_TRUE(DecodeFrame(EncodeFrame(e), &reused).ok());
    EXPECT_TRUE(SameEnvelope(reused, e)) << "leftover fields from the previous decode";
  }
  // Decoding the cluster view after the push task leaves no task behind, and vice versa.
  ASSERT_TRUE(DecodeFrame(EncodeFrame(samples[3]), &reused).ok());
  ASSERT_TRUE(DecodeFrame(EncodeFrame(samples[5]), &reused).ok());
  EXPECT_FALSE(reused.has_push_task());
  EXPECT_EQ(reused.cluster_view().nodes_size(), 3);
}

// A reused envelope keeps the sub-messages the next frame carries (cleared in place) and must
// still come out as a fresh parse: no leftover field, and presence (has_src, the body case, an
// empty but present message) as the frame says. Every ordered pair of samples, plus samples
// without src, without dst and with a smaller push of the same kind.
TEST(FrameTest, DecodingIntoAReusedEnvelopeEqualsAFreshParse) {
  std::vector<rpc::Envelope> samples = SampleEnvelopes();
  rpc::Envelope no_src = samples[3];
  no_src.clear_src();
  samples.push_back(no_src);
  rpc::Envelope no_dst = samples[4];
  no_dst.clear_dst();
  samples.push_back(no_dst);
  rpc::Envelope small_push = Base(0, 3);
  small_push.mutable_push_task()->mutable_spec()->set_function("Noop");
  samples.push_back(small_push);
  rpc::Envelope empty_push = Base(0, 3);
  empty_push.mutable_push_task();  // present, with nothing set
  samples.push_back(empty_push);
  for (const rpc::Envelope& first : samples) {
    for (const rpc::Envelope& second : samples) {
      rpc::Envelope reused;
      ASSERT_TRUE(DecodeFrame(EncodeFrame(first), &reused).ok());
      ASSERT_TRUE(DecodeFrame(EncodeFrame(second), &reused).ok());
      rpc::Envelope fresh;
      ASSERT_TRUE(fresh.ParseFromString(EncodeFrame(second).substr(kHeader)));
      EXPECT_TRUE(SameEnvelope(reused, fresh)) << "after " << first.ShortDebugString();
      EXPECT_EQ(reused.has_src(), second.has_src());
      EXPECT_EQ(reused.has_dst(), second.has_dst());
      EXPECT_EQ(reused.body_case(), second.body_case());
    }
  }
}

TEST(FrameTest, DecodingIntoAReusedEnvelopeDropsItsUnknownFields) {
  rpc::Envelope e = SampleEnvelopes()[3];
  std::string frame = EncodeFrame(e);
  frame += std::string("\xf8\x3f\x05", 3);  // field 1023, varint 5: unknown to this build
  rpc::Envelope reused;
  ASSERT_TRUE(DecodeFrame(frame, &reused).ok());
  EXPECT_FALSE(reused.GetReflection()->GetUnknownFields(reused).empty());
  ASSERT_TRUE(DecodeFrame(EncodeFrame(e), &reused).ok());
  EXPECT_TRUE(reused.GetReflection()->GetUnknownFields(reused).empty());
}

TEST(FrameTest, PeekDestinationReadsTheHeader) {
  for (const rpc::Envelope& e : SampleEnvelopes()) {
    std::string frame = EncodeFrame(e);
    int node = 12345, slot = 12345;
    Status st = PeekDestination(frame, &node, &slot);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(node, e.dst().node());
    EXPECT_EQ(slot, e.dst().slot());
  }
}

TEST(FrameTest, PeekDestinationDoesNotParseThePayload) {
  rpc::Envelope e = SampleEnvelopes()[3];
  *e.mutable_dst() = MakeAddress(-1, 99);
  std::string frame = EncodeFrame(e);
  // Destroy the payload: the header still routes, decoding fails.
  for (size_t i = kHeader; i < frame.size(); ++i) frame[i] = '\xff';
  int node = 0, slot = 0;
  ASSERT_TRUE(PeekDestination(frame, &node, &slot).ok());
  EXPECT_EQ(node, -1);
  EXPECT_EQ(slot, 99);
  rpc::Envelope back;
  EXPECT_FALSE(DecodeFrame(frame, &back).ok());

  // A hand-made header in front of no payload at all.
  std::string header(kHeader, '\0');
  int32_t n = 4, s = 17;
  std::memcpy(&header[0], &n, 4);
  std::memcpy(&header[4], &s, 4);
  ASSERT_TRUE(PeekDestination(header, &node, &slot).ok());
  EXPECT_EQ(node, 4);
  EXPECT_EQ(slot, 17);
  // ... which decodes as an envelope with no body.
  ASSERT_TRUE(DecodeFrame(header, &back).ok());
  EXPECT_EQ(back.body_case(), rpc::Envelope::BODY_NOT_SET);
}

TEST(FrameTest, FrameShorterThanItsHeaderIsRejected) {
  std::string frame = EncodeFrame(SampleEnvelopes()[0]);
  for (size_t size = 0; size < kHeader; ++size) {
    std::string_view cut(frame.data(), size);
    int node = 7, slot = 7;
    Status peek = PeekDestination(cut, &node, &slot);
    EXPECT_FALSE(peek.ok()) << "size " << size;
    EXPECT_EQ(peek.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(node, 7) << "outputs written on error";
    EXPECT_EQ(slot, 7) << "outputs written on error";
    rpc::Envelope back;
    Status decode = DecodeFrame(cut, &back);
    EXPECT_FALSE(decode.ok()) << "size " << size;
    EXPECT_EQ(decode.code(), StatusCode::kInvalidArgument);
  }
  // A null view of size 0 too.
  int node, slot;
  EXPECT_FALSE(PeekDestination(std::string_view(), &node, &slot).ok());
}

TEST(FrameTest, TruncatedPayloadIsRejected) {
  // The push task is the envelope's last field and holds a 1000-byte argument: every cut from
  // the start of that argument to the last byte leaves a length prefix pointing past the end.
  rpc::Envelope e = SampleEnvelopes()[3];
  std::string frame = EncodeFrame(e);
  size_t value_at = frame.find(std::string(1000, 'v'));
  ASSERT_NE(value_at, std::string::npos);
  for (size_t size = value_at; size < frame.size(); ++size) {
    rpc::Envelope back;
    Status st = DecodeFrame(std::string_view(frame.data(), size), &back);
    ASSERT_FALSE(st.ok()) << "frame cut to " << size << " of " << frame.size() << " decoded";
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  }
}

TEST(FrameTest, CorruptPayloadIsRejected) {
  std::string frame = EncodeFrame(SampleEnvelopes()[0]);
  // A field tag with wire type 7 (invalid) right after the header.
  std::string bad = frame.substr(0, kHeader) + std::string("\x0f", 1) + frame.substr(kHeader);
  rpc::Envelope back;
  EXPECT_FALSE(DecodeFrame(bad, &back).ok());
  // A length prefix larger than the rest of the frame.
  std::string huge = frame.substr(0, kHeader) + std::string("\x0a\xff\xff\xff\x07", 5);
  EXPECT_FALSE(DecodeFrame(huge, &back).ok());
  // Field number 0 is never valid.
  std::string zero = frame.substr(0, kHeader) + std::string("\x00\x01", 2);
  EXPECT_FALSE(DecodeFrame(zero, &back).ok());
}

// Whatever arrives, DecodeFrame answers ok or an error; and what it accepts is a usable
// envelope (it encodes and decodes again).
TEST(FrameTest, FuzzedFramesNeverCrash) {
  std::mt19937 rng(20240601);
  std::vector<std::string> frames;
  for (const rpc::Envelope& e : SampleEnvelopes()) frames.push_back(EncodeFrame(e));
  int accepted = 0, rejected = 0;
  for (int iteration = 0; iteration < 6000; ++iteration) {
    std::string frame = frames[rng() % frames.size()];
    switch (iteration % 5) {
      case 0: {  // flip a few bytes anywhere
        int flips = 1 + rng() % 4;
        for (int i = 0; i < flips; ++i) frame[rng() % frame.size()] ^= 1 << (rng() % 8);
        break;
      }
      case 1:  // truncate anywhere, header included
        frame.resize(rng() % (frame.size() + 1));
        break;
      case 2: {  // overwrite a byte with a random value and truncate
        frame[rng() % frame.size()] = static_cast<char>(rng());
        frame.resize(kHeader + rng() % (frame.size() - kHeader + 1));
        break;
      }
      case 3: {  // insert random bytes in the payload
        size_t at = kHeader + rng() % (frame.size() - kHeader + 1);
        std::string junk(1 + rng() % 8, '\0');
        for (char& c : junk) c = static_cast<char>(rng());
        frame.insert(at, junk);
        break;
      }
      case 4: {  // a header followed by pure noise
        frame.resize(kHeader + rng() % 64);
        for (size_t i = kHeader; i < frame.size(); ++i) frame[i] = static_cast<char>(rng());
        break;
      }
    }
    rpc::Envelope back;
    Status st = DecodeFrame(frame, &back);
    if (!st.ok()) {
      ++rejected;
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
      continue;
    }
    ++accepted;
    rpc::Envelope again;
    ASSERT_TRUE(DecodeFrame(EncodeFrame(back), &again).ok());
    EXPECT_TRUE(SameEnvelope(again, back));
    int node = 0, slot = 0;
    ASSERT_TRUE(PeekDestination(frame, &node, &slot).ok());
  }
  // Both outcomes happen, or the fuzzer is not exercising anything.
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

TEST(FrameTest, MakeAddress) {
  rpc::Address a = MakeAddress(-1, 0);
  EXPECT_EQ(a.node(), -1);
  EXPECT_EQ(a.slot(), 0);
}

// ---- resources.h ----------------------------------------------------------------------------

double Get(const rpc::ResourceSet& set, const std::string& name) {
  auto it = set.amounts().find(name);
  return it == set.amounts().end() ? -12345 : it->second;
}

TEST(ResourcesTest, Fits) {
  rpc::ResourceSet pool = Res({{"CPU", 4}, {"bigmem", 1}});
  EXPECT_TRUE(Fits(Res({}), pool));
  EXPECT_TRUE(Fits(Res({}), Res({})));
  EXPECT_TRUE(Fits(Res({{"CPU", 4}}), pool));
  EXPECT_TRUE(Fits(Res({{"CPU", 1}, {"bigmem", 1}}), pool));
  EXPECT_FALSE(Fits(Res({{"CPU", 5}}), pool));
  EXPECT_FALSE(Fits(Res({{"CPU", 1}, {"bigmem", 2}}), pool));
  // A name missing from the pool counts as 0.
  EXPECT_FALSE(Fits(Res({{"GPU", 1}}), pool));
  EXPECT_TRUE(Fits(Res({{"GPU", 0}}), pool));
  EXPECT_FALSE(Fits(Res({{"CPU", 1}}), Res({})));
  // Negative availability (a lent CPU taken back) fits nothing positive.
  EXPECT_FALSE(Fits(Res({{"CPU", 1}}), Res({{"CPU", -1}})));
  // Rounding noise does not make an exact fit fail.
  EXPECT_TRUE(Fits(Res({{"CPU", 0.3}}), Res({{"CPU", 0.1 + 0.2}})));
  EXPECT_FALSE(Fits(Res({{"CPU", 0.31}}), Res({{"CPU", 0.3}})));
}

TEST(ResourcesTest, SubtractAndAdd) {
  rpc::ResourceSet pool = Res({{"CPU", 4}, {"memory", 100}});
  const rpc::ResourceSet original = pool;
  rpc::ResourceSet amount = Res({{"CPU", 1.5}, {"GPU", 1}});
  Subtract(amount, &pool);
  EXPECT_DOUBLE_EQ(Get(pool, "CPU"), 2.5);
  EXPECT_DOUBLE_EQ(Get(pool, "memory"), 100);
  EXPECT_DOUBLE_EQ(Get(pool, "GPU"), -1);  // a missing name is created
  Add(amount, &pool);
  EXPECT_DOUBLE_EQ(Get(pool, "CPU"), 4);
  EXPECT_DOUBLE_EQ(Get(pool, "memory"), 100);
  EXPECT_DOUBLE_EQ(Get(pool, "GPU"), 0);
  EXPECT_TRUE(Fits(original, pool));
  EXPECT_TRUE(Fits(pool, original));

  // Subtracting down to zero leaves an exact fit for nothing more.
  rpc::ResourceSet two = Res({{"CPU", 2}});
  Subtract(Res({{"CPU", 1}}), &two);
  Subtract(Res({{"CPU", 1}}), &two);
  EXPECT_DOUBLE_EQ(Get(two, "CPU"), 0);
  EXPECT_FALSE(Fits(Res({{"CPU", 1}}), two));
  Add(Res({{"CPU", 1}}), &two);
  EXPECT_TRUE(Fits(Res({{"CPU", 1}}), two));
}

TEST(ResourcesTest, Describe) {
  EXPECT_EQ(Describe(Res({})), "{}");
  EXPECT_EQ(Describe(Res({{"CPU", 2}})), "{CPU: 2}");
  EXPECT_EQ(Describe(Res({{"bigmem", 1}, {"CPU", 2}})), "{CPU: 2, bigmem: 1}");
  EXPECT_EQ(Describe(Res({{"b", 0.5}, {"a", 1000}, {"c", 0}})), "{a: 1000, b: 0.5, c: 0}");
}

}  // namespace
}  // namespace raympi
