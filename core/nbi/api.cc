#include "core/nbi/api.h"

#include <signal.h>

#include <stdexcept>

#include "core/nbi/connection.h"
#include "core/nbi/history.h"
#include "core/nbi/login.h"
#include "core/nbi/overview.h"
#include "core/nbi/web.h"
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
  o.files_url = cfg.files_url;
  o.policy_dir = cfg.policy_dir;
  o.tls_handshake_timeout = cfg.tls_handshake_timeout;
  o.web_dir = cfg.nbi_web_dir;
  o.web_session_idle = cfg.nbi_web_session_idle;
  o.web_session_max = cfg.nbi_web_session_max;
  o.history_step = cfg.nbi_history_step;
  o.overview_refresh = cfg.nbi_overview_refresh;
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
  add_web_routes(router_);
  add_login_routes(router_);
  add_history_routes(router_);
  add_overview_routes(router_);
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
  // Read before anything serves: no request ever waits for the disk.
  web_ = std::make_unique<WebFiles>(WebFiles::load(opts_.web_dir));
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
  sessions_ = std::make_unique<WebSessions>(opts_.web_session_idle, opts_.web_session_max);
  every(std::chrono::minutes(1), [this] { sessions_->prune(std::chrono::steady_clock::now()); });
  history_ = std::make_unique<History>(opts_.history_step);
  auto sample = [this] {
    const auto t = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
    history_->sample(services_.metrics ? services_.metrics() : std::string(), t);
  };
  sample();  // the baseline the first step is counted from
  every(opts_.history_step, sample);
  overview_ = std::make_unique<Overview>(*this);
  if (db_) {
    overview_->start();
    every(std::chrono::seconds(1), [this] { overview_->tick(); });
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
    periodic_.clear();
    if (sessions_) sessions_->clear_pending();
    jobs_waking_.clear();
    while (!conns_.empty()) (*conns_.begin())->close();
    if (overview_) overview_->close();
    if (db_) db_->close();
    event_base_loopbreak(base_.get());
  });
  thread_.join();
  overview_.reset();
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

void Api::every(std::chrono::milliseconds period, std::function<void()> fn) {
  auto& f = periodic_.emplace_back(std::move(fn));
  loop::Event ev(event_new(
      base_.get(), -1, EV_PERSIST,
      [](evutil_socket_t, short, void* arg) { (*static_cast<std::function<void()>*>(arg))(); },
      &f));
  const timeval tv = loop::to_timeval(period);
  event_add(ev.get(), &tv);
  timers_.push_back(std::move(ev));
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
