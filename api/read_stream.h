// Sends a range of bytes to a gRPC reader as ReadResponse messages.
#ifndef SHOAL_API_READ_STREAM_H_
#define SHOAL_API_READ_STREAM_H_

#include <algorithm>
#include <cstdint>
#include <string>

#include "grpcpp/server_context.h"
#include "grpcpp/support/sync_stream.h"
#include "shoal/v1/shoal.grpc.pb.h"

namespace shoal::api {

// Messages carry at most this many bytes.
inline constexpr size_t kReadMessageBytes = 1 << 20;

// Writes `data`, which starts at `offset` of an object of `total` bytes, in
// messages of at most kReadMessageBytes. False once the reader has gone.
inline bool WriteReadResponses(grpc::ServerContext* ctx,
                               grpc::ServerWriter<v1::ReadResponse>* writer,
                               std::string&& data, uint64_t offset,
                               uint64_t total) {
  if (ctx->IsCancelled()) return false;
  v1::ReadResponse msg;
  msg.set_content_length(total);
  if (data.size() <= kReadMessageBytes) {
    msg.set_offset(offset);
    msg.set_data(std::move(data));
    return writer->Write(msg);
  }
  for (size_t off = 0; off < data.size(); off += kReadMessageBytes) {
    msg.set_offset(offset + off);
    msg.set_data(data.data() + off,
                 std::min(kReadMessageBytes, data.size() - off));
    if (!writer->Write(msg)) return false;
  }
  return true;
}

}  // namespace shoal::api

#endif  // SHOAL_API_READ_STREAM_H_
