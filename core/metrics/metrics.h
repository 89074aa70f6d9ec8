// Prometheus series updated where things happen: the public face of
// core/metrics.
//
// The CWMP workers, the store and the file server count into one
// process-wide set of series (prometheus-cpp counters and histograms:
// relaxed atomics, no allocation once a series exists). What already lives
// in other counters (server::Stats, store::Stats, the policy manager) is not
// counted twice: whoever renders /metrics reads it at scrape time and hands
// it to render() as extra families (gauge(), counter()).
//
// bench/bench_metrics.cc measures what one Inform session costs here
// (bench/README.md has the figure).
//
// Thread: every function may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

namespace luacs::metrics {

// A session ended: `outcome` as cwmp::to_string(EndReason) says it
// ("completed", "timeout", ...).
void session_ended(std::string_view outcome, std::chrono::nanoseconds duration);
// An InformResponse went out, `latency` after the Inform's first byte.
void inform_answered(std::chrono::nanoseconds latency);
// An ACS RPC finished: `outcome` as cwmp::RpcRecord says it ("ok",
// "fault 9005", "error timeout").
void rpc_done(std::string_view method, std::string_view outcome);
// A 503 to a CPE, by reason ("store_down", "too_many_sessions", ...).
void refused(std::string_view reason);
// Shows a reason at 0 before its first 503 (a series that appears only
// once it happens is hard to alert on).
void declare_refusal(std::string_view reason);
// A batch of session results committed (the store thread).
void store_batch_committed(size_t rows, std::chrono::nanoseconds latency);
// Bytes of file bodies the file server answered with.
void file_bytes_served(uint64_t bytes);
// A connection request attempt ended: `transport` "http", "udp" or "xmpp";
// `outcome` "answered", "auth_failed", "offline", "timed_out", "denied",
// "no_url", "error".
void connection_request_done(std::string_view transport, std::string_view outcome);
// The Inform with `6 CONNECTION REQUEST` arrived, `latency` after the request.
void connection_request_informed(std::string_view transport, std::chrono::nanoseconds latency);

// ---- scrape time
using Labels = std::vector<std::pair<std::string, std::string>>;
using Samples = std::vector<std::pair<Labels, double>>;
prometheus::MetricFamily gauge(std::string name, std::string help, Samples samples);
prometheus::MetricFamily counter(std::string name, std::string help, Samples samples);
// One unlabelled sample.
inline Samples one(double v) {
  return {{{}, v}};
}

// The text exposition format (0.0.4) of every series above and `extra`.
std::string render(const std::vector<prometheus::MetricFamily>& extra);

}  // namespace luacs::metrics
