// luacs: a TR-069 / CWMP Auto Configuration Server.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "core/config/config.h"
#include "core/server/server.h"
#include "core/store/store.h"
#include "core/util/log.h"

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: luacs [-c|--config FILE] [--store-dsn DSN]\n"
      "                                     run the server (default etc/luacs.ini);\n"
      "                                     --store-dsn overrides [store] dsn\n"
      "       luacs check-config FILE       validate a configuration file and exit\n"
      "       luacs --version\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "etc/luacs.ini";
  bool check_only = false;
  std::optional<std::string> dsn_override;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--store-dsn" && i + 1 < argc) {
      dsn_override = argv[++i];
    } else if (a == "check-config" && i + 1 < argc) {
      config_path = argv[++i];
      check_only = true;
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
  try {
    cfg = luacs::config::load(config_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "luacs: %s\n", e.what());
    return 1;
  }
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  if (dsn_override) cfg.store_dsn = *dsn_override;

  try {
    luacs::log::set_level(cfg.log_level);
    luacs::log::set_file(cfg.log_file);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "luacs: %s\n", e.what());
    return 1;
  }

  // Workers must not see the signals; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
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

  luacs::server::Server server(cfg);
  server.set_store(store.get());
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
                   " workers");

  int sig = 0;
  sigwait(&stop_signals, &sig);
  luacs::log::info(std::string("stopping on ") + strsignal(sig));
  server.stop();
  if (store) store->close();  // flushes everything still queued
  luacs::log::info("stopped");
  return 0;
}
