#include "core/server/server.h"

#include <event2/thread.h>

#include <stdexcept>
#include <thread>

#include "core/metrics/metrics.h"
#include "core/server/worker.h"
#include "core/util/net.h"

namespace luacs::server {

struct Server::Impl {
  explicit Impl(config::Config c) : cfg(std::move(c)), shared(cfg) {}
  config::Config cfg;
  Shared shared;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<uint16_t> ports;
  bool running = false;
};

Server::Server(config::Config cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {
  static const bool threads_ready = [] { return evthread_use_pthreads() == 0; }();
  if (!threads_ready) throw std::runtime_error("libevent: evthread_use_pthreads failed");
}

Server::~Server() {
  stop();
}

void Server::start() {
  auto& im = *impl_;
  unsigned n = im.cfg.workers ? im.cfg.workers : std::max(1u, std::thread::hardware_concurrency());
  im.ports.clear();
  for (const auto& a : im.cfg.listen) {
    // The workers share each address with SO_REUSEPORT, which would as
    // gladly share it with a second luacs started by mistake.
    util::ensure_not_listening(util::listen_addr(a.host, a.port));
    im.ports.push_back(a.port);
  }
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>(im.shared, static_cast<int>(i));
    w->listen(im.cfg.listen, im.ports);  // the first worker fixes any port 0
    im.shared.workers.push_back(w.get());
    im.workers.push_back(std::move(w));
  }
  for (auto r : {Refusal::kStoreDown, Refusal::kStoreBehind, Refusal::kOverloaded,
                 Refusal::kTooManySessions, Refusal::kDeviceBusy, Refusal::kAddressLimit})
    metrics::declare_refusal(metric_name(r));
  for (auto& w : im.workers) w->start();
  im.running = true;
}

void Server::stop() {
  auto& im = *impl_;
  if (!im.running) return;
  im.running = false;
  for (auto& w : im.workers) w->stop();
  im.workers.clear();
  im.shared.workers.clear();
}

void Server::set_store(store::Store* store) {
  impl_->shared.store = store;
}

void Server::set_policy(lua::PolicyManager* policies, lua::FileServices files,
                        uint16_t files_port) {
  impl_->shared.policies = policies;
  impl_->shared.files = std::move(files);
  impl_->shared.files_port = files_port;
}

void Server::set_tls(tls::Holder* holder) {
  impl_->shared.tls = holder;
}

void Server::set_session_observer(SessionObserver observer, const std::atomic<bool>* active) {
  impl_->shared.observer = std::move(observer);
  impl_->shared.observing = active;
}

void Server::set_connection_request_observer(
    std::function<void(const std::string& device_id)> observer) {
  impl_->shared.connection_request_observer = std::move(observer);
}

void Server::set_connection_request_credentials_observer(
    std::function<void(const std::string& device_id, device::ConnectionRequestSecrets)> observer) {
  impl_->shared.connection_request_credentials = std::move(observer);
}

const std::vector<uint16_t>& Server::ports() const {
  return impl_->ports;
}
const Stats& Server::stats() const {
  return impl_->shared.stats;
}
bool Server::device_in_session(const std::string& device_id) const {
  return impl_->shared.directory.device_owner(device_id) >= 0;
}
unsigned Server::workers() const {
  return static_cast<unsigned>(impl_->workers.size());
}

}  // namespace luacs::server
