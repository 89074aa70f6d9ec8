// luacs: a TR-069 / CWMP Auto Configuration Server.
#include <event2/event.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/app/metrics_text.h"
#include "core/config/config.h"
#include "core/connreq/service.h"
#include "core/connreq/stun_server.h"
#include "core/connreq/target.h"
#include "core/connreq/xmpp.h"
#include "core/control/control.h"
#include "core/files/catalog.h"
#include "core/files/file_server.h"
#include "core/files/policy_files.h"
#include "core/loop/loop.h"
#include "core/metrics/metrics.h"
#include "core/nbi/api.h"
#include "core/nbi/token_cli.h"
#include "core/policytest/runner.h"
#include "core/server/server.h"
#include "core/store/store.h"
#include "core/tls/context.h"
#include "core/util/heap.h"
#include "core/util/log.h"
#include "core/util/net.h"
#include "core/util/time.h"
#include "lua/policy.h"

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: luacs [-c|--config FILE] [--store-dsn DSN]\n"
      "                                     run the server (default etc/luacs.ini);\n"
      "                                     --store-dsn overrides [store] dsn\n"
      "       luacs check [-c FILE] [DIR]   validate a policy folder (default: [policy] dir)\n"
      "       luacs test [-c FILE] [DIR] [--models DIR]\n"
      "                                     run the policy's *_test.lua files against\n"
      "                                     simulated CPEs (models: $LUACS_DATAMODELS or\n"
      "                                     ../shared/corpus/datamodels)\n"
      "       luacs reload [-c FILE]        load the policy again into the running server\n"
      "       luacs status [-c FILE]        policy generation and counters of the running server\n"
      "       luacs token [-c FILE] add NAME --role read|operate|admin [--scope-tag TAG]\n"
      "       luacs token [-c FILE] list | revoke NAME\n"
      "                                     API tokens (docs/nbi.md)\n"
      "       luacs check-config FILE       validate a configuration file and exit\n"
      "       luacs --version\n",
      out);
}

luacs::lua::Limits limits_of(const luacs::config::Config& cfg) {
  luacs::lua::Limits l;
  l.max_instructions = cfg.policy_max_instructions;
  l.time_limit = cfg.policy_time_limit;
  l.memory_limit = cfg.policy_memory_limit;
  l.batch_size = cfg.policy_batch_size;
  return l;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

// `luacs check`: prints what a reload would say.
int check_policy(const std::string& dir, const luacs::lua::Limits& limits) {
  auto r = luacs::lua::check(dir, limits);
  for (const auto& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!r.ok) {
    std::fprintf(stderr, "%s\n", r.error.c_str());
    return 1;
  }
  const std::string jobs =
      r.policy->jobs.empty() ? std::string() : "; jobs: " + join(r.policy->jobs);
  std::printf("%s: ok (%zu files; hooks: %s%s; tasks: %s)\n", dir.c_str(), r.policy->files.size(),
              join(r.policy->hooks).c_str(), jobs.c_str(), join(r.policy->tasks).c_str());
  return 0;
}

// `luacs test`: the policy's Lua tests (*_test.lua), against simulated
// CPEs; the last line says how many passed and failed.
int test_policy(const std::string& dir, std::string models, const luacs::lua::Limits& limits) {
  if (models.empty()) {
    const char* env = std::getenv("LUACS_DATAMODELS");
    models = env && *env ? env : "../shared/corpus/datamodels";
  }
  luacs::log::set_level("error");  // the policy's own log lines would drown the results
  const auto sum = luacs::policytest::run_tests({dir, models, limits}, stdout);
  if (!sum.error.empty()) {
    std::fprintf(stderr, "luacs test: %s\n", sum.error.c_str());
    return 1;
  }
  std::printf("luacs test: %d passed, %d failed\n", sum.passed, sum.failed);
  return sum.failed ? 1 : 0;
}

// `luacs reload` / `luacs status`: one command to the running server.
int control_command(const luacs::config::Config& cfg, const std::string& command) {
  if (cfg.control_socket.empty()) {
    std::fprintf(stderr, "luacs: %s: no [control] socket configured\n", cfg.path.c_str());
    return 1;
  }
  std::string answer;
  try {
    answer = luacs::control::request(cfg.control_socket, command, std::chrono::seconds(60));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "luacs: %s\n", e.what());
    return 1;
  }
  bool ok = answer.rfind("ok", 0) == 0;
  std::fputs(answer.c_str(), ok ? stdout : stderr);
  return ok ? 0 : 1;
}

