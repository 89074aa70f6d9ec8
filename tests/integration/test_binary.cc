// The luacs binary itself: start-up errors, serving, clean stop on SIGTERM.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/soap/writer.h"
#include "support/cpe_client.h"
#include "support/luacs_process.h"

using namespace luacs;

namespace {

struct RunResult {
  int status = -1;
  std::string output;
};

std::string write_config(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / ("luacs-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / name;
  std::ofstream(path) << luacs::test::with_test_defaults(text);
  return path.string();
}

// Runs luacs with args to completion (for start-up failures).
RunResult run_luacs(const std::vector<std::string>& args) {
  std::string cmd = LUACS_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace

TEST(Binary, ShippedConfigIsValid) {
  RunResult r = run_luacs({"check-config", std::string(LUACS_SOURCE_DIR) + "/etc/luacs.ini"});
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(Binary, BadConfigStopsStartupWithFileAndLine) {
  std::string path = write_config("bad.ini", "[cwmp]\nworkers = 2\nwokers = 3\n");
  RunResult r = run_luacs({"--config", path});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find(path + ":3:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wokers"), std::string::npos) << r.output;

  path = write_config("bad2.ini", "[limits]\nmax_body_bytes = lots\n");
  r = run_luacs({"--config", path});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find(path + ":2:"), std::string::npos) << r.output;
}

TEST(Binary, ServesASessionAndStopsCleanlyOnSigterm) {
  std::string path =
      write_config("ok.ini", "[cwmp]\nlisten = 127.0.0.1:0\nworkers = 2\n[log]\nlevel = info\n");
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 2);
    dup2(out[1], 1);
    close(out[0]);
    execl(LUACS_BINARY, LUACS_BINARY, "--config", path.c_str(), nullptr);
    _exit(127);
  }
  close(out[1]);
  // Read the log until the listening line names the port.
  std::string log;
  uint16_t port = 0;
  const std::string listening = "listening on 127.0.0.1:";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!port && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 500) <= 0) continue;
    char buf[1024];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    log.append(buf, static_cast<size_t>(n));
    auto at = log.find(listening);
    if (at != std::string::npos && log.find(' ', at + listening.size()) != std::string::npos)
      port = static_cast<uint16_t>(std::stoi(log.substr(at + listening.size())));
  }
  ASSERT_NE(port, 0) << log;

  {
    test::CpeClient c(port);
    soap::Envelope env;
    env.header.id = "1";
    soap::Inform in;
    in.device_id = {"ACME", "001122", "Box", "BIN1"};
    in.events = {{"0 BOOTSTRAP", ""}};
    env.body = in;
    EXPECT_EQ(c.post(soap::write(env)).status, 200);
    EXPECT_EQ(c.post("").status, 204);
    // An event code that tries to close its field and forge another.
    in.device_id.serial_number = "BIN2";
    in.events = {{"1 BOOT\" result=\"forged", ""}};
    env.body = in;
    EXPECT_EQ(c.post(soap::write(env)).status, 200);
    EXPECT_EQ(c.post("").status, 204);
  }
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) log.append(buf, static_cast<size_t>(n));
  close(out[0]);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << log;
  // The session left its one summary line.
  EXPECT_NE(log.find("session device=001122-Box-BIN1"), std::string::npos) << log;
  EXPECT_NE(log.find("events=\"0 BOOTSTRAP\""), std::string::npos) << log;
  EXPECT_NE(log.find("result=completed"), std::string::npos) << log;
  EXPECT_NE(log.find("events=\"1 BOOT\\\" result=\\\"forged\""), std::string::npos) << log;
  EXPECT_EQ(log.find(" result=\"forged"), std::string::npos) << log;
}

// Workers share their address with SO_REUSEPORT; a second luacs started by
// mistake on the same address must stop instead of taking half the CPEs.
TEST(Binary, ASecondLuacsOnTheSamePortExitsNamingTheAddress) {
  test::LuacsProcess first("[cwmp]\nlisten = 127.0.0.1:0\nworkers = 2\n[log]\nlevel = info\n");
  ASSERT_TRUE(first.started()) << first.log();
  const std::string where = "127.0.0.1:" + std::to_string(first.port());
  std::string path = write_config(
      "second.ini", "[cwmp]\nlisten = " + where + "\nworkers = 2\n[log]\nlevel = info\n");
  RunResult r = run_luacs({"--config", path});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("cannot listen on " + where), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("already listens"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("listening on"), std::string::npos) << r.output;

  // The first still serves, and every CPE reaches it.
  for (int i = 0; i < 8; ++i) {
    test::CpeClient c(first.port());
    soap::Envelope env;
    env.header.id = "1";
    soap::Inform in;
    in.device_id = {"ACME", "001122", "Box", "ONE" + std::to_string(i)};
    in.events = {{"1 BOOT", ""}};
    env.body = in;
    EXPECT_EQ(c.post(soap::write(env)).status, 200);
    EXPECT_EQ(c.post("").status, 204);
  }
  EXPECT_EQ(first.stop(), 0);
  EXPECT_EQ(first.count("session device=001122-Box-ONE"), 8u) << first.log();
}

// `luacs test`: a policy's Lua tests run against simulated CPEs; a failing
// expectation names its file:line and makes the exit status 1.
TEST(Binary, LuacsTestPassesAGoodTestAndFailsABrokenOneWithItsFileAndLine) {
  auto dir = std::filesystem::temp_directory_path() /
             ("luacs-test-policytest-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "main.lua") << "function on_inform(dev)\n"
                                     "  if dev.is_new then dev:tag(\"pending\") end\n"
                                     "end\n";
  std::ofstream(dir / "main_test.lua")
      << "test(\"a new device is pending\", function()\n"
         "  local d = cpe{ model = \"tr181\" }\n"
         "  expect_eq(d:session{ events = {\"0 BOOTSTRAP\"} }.tags_added, {\"pending\"})\n"
         "end)\n";
  const std::string models = std::string(LUACS_SHARED_DIR) + "/corpus/datamodels";
  RunResult ok = run_luacs({"test", dir.string(), "--models", models});
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("ok    a new device is pending"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("luacs test: 1 passed, 0 failed"), std::string::npos) << ok.output;

  std::ofstream(dir / "broken_test.lua") << "test(\"expects the wrong tag\", function()\n"
                                            "  local d = cpe{ model = \"tr098\" }\n"
                                            "  local s = d:session{}\n"
                                            "  expect_has(s.tags_added, \"provisioned\")\n"
                                            "end)\n";
  RunResult bad = run_luacs({"test", dir.string(), "--models", models});
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_NE(bad.output.find((dir / "broken_test.lua").string() +
                            ":4: expected \"provisioned\" in {\"pending\"}"),
            std::string::npos)
      << bad.output;
  EXPECT_NE(bad.output.find("luacs test: 1 passed, 1 failed"), std::string::npos) << bad.output;
  std::filesystem::remove_all(dir);
}
