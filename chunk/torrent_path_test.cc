#include "chunk/torrent_path.h"

#include "gtest/gtest.h"

namespace shoal::chunk {
namespace {

// Elements that could escape the save path become harmless.
TEST(TorrentPathTest, NoEscapes) {
  EXPECT_EQ(SanitizePathElement(".."), "_");
  EXPECT_EQ(SanitizePathElement("."), "_");
  EXPECT_EQ(SanitizePathElement(""), "_");
  EXPECT_EQ(SanitizePathElement("/"), "_");
  EXPECT_EQ(SanitizePathElement("/etc/passwd"), "etcpasswd");
  EXPECT_EQ(SanitizePathElement("..\\..\\x"), "....x");
  EXPECT_EQ(SanitizePathElement("a/../b"), "a..b");
}

// Control characters and bidi overrides are dropped, bad UTF-8 becomes '_',
// valid non-ASCII text is kept.
TEST(TorrentPathTest, Characters) {
  EXPECT_EQ(SanitizePathElement("a\nb\x01"
                                "c"),
            "abc");
  EXPECT_EQ(SanitizePathElement("evil\u202Etxt.exe"), "eviltxt.exe");
  EXPECT_EQ(SanitizePathElement("\xff\xfe"
                                "x"),
            "__x");
  EXPECT_EQ(SanitizePathElement("\xc3"), "_");       // truncated
  EXPECT_EQ(SanitizePathElement("\xc0\xaf"), "__");  // overlong '/'
  EXPECT_EQ(SanitizePathElement("ünïcødé файл 日本"), "ünïcødé файл 日本");
}

// Windows device names get a prefix, in any case and with an extension.
TEST(TorrentPathTest, ReservedNames) {
  EXPECT_EQ(SanitizePathElement("CON"), "_CON");
  EXPECT_EQ(SanitizePathElement("nul.txt"), "_nul.txt");
  EXPECT_EQ(SanitizePathElement("Lpt1"), "_Lpt1");
  EXPECT_EQ(SanitizePathElement("console"), "console");
  EXPECT_EQ(SanitizePathElement("com10"), "com10");
}

// Long elements are cut to 240 bytes at a UTF-8 boundary, keeping the
// extension.
TEST(TorrentPathTest, LongNames) {
  std::string s = SanitizePathElement(std::string(300, 'a') + ".mkv");
  EXPECT_EQ(s.size(), kMaxPathElementBytes);
  EXPECT_TRUE(s.ends_with("a.mkv"));
  std::string u;
  for (int i = 0; i < 200; ++i) u += "é";  // 2 bytes each
  std::string cut = SanitizePathElement(u);
  EXPECT_LE(cut.size(), kMaxPathElementBytes);
  EXPECT_EQ(cut.size() % 2, 0u);
}

}  // namespace
}  // namespace shoal::chunk