// The answer to a reload, for the log and for `luacs reload`; a "policy"
// event for /events when `events` has listeners.
std::string reload(luacs::lua::PolicyManager& policies, const char* why,
                   luacs::nbi::EventHub* events) {
  auto before = policies.generation();
  auto r = policies.reload();
  std::string answer;
  if (r.ok) {
    luacs::log::info("policy generation " + std::to_string(r.policy->generation) + " loaded from " +
                     policies.dir() + " (" + why + "): hooks " + join(r.policy->hooks) +
                     "; tasks " + join(r.policy->tasks));
    answer = "ok generation " + std::to_string(r.policy->generation) + "\n";
  } else {
    luacs::log::error("policy reload (" + std::string(why) + ") failed, generation " +
                      std::to_string(before) + " keeps serving: " + r.error);
    answer = "error " + r.error + "\n(generation " + std::to_string(before) + " keeps serving)\n";
  }
  for (const auto& w : r.warnings) {
    luacs::log::warn("policy: " + w);
    answer += "warning " + w + "\n";
  }
  if (events && events->active()) {
    nlohmann::json j = {{"ok", r.ok}, {"generation", policies.generation()}, {"why", why}};
    if (!r.ok) j["error"] = r.error;
    events->publish("policy", "", {}, j.dump());
  }
  return answer;
}

// What the https:// listeners are built from ([cwmp] tls_*).
luacs::tls::Settings tls_settings(const luacs::config::Config& cfg) {
  luacs::tls::Settings s;
  s.certs = cfg.tls_cert;
  s.keys = cfg.tls_key;
  s.min_version = cfg.tls_min_version;
  s.ciphers = cfg.tls_ciphers;
  s.ciphersuites = cfg.tls_ciphersuites;
  s.session_cache = cfg.tls_session_cache;
  s.session_tickets = cfg.tls_session_tickets;
  s.client_ca = cfg.tls_client_ca;
  s.crl = cfg.tls_crl;
  s.client_auth = cfg.tls_client_auth == "required"   ? luacs::tls::ClientAuth::kRequired
                  : cfg.tls_client_auth == "optional" ? luacs::tls::ClientAuth::kOptional
                                                      : luacs::tls::ClientAuth::kNone;
  return s;
}

// Reads the certificates again (SIGHUP, `luacs reload`): new handshakes get
// them, connections in flight keep theirs; a bad file keeps the old ones.
// `ports` (the API's and the file server's, when one is https://) serves
// the same files and follows only a good reload of the CWMP one: both keep
// the old ones otherwise. The lines `luacs reload` adds to its answer (""
// without TLS); an error line first when it failed.
std::string reload_tls(luacs::tls::Holder* tls, luacs::tls::Holder* ports, const char* why) {
  if (!tls) return "";
  std::string error = tls->reload();
  if (error.empty() && ports) error = ports->reload();
  if (!error.empty()) {
    luacs::log::error("TLS certificates reload (" + std::string(why) +
                      ") failed, the old ones keep serving: " + error);
    return "error " + error + "\n(the old TLS certificates keep serving)\n";
  }
  const auto& lines = tls->current()->describe();
  luacs::log::info("TLS certificates reloaded (" + std::string(why) + "): " + join(lines));
  std::string answer;
  for (const auto& l : lines) answer += "tls " + l + "\n";
  return answer;
}

// The answer of `luacs reload`: the policy's, then the certificates'; an
// error of either comes first, so that the command fails.
std::string combine(std::string policy, std::string tls) {
  if (tls.rfind("error", 0) == 0) return tls + policy;
  return policy + tls;
}

// The main thread's heap trims (App::on_trim), for `luacs status`.
std::atomic<uint64_t> heap_trims{0}, last_trim_us{0};

