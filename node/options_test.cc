#include "node/options.h"

#include <fstream>

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

// Addresses parse with IPv4, IPv6 in brackets and names; bad ones say why.
TEST(OptionsTest, HostPort) {
  auto a = HostPort::Parse("127.0.0.1:7080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7080);
  auto b = HostPort::Parse("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->ToString(), "[::1]:0");
  EXPECT_FALSE(HostPort::Parse("localhost").ok());
  EXPECT_FALSE(HostPort::Parse("a:70000").ok());
  EXPECT_FALSE(HostPort::Parse(":80").ok());
  EXPECT_FALSE(HostPort::Parse("::1:80").ok());
  EXPECT_FALSE(HostPort::Parse("h:8x").ok());
}

// An empty list means none (tests start shoald with --dht-routers '').
TEST(OptionsTest, HostPortList) {
  EXPECT_TRUE(ParseHostPortList("")->empty());
  auto l = ParseHostPortList("a:1, b:2");
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[1].host, "b");
  EXPECT_FALSE(ParseHostPortList("a:1,b").ok());
}

// Sizes take binary and decimal suffixes.
TEST(OptionsTest, ByteSizes) {
  EXPECT_EQ(*ParseByteSize("1048576"), 1048576u);
  EXPECT_EQ(*ParseByteSize("1MiB"), 1048576u);
  EXPECT_EQ(*ParseByteSize("1M"), 1048576u);
  EXPECT_EQ(*ParseByteSize("1MB"), 1000000u);
  EXPECT_EQ(*ParseByteSize("1.5 GiB"), 1610612736u);
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("12Q").ok());
  EXPECT_FALSE(ParseByteSize("-1").ok());
}

