#include "api/server.h"

#include <grpc/support/log.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "api/metrics.h"
#include "api/services.h"
#include "api/torrent_service.h"
#include "base/status_macros.h"
#include "spdlog/spdlog.h"

namespace shoal::api {

namespace {

absl::StatusOr<std::string> ReadPem(const std::filesystem::path& path,
                                    std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", std::string(what), " ", path.string()));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// gRPC only says it could not listen when the certificate or key is bad: check
// them first, and say which.
absl::Status CheckKeyPair(const std::string& cert_pem,
                          const std::string& key_pem,
                          const node::NodeOptions& o) {
  BIO* cb = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  BIO* kb = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  BIO_free(kb);
  absl::Status s;
  if (cert == nullptr) {
    s = absl::InvalidArgumentError(absl::StrCat(
        "api_tls_cert ", o.api_tls_cert.string(), " holds no PEM certificate"));
  } else if (key == nullptr) {
    s = absl::InvalidArgumentError(
        absl::StrCat("api_tls_key ", o.api_tls_key.string(),
                     " holds no PEM private key (or it is encrypted)"));
  } else if (X509_check_private_key(cert, key) != 1) {
    s = absl::InvalidArgumentError(absl::StrCat(
        "api_tls_key ", o.api_tls_key.string(),
        " is not the key of the certificate in ", o.api_tls_cert.string()));
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  ERR_clear_error();
  return s;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const node::NodeOptions& o) {
  if (o.api_tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  SHOAL_ASSIGN_OR_RETURN(pair.cert_chain,
                         ReadPem(o.api_tls_cert, "api_tls_cert"));
  SHOAL_ASSIGN_OR_RETURN(pair.private_key,
                         ReadPem(o.api_tls_key, "api_tls_key"));
  SHOAL_RETURN_IF_ERROR(CheckKeyPair(pair.cert_chain, pair.private_key, o));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!o.api_tls_client_ca.empty()) {
    SHOAL_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                           ReadPem(o.api_tls_client_ca, "api_tls_client_ca"));
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

class ApiServer::Impl {
 public:
  Impl(node::Node& node, Authorizer auth)
      : auth_(std::move(auth)),
        content_(node, auth_),
        node_service_(node, auth_),
        torrents_(node, auth_) {}
  const Authorizer auth_;
  ContentServiceImpl content_;
  NodeServiceImpl node_service_;
  TorrentServiceImpl torrents_;
  std::unique_ptr<grpc::Server> server_;
};

ApiServer::ApiServer(std::unique_ptr<Impl> impl, std::string address)
    : impl_(std::move(impl)), address_(std::move(address)) {}

ApiServer::~ApiServer() {
  if (impl_->server_) {
    impl_->server_->Shutdown(std::chrono::system_clock::now() +
                             std::chrono::seconds(2));
  }
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(node::Node& node) {
  const node::NodeOptions& options = node.options();
  Authorizer auth;
  if (!options.api_token_file.empty()) {
    SHOAL_ASSIGN_OR_RETURN(auth, Authorizer::Load(options.api_token_file));
  }
  SHOAL_ASSIGN_OR_RETURN(auto credentials, Credentials(options));
  auto impl = std::make_unique<Impl>(node, std::move(auth));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const node::HostPort& api = options.api;
  int port = 0;
  builder.AddListeningPort(api.ToString(), credentials, &port);
  // Without this gRPC sets SO_REUSEPORT and a second node could share the port
  // silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // A .torrent may be as large as the metainfo parser accepts (64 MiB).
  builder.SetMaxReceiveMessageSize(72 << 20);
  {
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(ApiMetrics::Get().MakeInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  builder.RegisterService(&impl->content_);
  builder.RegisterService(&impl->node_service_);
  builder.RegisterService(&impl->torrents_);
  impl->server_ = builder.BuildAndStart();
  if (!impl->server_ || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on API address ", api.ToString(),
                     " (in use, or not an address of this host)"));
  }
  node::HostPort bound = api;
  bound.port = static_cast<uint16_t>(port);
  impl->node_service_.set_api_address(bound.ToString());
  impl->server_->GetHealthCheckService()->SetServingStatus(true);
  return std::unique_ptr<ApiServer>(
      new ApiServer(std::move(impl), bound.ToString()));
}

void ApiServer::set_gateway_address(std::string address) {
  impl_->node_service_.set_gateway_address(std::move(address));
}

void RouteGrpcLogsToSpdlog() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    // gRPC's errors about a port already in use are reported by us in one clear
    // line.
    spdlog::debug("grpc: {}", args->message);
  });
}

}  // namespace shoal::api
