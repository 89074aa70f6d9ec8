// An in-process luacs CWMP server on 127.0.0.1 with a free port, for
// integration tests over real sockets.
#pragma once

#include <memory>
#include <string>

#include "core/config/config.h"
#include "core/server/server.h"
#include "lua/policy.h"

namespace luacs::test {

// A configuration for tests: loopback, a free port, two workers, quiet logs.
config::Config test_config(unsigned workers = 2);

class TestServer {
 public:
  // `policy`: the text of a Lua policy every session runs (one file, hooks
  // with a budget of a second and no instruction count), or "" for none.
  explicit TestServer(config::Config cfg = test_config(), const std::string& policy = "");
  ~TestServer();
  uint16_t port() const { return server_->ports().at(0); }
  server::Server& server() { return *server_; }
  const server::Stats& stats() const { return server_->stats(); }

 private:
  std::unique_ptr<lua::PolicyManager> policies_;  // outlives server_
  std::unique_ptr<server::Server> server_;
};

// A policy whose on_inform reads Device.DeviceInfo.UpTime `count` times, one
// GetParameterValues after the other: an ACS with that much to say.
std::string policy_reading_uptime(int count);

}  // namespace luacs::test