std::string status(luacs::lua::PolicyManager& policies, const luacs::server::Server& server,
                   const luacs::store::Store* store) {
  auto s = policies.status();
  const auto& st = server.stats();
  std::string out = "ok generation " + std::to_string(s.generation) + "\n";
  out += "policy " + (s.dir.empty() ? std::string("none") : s.dir) + "\n";
  out += "hooks " + join(s.hooks) + "\ntasks " + join(s.tasks) + "\n";
  out +=
      "loads " + std::to_string(s.reloads) + " failed " + std::to_string(s.reload_failures) + "\n";
  if (!s.last_error.empty()) out += "last_error " + s.last_error + "\n";
  out += "hook_calls " + std::to_string(policies.hook_calls.load()) + " hook_errors " +
         std::to_string(policies.hook_errors.load()) + "\n";
  out += "lua_bytes";
  for (unsigned w = 0; w < server.workers() && w < luacs::lua::PolicyManager::kMaxWorkers; ++w) {
    out += ' ';
    out += std::to_string(policies.lua_bytes[w].load());
  }
  out += "\n";
  const auto heap = luacs::util::heap_stats();
  out += "heap in_use " + std::to_string(heap.in_use) + " free " + std::to_string(heap.free_held) +
         " trims " + std::to_string(heap_trims.load()) + " last_trim_us " +
         std::to_string(last_trim_us.load()) + "\n";
  out += "sessions_live " + std::to_string(st.sessions_live.load()) + " sessions_completed " +
         std::to_string(st.sessions_completed.load()) + " rejected_busy " +
         std::to_string(st.rejected_busy.load()) + " rejected_backlog " +
         std::to_string(st.rejected_backlog.load()) + " rejected_overload " +
         std::to_string(st.rejected_overload.load()) + "\n";
  if (store) {
    const auto ss = store->stats();
    auto field = [&out](const char* name, uint64_t v) {
      out += ' ';
      out += name;
      out += ' ';
      out += std::to_string(v);
    };
    out += ss.available ? "store up" : "store down";
    field("pending", ss.pending);
    field("rows_written", ss.rows_written);
    field("dropped", ss.dropped);
    out += "\ncache";
    field("devices", ss.cache_size);
    field("bytes", ss.cache_bytes);
    field("hits", ss.cache_hits);
    field("misses", ss.cache_misses);
    field("evictions", ss.cache_evictions);
    out += '\n';
  }
  return out;
}

// What `luacs status` says about the policy, for GET /policy; with the
// generation each worker runs new sessions with (a worker loads a new one
// at its next session) and the Lua memory it holds.
nlohmann::json policy_status_json(luacs::lua::PolicyManager& policies, unsigned workers) {
  auto s = policies.status();
  nlohmann::json j = {{"generation", s.generation},
                      {"dir", s.dir},
                      {"hooks", s.hooks},
                      {"tasks", s.tasks},
                      {"warnings", s.warnings},
                      {"loads", s.reloads},
                      {"load_failures", s.reload_failures},
                      {"hook_calls", policies.hook_calls.load()},
                      {"hook_errors", policies.hook_errors.load()},
                      {"hook_seconds", static_cast<double>(policies.hook_time_ns.load()) / 1e9}};
  if (s.generation) j["loaded_at"] = luacs::util::utc_rfc3339(s.loaded_at);
  auto& w = j["workers"] = nlohmann::json::array();
  for (unsigned i = 0; i < workers && i < luacs::lua::PolicyManager::kMaxWorkers; ++i)
    w.push_back({{"worker", i},
                 {"generation", policies.worker_generation[i].load()},
                 {"lua_bytes", policies.lua_bytes[i].load()}});
  if (!s.last_error.empty()) {
    j["last_error"] = s.last_error;
    j["last_error_at"] = luacs::util::utc_rfc3339(s.last_error_at);
  }
  return j;
}

