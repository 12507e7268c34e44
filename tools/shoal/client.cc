#include "tools/shoal/client.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace shoal::cli {

namespace {

// Adds the bearer token to every call. (gRPC's own call credentials refuse to
// send a token over a plaintext channel, which a loopback API is.)
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::
                PRE_SEND_INITIAL_METADATA)) {
      m->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    m->Proceed();
  }

 private:
  const std::string* header_;
};

class TokenInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string token)
      : header_("Bearer " + std::move(token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(&header_);
  }

 private:
  const std::string header_;
};

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const ClientOptions& o) {
  std::string address = o.address;
  bool tls = !o.ca_file.empty() || !o.cert_file.empty();
  for (std::string_view prefix : {"https://", "tls://"}) {
    if (address.compare(0, prefix.size(), prefix) == 0) {
      address.erase(0, prefix.size());
      tls = true;
    }
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--api-cert and --api-key go together (a client certificate for mTLS)");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds =
      grpc::InsecureChannelCredentials();
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!o.ca_file.empty()) {
      auto ca = ReadFile(o.ca_file, "--api-ca");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *std::move(ca);
    }
    if (!o.cert_file.empty()) {
      auto cert = ReadFile(o.cert_file, "--api-cert");
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(o.key_file, "--api-key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  std::shared_ptr<grpc::Channel> channel;
  if (o.token.empty()) {
    channel = grpc::CreateCustomChannel(address, creds, args);
  } else {
    std::vector<
        std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(std::make_unique<TokenInterceptorFactory>(o.token));
    channel = grpc::experimental::CreateCustomChannelWithInterceptors(
        address, creds, args, std::move(interceptors));
  }
  return std::unique_ptr<Client>(new Client(o.address, std::move(channel)));
}

Client::Client(std::string address, std::shared_ptr<grpc::Channel> channel)
    : address_(std::move(address)), channel_(std::move(channel)) {
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

std::string HumanDuration(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 3600)
    return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
  if (seconds < 86400)
    return absl::StrFormat("%dh%02dm", seconds / 3600, seconds % 3600 / 60);
  return absl::StrFormat("%dd%02dh", seconds / 86400, seconds % 86400 / 3600);
}

std::string FormatTimestamp(const google::protobuf::Timestamp& t) {
  absl::Time time =
      absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

nlohmann::json ContentJson(const v1::ContentInfo& c) {
  nlohmann::json j = {
      {"id", c.id()},
      {"kind", c.is_directory() ? "directory" : "file"},
      {"name", c.name()},
      {"length", c.length()},
      {"piece_length", c.piece_length()},
      {"pieces_root", c.pieces_root()},
      {"num_pieces", c.num_pieces()},
      {"pieces_local", c.pieces_local()},
      {"complete", c.is_directory() ? c.files_local() == c.num_files()
                                    : c.pieces_local() == c.num_pieces()},
      {"pinned", c.pinned()},
      {"added", FormatTimestamp(c.added())},
      {"last_access", FormatTimestamp(c.last_access())},
      {"magnet", c.magnet()},
      {"directory_file", c.directory_file()},
  };
  if (c.is_directory()) {
    j["num_files"] = c.num_files();
    j["files_local"] = c.files_local();
  }
  if (c.fetching()) {
    j["fetching"] = true;
    j["download_rate"] = c.download_rate();
    j["num_peers"] = c.num_peers();
    j["eta_seconds"] = c.has_eta_seconds() ? nlohmann::json(c.eta_seconds())
                                           : nlohmann::json(nullptr);
  }
  return j;
}

void PrintJson(const nlohmann::json& j) {
  std::string s = j.dump();
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace shoal::cli
