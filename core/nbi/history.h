// GET /metrics/history: a small in-memory history of luacs' counters for
// the web page's charts, so a page shows the last hour or day without a
// Prometheus.
//
// Every [nbi] history_step (default 60 s) the API's loop reads the same
// text GET /metrics serves (Services::metrics) and keeps, per step, how much
// each counter of interest grew: sessions completed, 503s by reason, faults
// (RPCs answered with a CWMP fault), connection requests by outcome, CWMP
// bad requests and auth failures; gauges (sessions in flight) as their
// value. kPoints steps are kept in a ring: a day at the default step.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace luacs::nbi {

class History {
 public:
  static constexpr size_t kPoints = 1440;
  static constexpr size_t kMaxSeries = 64;

  explicit History(std::chrono::milliseconds step);

  // A sample of the metrics text at unix time `t` (seconds). The first one
  // is the baseline: it makes no point.
  void sample(std::string_view metrics_text, int64_t t);
  // {"step_s", "t": [...], "series": {name: [...]}}: the last points
  // covering `minutes`, oldest first.
  nlohmann::json json(int minutes) const;
  size_t points() const { return ring_.size(); }

  // The values of interest in a metrics text, by history series name.
  struct Values {
    std::map<std::string, double> counters, gauges;
  };
  static Values extract(std::string_view metrics_text);

 private:
  size_t index_of(const std::string& name);

  std::chrono::milliseconds step_;
  std::map<std::string, double> last_;
  bool have_last_ = false;
  std::vector<std::string> names_;  // series, in the order they first appeared
  std::unordered_map<std::string, size_t> index_;
  struct Point {
    int64_t t;
    std::vector<double> v;  // by index_; a series newer than the point: 0
  };
  std::deque<Point> ring_;
};

}  // namespace luacs::nbi
