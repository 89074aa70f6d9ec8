#include "bench/loadgen/report.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace luacs::loadgen {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string json_string(std::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string json_histogram(const Histogram& h) {
  std::ostringstream o;
  o << "{\"count\": " << h.count() << ", \"min\": " << h.min()
    << ", \"mean\": " << fmt("%.1f", h.mean()) << ", \"p50\": " << h.percentile(50)
    << ", \"p90\": " << h.percentile(90) << ", \"p99\": " << h.percentile(99)
    << ", \"p999\": " << h.percentile(99.9) << ", \"max\": " << h.max() << "}";
  return o.str();
}

std::string human_row(const char* name, const Histogram& h) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "  %-9s %9llu %9llu %9llu %9llu %9llu %9.0f\n", name,
                static_cast<unsigned long long>(h.percentile(50)),
                static_cast<unsigned long long>(h.percentile(90)),
                static_cast<unsigned long long>(h.percentile(99)),
                static_cast<unsigned long long>(h.percentile(99.9)),
                static_cast<unsigned long long>(h.max()), h.mean());
  return buf;
}

const char* model_name(ModelChoice m) {
  switch (m) {
    case ModelChoice::kTr098:
      return "tr098";
    case ModelChoice::kTr181:
      return "tr181";
    case ModelChoice::kMixed:
      return "mixed";
  }
  return "?";
}

std::string json_counts(const std::map<std::string, uint64_t>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m)
    out += (out.size() > 1 ? ", " : "") + json_string(k) + ": " + std::to_string(v);
  return out + "}";
}

std::string human_counts(const std::map<std::string, uint64_t>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += (out.empty() ? "" : ", ") + k + " " + std::to_string(v);
  return out.empty() ? "none" : out;
}

void human_cr(std::ostringstream& out, const Report& r) {
  const Options& o = *r.opt;
  const CrStats& c = r.stats.cr;
  out << "connection requests (" << cr_listen_name(o.cr.listen) << "): " << c.received
      << " taken by devices (" << c.deferred << " during a session, " << c.merged << " merged, "
      << c.ignored << " at the end), woken sessions " << c.woken_started << " started, "
      << c.woken_completed << " completed (" << c.tail_completed
      << " after the end, not counted as sessions)\n";
  if (o.cr.http())
    out << "  http: " << c.http_requests << " requests, " << c.http_challenges << " challenged, "
        << c.http_auth_failed << " wrong credentials, " << c.http_ok << " ok, " << c.http_bad
        << " bad\n";
  if (o.cr.udp()) out << "  udp: " << human_counts(c.udp) << "\n";
  if (!o.cr.stun.empty())
    out << "  stun: " << c.stun_sent << " binding requests, " << c.stun_answers << " answers, "
        << c.stun_errors << " errors\n";
  if (o.cr.wake_rate > 0) {
    out << "  wakes: " << c.wakes_sent << " API calls (" << fmt("%.1f", r.wakes_per_s())
        << "/s), skipped " << c.skipped_no_device << " (no idle device), " << c.skipped_inflight
        << " (--wake-max-inflight); answers: " << human_counts(c.api) << "\n";
    if (!c.transports.empty()) out << "  transports: " << human_counts(c.transports) << "\n";
  }
  out << "latency (us)      p50       p90       p99     p99.9       max      mean\n";
  if (o.cr.wake_rate > 0) {
    out << human_row("api", c.api_us);
    out << human_row("api->cr", c.api_to_cr_us);
    out << human_row("wake", c.wake_to_inform_us);
  }
  out << human_row("cr->infm", c.cr_to_inform_us);
}

