// luacs-loadgen: simulated CWMP CPEs against an ACS (see bench/README.md).
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench/loadgen/fleet.h"
#include "bench/loadgen/options.h"
#include "bench/loadgen/report.h"
#include "bench/loadgen/runner.h"
#include "bench/loadgen/tls.h"

using namespace luacs::loadgen;

namespace {

Shared* g_shared = nullptr;
std::atomic<bool> g_signalled{false};

void on_signal(int) {
  // The first ^C lets sessions in flight finish; the second one does not wait.
  if (g_signalled.exchange(true)) _exit(1);
  g_shared->stop = true;
}

double own_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

// --cr-listen udp: a socket per device. Raises the soft limit on open files
// as far as the hard one allows; throws when that is not enough.
void reserve_descriptors(uint64_t needed) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur >= needed) return;
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, needed);
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < needed)
    throw std::runtime_error("--cr-listen udp needs " + std::to_string(needed) +
                             " file descriptors (a socket per device); the limit is " +
                             std::to_string(rl.rlim_max) + " (ulimit -n)");
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  try {
    opt = parse_options(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::string msg = e.what();
    if (msg.empty()) {
      std::cout << usage();
      return 0;
    }
    std::cerr << "luacs-loadgen: " << msg << "\n" << usage();
    return 2;
  }

  std::unique_ptr<Fleet> fleet;
  try {
    fleet = std::make_unique<Fleet>(opt);
  } catch (const std::exception& e) {
    std::cerr << "luacs-loadgen: " << e.what() << "\n";
    return 2;
  }

  std::unique_ptr<TlsClient> tls;
  try {
    if (opt.tls.on) tls = std::make_unique<TlsClient>(opt.tls, opt.target);
  } catch (const std::exception& e) {
    std::cerr << "luacs-loadgen: " << e.what() << "\n";
    return 2;
  }

  Shared shared(opt, *fleet);
  shared.tls = tls.get();
  g_shared = &shared;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<std::unique_ptr<Runner>> runners;
  try {
    if (opt.cr.udp()) reserve_descriptors(opt.devices + 4096);
    for (unsigned i = 0; i < opt.threads; ++i)
      runners.push_back(std::make_unique<Runner>(shared, i));
  } catch (const std::exception& e) {
    std::cerr << "luacs-loadgen: " << e.what() << "\n";
    return 2;
  }

  if (tls && !opt.tls.cert_dir.empty() && !opt.quiet)
    std::cerr << "luacs-loadgen: " << tls->certificates() << " client certificates in "
              << opt.tls.cert_dir << "\n";
  if (opt.cr.on() && !opt.quiet) {
    // Where the devices take connection requests (their Informs say so).
    std::cerr << "luacs-loadgen: connection requests on 127.0.0.1";
    for (auto& r : runners)
      if (r->cr_http_port()) std::cerr << " tcp:" << r->cr_http_port();
    if (opt.cr.udp()) std::cerr << ", udp: a port per device";
    if (opt.cr.udp() && opt.cr.udp_port) std::cerr << " (" << opt.cr.udp_port << " + device index)";
    std::cerr << "\n";
  }

  double cpu0 = own_cpu_seconds();
  double server_cpu0 = opt.server_pid ? process_cpu_seconds(opt.server_pid) : -1;
  shared.start_us = monotonic_us();
  if (opt.duration_s > 0)
    shared.deadline_us = shared.start_us + static_cast<int64_t>(opt.duration_s * 1e6);
  shared.budget = static_cast<int64_t>(opt.sessions);

  if (runners.size() == 1) {
    runners[0]->run();
  } else {
    std::vector<std::thread> threads;
    for (auto& r : runners) threads.emplace_back([&r] { r->run(); });
    for (auto& t : threads) t.join();
  }
  int64_t end_us = monotonic_us();

  Report report;
  report.opt = &opt;
  report.threads = opt.threads;
  report.gave_up = shared.gave_up;
  int64_t last = 0;
  for (auto& r : runners) {
    report.stats.merge(r->stats());
    last = std::max(last, r->last_completion_us());
  }
  if (last == 0) last = end_us;
  report.elapsed_s = static_cast<double>(last - shared.start_us) / 1e6;
  report.loadgen_cpu_s = own_cpu_seconds() - cpu0;
  if (server_cpu0 >= 0) {
    double now = process_cpu_seconds(opt.server_pid);
    if (now >= 0) report.server_cpu_s = now - server_cpu0;
  }

  std::string json = json_report(report);
  if (!opt.quiet) (opt.json_path == "-" ? std::cerr : std::cout) << human_summary(report);
  if (opt.json_path == "-") {
    std::cout << json;
  } else if (!opt.json_path.empty()) {
    std::ofstream f(opt.json_path);
    f << json;
    if (!f) {
      std::cerr << "luacs-loadgen: cannot write " << opt.json_path << "\n";
      return 1;
    }
  }
  return report.passed() ? 0 : 1;
}
