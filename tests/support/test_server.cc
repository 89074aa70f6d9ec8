#include "support/test_server.h"

#include <csignal>

#include "core/util/log.h"

namespace luacs::test {

config::Config test_config(unsigned workers) {
  config::Config cfg;
  cfg.listen = {{"127.0.0.1", 0, false}};
  cfg.workers = workers;
  cfg.log_level = "warn";
  return cfg;
}

TestServer::TestServer(config::Config cfg, server::HandlerFactory factory) {
  std::signal(SIGPIPE, SIG_IGN);
  log::set_level(cfg.log_level);
  server_ = std::make_unique<server::Server>(std::move(cfg));
  if (factory) server_->set_handler_factory(std::move(factory));
  server_->start();
}

TestServer::~TestServer() {
  server_->stop();
}

}  // namespace luacs::test
