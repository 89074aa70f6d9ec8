// log::warn_from(): warnings rate-limited per source (core/util/log.h).
//
// A fixed one-minute window per source address. The table is bounded: when
// it is full, the sources whose window has ended are dropped; if none has,
// the newcomer shares one overflow entry with every other newcomer (a
// botnet of many addresses is limited as one source past that point).
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/util/log.h"

namespace luacs::log {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxSources = 10'000;

struct Source {
  Clock::time_point window_start{};
  unsigned written = 0;     // in this window
  uint64_t suppressed = 0;  // since the last line written
};

std::atomic<unsigned> g_per_window{20};
std::atomic<int64_t> g_window_ms{60'000};
std::atomic<uint64_t> g_suppressed{0};
std::mutex g_mu;
std::unordered_map<std::string, Source> g_sources;
Source g_overflow;

Source& entry(std::string_view source, Clock::time_point now, std::chrono::milliseconds window) {
  if (auto it = g_sources.find(std::string(source)); it != g_sources.end()) return it->second;
  if (g_sources.size() >= kMaxSources) {
    std::erase_if(g_sources, [&](const auto& kv) {
      return now - kv.second.window_start >= window && kv.second.suppressed == 0;
    });
    if (g_sources.size() >= kMaxSources) return g_overflow;
  }
  return g_sources[std::string(source)];
}

}  // namespace

void set_warnings_per_source(unsigned per_window, std::chrono::milliseconds window) {
  g_per_window.store(per_window, std::memory_order_relaxed);
  g_window_ms.store(window.count(), std::memory_order_relaxed);
  std::lock_guard lock(g_mu);
  g_sources.clear();
  g_overflow = Source{};
}

uint64_t warnings_suppressed() {
  return g_suppressed.load(std::memory_order_relaxed);
}

void warn_from(std::string_view source, std::string_view message) {
  if (!enabled(Level::kWarn)) return;
  const unsigned limit = g_per_window.load(std::memory_order_relaxed);
  const std::chrono::milliseconds window{g_window_ms.load(std::memory_order_relaxed)};
  if (limit == 0) {
    write(Level::kWarn, message);
    return;
  }
  uint64_t suppressed = 0;
  {
    const auto now = Clock::now();
    std::lock_guard lock(g_mu);
    Source& s = entry(source, now, window);
    if (now - s.window_start >= window) {
      s.window_start = now;
      s.written = 0;
    }
    if (s.written >= limit) {
      ++s.suppressed;
      g_suppressed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    ++s.written;
    suppressed = s.suppressed;
    s.suppressed = 0;
  }
  if (suppressed == 0) {
    write(Level::kWarn, message);
    return;
  }
  std::string line(message);
  line += " suppressed=";
  line += std::to_string(suppressed);
  write(Level::kWarn, line);
}

}  // namespace luacs::log
