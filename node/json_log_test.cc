#include "node/json_log.h"

#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace shoal::node {
namespace {

nlohmann::json Parse(std::string_view message) {
  return nlohmann::json::parse(
      JsonLogLine("2026-12-06T10:00:00.000Z", "info", message));
}

TEST(JsonLogTest, ComponentAndFields) {
  auto j = Parse("torrent 3f2a9c0d1e2f: checking 2048 pieces");
  EXPECT_EQ(j["component"], "torrent");
  EXPECT_EQ(j["id"], "3f2a9c0d1e2f");
  EXPECT_EQ(j["message"], "torrent 3f2a9c0d1e2f: checking 2048 pieces");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["time"], "2026-12-06T10:00:00.000Z");
  j = Parse("swarm 0123abcd4567: banning 10.0.0.7:6881: sent corrupt data");
  EXPECT_EQ(j["component"], "swarm");
  EXPECT_EQ(j["peer"], "10.0.0.7:6881");
  j = Parse("API call from ipv4:127.0.0.1:5555 without a token refused");
  EXPECT_EQ(j["component"], "api");
  j = Parse("shoald 0.1.0 node abc");
  EXPECT_EQ(j["component"], "node");
  EXPECT_FALSE(j.contains("id"));
}

TEST(JsonLogTest, EscapesEverything) {
  auto j = Parse("quote \" backslash \\ newline \n tab \t bell \x07 é");
  EXPECT_EQ(j["message"],
            "quote \" backslash \\ newline \n tab \t bell \x07 é");
}

}  // namespace
}  // namespace shoal::node