void json_cr(std::ostringstream& j, const Report& r) {
  const Options& o = *r.opt;
  const CrStats& c = r.stats.cr;
  j << "  \"cr_listen\": \"" << cr_listen_name(o.cr.listen) << "\",\n";
  j << "  \"cr_received\": " << c.received << ",\n";
  j << "  \"cr_deferred\": " << c.deferred << ",\n";
  j << "  \"cr_merged\": " << c.merged << ",\n";
  j << "  \"cr_ignored\": " << c.ignored << ",\n";
  j << "  \"woken_started\": " << c.woken_started << ",\n";
  j << "  \"woken_completed\": " << c.woken_completed << ",\n";
  j << "  \"woken_after_end\": " << c.tail_completed << ",\n";
  j << "  \"cr_http\": {\"requests\": " << c.http_requests
    << ", \"challenges\": " << c.http_challenges << ", \"auth_failed\": " << c.http_auth_failed
    << ", \"ok\": " << c.http_ok << ", \"bad\": " << c.http_bad << "},\n";
  j << "  \"cr_udp\": " << json_counts(c.udp) << ",\n";
  j << "  \"stun\": {\"sent\": " << c.stun_sent << ", \"answers\": " << c.stun_answers
    << ", \"errors\": " << c.stun_errors << "},\n";
  j << "  \"wake_rate\": " << o.cr.wake_rate << ",\n";
  j << "  \"wakes_sent\": " << c.wakes_sent << ",\n";
  j << "  \"wakes_per_s\": " << fmt("%.1f", r.wakes_per_s()) << ",\n";
  j << "  \"wakes_skipped\": {\"no_idle_device\": " << c.skipped_no_device
    << ", \"max_inflight\": " << c.skipped_inflight << "},\n";
  j << "  \"wake_answers\": " << json_counts(c.api) << ",\n";
  j << "  \"wake_transports\": " << json_counts(c.transports) << ",\n";
  j << "  \"cr_latency_us\": {\n    \"api\": " << json_histogram(c.api_us)
    << ",\n    \"api_to_cr\": " << json_histogram(c.api_to_cr_us)
    << ",\n    \"wake_to_inform\": " << json_histogram(c.wake_to_inform_us)
    << ",\n    \"cr_to_inform\": " << json_histogram(c.cr_to_inform_us) << "\n  },\n";
}

std::string tls_mode(const Options& o) {
  if (!o.tls.on) return "off";
  std::string m = o.tls.resume ? "resume" : "full";
  if (!o.tls.cert_dir.empty()) m += "+client-cert";
  return m;
}

void human_tls(std::ostringstream& out, const Report& r) {
  const RunStats& s = r.stats;
  out << "tls: " << s.tls_handshakes << " handshakes, " << s.tls_resumed << " resumed ("
      << fmt("%.1f", s.tls_handshakes ? 100.0 * s.tls_resumed / s.tls_handshakes : 0) << " %), "
      << s.tls_handshake_failures << " failed, " << s.tls_client_certs
      << " with a client certificate; server keys " << human_counts(s.tls_server_keys) << "\n";
}

void json_tls(std::ostringstream& j, const Report& r) {
  const RunStats& s = r.stats;
  j << "  \"tls_handshakes\": " << s.tls_handshakes << ",\n";
  j << "  \"tls_resumed\": " << s.tls_resumed << ",\n";
  j << "  \"tls_handshake_failures\": " << s.tls_handshake_failures << ",\n";
  j << "  \"tls_client_certs\": " << s.tls_client_certs << ",\n";
  j << "  \"tls_server_keys\": " << json_counts(s.tls_server_keys) << ",\n";
}

}  // namespace

double Report::wakes_per_s() const {
  // The trigger runs until --duration; the run's elapsed time also holds
  // the sessions that end after it.
  double window = opt->duration_s > 0 ? opt->duration_s : elapsed_s;
  return window > 0 ? static_cast<double>(stats.cr.wakes_sent) / window : 0;
}

double Report::sessions_per_s() const {
  return elapsed_s > 0 ? static_cast<double>(stats.completed) / elapsed_s : 0;
}

double Report::error_rate() const {
  uint64_t attempts = stats.completed + stats.busy + stats.error_total() + stats.unfinished;
  if (attempts == 0) return 0;
  return static_cast<double>(stats.error_total() + stats.unfinished) /
         static_cast<double>(attempts);
}

double Report::drain_s() const {
  if (stats.devices_not_done > 0 || !stats.first_start_us) return -1;
  return static_cast<double>(stats.last_device_us - stats.first_start_us) / 1e6;
}

uint64_t Report::failed_wakes() const {
  uint64_t n = 0;
  for (const auto& [k, v] : stats.cr.api)
    if (k != "200 informed") n += v;
  return n;
}

bool Report::passed() const {
  // A wake asked for and not ended in a session is an error.
  if (failed_wakes() > 0 && static_cast<double>(failed_wakes()) >
                                opt->max_error_rate * static_cast<double>(stats.cr.wakes_sent))
    return false;
  if (opt->each_device_once) {
    // Every device done; what overload did to sessions (503, connect
    // failures, timeouts, resets) was retried and is no failure. Any other
    // error is, within --max-error-rate of the attempts.
    if (gave_up || stats.devices_not_done > 0 || stats.unfinished > 0) return false;
    uint64_t hard = stats.error_total() - stats.overload_errors();
    if (opt->max_error_rate == 0) return hard == 0;
    uint64_t attempts = stats.completed + stats.busy + stats.error_total();
    return static_cast<double>(hard) <= opt->max_error_rate * static_cast<double>(attempts);
  }
  if (opt->sessions && stats.completed < opt->sessions) return false;
  if (opt->max_error_rate == 0) return stats.error_total() == 0 && stats.unfinished == 0;
  return error_rate() <= opt->max_error_rate;
}