// /events: a session's end as "session", "fault" and "task" events (run on
// the API's loop: the worker only moved the SessionEnd there).
void publish_session(luacs::nbi::EventHub& hub, const luacs::server::SessionEnd& e) {
  auto json_of = [](const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    return j.is_discarded() ? nlohmann::json(text) : j;
  };
  nlohmann::json s = {{"device", e.device_id},
                      {"outcome", e.outcome},
                      {"detail", e.detail},
                      {"duration_ms", e.duration.count()},
                      {"tags", e.tags},
                      {"faults", e.faults.size()},
                      {"task_results", e.task_results.size()}};
  hub.publish("session", e.device_id, e.tags, s.dump());
  for (const auto& f : e.faults) {
    nlohmann::json j = {{"device", e.device_id},
                        {"source", f.source},
                        {"code", f.code},
                        {"message", f.message},
                        {"detail", json_of(f.detail)}};
    hub.publish("fault", e.device_id, e.tags, j.dump());
  }
  for (const auto& t : e.task_results) {
    nlohmann::json j = {{"device", e.device_id},
                        {"task", t.id},
                        {"result", t.ok ? "done" : "fault"},
                        {"data", json_of(t.result)}};
    hub.publish("task", e.device_id, e.tags, j.dump());
  }
}

// The control socket's folder (var/) may not exist on a fresh checkout.
void make_parent(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return;
  mkdir(path.substr(0, slash).c_str(), 0700);
}

// The running server: every part it is made of, owned here so that any
// way out -- a part that fails to start half-way included -- stops and frees
// what was started, in the right order.
class App {
 public:
  explicit App(luacs::config::Config cfg) : cfg_(std::move(cfg)) {}
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Starts every part, in dependency order; throws std::runtime_error
  // ("what: why") on the first that fails.
  void start();
  // Runs the main thread's loop (signals, control socket) until SIGINT or
  // SIGTERM; the signal's name.
  std::string run();

 private:
  static void on_stop(evutil_socket_t sig, short, void* arg);
  static void on_hup(evutil_socket_t, short, void* arg);
  static void on_trim(evutil_socket_t, short, void* arg);
  void make_api();
  void start_connection_requests();
  void start_tls();
  luacs::loop::SslFactory ports_tls();
  luacs::nbi::EventHub* events() { return api_ ? &api_->events() : nullptr; }

  luacs::config::Config cfg_;
  // The https:// listeners' certificates (outlives the server: connections
  // hold its contexts, whose tickets the keys seal).
  std::unique_ptr<luacs::tls::Holder> tls_;
  // The same certificates for an https:// API or file port, without client
  // certificates whatever [cwmp] tls_client_auth says.
  std::unique_ptr<luacs::tls::Holder> ports_tls_;
  std::unique_ptr<luacs::store::Store> store_;
  std::unique_ptr<luacs::lua::PolicyManager> policies_;
  luacs::files::Catalog catalog_;
  std::unique_ptr<luacs::files::FileServer> files_;
  // The policy engine of the connection-request thread (its
  // connection_request_auth): used on that thread only, freed after it.
  std::unique_ptr<luacs::lua::Engine> cr_engine_;
  std::unique_ptr<luacs::connreq::Service> connreq_;
  std::unique_ptr<luacs::server::Server> server_;
  std::unique_ptr<luacs::nbi::Api> api_;
  std::unique_ptr<luacs::connreq::StunServer> stun_;  // [stun] listen set
  std::unique_ptr<luacs::connreq::XmppClient> xmpp_;  // [xmpp] jid set
  luacs::loop::Base base_;
  std::unique_ptr<luacs::loop::Mailbox> main_mailbox_;
  luacs::loop::Event ev_int_, ev_term_, ev_hup_, ev_trim_;
  std::unique_ptr<luacs::control::ControlServer> control_;
  int stop_signal_ = 0;
};

App::~App() {
  // New work stops first, then the parts it feeds; the store last, so that
  // it flushes whatever the sessions ended at stop left it.
  control_.reset();
  if (api_) api_->stop();
  if (server_) server_->stop();
  if (files_) files_->stop();
  // The connection-request service before the transports it sends through.
  if (connreq_) connreq_->stop();
  if (stun_) stun_->stop();
  xmpp_.reset();
  if (store_) store_->close();
}

