#include "node/path_roots.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace shoal::node {
namespace {

namespace fs = std::filesystem;

class PathRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoal-roots-XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::create_directories(dir_ / "root" / "sub");
    fs::create_directories(dir_ / "outside");
    std::ofstream(dir_ / "root" / "sub" / "a.bin") << "a";
    std::ofstream(dir_ / "outside" / "secret") << "s";
    fs::create_symlink(dir_ / "outside" / "secret", dir_ / "root" / "link");
    fs::create_symlink(dir_ / "root" / "sub" / "a.bin",
                       dir_ / "outside" / "in-link");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PathRootsTest, NoRootsAllowsEverything) {
  PathRoots roots({});
  EXPECT_FALSE(roots.enabled());
  EXPECT_TRUE(roots.Resolve("/etc/shadow", "file").ok());
}

TEST_F(PathRootsTest, InsideAndOutside) {
  PathRoots roots({dir_ / "root"});
  auto ok = roots.Resolve(dir_ / "root" / "sub" / "a.bin", "file");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, fs::canonical(dir_ / "root" / "sub" / "a.bin"));
  EXPECT_EQ(roots.Resolve("/etc/shadow", "file").status().code(),
            absl::StatusCode::kPermissionDenied);
  // ".." climbing out, and a sibling whose name starts like the root.
  EXPECT_FALSE(
      roots.Resolve(dir_ / "root" / ".." / "outside" / "secret", "f").ok());
  fs::create_directories(dir_ / "rootx");
  EXPECT_FALSE(roots.Resolve(dir_ / "rootx", "save path").ok());
  // A save path that doesn't exist yet, inside.
  EXPECT_TRUE(roots.Resolve(dir_ / "root" / "new" / "dir", "save path").ok());
  // The root itself, with or without a trailing slash.
  EXPECT_TRUE(roots.Resolve(dir_ / "root" / "", "save path").ok());
}

TEST_F(PathRootsTest, SymlinksAreFollowed) {
  PathRoots roots({dir_ / "root"});
  // A link inside the root pointing out is refused, and the message says
  // where it leads and which setting applies.
  auto out = roots.Resolve(dir_ / "root" / "link", "file");
  ASSERT_EQ(out.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(out.status().message().find("secret"), std::string::npos);
  EXPECT_NE(out.status().message().find("path_roots"), std::string::npos);
  // A link outside pointing in is fine (what counts is where it leads).
  auto in = roots.Resolve(dir_ / "outside" / "in-link", "file");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->filename(), "a.bin");
}

TEST_F(PathRootsTest, RootThroughSymlink) {
  fs::create_directory_symlink(dir_ / "root", dir_ / "root-link");
  PathRoots roots({dir_ / "root-link"});
  EXPECT_TRUE(roots.Resolve(dir_ / "root" / "sub" / "a.bin", "file").ok());
  EXPECT_TRUE(roots.Resolve(dir_ / "root-link" / "sub" / "a.bin", "file").ok());
}

}  // namespace
}  // namespace shoal::node