double process_cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string human_summary(const Report& r) {
  const Options& o = *r.opt;
  const RunStats& s = r.stats;
  std::ostringstream out;
  out << "luacs-loadgen " << o.url << ": ";
  if (o.concurrency)
    out << "closed loop, concurrency " << o.concurrency;
  else
    out << "open loop, " << o.rate << " sessions/s (" << (o.poisson ? "poisson" : "even") << ")";
  out << ", " << r.threads << (r.threads == 1 ? " thread" : " threads") << ", "
      << (o.keep_alive ? "keep-alive" : "new connection per session") << ", "
      << (o.echo_cookie ? "cookie echoed" : "no cookie") << ", "
      << (o.username.empty() ? "no auth" : "digest auth")
      << (o.tls.on ? ", tls " + tls_mode(o) : "") << ", model " << model_name(o.model) << ", "
      << o.devices << " devices\n";
  out << "elapsed " << fmt("%.2f", r.elapsed_s) << " s: " << s.completed << " sessions completed, "
      << s.busy << " busy (503), " << s.error_total() << " failed, " << s.unfinished
      << " unfinished\n";
  if (r.gave_up)
    out << "stopped early: more sessions failed than --max-error-rate allows, the run cannot "
           "pass\n";
  if (o.each_device_once) {
    out << "each device once: " << s.devices_done << " of " << o.devices << " devices done, "
        << s.retries << " retries (--busy-retry " << busy_retry_name(o) << ")";
    if (r.drain_s() >= 0)
      out << ", drained in " << fmt("%.2f", r.drain_s()) << " s\n";
    else
      out << ", NOT drained: " << s.devices_not_done << " devices not done\n";
    if (!s.not_done.empty()) {
      out << "not done:";
      for (size_t i = 0; i < s.not_done.size() && i < 10; ++i) out << " " << s.not_done[i];
      if (s.devices_not_done > 10) out << " ...";
      out << "\n";
    }
  }
  out << "sessions/s: " << fmt("%.1f", r.sessions_per_s()) << "\n";
  out << "latency (us)      p50       p90       p99     p99.9       max      mean\n";
  out << human_row("inform", s.inform_us);
  out << human_row("session", s.session_us);
  if (!o.concurrency) out << human_row("lag", s.schedule_lag_us);
  if (o.tls.on) out << human_row("handshk", s.tls_handshake_us);
  out << "requests " << s.requests << " ("
      << fmt("%.2f", s.completed ? static_cast<double>(s.requests) / s.completed : 0)
      << " per completed session), connections " << s.connections << ", sent "
      << fmt("%.1f", s.bytes_out / 1e6) << " MB, received " << fmt("%.1f", s.bytes_in / 1e6)
      << " MB";
  if (s.challenges) out << ", 401 challenges answered " << s.challenges;
  if (s.stale_retries) out << ", stale keep-alive retries " << s.stale_retries;
  if (s.transfer_completes) out << ", TransferCompletes " << s.transfer_completes;
  out << "\n";
  if (o.tls.on) human_tls(out, r);
  out << "errors:";
  if (s.error_total() == 0) out << " none";
  for (size_t i = 0; i < s.errors.size(); ++i)
    if (s.errors[i]) out << " " << error_name(static_cast<ErrorKind>(i)) << "=" << s.errors[i];
  out << "\n";
  if (!s.acs_requests.empty()) {
    out << "ACS requests answered:";
    for (const auto& [k, v] : s.acs_requests) out << " " << k << "=" << v;
    out << "\n";
  }
  if (!o.concurrency && (s.late_starts || s.skipped_starts)) {
    out << "WARNING: the generator fell behind its schedule: " << s.late_starts
        << " sessions started > 10 ms late, " << s.skipped_starts
        << " not started (--max-inflight reached)\n";
  }
  if (o.cr.on()) human_cr(out, r);
  out << "loadgen CPU " << fmt("%.2f", r.loadgen_cpu_s) << " s ("
      << fmt("%.0f", s.completed ? r.loadgen_cpu_s * 1e6 / s.completed : 0) << " us/session)";
  if (r.server_cpu_s >= 0)
    out << ", server CPU " << fmt("%.2f", r.server_cpu_s) << " s ("
        << fmt("%.0f", s.completed ? r.server_cpu_s * 1e6 / s.completed : 0) << " us/session)";
  out << "\n";
  return out.str();
}

