#include "api/auth.h"

#include <grpcpp/server_context.h>
#include <gtest/gtest.h>

#include "api/token_file.h"

namespace shoal::api {
namespace {

TEST(TokenFileTest, ParsesTokensRolesAndComments) {
  auto entries = ParseTokenFile(
      "# operators\n"
      "  0123456789abcdef0123  \n"
      "\n"
      "reader-token-0000000 read\n"
      "admin-token-00000000\tadmin\n");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].token, "0123456789abcdef0123");
  EXPECT_EQ((*entries)[0].role, "admin");
  EXPECT_EQ((*entries)[0].line, 2);
  EXPECT_EQ((*entries)[1].role, "read");
  EXPECT_EQ((*entries)[2].role, "admin");
}

TEST(TokenFileTest, Errors) {
  EXPECT_FALSE(ParseTokenFile("").ok());
  EXPECT_FALSE(ParseTokenFile("# only a comment\n\n").ok());
  auto three = ParseTokenFile("a b c\n");
  ASSERT_FALSE(three.ok());
  EXPECT_NE(three.status().message().find("line 1"), std::string::npos);
}

TEST(AuthorizerTest, Roles) {
  auto a =
      Authorizer::Parse("admin-token-00000000\nreader-token-0000000 read\n");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->enabled());
  EXPECT_EQ(*a->RoleOf("admin-token-00000000"), Role::kAdmin);
  EXPECT_EQ(*a->RoleOf("reader-token-0000000"), Role::kRead);
  EXPECT_FALSE(a->RoleOf("admin-token-0000000").ok());    // a prefix
  EXPECT_FALSE(a->RoleOf("admin-token-000000000").ok());  // longer
  EXPECT_FALSE(a->RoleOf("").ok());
}

TEST(AuthorizerTest, BadFiles) {
  auto role = Authorizer::Parse("tok-0000000000000000 root\n");
  ASSERT_FALSE(role.ok());
  EXPECT_NE(role.status().message().find("unknown role 'root'"),
            std::string::npos);
  EXPECT_FALSE(Authorizer::Parse("short\n").ok());
  EXPECT_EQ(Authorizer::Load("/nonexistent/tokens").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(AuthorizerTest, WithoutTokensEveryCallPasses) {
  Authorizer open;
  EXPECT_FALSE(open.enabled());
  grpc::ServerContext ctx;
  EXPECT_TRUE(open.Check(&ctx, Role::kAdmin).ok());
}

TEST(AuthorizerTest, MissingTokenIsUnauthenticated) {
  auto a = Authorizer::Parse("admin-token-00000000\n");
  ASSERT_TRUE(a.ok());
  grpc::ServerContext ctx;
  EXPECT_EQ(a->Check(&ctx, Role::kRead).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace shoal::api
