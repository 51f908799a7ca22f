#include "server/generate_request_body.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/prompt_text.h"

namespace tlcm::server {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

std::string BodyBytes(const grpc::ByteBuffer& body) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!body.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

}  // namespace

absl::StatusOr<tlcm::v1::GenerateRequest> ParseGenerateRequest(const grpc::ByteBuffer& body) {
  const std::string bytes = BodyBytes(body);
  // First as bare fields: tells "not protobuf at all" apart from "a string that is not UTF-8",
  // and finds the field, before libprotobuf's own parse would refuse the whole message.
  UnknownFieldSet fields;
  if (!fields.ParseFromString(bytes)) {
    return absl::InvalidArgumentError("request: the body is not a protobuf message");
  }
  const auto* descriptor = tlcm::v1::GenerateRequest::descriptor();
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& field = fields.field(i);
    const FieldDescriptor* known = descriptor->FindFieldByNumber(field.number());
    if (known != nullptr && known->type() == FieldDescriptor::TYPE_STRING &&
        field.type() == UnknownField::TYPE_LENGTH_DELIMITED &&
        !engine::IsValidUtf8(field.length_delimited())) {
      return absl::InvalidArgumentError(absl::StrCat(known->name(), ": is not valid UTF-8"));
    }
  }
  tlcm::v1::GenerateRequest request;
  if (!request.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(
        "request: the body is not a tlcm.v1.GenerateRequest (a field has the wrong type)");
  }
  return request;
}

grpc::ByteBuffer SerializeGenerateResponse(const tlcm::v1::GenerateResponse& response) {
  // gRPC's own serializer writes straight into the buffer's slices: one copy of the image bytes.
  grpc::ByteBuffer buffer;
  bool own_buffer = false;
  grpc::SerializationTraits<tlcm::v1::GenerateResponse>::Serialize(response, &buffer, &own_buffer);
  return buffer;
}

}  // namespace tlcm::server