std::string json_report(const Report& r) {
  const Options& o = *r.opt;
  const RunStats& s = r.stats;
  std::ostringstream j;
  j << "{\n";
  j << "  \"url\": " << json_string(o.url) << ",\n";
  j << "  \"mode\": \"" << (o.concurrency ? "closed" : "open") << "\",\n";
  j << "  \"concurrency\": " << o.concurrency << ",\n";
  j << "  \"rate\": " << o.rate << ",\n";
  j << "  \"spacing\": \"" << (o.poisson ? "poisson" : "even") << "\",\n";
  j << "  \"threads\": " << r.threads << ",\n";
  j << "  \"connection\": \"" << (o.keep_alive ? "keep-alive" : "new") << "\",\n";
  j << "  \"cookie\": " << (o.echo_cookie ? "true" : "false") << ",\n";
  j << "  \"auth\": \"" << (o.username.empty() ? "none" : "digest") << "\",\n";
  j << "  \"tls\": \"" << tls_mode(o) << "\",\n";
  j << "  \"model\": \"" << model_name(o.model) << "\",\n";
  j << "  \"devices\": " << o.devices << ",\n";
  j << "  \"duration_limit_s\": " << o.duration_s << ",\n";
  j << "  \"sessions_limit\": " << o.sessions << ",\n";
  j << "  \"each_device_once\": " << (o.each_device_once ? "true" : "false") << ",\n";
  j << "  \"busy_retry\": \"" << busy_retry_name(o) << "\",\n";
  if (o.each_device_once) {
    j << "  \"devices_done\": " << s.devices_done << ",\n";
    j << "  \"devices_not_done\": " << s.devices_not_done << ",\n";
    j << "  \"retries\": " << s.retries << ",\n";
    j << "  \"drain_s\": ";
    if (r.drain_s() >= 0)
      j << fmt("%.3f", r.drain_s());
    else
      j << "null";
    j << ",\n";
    j << "  \"not_done\": [";
    for (size_t i = 0; i < s.not_done.size(); ++i)
      j << (i ? ", " : "") << json_string(s.not_done[i]);
    j << "],\n";
  }
  j << "  \"elapsed_s\": " << fmt("%.3f", r.elapsed_s) << ",\n";
  j << "  \"sessions\": {\"started\": " << s.started << ", \"completed\": " << s.completed
    << ", \"busy_503\": " << s.busy << ", \"failed\": " << s.error_total()
    << ", \"unfinished\": " << s.unfinished << "},\n";
  j << "  \"sessions_per_s\": " << fmt("%.1f", r.sessions_per_s()) << ",\n";
  j << "  \"latency_us\": {\n    \"inform\": " << json_histogram(s.inform_us)
    << ",\n    \"session\": " << json_histogram(s.session_us)
    << ",\n    \"schedule_lag\": " << json_histogram(s.schedule_lag_us);
  if (o.tls.on) j << ",\n    \"tls_handshake\": " << json_histogram(s.tls_handshake_us);
  j << "\n  },\n";
  j << "  \"errors\": {";
  for (size_t i = 0; i < s.errors.size(); ++i)
    j << "\"" << error_name(static_cast<ErrorKind>(i)) << "\": " << s.errors[i] << ", ";
  j << "\"busy_503\": " << s.busy << ", \"total\": " << s.error_total() << "},\n";
  j << "  \"error_rate\": " << fmt("%.6f", r.error_rate()) << ",\n";
  j << "  \"requests\": " << s.requests << ",\n";
  j << "  \"responses\": " << s.responses << ",\n";
  j << "  \"connections\": " << s.connections << ",\n";
  j << "  \"bytes_sent\": " << s.bytes_out << ",\n";
  j << "  \"bytes_received\": " << s.bytes_in << ",\n";
  j << "  \"auth_challenges\": " << s.challenges << ",\n";
  j << "  \"stale_keepalive_retries\": " << s.stale_retries << ",\n";
  j << "  \"transfer_completes\": " << s.transfer_completes << ",\n";
  j << "  \"acs_requests\": {";
  bool first = true;
  for (const auto& [k, v] : s.acs_requests) {
    j << (first ? "" : ", ") << json_string(k) << ": " << v;
    first = false;
  }
  j << "},\n";
  j << "  \"schedule\": {\"late_starts\": " << s.late_starts
    << ", \"skipped_starts\": " << s.skipped_starts << "},\n";
  if (o.cr.on()) json_cr(j, r);
  if (o.tls.on) json_tls(j, r);
  j << "  \"loadgen_cpu_s\": " << fmt("%.3f", r.loadgen_cpu_s) << ",\n";
  j << "  \"server_cpu_s\": ";
  if (r.server_cpu_s >= 0)
    j << fmt("%.3f", r.server_cpu_s);
  else
    j << "null";
  j << ",\n";
  j << "  \"gave_up\": " << (r.gave_up ? "true" : "false") << ",\n";
  j << "  \"passed\": " << (r.passed() ? "true" : "false") << "\n";
  j << "}\n";
  return j.str();
}

}  // namespace luacs::loadgen