class ConfigFileTest : public ::testing::Test {
 protected:
  std::filesystem::path Write(const std::string& text) {
    path_ = std::filesystem::temp_directory_path() /
            ("shoal_config_test_" + std::to_string(::getpid()) + ".toml");
    std::ofstream(path_) << text;
    return path_;
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::filesystem::path path_;
};

// Every setting of the file lands in the options.
TEST_F(ConfigFileTest, AppliesSettings) {
  NodeOptions o;
  auto s = ApplyConfigFile(Write(R"(
data_dir = "/tmp/x"
api = "127.0.0.1:9000"
listen = "0.0.0.0:7000"
gateway = "127.0.0.1:8080"
bootstrap = ["10.1.1.1:6881"]
dht_routers = []
capacity = "2GiB"
download_memory = "16MiB"
hash_threads = 3
log_level = "debug"
)"),
                           o);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(o.data_dir, "/tmp/x");
  EXPECT_EQ(o.api.port, 9000);
  ASSERT_EQ(o.listen.size(), 1u);
  EXPECT_EQ(o.listen[0].port, 7000);
  ASSERT_TRUE(o.gateway.has_value());
  EXPECT_EQ(o.gateway->port, 8080);
  ASSERT_EQ(o.bootstrap.size(), 1u);
  EXPECT_TRUE(o.dht_routers.empty());
  EXPECT_EQ(o.capacity_bytes, 2ull << 30);
  EXPECT_EQ(o.download_memory_bytes, 16u << 20);
  EXPECT_EQ(o.hash_threads, 3);
  EXPECT_EQ(o.log_level, "debug");
}

// `listen` takes a string (one address, or a comma list) or a list; two
// addresses must be one IPv4 and one IPv6.
TEST_F(ConfigFileTest, ListenTakesOneAddressPerFamily) {
  NodeOptions o;
  ASSERT_TRUE(
      ApplyConfigFile(Write("listen = \"127.0.0.1:1,[::1]:2\"\n"), o).ok());
  ASSERT_EQ(o.listen.size(), 2u);
  EXPECT_EQ(o.listen[1], (HostPort{"::1", 2}));
  EXPECT_TRUE(ValidateListen(o.listen).ok());
  ASSERT_TRUE(ApplyConfigFile(Write("listen = [\"[::]:5\"]\n"), o).ok());
  EXPECT_EQ(o.listen, (std::vector<HostPort>{{"::", 5}}));
  EXPECT_TRUE(ValidateListen(o.listen).ok());
  // The default is dual-stack.
  EXPECT_EQ(NodeOptions().listen.size(), 2u);
  EXPECT_TRUE(ValidateListen(NodeOptions().listen).ok());

  absl::Status same = ValidateListen({{"127.0.0.1", 1}, {"10.0.0.1", 2}});
  EXPECT_EQ(same.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(same.message()).find("one address family"),
            std::string::npos)
      << same;
  EXPECT_EQ(ValidateListen({}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ValidateListen({{"127.0.0.1", 1}, {"::1", 2}, {"10.0.0.1", 3}}).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("listen = 5\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
}

// Unknown keys, bad values and bad syntax are refused with the file and line.
TEST_F(ConfigFileTest, RejectsBadFiles) {
  NodeOptions o;
  auto s = ApplyConfigFile(Write("\n\nlisten_port = 3\n"), o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find(":3: unknown setting 'listen_port'"),
            std::string::npos)
      << s;
  EXPECT_EQ(ApplyConfigFile(Write("api = 5\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("api = \n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("capacity = \"lots\"\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("download_memory = -1\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile("/nonexistent/shoal.toml", o).code(),
            absl::StatusCode::kNotFound);
}

// The production settings: API security, path roots, cluster key, metrics.
TEST_F(ConfigFileTest, ProductionSettings) {
  NodeOptions o;
  auto s = ApplyConfigFile(Write(R"(
api = "0.0.0.0:7080"
api_token_file = "/etc/shoal/tokens"
api_tls_cert = "/etc/shoal/api.crt"
api_tls_key = "/etc/shoal/api.key"
api_tls_client_ca = "/etc/shoal/ca.crt"
path_roots = ["/var/lib/shoal", "/srv/sites"]
cluster_key_file = "/etc/shoal/cluster.key"
ip_filter = "/etc/shoal/ipfilter.dat"
encryption = "require"
lsd = false
active_downloads = 0
active_seeds = 12
peer_retry_seconds = 5
share_ratio_limit = 1.5
seed_time_limit = 3600
metrics = "0.0.0.0:9090"
log_format = "json"
)"),
                           o);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(o.api_token_file, "/etc/shoal/tokens");
  EXPECT_EQ(o.api_tls_client_ca, "/etc/shoal/ca.crt");
  ASSERT_EQ(o.path_roots.size(), 2u);
  EXPECT_EQ(o.path_roots[1], "/srv/sites");
  EXPECT_EQ(o.cluster_key_file, "/etc/shoal/cluster.key");
  EXPECT_EQ(o.ip_filter, "/etc/shoal/ipfilter.dat");
  EXPECT_EQ(o.encryption, Encryption::kRequire);
  EXPECT_FALSE(o.lsd);
  EXPECT_EQ(o.active_downloads, 0);
  EXPECT_EQ(o.active_seeds, 12);
  EXPECT_EQ(o.peer_retry_seconds, 5);
  EXPECT_EQ(o.share_ratio_limit, 1.5);
  EXPECT_EQ(o.seed_time_limit, 3600u);
  ASSERT_TRUE(o.metrics.has_value());
  EXPECT_EQ(o.metrics->port, 9090);
  EXPECT_EQ(o.log_format, "json");
  o.data_dir = "/tmp/x";
  EXPECT_TRUE(Validate(o).ok()) << Validate(o);
  EXPECT_EQ(ApplyConfigFile(Write("path_roots = \"/a\"\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("api_insecure = \"yes\"\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("encryption = \"always\"\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("encryption = true\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("lsd = \"on\"\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("active_seeds = -1\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("peer_retry_seconds = 0\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("peer_retry_seconds = 86401\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("share_ratio_limit = -0.5\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigFile(Write("seed_time_limit = 1.5\n"), o).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(o.encryption,
            Encryption::kRequire);  // a refused value changes nothing
}

TEST(OptionsTest, ValidateSecurity) {
  NodeOptions o;
  o.data_dir = "/tmp/x";
  EXPECT_TRUE(Validate(o).ok());  // loopback API, no tokens: fine
  o.api = {"0.0.0.0", 7080};
  absl::Status s = Validate(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("api_token_file"), std::string::npos);
  o.api_insecure = true;
  EXPECT_TRUE(Validate(o).ok());
  o.api_insecure = false;
  o.api_token_file = "/t";
  EXPECT_TRUE(Validate(o).ok());
  for (const char* host : {"127.0.0.1", "127.8.9.10", "::1", "localhost"}) {
    NodeOptions l;
    l.data_dir = "/tmp/x";
    l.api = {host, 1};
    EXPECT_TRUE(Validate(l).ok()) << host;
  }
  o.api_tls_cert = "/c";
  EXPECT_FALSE(Validate(o).ok());  // a cert without its key
  o.api_tls_key = "/k";
  EXPECT_TRUE(Validate(o).ok());
  NodeOptions m;
  m.data_dir = "/tmp/x";
  m.api_tls_client_ca = "/ca";
  EXPECT_FALSE(Validate(m).ok());  // client certificates need TLS
  m.api_tls_client_ca.clear();
  m.gateway = HostPort{"127.0.0.1", 8080};
  m.metrics = HostPort{"127.0.0.1", 8080};
  EXPECT_FALSE(Validate(m).ok());
  m.metrics->port = 9090;
  EXPECT_TRUE(Validate(m).ok());
  m.log_format = "xml";
  EXPECT_FALSE(Validate(m).ok());
  m.log_format = "text";
  m.path_roots = {"relative/dir"};
  EXPECT_FALSE(Validate(m).ok());
}

}  // namespace
}  // namespace shoal::node

namespace shoal::node {
namespace {

// ConfigToml's output, read back, gives the same options: for the defaults
// and for options with every setting moved off its default.
class ConfigTomlTest : public ConfigFileTest {
 protected:
  NodeOptions RoundTrip(const NodeOptions& o) {
    NodeOptions back;
    back.dht_routers.clear();
    absl::Status s = ApplyConfigFile(Write(ConfigToml(o)), back);
    EXPECT_TRUE(s.ok()) << s << "\n" << ConfigToml(o);
    return back;
  }
  static void ExpectSame(const NodeOptions& a, const NodeOptions& b) {
    EXPECT_EQ(ConfigToml(a), ConfigToml(b));
    EXPECT_EQ(a.data_dir, b.data_dir);
    EXPECT_EQ(a.api, b.api);
    EXPECT_EQ(a.listen, b.listen);
    EXPECT_EQ(a.bootstrap, b.bootstrap);
    EXPECT_EQ(a.dht_routers, b.dht_routers);
    EXPECT_EQ(a.gateway, b.gateway);
    EXPECT_EQ(a.metrics, b.metrics);
    EXPECT_EQ(a.capacity_bytes, b.capacity_bytes);
    EXPECT_EQ(a.download_memory_bytes, b.download_memory_bytes);
    EXPECT_EQ(a.fetch_timeout, b.fetch_timeout);
    EXPECT_EQ(a.path_roots, b.path_roots);
    EXPECT_EQ(a.cluster_key_file, b.cluster_key_file);
    EXPECT_EQ(a.encryption, b.encryption);
    EXPECT_EQ(a.utp, b.utp);
    EXPECT_EQ(a.tcp, b.tcp);
    EXPECT_EQ(a.share_ratio_limit, b.share_ratio_limit);
    EXPECT_EQ(a.seed_time_limit, b.seed_time_limit);
    EXPECT_EQ(a.peer_retry_seconds, b.peer_retry_seconds);
    EXPECT_EQ(a.gateway_idle_timeout, b.gateway_idle_timeout);
    EXPECT_EQ(a.gateway_cache_bytes, b.gateway_cache_bytes);
  }
};

TEST_F(ConfigTomlTest, DefaultsRoundTrip) {
  NodeOptions o;
  o.data_dir = "/var/lib/shoal";
  ExpectSame(o, RoundTrip(o));
}

TEST_F(ConfigTomlTest, EverySettingRoundTrips) {
  NodeOptions o;
  o.data_dir = "/srv/shoal data";
  o.api = {"::1", 7081};
  o.listen = {{"10.0.0.1", 6882}, {"fd00::1", 6883}};
  o.bootstrap = {{"10.0.0.2", 6881}, {"seed.example", 6881}};
  o.dht_routers = {};
  o.gateway = HostPort{"0.0.0.0", 8080};
  o.metrics = HostPort{"127.0.0.1", 9090};
  o.capacity_bytes = 200ull << 30;
  o.download_memory_bytes = 8 << 20;
  o.hash_threads = 3;
  o.log_level = "debug";
  o.log_format = "json";
  o.fetch_timeout = absl::Seconds(45);
  o.api_token_file = "/etc/shoal/tokens";
  o.api_tls_cert = "/etc/shoal/api.crt";
  o.api_tls_key = "/etc/shoal/api.key";
  o.api_tls_client_ca = "/etc/shoal/ca.crt";
  o.cluster_key_file = "/etc/shoal/cluster.key";
  o.ip_filter = "/etc/shoal/ipfilter.dat";
  o.api_insecure = true;
  o.path_roots = {"/data", "/srv"};
  o.encryption = Encryption::kRequire;
  o.lsd = false;
  o.utp = false;
  o.share_ratio_limit = 2.5;
  o.seed_time_limit = 86400;
  o.active_downloads = 0;
  o.active_seeds = 9;
  o.peer_retry_seconds = 7;
  o.gateway_threads = 4;
  o.gateway_max_connections = 100;
  o.gateway_header_timeout = absl::Seconds(5);
  o.gateway_idle_timeout = absl::Seconds(30);
  o.gateway_max_header_bytes = 8192;
  o.gateway_max_fetches = 7;
  o.gateway_cache_bytes = 1 << 20;
  o.gateway_torrents = true;
  ExpectSame(o, RoundTrip(o));
  // Secrets are named by their files, never inlined.
  const std::string toml = ConfigToml(o);
  EXPECT_NE(toml.find("cluster_key_file = '/etc/shoal/cluster.key'"),
            std::string::npos)
      << toml;
}

}  // namespace
}  // namespace shoal::node