void App::start() {
  luacs::log::set_level(cfg_.log_level);
  luacs::log::set_file(cfg_.log_file);
  luacs::log::set_warnings_per_source(cfg_.log_warnings_per_source);
  // Before anything else is opened: a second luacs on the same addresses
  // stops here, with the address named (Server::start checks again).
  for (const auto& a : cfg_.listen)
    luacs::util::ensure_not_listening(luacs::util::listen_addr(a.host, a.port));
  luacs::util::ensure_not_listening(
      luacs::util::listen_addr(cfg_.files_listen.host, cfg_.files_listen.port));
  luacs::util::ensure_not_listening(
      luacs::util::listen_addr(cfg_.nbi_listen.host, cfg_.nbi_listen.port));

  if (!cfg_.store_dsn.empty()) {
    luacs::store::Options opts;
    opts.dsn = cfg_.store_dsn;
    opts.flush_interval = cfg_.store_flush_interval;
    opts.batch_rows = cfg_.store_batch_rows;
    opts.max_pending = cfg_.store_max_pending;
    opts.durable_timeout = cfg_.store_durable_timeout;
    opts.cache_devices = cfg_.store_cache_devices;
    opts.cache_bytes = cfg_.store_cache_bytes;
    opts.session_log_retention =
        std::chrono::duration_cast<std::chrono::hours>(cfg_.session_log_retention);
    store_ = luacs::store::Store::open(opts, cfg_.sql_dir);
  } else {
    luacs::log::warn("no [store] dsn configured: nothing is kept between sessions");
  }

  // The policy: a broken one stops start-up (a reload keeps the old one).
  policies_ = std::make_unique<luacs::lua::PolicyManager>(cfg_.policy_dir, limits_of(cfg_));
  if (!cfg_.policy_dir.empty()) {
    auto r = policies_->reload();
    for (const auto& w : r.warnings) luacs::log::warn("policy: " + w);
    if (!r.ok) throw std::runtime_error("policy " + cfg_.policy_dir + ": " + r.error);
    luacs::log::info("policy generation 1 loaded from " + cfg_.policy_dir + ": hooks " +
                     join(r.policy->hooks) + "; tasks " + join(r.policy->tasks));
  } else {
    luacs::log::warn("no [policy] dir configured: sessions run only queued tasks");
  }

  start_tls();
  server_ = std::make_unique<luacs::server::Server>(cfg_);
  server_->set_tls(tls_.get());

  // The main thread's own loop: signals and the control socket.
  base_ = luacs::loop::new_base();
  ev_int_.reset(evsignal_new(base_.get(), SIGINT, &App::on_stop, this));
  ev_term_.reset(evsignal_new(base_.get(), SIGTERM, &App::on_stop, this));
  ev_hup_.reset(evsignal_new(base_.get(), SIGHUP, &App::on_hup, this));
  for (event* e : {ev_int_.get(), ev_term_.get(), ev_hup_.get()}) event_add(e, nullptr);
  // Once a minute, the C heap's free holes go back to the kernel when they
  // are worth it (core/util/heap.h): RSS follows what is in use.
  ev_trim_.reset(event_new(base_.get(), -1, EV_PERSIST, &App::on_trim, this));
  const timeval minute{60, 0};
  event_add(ev_trim_.get(), &minute);

  if (!cfg_.control_socket.empty()) {
    make_parent(cfg_.control_socket);
    control_ = std::make_unique<luacs::control::ControlServer>(
        base_.get(), cfg_.control_socket, [this](std::string_view command) -> std::string {
          if (command == "reload")
            return combine(reload(*policies_, "luacs reload", events()),
                           reload_tls(tls_.get(), ports_tls_.get(), "luacs reload"));
          if (command == "status") return status(*policies_, *server_, store_.get());
          return "error unknown command '" + std::string(command) + "'\n";
        });
  }

  luacs::files::FileServerOptions fopts;
  fopts.listen = cfg_.files_listen;
  fopts.dir = cfg_.files_dir;
  fopts.secret = cfg_.files_secret;
  fopts.tls = ports_tls();
  fopts.tls_handshake_timeout = cfg_.tls_handshake_timeout;
  files_ = std::make_unique<luacs::files::FileServer>(fopts, catalog_, store_.get());
  try {
    files_->start();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("file server: ") + e.what());
  }
  // What the policy API generates for MikroTik devices (core/files/mikrotik),
  // published on the file server.
  luacs::lua::FileServices services;
  luacs::files::serve_mikrotik_files(
      services, [f = files_.get()](luacs::files::mikrotik::Generated g) {
        return f->publish(std::move(g.name), std::move(g.content_type), std::move(g.bytes),
                          std::move(g.device_id));
      });
  services.path_of = [f = files_.get()](std::string_view name) { return f->path_of(name); };

  start_connection_requests();

  server_->set_store(store_.get());
  server_->set_policy(policies_.get(), services, files_->port());
  server_->set_connection_request_observer(
      [cr = connreq_.get()](const std::string& device) { cr->informed(device); });
  server_->set_connection_request_credentials_observer(
      [cr = connreq_.get()](const std::string& device, luacs::device::ConnectionRequestSecrets c) {
        if (c.username || c.password)
          cr->remember_credentials(device, std::move(c.username), std::move(c.password));
        if (c.stun_username || c.stun_password)
          cr->remember_stun_credentials(device, std::move(c.stun_username),
                                        std::move(c.stun_password));
      });
  make_api();
  // Session ends go to /events only while someone listens; the worker just
  // moves them to the API's loop.
  server_->set_session_observer(
      [hub = &api_->events()](luacs::server::SessionEnd e) {
        hub->later([hub, e = std::move(e)] { publish_session(*hub, e); });
      },
      api_->events().active_flag());
  server_->start();
  std::string where;
  for (size_t i = 0; i < cfg_.listen.size(); ++i) {
    if (i) where += ", ";
    where += (cfg_.listen[i].tls ? "https://" : "") + cfg_.listen[i].host + ":" +
             std::to_string(server_->ports()[i]);
  }
  try {
    api_->start();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("API: ") + e.what());
  }
  luacs::log::info("luacs listening on " + where + " with " + std::to_string(server_->workers()) +
                   " workers; files on " + (cfg_.files_listen.tls ? "https://" : "") +
                   cfg_.files_listen.host + ":" + std::to_string(files_->port()) + "; API on " +
                   (cfg_.nbi_listen.tls ? "https://" : "") + cfg_.nbi_listen.host + ":" +
                   std::to_string(api_->port()));
}

