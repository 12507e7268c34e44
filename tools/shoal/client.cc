#include "tools/shoal/client.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace shoal::cli {

Client::Client(std::string address) : address_(std::move(address)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  channel_ = grpc::CreateCustomChannel(
      address_, grpc::InsecureChannelCredentials(), args);
  content_ = v1::ContentService::NewStub(channel_);
  node_ = v1::NodeService::NewStub(channel_);
  torrents_ = v1::TorrentService::NewStub(channel_);
}

absl::Status Client::Check(const grpc::Status& status) const {
  if (status.ok()) return absl::OkStatus();
  auto code = static_cast<absl::StatusCode>(status.error_code());
  std::string msg = status.error_message();
  if (code == absl::StatusCode::kUnavailable &&
      (msg.find("connect") != std::string::npos ||
       msg.find("Connection") != std::string::npos ||
       msg.find("DNS") != std::string::npos)) {
    msg = absl::StrCat("cannot reach shoald at ", address_,
                       " (is it running? set --api or SHOAL_API)");
  }
  for (char& c : msg)
    if (c == '\n') c = ' ';
  return absl::Status(code, msg);
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B",   "KiB", "MiB",
                                           "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrCat(bytes, " B");
  return absl::StrFormat("%.1f %s", v, kUnits[u]);
}

std::string FormatTimestamp(const google::protobuf::Timestamp& t) {
  absl::Time time =
      absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

nlohmann::json ContentJson(const v1::ContentInfo& c) {
  return {
      {"id", c.id()},
      {"name", c.name()},
      {"length", c.length()},
      {"piece_length", c.piece_length()},
      {"pieces_root", c.pieces_root()},
      {"num_pieces", c.num_pieces()},
      {"pieces_local", c.pieces_local()},
      {"complete", c.pieces_local() == c.num_pieces()},
      {"pinned", c.pinned()},
      {"added", FormatTimestamp(c.added())},
      {"last_access", FormatTimestamp(c.last_access())},
      {"magnet", c.magnet()},
  };
}

void PrintJson(const nlohmann::json& j) {
  std::string s = j.dump();
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace shoal::cli
