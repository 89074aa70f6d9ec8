#include "support/test_server.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/util/log.h"

namespace luacs::test {

config::Config test_config(unsigned workers) {
  config::Config cfg;
  cfg.listen = {{"127.0.0.1", 0, false}};
  cfg.workers = workers;
  cfg.log_level = "warn";
  return cfg;
}

TestServer::TestServer(config::Config cfg, const std::string& policy) {
  std::signal(SIGPIPE, SIG_IGN);
  log::set_level(cfg.log_level);
  server_ = std::make_unique<server::Server>(std::move(cfg));
  if (!policy.empty()) {
    static std::atomic<int> n{0};
    auto dir = std::filesystem::temp_directory_path() /
               ("luacs-test-policy-" + std::to_string(getpid()) + "-" + std::to_string(++n));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "policy.lua") << policy;
    lua::Limits limits;
    limits.time_limit = std::chrono::seconds(1);
    limits.max_instructions = 1'000'000'000;
    policies_ = std::make_unique<lua::PolicyManager>(dir.string(), limits);
    auto r = policies_->reload();
    if (!r.ok) throw std::runtime_error("test policy: " + r.error);
    server_->set_policy(policies_.get(), {}, 0);
  }
  server_->start();
}

TestServer::~TestServer() {
  server_->stop();
}

std::string policy_reading_uptime(int count) {
  return "function on_inform(dev)\n  for i = 1, " + std::to_string(count) +
         " do dev:get{\"Device.DeviceInfo.UpTime\"} end\nend\n";
}

}  // namespace luacs::test