// The certificates of the https:// listeners, when there is one or
// tls_cert is set: a bad file stops start-up (a reload keeps the old).
void App::start_tls() {
  bool https = !cfg_.tls_cert.empty();
  for (const auto& a : cfg_.listen) https = https || a.tls;
  if (!https) return;
  auto keys = std::make_shared<luacs::tls::TicketKeys>(
      std::chrono::duration_cast<std::chrono::seconds>(cfg_.tls_ticket_key_rotation));
  tls_ = std::make_unique<luacs::tls::Holder>(tls_settings(cfg_), std::move(keys));
  luacs::log::info("TLS certificates: " + join(tls_->current()->describe()) + "; TLS " +
                   cfg_.tls_min_version + " and up");
  if (cfg_.tls_min_version == "1.0" || cfg_.tls_min_version == "1.1")
    luacs::log::warn("tls_min_version = " + cfg_.tls_min_version +
                     ": TLS 1.0 and 1.1 are deprecated (RFC 8996) and weak; only for old CPEs");
  if (!cfg_.nbi_listen.tls && !cfg_.files_listen.tls) return;
  auto ports = tls_settings(cfg_);
  ports.client_auth = luacs::tls::ClientAuth::kNone;
  ports_tls_ = std::make_unique<luacs::tls::Holder>(
      std::move(ports),
      std::make_shared<luacs::tls::TicketKeys>(
          std::chrono::duration_cast<std::chrono::seconds>(cfg_.tls_ticket_key_rotation)));
}

// Each new connection's SSL on an https:// API or file port (empty without
// one).
luacs::loop::SslFactory App::ports_tls() {
  if (!ports_tls_) return {};
  return [h = ports_tls_.get()]() -> SSL* { return SSL_new(h->current()->get()); };
}

