#include "node/web_seed.h"

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

chunk::FileEntry File(std::string path) {
  chunk::FileEntry f;
  f.path = std::move(path);
  return f;
}

chunk::Metainfo Multi() {
  chunk::Metainfo m;
  m.name = "My Files";
  m.multi_file = true;
  m.files.push_back(File("My Files/a b.txt"));
  m.files.push_back(File("My Files/sub/ü.bin"));
  return m;
}

TEST(WebSeedFileUrlTest, MultiFileAppendsNameAndPathEncoded) {
  const chunk::Metainfo m = Multi();
  EXPECT_EQ(WebSeedFileUrl("http://h/seed/", m, 0),
            "http://h/seed/My%20Files/a%20b.txt");
  // A '/' is added to a base without one.
  EXPECT_EQ(WebSeedFileUrl("http://h:8080/seed", m, 1),
            "http://h:8080/seed/My%20Files/sub/%C3%BC.bin");
}

TEST(WebSeedFileUrlTest, SingleFileAppendsTheNameOnlyToADirectory) {
  chunk::Metainfo m;
  m.name = "file 1.iso";
  m.files.push_back(File("file 1.iso"));
  EXPECT_EQ(WebSeedFileUrl("http://h/pub/", m, 0), "http://h/pub/file%201.iso");
  EXPECT_EQ(WebSeedFileUrl("http://h/pub/other.iso", m, 0),
            "http://h/pub/other.iso");
}

TEST(WebSeedLinkTest, RejectsUrlsThatAreNotHttp) {
  asio::io_context io;
  auto m = std::make_shared<const chunk::Metainfo>(Multi());
  EXPECT_TRUE(absl::IsInvalidArgument(
      WebSeedLink::Create(io, "udp://h:1/x", m).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      WebSeedLink::Create(io, "ftp://h/x", m).status()));
  auto link = WebSeedLink::Create(io, "https://127.0.0.1:8443/s/", m);
  ASSERT_TRUE(link.ok());
  EXPECT_EQ((*link)->ban_key(), "https://127.0.0.1:8443/s/");
  EXPECT_EQ((*link)->remote().ToString(), "127.0.0.1:8443");
  // Two web seeds never share a peer ID.
  auto other = WebSeedLink::Create(io, "http://127.0.0.1:8080/s/", m);
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*link)->handshake({}).peer_id, (*other)->handshake({}).peer_id);
  EXPECT_TRUE((*link)->handshake({}).fast());
}

}  // namespace
}  // namespace shoal::node
