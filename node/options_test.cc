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
hash_threads = 3
log_level = "debug"
)"),
                           o);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(o.data_dir, "/tmp/x");
  EXPECT_EQ(o.api.port, 9000);
  EXPECT_EQ(o.listen.port, 7000);
  ASSERT_TRUE(o.gateway.has_value());
  EXPECT_EQ(o.gateway->port, 8080);
  ASSERT_EQ(o.bootstrap.size(), 1u);
  EXPECT_TRUE(o.dht_routers.empty());
  EXPECT_EQ(o.capacity_bytes, 2ull << 30);
  EXPECT_EQ(o.hash_threads, 3);
  EXPECT_EQ(o.log_level, "debug");
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
  EXPECT_EQ(ApplyConfigFile("/nonexistent/shoal.toml", o).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace shoal::node
