#include "common/frame.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace raympi {

namespace {
constexpr size_t kHeaderBytes = 8;

// Which of an Envelope's message fields an encoding carries (the body: its field number).
struct EnvelopeFields {
  bool src = false;
  bool dst = false;
  int body = 0;
};

// Reads only the top-level tags; the parse proper checks everything else.
bool ScanEnvelope(const uint8_t* bytes, int size, EnvelopeFields* fields) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(bytes, size);
  for (;;) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return in.ConsumedEntireMessage();
    const int number = WireFormatLite::GetTagFieldNumber(tag);
    if (number == rpc::Envelope::kSrcFieldNumber) {
      fields->src = true;
    } else if (number == rpc::Envelope::kDstFieldNumber) {
      fields->dst = true;
    } else if (number != rpc::Envelope::kRequestIdFieldNumber) {
      fields->body = number;  // the last one wins, as in a parse
    }
    if (!WireFormatLite::SkipField(&in, tag)) return false;
  }
}

const google::protobuf::FieldDescriptor* BodyField(int number) {
  static const auto* const table = [] {
    auto* fields = new std::array<const google::protobuf::FieldDescriptor*, 128>();
    fields->fill(nullptr);
    const google::protobuf::OneofDescriptor* body = rpc::Envelope::descriptor()->oneof_decl(0);
    for (int i = 0; i < body->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* f = body->field(i);
      if (f->number() < static_cast<int>(fields->size())) (*fields)[f->number()] = f;
    }
    return fields;
  }();
  return number > 0 && number < static_cast<int>(table->size()) ? (*table)[number] : nullptr;
}

// Like envelope->Clear(), but a message field the next message carries too is cleared in place
// rather than freed (Clear() deletes the body, a oneof member): protobuf keeps the buffers of
// cleared strings and repeated fields, so decoding the next message of the same kind into a
// reused envelope needs almost no mallocs. Fields it does not carry are freed, so presence
// (has_src(), body_case()) comes out as in a fresh parse.
void ClearForReuse(rpc::Envelope* envelope, const EnvelopeFields& next) {
  if (next.src && envelope->has_src()) {
    envelope->mutable_src()->Clear();
  } else {
    envelope->clear_src();
  }
  if (next.dst && envelope->has_dst()) {
    envelope->mutable_dst()->Clear();
  } else {
    envelope->clear_dst();
  }
  envelope->clear_request_id();
  envelope->GetReflection()->MutableUnknownFields(envelope)->Clear();
  const google::protobuf::FieldDescriptor* body = BodyField(next.body);
  if (body != nullptr && static_cast<int>(envelope->body_case()) == next.body) {
    envelope->GetReflection()->MutableMessage(envelope, body)->Clear();
  } else {
    envelope->clear_body();
  }
}
}  // namespace

std::string EncodeFrame(const rpc::Envelope& envelope) {
  std::string out(kHeaderBytes, '\0');
  int32_t node = envelope.dst().node(), slot = envelope.dst().slot();
  std::memcpy(&out[0], &node, 4);
  std::memcpy(&out[4], &slot, 4);
  envelope.AppendToString(&out);
  return out;
}

Status PeekDestination(std::string_view frame, int* node, int* slot) {
  if (frame.size() < kHeaderBytes) {
    return Status::InvalidArgument("frame of " + std::to_string(frame.size()) +
                                   " bytes is shorter than its 8-byte header");
  }
  int32_t n, s;
  std::memcpy(&n, frame.data(), 4);
  std::memcpy(&s, frame.data() + 4, 4);
  *node = n;
  *slot = s;
  return Status::Ok();
}

Status DecodeFrame(std::string_view frame, rpc::Envelope* envelope) {
  int node, slot;
  RAYMPI_RETURN_IF_ERROR(PeekDestination(frame, &node, &slot));
  const auto* bytes = reinterpret_cast<const uint8_t*>(frame.data()) + kHeaderBytes;
  const int size = static_cast<int>(frame.size() - kHeaderBytes);
  EnvelopeFields fields;
  if (!ScanEnvelope(bytes, size, &fields)) {
    return Status::InvalidArgument("frame of " + std::to_string(frame.size()) +
                                   " bytes does not hold a valid envelope");
  }
  ClearForReuse(envelope, fields);
  // Merging into the cleared envelope is a parse that reuses its sub-messages.
  google::protobuf::io::CodedInputStream in(bytes, size);
  if (!envelope->MergeFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    return Status::InvalidArgument("frame of " + std::to_string(frame.size()) +
                                   " bytes does not hold a valid envelope");
  }
  return Status::Ok();
}

rpc::Address MakeAddress(int node, int slot) {
  rpc::Address a;
  a.set_node(node);
  a.set_slot(slot);
  return a;
}

}  // namespace raympi
