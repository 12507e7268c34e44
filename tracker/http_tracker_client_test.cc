#include "tracker/http_tracker_client.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tracker/internal/asio.h"
#include "tracker/internal/io_test_util.h"
// clang-format off
#include <boost/asio/ssl.hpp>
// clang-format on

namespace shoal::tracker {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;
using std::string_literals::operator""s;
using testing::RunFor;
using testing::RunUntil;

// A loopback HTTP(S) server: each request's target goes to `handler`, which
// returns the raw response bytes ("" means: never answer).
class FakeHttpServer {
 public:
  using Handler = std::function<std::string(const std::string& target)>;

  FakeHttpServer(asio::io_context& io, Handler handler,
                 ssl::context* tls = nullptr)
      : io_(io),
        handler_(std::move(handler)),
        tls_(tls),
        acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, Accept(), asio::detached);
  }
  ~FakeHttpServer() {
    error_code ignored;
    acceptor_.close(ignored);
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  const std::vector<std::string>& targets() const { return targets_; }

 private:
  asio::awaitable<void> Accept() {
    while (true) {
      error_code ec;
      tcp::socket s = co_await acceptor_.async_accept(
          asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      if (tls_ != nullptr) {
        asio::co_spawn(io_, ServeTls(std::move(s)), asio::detached);
      } else {
        asio::co_spawn(io_, Serve(std::move(s)), asio::detached);
      }
    }
  }

  template <class Stream>
  asio::awaitable<void> Exchange(Stream& stream) {
    std::string in;
    error_code ec;
    co_await asio::async_read_until(
        stream, asio::dynamic_buffer(in), "\r\n\r\n",
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    size_t sp1 = in.find(' ');
    size_t sp2 = in.find(' ', sp1 + 1);
    std::string target = in.substr(sp1 + 1, sp2 - sp1 - 1);
    targets_.push_back(target);
    std::string response = handler_(target);
    if (response.empty()) {
      // Hang: wait for the client to go away.
      char c;
      co_await stream.async_read_some(
          asio::buffer(&c, 1), asio::redirect_error(asio::use_awaitable, ec));
      co_return;
    }
    co_await asio::async_write(stream, asio::buffer(response),
                               asio::redirect_error(asio::use_awaitable, ec));
  }

  asio::awaitable<void> Serve(tcp::socket s) {
    co_await Exchange(s);
    error_code ignored;
    s.shutdown(tcp::socket::shutdown_both, ignored);
  }

  asio::awaitable<void> ServeTls(tcp::socket s) {
    ssl::stream<tcp::socket> stream(std::move(s), *tls_);
    error_code ec;
    co_await stream.async_handshake(
        ssl::stream_base::server,
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    co_await Exchange(stream);
    co_await stream.async_shutdown(
        asio::redirect_error(asio::use_awaitable, ec));
  }

  asio::io_context& io_;
  Handler handler_;
  ssl::context* tls_;
  tcp::acceptor acceptor_;
  std::vector<std::string> targets_;
};

std::string Response(int code, const std::string& body,
                     const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(code) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         extra_headers + "Connection: close\r\n\r\n" + body;
}

const std::string kPeerBody =
    "d8:intervali600e5:peers6:\x0a\x00\x00\x01\x1a\xe1"s
    "e";

AnnounceRequest Request() {
  AnnounceRequest r;
  r.info_hash = AnnounceHash::FromBytes(std::string(20, '\xab'));
  r.peer_id = PeerId::FromBytes("-SH0100-123456789012");
  r.port = 6881;
  r.left = 100;
  r.event = TrackerEvent::kStarted;
  return r;
}

// Announces and returns the result (or a DEADLINE_EXCEEDED placeholder if
// the callback never ran).
absl::StatusOr<AnnounceResponse> AnnounceAndWait(
    asio::io_context& io, HttpTrackerClient& client,
    std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  std::optional<absl::StatusOr<AnnounceResponse>> result;
  client.Announce(Request(), [&](absl::StatusOr<AnnounceResponse> r) {
    result = std::move(r);
  });
  EXPECT_FALSE(result.has_value());  // never inline
  if (!RunUntil(
          io, [&] { return result.has_value(); }, limit)) {
    return absl::InternalError("callback never ran");
  }
  return *result;
}

std::string Url(uint16_t port, const std::string& path = "/announce",
                const char* scheme = "http") {
  return std::string(scheme) + "://127.0.0.1:" + std::to_string(port) + path;
}

// A plain announce: the query carries the request; the body is parsed.
TEST(HttpTrackerClientTest, Announces) {
  asio::io_context io;
  FakeHttpServer server(
      io, [](const std::string&) { return Response(200, kPeerBody); });
  auto client = HttpTrackerClient::Create(io, Url(server.port()));
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = AnnounceAndWait(io, **client);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->interval, std::chrono::seconds(600));
  ASSERT_EQ(r->peers.size(), 1u);
  EXPECT_EQ(r->peers[0].ToString(), "10.0.0.1:6881");
  ASSERT_EQ(server.targets().size(), 1u);
  EXPECT_EQ(server.targets()[0].rfind(
                "/announce?info_hash=%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB"
                "%AB%AB%AB%AB%AB%AB%AB&peer_id=-SH0100-123456789012&port=6881",
                0),
            0u)
      << server.targets()[0];
}

// Redirects are followed (relative Location), and bounded.
TEST(HttpTrackerClientTest, FollowsRedirectsWithinBound) {
  asio::io_context io;
  FakeHttpServer server(io, [](const std::string& target) {
    if (target.rfind("/announce", 0) == 0) {
      return Response(302, "", "Location: /real" + target + "\r\n");
    }
    if (target.rfind("/loop", 0) == 0) {
      return Response(307, "", "Location: loop\r\n");
    }
    return Response(200, kPeerBody);
  });
  auto client = HttpTrackerClient::Create(io, Url(server.port()));
  ASSERT_TRUE(client.ok());
  auto r = AnnounceAndWait(io, **client);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(server.targets().size(), 2u);
  EXPECT_EQ(server.targets()[1].rfind("/real/announce?info_hash=", 0), 0u);

  HttpTrackerClientOptions options;
  options.max_redirects = 3;
  auto looping =
      HttpTrackerClient::Create(io, Url(server.port(), "/loop"), options);
  ASSERT_TRUE(looping.ok());
  r = AnnounceAndWait(io, **looping);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_NE(r.status().ToString().find("redirects"), std::string::npos);
  EXPECT_EQ(server.targets().size(), 2u + 4u);
}

// A body over the limit is RESOURCE_EXHAUSTED.
TEST(HttpTrackerClientTest, LimitsResponseSize) {
  asio::io_context io;
  FakeHttpServer server(io, [](const std::string&) {
    return Response(200, "d5:peers5000:" + std::string(5000, 'x') + "e");
  });
  HttpTrackerClientOptions options;
  options.limits.max_response_bytes = 1024;
  auto client = HttpTrackerClient::Create(io, Url(server.port()), options);
  ASSERT_TRUE(client.ok());
  auto r = AnnounceAndWait(io, **client);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted)
      << r.status();
}

// A server that never answers: DEADLINE_EXCEEDED after the timeout.
TEST(HttpTrackerClientTest, TimesOut) {
  asio::io_context io;
  FakeHttpServer server(io, [](const std::string&) { return std::string(); });
  HttpTrackerClientOptions options;
  options.timeout = std::chrono::milliseconds(300);
  auto client = HttpTrackerClient::Create(io, Url(server.port()), options);
  ASSERT_TRUE(client.ok());
  const auto start = std::chrono::steady_clock::now();
  auto r = AnnounceAndWait(io, **client);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

// Nobody listening: UNAVAILABLE.
TEST(HttpTrackerClientTest, ConnectionRefused) {
  asio::io_context io;
  uint16_t port;
  {
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  auto client = HttpTrackerClient::Create(io, Url(port));
  ASSERT_TRUE(client.ok());
  auto r = AnnounceAndWait(io, **client);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

// Non-200 statuses are UNAVAILABLE, unless the body has a failure reason.
TEST(HttpTrackerClientTest, MapsHttpErrors) {
  asio::io_context io;
  FakeHttpServer server(io, [](const std::string& target) {
    if (target.rfind("/gone", 0) == 0) return Response(404, "not here");
    return Response(500, "oops");
  });
  auto gone = HttpTrackerClient::Create(io, Url(server.port(), "/gone"));
  ASSERT_TRUE(gone.ok());
  auto r = AnnounceAndWait(io, **gone);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().ToString().find("HTTP 404"), std::string::npos);
  auto broken = HttpTrackerClient::Create(io, Url(server.port()));
  r = AnnounceAndWait(io, **broken);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().ToString().find("HTTP 500"), std::string::npos);
}

// A 400 whose body is a proper failure reason is FAILED_PRECONDITION.
TEST(HttpTrackerClientTest, FailureReasonOnErrorStatus) {
  asio::io_context io;
  FakeHttpServer server(io, [](const std::string&) {
    return Response(400, "d14:failure reason9:bad querye");
  });
  auto client = HttpTrackerClient::Create(io, Url(server.port()));
  auto r = AnnounceAndWait(io, **client);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().ToString().find("bad query"), std::string::npos);
}

// Scrape goes to the BEP 48 URL; trackers without one are UNIMPLEMENTED.
TEST(HttpTrackerClientTest, Scrapes) {
  asio::io_context io;
  const std::string hash(20, '\xab');
  FakeHttpServer server(io, [&](const std::string&) {
    return Response(200,
                    "d5:filesd20:" + hash +
                        "d8:completei2e10:downloadedi3e10:incompletei4eeee");
  });
  auto client =
      HttpTrackerClient::Create(io, Url(server.port(), "/x/announce"));
  ASSERT_TRUE(client.ok());
  std::optional<absl::StatusOr<std::vector<ScrapeEntry>>> result;
  (*client)->Scrape({AnnounceHash::FromBytes(hash)},
                    [&](auto r) { result = std::move(r); });
  ASSERT_TRUE(RunUntil(io, [&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  ASSERT_EQ((*result)->size(), 1u);
  EXPECT_EQ((**result)[0].stats, (ScrapeStats{2, 3, 4}));
  EXPECT_EQ(server.targets().back().rfind("/x/scrape?info_hash=%AB", 0), 0u);

  auto no_scrape = HttpTrackerClient::Create(io, Url(server.port(), "/t"));
  result.reset();
  (*no_scrape)->Scrape({AnnounceHash::FromBytes(hash)}, [&](auto r) {
    result = std::move(r);
  });
  ASSERT_TRUE(RunUntil(io, [&] { return result.has_value(); }));
  EXPECT_EQ(result->status().code(), absl::StatusCode::kUnimplemented);
}

// Destroying the client cancels its requests; callbacks never run.
TEST(HttpTrackerClientTest, DestroyCancels) {
  asio::io_context io;
  FakeHttpServer server(io, [](const std::string&) { return std::string(); });
  auto client = HttpTrackerClient::Create(io, Url(server.port()));
  ASSERT_TRUE(client.ok());
  bool called = false;
  (*client)->Announce(Request(), [&](auto) { called = true; });
  RunUntil(io, [&] { return !server.targets().empty(); });
  client->reset();
  RunFor(io, std::chrono::milliseconds(100));
  EXPECT_FALSE(called);
}

// Other schemes are refused at creation.
TEST(HttpTrackerClientTest, CreateValidates) {
  asio::io_context io;
  EXPECT_EQ(HttpTrackerClient::Create(io, "udp://127.0.0.1:1").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpTrackerClient::Create(io, "gopher://x/").status().code(),
            absl::StatusCode::kInvalidArgument);
  HttpTrackerClientOptions options;
  options.extra_ca_pem = "-----BEGIN CERTIFICATE-----\nnope\n";
  EXPECT_EQ(HttpTrackerClient::Create(io, "https://127.0.0.1/", options)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// A self-signed certificate for IP 127.0.0.1 (its own CA), made in memory.
struct TestCert {
  std::string cert_pem;
  std::string key_pem;
};

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

TestCert MakeSelfSignedCert() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>("shoal test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
        std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  BIO* cert_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cert_bio, x);
  BIO* key_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(key_bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  TestCert out{BioToString(cert_bio), BioToString(key_bio)};
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

// https: a certificate the system store does not trust is refused; with its
// CA added, the same server works (chain and IP-address name checked).
TEST(HttpTrackerClientTest, HttpsVerifiesCertificates) {
  TestCert cert = MakeSelfSignedCert();
  ssl::context server_tls(ssl::context::tls_server);
  server_tls.use_certificate_chain(asio::buffer(cert.cert_pem));
  server_tls.use_private_key(asio::buffer(cert.key_pem), ssl::context::pem);
  asio::io_context io;
  FakeHttpServer server(
      io, [](const std::string&) { return Response(200, kPeerBody); },
      &server_tls);

  auto untrusting =
      HttpTrackerClient::Create(io, Url(server.port(), "/announce", "https"));
  ASSERT_TRUE(untrusting.ok());
  auto r = AnnounceAndWait(io, **untrusting);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().ToString().find("TLS handshake"), std::string::npos)
      << r.status();

  HttpTrackerClientOptions options;
  options.extra_ca_pem = cert.cert_pem;
  auto trusting = HttpTrackerClient::Create(
      io, Url(server.port(), "/announce", "https"), options);
  ASSERT_TRUE(trusting.ok()) << trusting.status();
  r = AnnounceAndWait(io, **trusting);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->peers.size(), 1u);
  EXPECT_EQ(server.targets().size(), 1u);  // the refused one never got far
}

// https against a plain-HTTP server fails cleanly.
TEST(HttpTrackerClientTest, HttpsAgainstPlainServer) {
  asio::io_context io;
  FakeHttpServer server(
      io, [](const std::string&) { return Response(200, kPeerBody); });
  HttpTrackerClientOptions options;
  options.timeout = std::chrono::milliseconds(500);
  auto client = HttpTrackerClient::Create(
      io, Url(server.port(), "/announce", "https"), options);
  auto r = AnnounceAndWait(io, **client);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == absl::StatusCode::kUnavailable ||
              r.status().code() == absl::StatusCode::kDeadlineExceeded)
      << r.status();
}

}  // namespace
}  // namespace shoal::tracker
