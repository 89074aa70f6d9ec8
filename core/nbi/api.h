// The northbound REST API on [nbi] listen (default :7557): the public face
// of core/nbi. docs/nbi.md documents every route.
//
// The API runs on a thread and event loop of its own: a request never runs
// on a CWMP worker loop. It reaches PostgreSQL through its own asynchronous
// connections (core/nbi/db.h) and the running server only through
// Services, whose calls are cheap and thread-safe or are posted to the main
// thread's loop. Every route but /healthz, /readyz, /openapi.json, the web
// page's files (core/nbi/web.h) and /login needs a bearer token
// (core/nbi/auth.h) or the page's session cookie (core/nbi/login.h);
// /metrics is also open to [metrics] allow.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config/config.h"
#include "core/loop/loop.h"
#include "core/loop/tls_accept.h"
#include "core/nbi/auth.h"
#include "core/nbi/db.h"
#include "core/nbi/events.h"
#include "core/nbi/router.h"
#include "core/store/store.h"
#include "core/util/net.h"

namespace luacs::nbi {

struct Options {
  config::ListenAddress listen{"0.0.0.0", 7557, false};
  std::string dsn;  // "": no store; routes that need one answer 503
  unsigned db_connections = 2;
  uint64_t max_body = 1 << 20;
  uint64_t max_file_bytes = uint64_t{4} << 30;
  std::chrono::milliseconds online_window{15 * 60'000};
  uint64_t event_buffer = 1 << 20;
  std::vector<util::Cidr> metrics_allow;
  std::string files_dir = "var/files";
  // [files] url: the base of the URLs CPEs fetch files from ("" the path
  // alone, as the file server's own answers give it).
  std::string files_url;
  std::string policy_dir;  // "": none configured
  std::chrono::milliseconds idle_timeout{60'000};
  // An https:// listen: each connection's SSL (App sets it: [cwmp]'s
  // certificates, no client certificate), and how long its handshake may
  // take ([cwmp] tls_handshake_timeout).
  loop::SslFactory tls;
  std::chrono::milliseconds tls_handshake_timeout{10'000};
  // The operator page (core/nbi/web.h): its folder ("" none), and how long
  // its logins last (core/nbi/login.h).
  std::string web_dir;
  std::chrono::milliseconds web_session_idle{12 * 3'600'000};
  std::chrono::milliseconds web_session_max{7 * 24 * 3'600'000};
  // GET /metrics/history's sample period (core/nbi/history.h).
  std::chrono::milliseconds history_step{60'000};
  // How old GET /overview's figures may get (core/nbi/overview.h).
  std::chrono::milliseconds overview_refresh{30'000};
};

Options options_from(const config::Config& cfg);

// The end of a connection request (core/connreq/service.h's WakeResult).
struct WakeAnswer {
  std::string outcome;  // "informed", "answered", "auth_failed", "offline", ...
  bool session_started = false;
  int http_status = 0;
  std::string detail;
  int64_t latency_ms = -1;
  int64_t attempt = 0;      // the connection_requests row, 0 if none
  std::string transport{};  // "http", "udp", "xmpp"; "" when none was tried
};

// What the running server lends the API. Any member may be empty (tests,
// a server without a policy); the routes that need it then answer 501/503.
struct Services {
  // Any thread: whether the device is in a CWMP session now.
  std::function<bool(const std::string& device_id)> in_session;
  // Any thread: whether the CWMP side's store is up.
  std::function<bool()> store_available;
  // Runs work on the main thread's loop (policy reloads, which read files).
  loop::Executor main;
  // Main thread only (posted through `main`):
  std::function<nlohmann::json()> policy_status;
  std::function<nlohmann::json()> policy_reload;
  std::function<nlohmann::json(const std::string& dir)> policy_check;
  // Any thread: the Prometheus text of everything but the API's own series.
  std::function<std::string()> metrics;
  // Any thread (may stat() the file): the URL CPEs fetch a file of the file
  // server from ([files] url + "/<token>/<name>", or the path alone without
  // a url), "" when it serves no file of that name.
  std::function<std::string(const std::string& name)> file_url;
  // Any thread: wakes the device with a connection request; `done` runs on
  // any thread once its session started, the request failed, or `wait`
  // passed after the CPE answered (post back with Api::executor()).
  std::function<void(const std::string& device_id, std::chrono::milliseconds wait,
                     std::function<void(WakeAnswer)> done)>
      wake;
  // Any thread, never blocking: the CWMP server's in-memory copy of a device
  // (null when it has none), so a hot route spares PostgreSQL a read.
  std::function<std::shared_ptr<const store::Device>(const std::string& device_id)> cached_device;
};

class Connection;
class JobWaker;
class WebFiles;
class WebSessions;
class History;
class Overview;

class Api {
 public:
  Api(Options opts, Services services);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Binds (throws std::runtime_error "cannot listen on ...") and starts the
  // thread.
  void start();
  // Closes every connection and joins the thread.
  void stop();
  uint16_t port() const { return port_; }

  // ---- the API's loop thread
  const Options& options() const { return opts_; }
  const Services& services() const { return services_; }
  const Router& router() const { return router_; }
  Db* db() { return db_.get(); }
  event_base* base() { return base_.get(); }
  // Runs fn on the API's loop (any thread may call it).
  loop::Executor executor() const { return mailbox_->executor(); }
  Throttle& throttle() { return throttle_; }
  // The live events of GET /events; producers may publish from any thread
  // (core/nbi/events.h), also before start().
  EventHub& events() { return events_; }

  // Counted per route pattern and status for /metrics.
  void count_request(const std::string& route, int status);
  std::string request_metrics() const;

  // Timers of the route modules, freed with the loop.
  void keep_event(loop::Event ev) { timers_.push_back(std::move(ev)); }
  // Tokens checked against api_tokens in the last kTokenTtl, by id: their
  // stored hash and who they are. A busy client does not cost a query per
  // request; a revoked token stops working within kTokenTtl.
  struct CachedToken {
    std::string hash;
    Principal who;
    std::chrono::steady_clock::time_point checked;
  };
  static constexpr std::chrono::seconds kTokenTtl{5};
  static constexpr size_t kTokensCached = 10'000;
  std::unordered_map<int64_t, CachedToken>& token_cache() { return token_cache_; }
  // The bulk jobs this process is queuing now (routes_jobs.cc).
  std::unordered_set<int64_t>& jobs_queuing() { return jobs_queuing_; }
  // ... and waking now (core/nbi/job_waker.h).
  std::unordered_map<int64_t, std::shared_ptr<JobWaker>>& jobs_waking() { return jobs_waking_; }
  // The operator page's files, its logins, the counters' history and the
  // fleet overview's cache (null before start()).
  const WebFiles* web() const { return web_.get(); }
  WebSessions* sessions() { return sessions_.get(); }
  History* history() { return history_.get(); }
  Overview* overview() { return overview_.get(); }

  // Connections register themselves; stop() closes what is left.
  void adopt(Connection* c) { conns_.insert(c); }
  void forget(Connection* c) { conns_.erase(c); }

 private:
  static void on_accept(evconnlistener*, evutil_socket_t, sockaddr*, int, void*);
  void build_routes();
  // Runs fn on the loop every `period` (before start() returns: from then).
  void every(std::chrono::milliseconds period, std::function<void()> fn);

  Options opts_;
  Services services_;
  Router router_;
  loop::Base base_;
  std::unique_ptr<loop::Mailbox> mailbox_;
  loop::Listener listener_;
  std::unique_ptr<Db> db_;
  Throttle throttle_;
  EventHub events_;
  std::unordered_set<Connection*> conns_;
  std::vector<loop::Event> timers_;
  std::list<std::function<void()>> periodic_;  // every()'s, freed after their timers
  std::unordered_set<int64_t> jobs_queuing_;
  std::unordered_map<int64_t, CachedToken> token_cache_;
  std::unordered_map<int64_t, std::shared_ptr<JobWaker>> jobs_waking_;
  std::unique_ptr<WebFiles> web_;
  std::unique_ptr<WebSessions> sessions_;
  std::unique_ptr<History> history_;
  std::unique_ptr<Overview> overview_;
  std::thread thread_;
  uint16_t port_ = 0;
  bool started_ = false;

  mutable std::mutex counts_mu_;
  std::map<std::pair<std::string, int>, uint64_t> request_counts_;
};

// Route tables, one function per resource file (core/nbi/routes_*.cc).
void add_basic_routes(Router& r);
void add_device_routes(Router& r);
void add_task_routes(Router& r);
void add_job_routes(Router& r);
void add_fault_and_session_routes(Router& r);
void add_file_routes(Router& r);
void add_policy_routes(Router& r);
void add_event_routes(Router& r);
void add_metrics_routes(Router& r);
void add_connreq_routes(Router& r);
void add_web_routes(Router& r);
void add_login_routes(Router& r);
void add_history_routes(Router& r);
void add_overview_routes(Router& r);
// Takes up, every few seconds, bulk jobs left half-queued (a restart, an
// outage).
void start_job_resumer(Api& api);

}  // namespace luacs::nbi
