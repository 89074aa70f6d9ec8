#include "support/dev_ca.h"

#include <unistd.h>

#include <cstdlib>

namespace luacs::test {

namespace {

std::filesystem::path g_dir;

}  // namespace

DevCas::DevCas(std::string tag, std::vector<std::string> runs)
    : tag_(std::move(tag)), runs_(std::move(runs)) {}

void DevCas::SetUp() {
  g_dir =
      std::filesystem::temp_directory_path() / ("luacs-" + tag_ + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(g_dir);  // one left by an earlier process of this pid
  for (const auto& run : runs_) {
    const std::string cmd = std::string(LUACS_SOURCE_DIR) + "/scripts/dev-ca " +
                            (g_dir / run).string() + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}

void DevCas::TearDown() {
  std::filesystem::remove_all(g_dir);
}

const std::filesystem::path& DevCas::dir() {
  return g_dir;
}

std::string DevCas::file(const std::string& ca, const std::string& name) {
  return (g_dir / ca / name).string();
}

}  // namespace luacs::test
