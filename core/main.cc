// luacs: a TR-069 / CWMP Auto Configuration Server.
#include <event2/event.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/control/control.h"
#include "core/files/file_server.h"
#include "core/files/mikrotik.h"
#include "core/server/server.h"
#include "core/store/store.h"
#include "core/util/log.h"
#include "core/util/net.h"
#include "lua/policy.h"

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: luacs [-c|--config FILE] [--store-dsn DSN]\n"
      "                                     run the server (default etc/luacs.ini);\n"
      "                                     --store-dsn overrides [store] dsn\n"
      "       luacs check [-c FILE] [DIR]   validate a policy folder (default: [policy] dir)\n"
      "       luacs reload [-c FILE]        load the policy again into the running server\n"
      "       luacs status [-c FILE]        policy generation and counters of the running server\n"
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
  std::printf("%s: ok (%zu files; hooks: %s; tasks: %s)\n", dir.c_str(), r.policy->files.size(),
              join(r.policy->hooks).c_str(), join(r.policy->tasks).c_str());
  return 0;
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

// The answer to a reload, for the log and for `luacs reload`.
std::string reload(luacs::lua::PolicyManager& policies, const char* why) {
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
  return answer;
}

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

// The control socket's folder (var/) may not exist on a fresh checkout.
void make_parent(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return;
  mkdir(path.substr(0, slash).c_str(), 0700);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "etc/luacs.ini";
  bool config_given = false;  // -c: a config that must exist
  std::string verb;           // "", "check", "reload", "status", "check-config"
  std::string check_dir;
  std::optional<std::string> dsn_override;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_path = argv[++i];
      config_given = true;
    } else if (a == "--store-dsn" && i + 1 < argc) {
      dsn_override = argv[++i];
    } else if (a == "check-config" && i + 1 < argc && verb.empty()) {
      config_path = argv[++i];
      verb = a;
    } else if ((a == "check" || a == "reload" || a == "status") && verb.empty()) {
      verb = a;
    } else if (verb == "check" && check_dir.empty() && !a.empty() && a[0] != '-') {
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
  if (verb == "check" && !check_dir.empty() && !config_given &&
      access(config_path.c_str(), R_OK) != 0) {
    // A folder checked without a config (none named, no etc/luacs.ini): the
    // default limits. A config named with -c must load.
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
  if (verb == "check") {
    if (check_dir.empty()) check_dir = cfg.policy_dir;
    if (check_dir.empty()) {
      std::fprintf(stderr, "luacs: %s: no [policy] dir configured; name a folder\n",
                   config_path.c_str());
      return 2;
    }
    return check_policy(check_dir, limits_of(cfg));
  }
  if (verb == "reload" || verb == "status") return control_command(cfg, verb);
  if (dsn_override) cfg.store_dsn = *dsn_override;

  try {
    luacs::log::set_level(cfg.log_level);
    luacs::log::set_file(cfg.log_file);
    // Before anything else is opened: a second luacs on the same addresses
    // stops here, with the address named (Server::start checks again).
    for (const auto& a : cfg.listen)
      luacs::util::ensure_not_listening(luacs::util::listen_addr(a.host, a.port));
    luacs::util::ensure_not_listening(
        luacs::util::listen_addr(cfg.files_listen.host, cfg.files_listen.port));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "luacs: %s\n", e.what());
    return 1;
  }

  // Workers must not see the signals; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<luacs::store::Store> store;
  if (!cfg.store_dsn.empty()) {
    luacs::store::Options opts;
    opts.dsn = cfg.store_dsn;
    opts.flush_interval = cfg.store_flush_interval;
    opts.batch_rows = cfg.store_batch_rows;
    opts.max_pending = cfg.store_max_pending;
    opts.cache_devices = cfg.store_cache_devices;
    opts.cache_bytes = cfg.store_cache_bytes;
    opts.session_log_retention =
        std::chrono::duration_cast<std::chrono::hours>(cfg.session_log_retention);
    try {
      store = luacs::store::Store::open(opts, cfg.sql_dir);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "luacs: %s\n", e.what());
      return 1;
    }
  } else {
    luacs::log::warn("no [store] dsn configured: nothing is kept between sessions");
  }

  // The policy: a broken one stops start-up (a reload keeps the old one).
  luacs::lua::PolicyManager policies(cfg.policy_dir, limits_of(cfg));
  if (!cfg.policy_dir.empty()) {
    auto r = policies.reload();
    for (const auto& w : r.warnings) luacs::log::warn("policy: " + w);
    if (!r.ok) {
      std::fprintf(stderr, "luacs: policy %s: %s\n", cfg.policy_dir.c_str(), r.error.c_str());
      return 1;
    }
    luacs::log::info("policy generation 1 loaded from " + cfg.policy_dir + ": hooks " +
                     join(r.policy->hooks) + "; tasks " + join(r.policy->tasks));
  } else {
    luacs::log::warn("no [policy] dir configured: sessions run only queued tasks");
  }

  luacs::server::Server server(cfg);

  // The main thread's own loop: signals and the control socket.
  event_base* base = event_base_new();
  int stop_signal = 0;
  struct Ctx {
    event_base* base;
    int* stop_signal;
    luacs::lua::PolicyManager* policies;
  } ctx{base, &stop_signal, &policies};
  auto on_stop = [](evutil_socket_t sig, short, void* arg) {
    auto* c = static_cast<Ctx*>(arg);
    *c->stop_signal = static_cast<int>(sig);
    event_base_loopbreak(c->base);
  };
  auto on_hup = [](evutil_socket_t, short, void* arg) {
    reload(*static_cast<Ctx*>(arg)->policies, "SIGHUP");
  };
  event* ev_int = evsignal_new(base, SIGINT, on_stop, &ctx);
  event* ev_term = evsignal_new(base, SIGTERM, on_stop, &ctx);
  event* ev_hup = evsignal_new(base, SIGHUP, on_hup, &ctx);
  event_add(ev_int, nullptr);
  event_add(ev_term, nullptr);
  event_add(ev_hup, nullptr);

  std::unique_ptr<luacs::control::ControlServer> control;
  if (!cfg.control_socket.empty()) {
    make_parent(cfg.control_socket);
    try {
      control = std::make_unique<luacs::control::ControlServer>(
          base, cfg.control_socket, [&](std::string_view command) -> std::string {
            if (command == "reload") return reload(policies, "luacs reload");
            if (command == "status") return status(policies, server, store.get());
            return "error unknown command '" + std::string(command) + "'\n";
          });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "luacs: %s\n", e.what());
      return 1;
    }
  }

  luacs::files::Catalog catalog;
  luacs::files::FileServerOptions fopts;
  fopts.listen = cfg.files_listen;
  fopts.dir = cfg.files_dir;
  fopts.secret = cfg.files_secret;
  luacs::files::FileServer files(fopts, catalog, store.get());
  try {
    files.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "luacs: file server: %s\n", e.what());
    return 1;
  }
  // What the policy API generates for MikroTik devices (core/files/mikrotik),
  // published on the file server.
  auto publish = [&files](luacs::files::mikrotik::Generated f) {
    luacs::lua::ServedFile served{"", f.name, f.sha256, f.bytes.size()};
    served.path = files.publish(std::move(f.name), std::move(f.content_type), std::move(f.bytes),
                                std::move(f.device_id));
    return served;
  };
  luacs::lua::FileServices services;
  services.publish_alter = [publish](std::string_view device_id, std::string script,
                                     const std::optional<std::string>& name) {
    return publish(luacs::files::mikrotik::alter_script(device_id, std::move(script), name));
  };
  services.publish_manifest = [publish](const std::vector<std::string>& urls) {
    return publish(luacs::files::mikrotik::upgrade_manifest(urls));
  };
  services.path_of = [&files](std::string_view name) { return files.path_of(name); };

  server.set_store(store.get());
  server.set_policy(&policies, services, files.port());
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "luacs: %s\n", e.what());
    return 1;
  }
  std::string where;
  for (size_t i = 0; i < cfg.listen.size(); ++i) {
    if (i) where += ", ";
    where += cfg.listen[i].host + ":" + std::to_string(server.ports()[i]);
  }
  luacs::log::info("luacs listening on " + where + " with " + std::to_string(server.workers()) +
                   " workers; files on " + cfg.files_listen.host + ":" +
                   std::to_string(files.port()));

  // Only this thread takes the signals: every other was started with them
  // blocked.
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);

  event_base_dispatch(base);
  luacs::log::info(std::string("stopping on ") + strsignal(stop_signal));
  control.reset();
  event_free(ev_int);
  event_free(ev_term);
  event_free(ev_hup);
  event_base_free(base);
  server.stop();
  files.stop();
  if (store) store->close();  // flushes everything still queued
  luacs::log::info("stopped");
  return 0;
}