// Connection requests: the service (its own thread, loop and database
// connection) and the transports it sends through besides HTTP -- the STUN
// server (TR-111) when [stun] listen is set, the XMPP client when [xmpp]
// jid is -- all started before the CWMP server takes Informs.
void App::start_connection_requests() {
  connreq_ = std::make_unique<luacs::connreq::Service>(cfg_);
  if (store_)
    connreq_->set_cached_device(
        [st = store_.get()](const std::string& id) { return st->cached(id); });
  cr_engine_ = std::make_unique<luacs::lua::Engine>(*policies_, luacs::lua::FileServices{},
                                                    luacs::lua::PolicyManager::kMaxWorkers - 1);
  connreq_->set_auth_hook({[e = cr_engine_.get()] { return e->has_connection_request_auth(); },
                           [e = cr_engine_.get()](const luacs::device::Device& d)
                               -> std::optional<std::pair<std::string, std::string>> {
                             std::string error;
                             auto a = e->connection_request_auth(d, &error);
                             if (!error.empty())
                               luacs::log::warn("policy connection_request_auth(" + d.id +
                                                "): " + error + "; the next credentials apply");
                             if (!a) return std::nullopt;
                             return std::pair{std::move(a->username), std::move(a->password)};
                           }});
  if (!cfg_.stun_listen.empty()) {
    auto opts = luacs::connreq::stun_options_from(cfg_);
    // The same rules as an HTTP target, checked again right before sending.
    opts.refuse = [rules = luacs::connreq::rules_from(cfg_)](const sockaddr* sa) {
      return rules.refuse(sa);
    };
    stun_ =
        std::make_unique<luacs::connreq::StunServer>(std::move(opts), connreq_->stun_credentials());
    try {
      stun_->start();
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("STUN server: ") + e.what());
    }
    std::string on;
    for (size_t i = 0; i < cfg_.stun_listen.size(); ++i)
      on += (i ? ", " : "") + cfg_.stun_listen[i].host + ":" + std::to_string(stun_->ports()[i]);
    luacs::log::info("STUN server (UDP) on " + on);
    connreq_->set_stun(stun_.get());
  }
  if (!cfg_.xmpp_jid.empty()) {
    // Logs in on its own thread; until then an XMPP request is "unavailable".
    xmpp_ = std::make_unique<luacs::connreq::XmppClient>(luacs::connreq::XmppSettings::from(cfg_));
    connreq_->set_xmpp(xmpp_.get());
    luacs::log::info("XMPP connection requests as " + cfg_.xmpp_jid);
  }
  connreq_->start();
}

// The northbound API (core/nbi), started after the server; what it needs
// from the running server it gets through these calls.
void App::make_api() {
  main_mailbox_ = std::make_unique<luacs::loop::Mailbox>(base_.get());
  luacs::nbi::Services s;
  s.in_session = [srv = server_.get()](const std::string& id) {
    return srv->device_in_session(id);
  };
  if (store_) s.store_available = [st = store_.get()] { return st->available(); };
  s.main = main_mailbox_->executor();
  s.policy_status = [this] { return policy_status_json(*policies_, server_->workers()); };
  s.policy_reload = [this] {
    auto answer = reload(*policies_, "API", events());
    return nlohmann::json{{"ok", answer.rfind("ok", 0) == 0},
                          {"answer", answer},
                          {"generation", policies_->generation()}};
  };
  s.policy_check = [this](const std::string& dir) {
    auto r = luacs::lua::check(dir, limits_of(cfg_));
    nlohmann::json j = {{"ok", r.ok}, {"dir", dir}, {"warnings", r.warnings}};
    if (!r.ok) j["error"] = r.error;
    if (r.ok) {
      auto& files = j["files"] = nlohmann::json::array();
      for (const auto& f : r.policy->files) files.push_back(f.name);
      j["hooks"] = r.policy->hooks;
      j["tasks"] = r.policy->tasks;
    }
    return j;
  };
  s.file_url = [f = files_.get(), base = cfg_.files_url](const std::string& name) {
    const std::string path = f->path_of(name);
    return path.empty() ? path : base + path;
  };
  if (store_)
    s.cached_device = [st = store_.get()](const std::string& id) { return st->cached(id); };
  s.metrics = [this] {
    return luacs::app::metrics_text(*server_, store_.get(), *policies_, stun_.get());
  };
  s.wake = [cr = connreq_.get()](const std::string& device, std::chrono::milliseconds wait,
                                 std::function<void(luacs::nbi::WakeAnswer)> done) {
    cr->wake(device, wait, {}, [done = std::move(done)](luacs::connreq::WakeResult r) {
      done({r.outcome, r.session_started, r.http_status, r.detail, r.latency_ms, r.attempt,
            r.transport});
    });
  };
  auto opts = luacs::nbi::options_from(cfg_);
  opts.tls = ports_tls();
  api_ = std::make_unique<luacs::nbi::Api>(std::move(opts), std::move(s));
}

