// GET /overview: the fleet at a glance (devices, online, informed in the
// last 24 h, pending adoption, with faults; the top models, software
// versions and tags) for the web page's first screen.
//
// Counting a million devices takes PostgreSQL seconds, so the answer comes
// from a cache, one entry per scope (fleet-wide, or a token's tag), never
// from a query the request waits for (but the very first of a scope). An
// entry asked for in the last kKeep is recomputed in the background every
// [nbi] overview_refresh (30 s); one nobody asks for is dropped. The query runs on a PostgreSQL
// connection of its own ("luacs-api-overview"), so its scans never queue
// the API's other queries (the API's pool stands in while it is down).
// Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/nbi/db.h"
#include "core/nbi/exchange.h"

namespace luacs::nbi {

class Api;

class Overview {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::minutes kKeep{10};
  static constexpr size_t kMaxScopes = 1000;
  static constexpr int kTop = 15;

  explicit Overview(Api& api);
  ~Overview();
  Overview(const Overview&) = delete;
  Overview& operator=(const Overview&) = delete;

  // Connects and computes the fleet-wide figures ahead of the first page.
  void start();
  void close();
  // Answers x with the figures of `scope` ("" the whole fleet).
  void get(const ExchangePtr& x, const std::string& scope);
  // Every second: refreshes what is due, drops what nobody asks for.
  void tick();

  // The SQL of one computation (its parameters appended to `params`).
  static std::string sql(const std::string& scope, std::chrono::milliseconds online_window,
                         Params& params);

 private:
  struct Entry {
    std::string answer;  // the JSON text, "" before the first computation
    Clock::time_point at{}, asked{};
    bool running = false;
    std::vector<ExchangePtr> waiters;
  };
  void refresh(const std::string& scope);
  void computed(const std::string& scope, const PgReply& r, Clock::time_point started);

  Api& api_;
  std::unique_ptr<Db> db_;
  std::unordered_map<std::string, Entry> cache_;
};

}  // namespace luacs::nbi
