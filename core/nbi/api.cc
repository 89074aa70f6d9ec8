#include "core/nbi/api.h"

#include <signal.h>

#include <stdexcept>

#include "core/nbi/connection.h"
#include "core/util/log.h"

namespace luacs::nbi {

Options options_from(const config::Config& cfg) {
  Options o;
  o.listen = cfg.nbi_listen;
  o.dsn = cfg.store_dsn;
  o.db_connections = cfg.nbi_db_connections;
  o.max_body = cfg.nbi_max_body;
  o.max_file_bytes = cfg.nbi_max_file_bytes;
  o.online_window = cfg.nbi_online_window;
  o.event_buffer = cfg.nbi_event_buffer;
  for (const auto& c : cfg.metrics_allow)
    if (auto cidr = util::parse_cidr(c)) o.metrics_allow.push_back(*cidr);
  o.files_dir = cfg.files_dir;
  o.policy_dir = cfg.policy_dir;
  o.tls_handshake_timeout = cfg.tls_handshake_timeout;
  return o;
}

Api::Api(Options opts, Services services) : opts_(std::move(opts)), services_(std::move(services)) {
  build_routes();
}

Api::~Api() {
  stop();
}

void Api::build_routes() {
  // Literal routes before placeholder ones of the same shape.
  add_basic_routes(router_);
  add_policy_routes(router_);
  add_metrics_routes(router_);
  add_connreq_routes(router_);
  add_event_routes(router_);
  add_device_routes(router_);
  add_task_routes(router_);
  add_job_routes(router_);
  add_fault_and_session_routes(router_);
  add_file_routes(router_);
}

void Api::start() {
  base_ = loop::new_base();
  mailbox_ = std::make_unique<loop::Mailbox>(base_.get());
  events_.set_executor(mailbox_->executor());
  const auto addr = util::listen_addr(opts_.listen.host, opts_.listen.port);
  if (opts_.listen.tls && !opts_.tls)
    throw std::runtime_error("cannot listen on https://" + addr.spec + ": no TLS certificates");
  util::ensure_not_listening(addr);
  listener_ = loop::listen(base_.get(), addr, &Api::on_accept, this, {});
  port_ = util::bound_port(evconnlistener_get_fd(listener_.get()));
  if (!opts_.dsn.empty()) {
    db_ = std::make_unique<Db>(base_.get(), opts_.dsn, opts_.db_connections, "luacs-api");
    // `luacs token revoke` NOTIFYs the token's id: its cached check goes at
    // once. After an outage nothing cached is trusted.
    db_->listen(
        "luacs_token",
        [this](const std::string& id) {
          try {
            token_cache_.erase(std::stoll(id));
          } catch (const std::exception&) {
            token_cache_.clear();
          }
        },
        [this] { token_cache_.clear(); });
    db_->start();
    start_job_resumer(*this);
  }
  started_ = true;
  thread_ = std::thread([this] {
    // Signals belong to the main thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    event_base_loop(base_.get(), EVLOOP_NO_EXIT_ON_EMPTY);
  });
}

void Api::stop() {
  if (!started_) return;
  started_ = false;
  mailbox_->post([this] {
    listener_.reset();
    timers_.clear();
    jobs_waking_.clear();
    while (!conns_.empty()) (*conns_.begin())->close();
    if (db_) db_->close();
    event_base_loopbreak(base_.get());
  });
  thread_.join();
  db_.reset();
  mailbox_.reset();
  base_.reset();
}

void Api::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* peer, int len, void* self) {
  auto* api = static_cast<Api*>(self);
  const bool tls = api->opts_.listen.tls;
  // With TLS, the certificates of this moment: a reload changes what the
  // next handshake gets; this connection keeps its own.
  loop::BufferEvent bev = loop::accepted(api->base(), fd, tls ? &api->opts_.tls : nullptr);
  if (!bev) {
    log::warn(std::string("api: a connection refused: ") +
              (tls ? "SSL_new failed" : "no bufferevent"));
    return;
  }
  new Connection(*api, std::move(bev), tls, peer, len);  // owns itself
}

void Api::count_request(const std::string& route, int status) {
  std::lock_guard lock(counts_mu_);
  ++request_counts_[{route, status}];
}

std::string Api::request_metrics() const {
  std::string out =
      "# HELP luacs_api_requests_total API requests answered, by route and status.\n"
      "# TYPE luacs_api_requests_total counter\n";
  std::lock_guard lock(counts_mu_);
  for (const auto& [key, n] : request_counts_) {
    out += "luacs_api_requests_total{route=\"" + key.first + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
  }
  return out;
}

}  // namespace luacs::nbi
