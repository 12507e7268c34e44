#include "api/http_util.h"

#include <gtest/gtest.h>

namespace shoal::api {
namespace {

TEST(ParseRangeTest, Forms) {
  ByteRange r;
  EXPECT_EQ(ParseRange("", 100, r), RangeResult::kNone);
  ASSERT_EQ(ParseRange("bytes=10-19", 100, r), RangeResult::kOk);
  EXPECT_EQ(r.first, 10u);
  EXPECT_EQ(r.length, 10u);
  ASSERT_EQ(ParseRange("bytes=90-", 100, r), RangeResult::kOk);
  EXPECT_EQ(r.length, 10u);
  ASSERT_EQ(ParseRange("bytes=-30", 100, r), RangeResult::kOk);
  EXPECT_EQ(r.first, 70u);
  ASSERT_EQ(ParseRange("bytes=-300", 100, r), RangeResult::kOk);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.length, 100u);
  ASSERT_EQ(ParseRange("bytes=50-1000", 100, r), RangeResult::kOk);
  EXPECT_EQ(r.length, 50u);
}

TEST(ParseRangeTest, UnsatisfiableAndIgnored) {
  ByteRange r;
  EXPECT_EQ(ParseRange("bytes=100-", 100, r), RangeResult::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-0", 100, r), RangeResult::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=0-", 0, r), RangeResult::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=1-2,5-6", 100, r), RangeResult::kIgnored);
  EXPECT_EQ(ParseRange("items=1-2", 100, r), RangeResult::kIgnored);
  EXPECT_EQ(ParseRange("bytes=5-2", 100, r), RangeResult::kIgnored);
  EXPECT_EQ(ParseRange("bytes=a-2", 100, r), RangeResult::kIgnored);
  EXPECT_EQ(ParseRange("bytes=1", 100, r), RangeResult::kIgnored);
  EXPECT_EQ(ParseRange("bytes=99999999999999999999-", 100, r),
            RangeResult::kIgnored);
}

TEST(MimeTypeTest, CommonWebTypes) {
  EXPECT_EQ(MimeTypeFor("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(MimeTypeFor("site/style.CSS"), "text/css; charset=utf-8");
  EXPECT_EQ(MimeTypeFor("app.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(MimeTypeFor("a.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(MimeTypeFor("data.json"), "application/json");
  EXPECT_EQ(MimeTypeFor("logo.svg"), "image/svg+xml");
  EXPECT_EQ(MimeTypeFor("p.png"), "image/png");
  EXPECT_EQ(MimeTypeFor("p.jpg"), "image/jpeg");
  EXPECT_EQ(MimeTypeFor("p.gif"), "image/gif");
  EXPECT_EQ(MimeTypeFor("p.webp"), "image/webp");
  EXPECT_EQ(MimeTypeFor("p.avif"), "image/avif");
  EXPECT_EQ(MimeTypeFor("f.woff"), "font/woff");
  EXPECT_EQ(MimeTypeFor("f.woff2"), "font/woff2");
  EXPECT_EQ(MimeTypeFor("m.wasm"), "application/wasm");
  EXPECT_EQ(MimeTypeFor("v.mp4"), "video/mp4");
  EXPECT_EQ(MimeTypeFor("v.webm"), "video/webm");
  EXPECT_EQ(MimeTypeFor("r.txt"), "text/plain; charset=utf-8");
  EXPECT_EQ(MimeTypeFor("d.pdf"), "application/pdf");
  EXPECT_EQ(MimeTypeFor("f.xml"), "application/xml");
  EXPECT_EQ(MimeTypeFor("noext"), "application/octet-stream");
  EXPECT_EQ(MimeTypeFor("dir.d/noext"), "application/octet-stream");
  EXPECT_EQ(MimeTypeFor("trailing."), "application/octet-stream");
  EXPECT_EQ(MimeTypeFor("x.unknown"), "application/octet-stream");
}

TEST(PercentDecodeTest, Decodes) {
  EXPECT_EQ(PercentDecode("a%20b"), "a b");
  EXPECT_EQ(PercentDecode("%C3%A9t%C3%A9"), "\xC3\xA9t\xC3\xA9");
  EXPECT_EQ(PercentDecode("plain"), "plain");
  EXPECT_FALSE(PercentDecode("%").has_value());
  EXPECT_FALSE(PercentDecode("%2").has_value());
  EXPECT_FALSE(PercentDecode("%zz").has_value());
  EXPECT_FALSE(PercentDecode("%00").has_value());
}

TEST(QueryParamTest, Finds) {
  EXPECT_EQ(QueryParam("filename=a.css", "filename"), "a.css");
  EXPECT_EQ(QueryParam("x=1&filename=my%20file.txt&y", "filename"),
            "my file.txt");
  EXPECT_EQ(QueryParam("filename=a+b", "filename"), "a b");
  EXPECT_FALSE(QueryParam("x=1", "filename").has_value());
  EXPECT_FALSE(QueryParam("filename=%zz", "filename").has_value());
}

TEST(SafePathTest, RefusesTraversal) {
  EXPECT_EQ(SafePath("a/b.css"), "a/b.css");
  EXPECT_EQ(SafePath("dir%20x/%C3%A9.txt"), "dir x/\xC3\xA9.txt");
  EXPECT_FALSE(SafePath("").has_value());
  EXPECT_FALSE(SafePath("../etc/passwd").has_value());
  EXPECT_FALSE(SafePath("a/%2E%2E/b").has_value());
  EXPECT_FALSE(SafePath("a//b").has_value());
  EXPECT_FALSE(SafePath("a/").has_value());
  EXPECT_FALSE(SafePath("./a").has_value());
  EXPECT_FALSE(SafePath("a\\b").has_value());
  EXPECT_FALSE(SafePath("a%5Cb").has_value());
  EXPECT_FALSE(SafePath("a%00b").has_value());
}

TEST(ContentDispositionTest, AsciiAndUtf8) {
  EXPECT_EQ(ContentDisposition("a.txt"), "inline; filename=\"a.txt\"");
  EXPECT_EQ(ContentDisposition("\xC3\xA9.txt"),
            "inline; filename=\"__.txt\"; filename*=UTF-8''%C3%A9.txt");
  EXPECT_EQ(ContentDisposition("a\"b"),
            "inline; filename=\"a_b\"; filename*=UTF-8''a%22b");
}

}  // namespace
}  // namespace shoal::api
