// The web page's logins: an API token exchanged (POST /login) for a session
// cookie, so the page never keeps the token in script-readable storage.
//
// The cookie is `luacs_session=<64 hex>` (HttpOnly, SameSite=Strict, Secure
// under https). Every route accepts it in place of a bearer token (a bearer
// token wins when both come). A cookie-authenticated request other than
// GET/HEAD must also carry `X-CSRF-Token: <the session's csrf>`: a page of
// another origin can make the browser send the cookie, never that header.
// The roles and scope are the token's, re-read through the API's token
// cache on each request, so a revoked token ends its sessions within
// Api::kTokenTtl.
//
// Sessions live in memory on the API's loop thread: at most kMaxSessions
// (the oldest dropped), each ending [nbi] web_session_idle after its last
// use or web_session_max after the login. Only a hash of the cookie is
// kept as the key; cookie, csrf and token never reach a log.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/loop/loop.h"
#include "core/nbi/exchange.h"

namespace luacs::nbi {

class Api;

inline constexpr std::string_view kSessionCookie = "luacs_session";

class WebSessions {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxSessions = 10'000;

  struct Session {
    int64_t token_id = 0;
    std::string token_hash;  // the token's stored hash when it logged in
    std::string csrf;
    Principal who;  // as last checked
    Clock::time_point created, used;
    std::chrono::system_clock::time_point expires;  // created + max
    uint64_t seq = 0;
  };

  WebSessions(std::chrono::milliseconds idle, std::chrono::milliseconds max)
      : idle_(idle), max_(max) {}

  // A new session; returns the cookie value.
  std::string add(Session s);
  // The live session of a cookie value (touching it), or nullptr.
  Session* find(std::string_view cookie, Clock::time_point now);
  void erase(std::string_view cookie);
  // Ends every session of a token (revoked or changed).
  void erase_token(int64_t token_id);
  // Drops the expired ones (a timer calls it).
  void prune(Clock::time_point now);
  size_t size() const { return sessions_.size(); }
  std::chrono::milliseconds max_age() const { return max_; }

  // Logins delayed by the Throttle: run later from the loop; dropped with
  // the loop (Api::stop).
  void later(event_base* base, std::chrono::milliseconds wait, std::function<void()> fn);
  void clear_pending() { pending_.clear(); }

 private:
  bool expired(const Session& s, Clock::time_point now) const;
  std::string key_of(std::string_view cookie) const;

  std::chrono::milliseconds idle_, max_;
  std::unordered_map<std::string, Session> sessions_;  // by SHA-256 of the cookie
  std::map<uint64_t, std::string> by_age_;             // seq -> key, oldest first
  uint64_t next_seq_ = 1;

  struct Pending {
    loop::Event ev;
    std::function<void()> fn;
    WebSessions* owner = nullptr;
  };
  std::list<Pending> pending_;
};

// The session cookie of a request, "" when none.
std::string_view session_cookie(const http::Request& head);

// Checks the session cookie of `x` (and its CSRF header when `csrf` is
// true), then its token through the token cache or api_tokens. Exactly one
// of ok / fail runs, maybe later (from a query), on the loop thread.
void check_session(Api& api, const ExchangePtr& x, bool csrf,
                   std::function<void(const Principal&)> ok,
                   std::function<void(int status, std::string error, std::string detail)> fail);

}  // namespace luacs::nbi
