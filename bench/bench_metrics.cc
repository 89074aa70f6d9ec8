// What /metrics costs the Inform path: the metric updates of one CWMP
// session, as core/server makes them (core/metrics, on prometheus-cpp).
//
// BM_SessionMetrics: a periodic Inform with nothing to do -- the
// Inform->InformResponse latency observed, the session counted by outcome
// and its duration observed.
// BM_SessionMetricsWithRpc: the same with one ACS RPC the CPE faulted
// (counted by method and fault code).
// BM_SessionAtomicsFloor: the same updates as bare relaxed atomics shared
// by all threads (histogram = bucket search + three fetch_add), the floor a
// hand-written text exporter could reach: what prometheus-cpp costs above it.
// All single-threaded and with 2 threads updating the same series, as two
// workers do. Never timed in a test: figures in bench/README.md.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "core/metrics/metrics.h"

namespace {

using namespace std::chrono_literals;

void one_session(bool with_rpc) {
  luacs::metrics::inform_answered(180us);
  if (with_rpc) luacs::metrics::rpc_done("GetParameterValues", "fault 9005");
  luacs::metrics::session_ended("completed", 12ms);
}

void BM_SessionMetrics(benchmark::State& state) {
  for (auto _ : state) one_session(false);
}
BENCHMARK(BM_SessionMetrics)->Threads(1)->Threads(2)->UseRealTime();

void BM_SessionMetricsWithRpc(benchmark::State& state) {
  for (auto _ : state) one_session(true);
}
BENCHMARK(BM_SessionMetricsWithRpc)->Threads(1)->Threads(2)->UseRealTime();

// A minimal histogram: cumulative buckets built at scrape time.
struct FloorHistogram {
  std::array<double, 15> bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
  std::array<std::atomic<uint64_t>, 16> counts{};
  std::atomic<uint64_t> sum_ns{0}, count{0};
  void observe(std::chrono::nanoseconds d) {
    const double s = std::chrono::duration<double>(d).count();
    const auto i =
        static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), s) - bounds.begin());
    counts[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(static_cast<uint64_t>(d.count()), std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
  }
};
FloorHistogram floor_inform, floor_duration;
std::atomic<uint64_t> floor_completed{0};

void BM_SessionAtomicsFloor(benchmark::State& state) {
  for (auto _ : state) {
    floor_inform.observe(180us);
    floor_completed.fetch_add(1, std::memory_order_relaxed);
    floor_duration.observe(12ms);
  }
}
BENCHMARK(BM_SessionAtomicsFloor)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
