#include "core/nbi/history.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "core/nbi/api.h"
#include "core/nbi/scope.h"

namespace luacs::nbi {

namespace {

// The value of label `name` in `a="x",b="y"` ("" when absent). Our label
// values hold no escaped quotes.
std::string_view label(std::string_view labels, std::string_view name) {
  while (!labels.empty()) {
    const auto eq = labels.find("=\"");
    if (eq == std::string_view::npos) break;
    const auto key = labels.substr(0, eq);
    const auto end = labels.find('"', eq + 2);
    if (end == std::string_view::npos) break;
    if (key == name) return labels.substr(eq + 2, end - eq - 2);
    labels.remove_prefix(end + 1);
    if (!labels.empty() && labels.front() == ',') labels.remove_prefix(1);
  }
  return {};
}

nlohmann::json number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9e15) return static_cast<int64_t>(v);
  return v;
}

}  // namespace

// Always there, even before they first move.
constexpr const char* kCounters[] = {"sessions", "faults", "bad_requests", "auth_failures"};
constexpr const char* kGauge = "sessions_in_flight";

History::History(std::chrono::milliseconds step) : step_(step) {
  for (const char* name : kCounters) index_of(name);
  index_of(kGauge);
}

History::Values History::extract(std::string_view text) {
  Values out;
  for (const char* name : kCounters) out.counters[name] = 0;
  out.gauges[kGauge] = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line.front() == '#') continue;
    const auto name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos) continue;
    const auto name = line.substr(0, name_end);
    std::string_view labels;
    size_t value_at = name_end;
    if (line[name_end] == '{') {
      const auto close = line.find('}', name_end);
      if (close == std::string_view::npos) continue;
      labels = line.substr(name_end + 1, close - name_end - 1);
      value_at = close + 1;
    }
    const std::string value_text(line.substr(value_at));
    char* end = nullptr;
    const double v = std::strtod(value_text.c_str(), &end);
    if (end == value_text.c_str()) continue;
    if (name == "luacs_sessions_total") {
      if (label(labels, "outcome") == "completed") out.counters["sessions"] += v;
    } else if (name == "luacs_refusals_total") {
      out.counters["rejected." + std::string(label(labels, "reason"))] += v;
    } else if (name == "luacs_rpcs_total") {
      if (label(labels, "outcome") == "fault") out.counters["faults"] += v;
    } else if (name == "luacs_connection_requests_total") {
      out.counters["connection_requests." + std::string(label(labels, "outcome"))] += v;
    } else if (name == "luacs_cwmp_bad_requests_total") {
      out.counters["bad_requests"] += v;
    } else if (name == "luacs_cwmp_auth_failures_total") {
      out.counters["auth_failures"] += v;
    } else if (name == "luacs_sessions_in_flight") {
      out.gauges["sessions_in_flight"] = v;
    }
  }
  return out;
}

size_t History::index_of(const std::string& name) {
  const auto it = index_.find(name);
  if (it != index_.end()) return it->second;
  if (names_.size() >= kMaxSeries) return SIZE_MAX;
  names_.push_back(name);
  return index_[name] = names_.size() - 1;
}

void History::sample(std::string_view metrics_text, int64_t t) {
  const Values now = extract(metrics_text);
  if (have_last_) {
    Point p{t, {}};
    auto put = [&](const std::string& name, double v) {
      const size_t i = index_of(name);
      if (i == SIZE_MAX) return;
      if (p.v.size() <= i) p.v.resize(i + 1, 0);
      p.v[i] = v;
    };
    for (const auto& [name, v] : now.counters) {
      const auto before = last_.find(name);
      const double prev = before == last_.end() ? 0 : before->second;
      // A counter that went down was reset: all of it is new.
      put(name, v >= prev ? v - prev : v);
    }
    for (const auto& [name, v] : now.gauges) put(name, v);
    ring_.push_back(std::move(p));
    if (ring_.size() > kPoints) ring_.pop_front();
  }
  last_ = now.counters;
  have_last_ = true;
}

nlohmann::json History::json(int minutes) const {
  const int64_t step_ms = step_.count();
  const size_t want = static_cast<size_t>((int64_t{minutes} * 60'000 + step_ms - 1) / step_ms);
  const size_t n = std::min(want, ring_.size());
  const size_t first = ring_.size() - n;
  nlohmann::json t = nlohmann::json::array();
  for (size_t k = first; k < ring_.size(); ++k) t.push_back(ring_[k].t);
  nlohmann::json series = nlohmann::json::object();
  for (size_t i = 0; i < names_.size(); ++i) {
    auto& s = series[names_[i]] = nlohmann::json::array();
    for (size_t k = first; k < ring_.size(); ++k)
      s.push_back(number(i < ring_[k].v.size() ? ring_[k].v[i] : 0));
  }
  return {{"step_s", number(static_cast<double>(step_ms) / 1000)},
          {"t", std::move(t)},
          {"series", std::move(series)}};
}

// ---- the route and the sampler

namespace {

void get_history(const ExchangePtr& x) {
  if (!only_params(x, {"minutes"})) return;
  int minutes = 60;
  if (const auto m = x->q("minutes")) {
    char* end = nullptr;
    const long v = std::strtol(m->c_str(), &end, 10);
    if (m->empty() || *end != '\0' || v < 1 || v > 1440)
      return x->error(400, "bad parameter", "'minutes' must be an integer from 1 to 1440");
    minutes = static_cast<int>(v);
  }
  const History* h = x->api().history();
  if (!h) return x->error(503, "not started", "the history is not running");
  x->json(200, h->json(minutes));
}

}  // namespace

void add_history_routes(Router& r) {
  auto h = route("GET", "/metrics/history", Role::kRead, get_history);
  h.fleet_wide = true;  // the server's counters, not one customer's devices
  r.add(std::move(h));
}

}  // namespace luacs::nbi
