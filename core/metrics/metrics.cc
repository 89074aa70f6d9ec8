#include "core/metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <unordered_map>

namespace luacs::metrics {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Histogram;

constexpr std::array<std::string_view, 5> kOutcomes = {"completed", "refused", "bad_request",
                                                       "timeout", "aborted"};

double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

// The series, created once (the first call of any function here).
struct Series {
  prometheus::Registry registry;
  Family<Counter>& sessions = BuildCounter()
                                  .Name("luacs_sessions_total")
                                  .Help("CWMP sessions ended, by outcome.")
                                  .Register(registry);
  std::array<Counter*, kOutcomes.size()> by_outcome{};
  Histogram& session_seconds =
      BuildHistogram()
          .Name("luacs_session_duration_seconds")
          .Help("CWMP session duration, Inform to end.")
          .Register(registry)
          .Add({}, Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                               10, 30, 60, 120, 300});
  Histogram& inform_seconds =
      BuildHistogram()
          .Name("luacs_inform_latency_seconds")
          .Help("From an Inform's first byte to its InformResponse.")
          .Register(registry)
          .Add({}, Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                               0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5});
  Family<Counter>& rpcs =
      BuildCounter()
          .Name("luacs_rpcs_total")
          .Help("ACS RPCs finished, by method and outcome (ok, fault with its code, or the error).")
          .Register(registry);
  Family<Counter>& refusals = BuildCounter()
                                  .Name("luacs_refusals_total")
                                  .Help("503 answers to CPEs, by reason.")
                                  .Register(registry);
  Histogram& commit_seconds =
      BuildHistogram()
          .Name("luacs_store_commit_seconds")
          .Help("Time from sending a batch of session results to PostgreSQL to its commit.")
          .Register(registry)
          .Add({}, Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25, 0.5, 1, 2.5, 5});
  Histogram& batch_rows =
      BuildHistogram()
          .Name("luacs_store_batch_rows")
          .Help("Session results per committed batch.")
          .Register(registry)
          .Add({}, Histogram::BucketBoundaries{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500});
  Family<Counter>& connection_requests =
      BuildCounter()
          .Name("luacs_connection_requests_total")
          .Help("Connection request attempts ended, by transport and outcome.")
          .Register(registry);
  Family<Histogram>& connection_request_seconds =
      BuildHistogram()
          .Name("luacs_connection_request_latency_seconds")
          .Help("From a connection request to the device's 6 CONNECTION REQUEST Inform.")
          .Register(registry);
  Counter& file_bytes = BuildCounter()
                            .Name("luacs_file_bytes_served_total")
                            .Help("Bytes of answer bodies sent by the file server.")
                            .Register(registry)
                            .Add({});

  Series() {
    for (size_t i = 0; i < kOutcomes.size(); ++i)
      by_outcome[i] = &sessions.Add({{"outcome", std::string(kOutcomes[i])}});
  }
};

Series& series() {
  static Series s;
  return s;
}

// A labelled counter without the family's mutex on the hot path: each
// thread remembers the counters it has used (a family never drops one).
template <typename MakeLabels>
Counter& cached(Family<Counter>& family, const std::string& key, MakeLabels make) {
  thread_local std::unordered_map<const void*, std::unordered_map<std::string, Counter*>> caches;
  auto& cache = caches[&family];
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  Counter& c = family.Add(make());
  cache.emplace(key, &c);
  return c;
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type,
                                Samples samples) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  for (auto& [labels, v] : samples) {
    prometheus::ClientMetric m;
    for (auto& [k, val] : labels) m.label.push_back({std::move(k), std::move(val)});
    if (type == prometheus::MetricType::Counter) {
      m.counter.value = v;
    } else {
      m.gauge.value = v;
    }
    f.metric.push_back(std::move(m));
  }
  return f;
}

}  // namespace

void connection_request_done(std::string_view transport, std::string_view outcome) {
  Series& s = series();
  cached(s.connection_requests, std::string(transport) + '\n' + std::string(outcome), [&] {
    return prometheus::Labels{{"transport", std::string(transport)},
                              {"outcome", std::string(outcome)}};
  }).Increment();
}

void connection_request_informed(std::string_view transport, std::chrono::nanoseconds latency) {
  Series& s = series();
  // Rare (one per woken device): the family's own lookup is enough.
  s.connection_request_seconds
      .Add({{"transport", std::string(transport)}},
           Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120})
      .Observe(seconds(latency));
}

void session_ended(std::string_view outcome, std::chrono::nanoseconds duration) {
  Series& s = series();
  Counter* c = nullptr;
  for (size_t i = 0; i < kOutcomes.size() && !c; ++i)
    if (kOutcomes[i] == outcome) c = s.by_outcome[i];
  if (!c)
    c = &cached(s.sessions, std::string(outcome), [&] {
      return prometheus::Labels{{"outcome", std::string(outcome)}};
    });
  c->Increment();
  s.session_seconds.Observe(seconds(duration));
}

void inform_answered(std::chrono::nanoseconds latency) {
  series().inform_seconds.Observe(seconds(latency));
}

void rpc_done(std::string_view method, std::string_view outcome) {
  thread_local std::string key;
  key.assign(method);
  key += '\n';
  key += outcome;
  cached(series().rpcs, key, [&] {
    // "ok", "fault 9005", "error timeout"
    const auto space = outcome.find(' ');
    const std::string kind(outcome.substr(0, space));
    const std::string rest(space == std::string_view::npos ? "" : outcome.substr(space + 1));
    return prometheus::Labels{{"method", std::string(method)},
                              {"outcome", kind == "error" ? rest : kind},
                              {"fault_code", kind == "fault" ? rest : ""}};
  }).Increment();
}

void refused(std::string_view reason) {
  thread_local std::string key;
  key.assign(reason);
  cached(series().refusals, key, [&] {
    return prometheus::Labels{{"reason", std::string(reason)}};
  }).Increment();
}

void declare_refusal(std::string_view reason) {
  series().refusals.Add({{"reason", std::string(reason)}});
}

void store_batch_committed(size_t rows, std::chrono::nanoseconds latency) {
  Series& s = series();
  s.batch_rows.Observe(static_cast<double>(rows));
  s.commit_seconds.Observe(seconds(latency));
}

void file_bytes_served(uint64_t bytes) {
  series().file_bytes.Increment(static_cast<double>(bytes));
}

prometheus::MetricFamily gauge(std::string name, std::string help, Samples samples) {
  return family(std::move(name), std::move(help), prometheus::MetricType::Gauge,
                std::move(samples));
}

prometheus::MetricFamily counter(std::string name, std::string help, Samples samples) {
  return family(std::move(name), std::move(help), prometheus::MetricType::Counter,
                std::move(samples));
}

std::string render(const std::vector<prometheus::MetricFamily>& extra) {
  auto families = series().registry.Collect();
  families.insert(families.end(), extra.begin(), extra.end());
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace luacs::metrics