std::string App::run() {
  event_base_dispatch(base_.get());
  return strsignal(stop_signal_);
}

void App::on_stop(evutil_socket_t sig, short, void* arg) {
  auto* app = static_cast<App*>(arg);
  app->stop_signal_ = static_cast<int>(sig);
  event_base_loopbreak(app->base_.get());
}

void App::on_hup(evutil_socket_t, short, void* arg) {
  auto* app = static_cast<App*>(arg);
  reload(*app->policies_, "SIGHUP", app->events());
  reload_tls(app->tls_.get(), app->ports_tls_.get(), "SIGHUP");
}

void App::on_trim(evutil_socket_t, short, void*) {
  uint64_t micros = 0;
  if (luacs::util::heap_trim(uint64_t{8} << 20, &micros)) {
    heap_trims.fetch_add(1, std::memory_order_relaxed);
    last_trim_us.store(micros, std::memory_order_relaxed);
  }
}

// Runs the server until SIGINT or SIGTERM.
int serve(luacs::config::Config cfg) {
  // Workers must not see the signals; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  {
    App app(std::move(cfg));
    try {
      app.start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "luacs: %s\n", e.what());
      return 1;
    }
    // Only this thread takes the signals: every other was started with them
    // blocked.
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
    luacs::log::info("stopping on " + app.run());
  }  // everything stops here; the store flushes what is queued
  luacs::log::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "etc/luacs.ini";
  bool config_given = false;  // -c: a config that must exist
  std::string verb;           // "", "check", "test", "reload", "status", "check-config"
  std::string check_dir;      // check and test: the policy folder
  std::string models_dir;     // test: where cpe{ model = ... } looks
  std::optional<std::string> dsn_override;
  std::vector<std::string> token_args;  // token: what follows it
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (verb == "token" && a != "-c" && a != "--config" && a != "--store-dsn") {
      token_args.push_back(a);
    } else if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_path = argv[++i];
      config_given = true;
    } else if (a == "--store-dsn" && i + 1 < argc) {
      dsn_override = argv[++i];
    } else if (a == "check-config" && i + 1 < argc && verb.empty()) {
      config_path = argv[++i];
      verb = a;
    } else if (a == "--models" && i + 1 < argc && verb == "test") {
      models_dir = argv[++i];
    } else if ((a == "check" || a == "test" || a == "reload" || a == "status" || a == "token") &&
               verb.empty()) {
      verb = a;
    } else if ((verb == "check" || verb == "test") && check_dir.empty() && !a.empty() &&
               a[0] != '-') {
      check_dir = a;
    } else if (a == "--version") {
      std::puts("luacs 0.1.0");
      return 0;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "luacs: unknown argument '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }

  luacs::config::Config cfg;
  if ((verb == "check" || verb == "test") && !check_dir.empty() && !config_given &&
      access(config_path.c_str(), R_OK) != 0) {
    // A folder checked without a config (none named, no etc/luacs.ini): the
    // default limits. A config named with -c must load.
    if (verb == "test") return test_policy(check_dir, models_dir, luacs::lua::Limits{});
    return check_policy(check_dir, luacs::lua::Limits{});
  }
  try {
    cfg = luacs::config::load(config_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "luacs: %s\n", e.what());
    return 1;
  }
  if (verb == "check-config") {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  if (verb == "check" || verb == "test") {
    if (check_dir.empty()) check_dir = cfg.policy_dir;
    if (check_dir.empty()) {
      std::fprintf(stderr, "luacs: %s: no [policy] dir configured; name a folder\n",
                   config_path.c_str());
      return 2;
    }
    if (verb == "test") return test_policy(check_dir, models_dir, limits_of(cfg));
    return check_policy(check_dir, limits_of(cfg));
  }
  if (verb == "reload" || verb == "status") return control_command(cfg, verb);
  if (dsn_override) cfg.store_dsn = *dsn_override;
  if (verb == "token")
    return luacs::nbi::token_command(cfg.store_dsn, cfg.sql_dir, token_args, stdout, stderr);

  return serve(std::move(cfg));
}
