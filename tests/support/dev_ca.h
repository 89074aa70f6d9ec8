// Throw-away CAs from scripts/dev-ca for the TLS tests: made once per test
// binary, in a folder of its own, removed at the end.
//
//   const auto* const kCas = ::testing::AddGlobalTestEnvironment(
//       new test::DevCas("mtls", {"one", "one device SN1", "two"}));
//   test::DevCas::file("one", "ca.crt")
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

namespace luacs::test {

class DevCas : public ::testing::Environment {
 public:
  // `runs`: what follows the folder on each scripts/dev-ca command line,
  // its first word the CA's folder ("one", "one device SN1 --expired").
  DevCas(std::string tag, std::vector<std::string> runs);
  void SetUp() override;
  void TearDown() override;

  // The folder of every CA (and of whatever else a test keeps beside them).
  static const std::filesystem::path& dir();
  // A file of CA `ca`: file("one", "ca.crt").
  static std::string file(const std::string& ca, const std::string& name);

 private:
  std::string tag_;
  std::vector<std::string> runs_;
};

}  // namespace luacs::test
