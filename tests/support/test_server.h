// An in-process luacs CWMP server on 127.0.0.1 with a free port, for
// integration tests over real sockets.
#pragma once

#include <memory>

#include "core/config/config.h"
#include "core/server/server.h"

namespace luacs::test {

// A configuration for tests: loopback, a free port, two workers, quiet logs.
config::Config test_config(unsigned workers = 2);

class TestServer {
 public:
  explicit TestServer(config::Config cfg = test_config(), server::HandlerFactory factory = nullptr);
  ~TestServer();
  uint16_t port() const { return server_->ports().at(0); }
  server::Server& server() { return *server_; }
  const server::Stats& stats() const { return server_->stats(); }

 private:
  std::unique_ptr<server::Server> server_;
};

}  // namespace luacs::test
