// POST /login, GET /login, POST /logout, and the session check the
// connection runs for a request that comes with the cookie instead of a
// bearer token (core/nbi/login.h).
#include "core/nbi/login.h"

#include <openssl/crypto.h>

#include "core/http/cookie.h"
#include "core/nbi/api.h"
#include "core/util/hex.h"
#include "core/util/log.h"
#include "core/util/net.h"
#include "core/util/time.h"

namespace luacs::nbi {

namespace {

using Clock = WebSessions::Clock;

nlohmann::json session_json(const WebSessions::Session& s) {
  return {{"name", s.who.name},
          {"role", std::string(role_name(s.who.role))},
          {"scope", s.who.scope_tag.empty() ? nlohmann::json() : nlohmann::json(s.who.scope_tag)},
          {"csrf", s.csrf},
          {"expires", util::utc_rfc3339(s.expires)}};
}

std::string set_cookie(const Api& api, std::string_view value, int64_t max_age_s) {
  std::string c = std::string(kSessionCookie) + "=" + std::string(value) +
                  "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_s);
  if (api.options().listen.tls) c += "; Secure";
  return c;
}

// A token's api_tokens row, from the cache while it is fresh: `done` gets
// the failed reply, or the row (nullptr: no such token).
void token_row(Api& api, int64_t id,
               std::function<void(const PgReply* failed, const Api::CachedToken* row)> done) {
  auto& cache = api.token_cache();
  if (const auto hit = cache.find(id);
      hit != cache.end() && Clock::now() - hit->second.checked < Api::kTokenTtl)
    return done(nullptr, &hit->second);
  Db* db = api.db();
  if (!db) {
    const auto r = PgReply::failure("no [store] dsn is configured", true);
    return done(&r, nullptr);
  }
  db->query("SELECT name, role, coalesce(scope_tag, ''), hash FROM api_tokens WHERE id = $1",
            {std::to_string(id)}, [&api, id, done = std::move(done)](PgReply r) {
              if (!r.ok()) return done(&r, nullptr);
              if (r.rows() != 1) return done(nullptr, nullptr);
              Principal p;
              p.token_id = id;
              p.name = std::string(r.get(0, 0));
              p.role = parse_role(r.get(0, 1)).value_or(Role::kNone);
              p.scope_tag = std::string(r.get(0, 2));
              auto& cache = api.token_cache();
              if (cache.size() >= Api::kTokensCached) cache.clear();
              auto& row = cache[id];
              row = Api::CachedToken{std::string(r.get(0, 3)), std::move(p), Clock::now()};
              done(nullptr, &row);
            });
}

void answer_failure(const ExchangePtr& x, const PgReply& r) {
  const auto e = db_error(r);
  x->error(e.status, e.error, e.detail);
}

void check_login(const ExchangePtr& x, std::optional<TokenText> token, const std::string& address) {
  if (!x->alive()) return;
  Api& api = x->api();
  auto bad = [x, address] {
    x->api().throttle().failed(address, Clock::now());
    log::warn("api: invalid token from " + address + " for POST /login");
    x->error(401, "invalid token", "", {{"WWW-Authenticate", "Bearer realm=\"luacs\""}});
  };
  if (!token) return bad();
  if (!api.db())
    return x->error(503, "no store", "tokens live in PostgreSQL and no [store] dsn is configured");
  token_row(
      api, token->id, [x, token, address, bad](const PgReply* failed, const Api::CachedToken* row) {
        if (!x->alive()) return;
        if (failed) return answer_failure(x, *failed);
        if (!row || !secret_matches(row->hash, token->secret)) return bad();
        Api& api = x->api();
        api.throttle().succeeded(address);
        WebSessions& sessions = *api.sessions();
        WebSessions::Session s;
        s.token_id = token->id;
        s.token_hash = row->hash;
        s.csrf = new_secret();
        s.who = row->who;
        s.created = s.used = Clock::now();
        s.expires = std::chrono::system_clock::now() + sessions.max_age();
        const auto j = session_json(s);
        const std::string cookie = sessions.add(std::move(s));
        log::info("api: web login of token '" + row->who.name + "' from " + address);
        const auto max_age =
            std::chrono::duration_cast<std::chrono::seconds>(sessions.max_age()).count();
        x->json(200, j,
                {{"Set-Cookie", set_cookie(api, cookie, max_age)}, {"Cache-Control", "no-store"}});
      });
}

void post_login(const ExchangePtr& x) {
  auto body = x->json_body();
  if (!body) return;
  if (!body->is_object() || !body->contains("token") || !(*body)["token"].is_string() ||
      body->size() != 1)
    return x->error(400, "bad body", "expected {\"token\": \"lcs_...\"}");
  const std::string address = util::address_of(x->peer());
  Api& api = x->api();
  auto check = [x, token = parse_token((*body)["token"].get<std::string>()), address] {
    check_login(x, token, address);
  };
  // Guessing tokens here is slowed down as with a bearer token.
  const auto wait = api.throttle().delay(address, Clock::now());
  if (wait.count() == 0) return check();
  api.sessions()->later(api.base(), wait, std::move(check));
}

void get_login(const ExchangePtr& x) {
  check_session(
      x->api(), x, false,
      [x](const Principal&) {
        const auto* s = x->api().sessions()->find(session_cookie(x->head()), Clock::now());
        if (!s) return x->error(401, "invalid session", "log in (POST /login)");
        x->json(200, session_json(*s), {{"Cache-Control", "no-store"}});
      },
      [x](int status, std::string error, std::string detail) { x->error(status, error, detail); });
}

void post_logout(const ExchangePtr& x) {
  const auto cookie = session_cookie(x->head());
  if (!cookie.empty()) x->api().sessions()->erase(cookie);
  x->reply(204, "", "", {{"Set-Cookie", set_cookie(x->api(), "", 0)}});
}

}  // namespace

// ---- WebSessions

std::string WebSessions::key_of(std::string_view cookie) const {
  return util::sha256_hex(cookie);
}

bool WebSessions::expired(const Session& s, Clock::time_point now) const {
  return now - s.used > idle_ || now - s.created > max_;
}

std::string WebSessions::add(Session s) {
  const std::string cookie = new_secret();
  const std::string key = key_of(cookie);
  if (sessions_.size() >= kMaxSessions && !by_age_.empty()) {
    const auto oldest = by_age_.begin();
    sessions_.erase(oldest->second);
    by_age_.erase(oldest);
  }
  s.seq = next_seq_++;
  by_age_.emplace(s.seq, key);
  sessions_[key] = std::move(s);
  return cookie;
}

WebSessions::Session* WebSessions::find(std::string_view cookie, Clock::time_point now) {
  const auto it = sessions_.find(key_of(cookie));
  if (it == sessions_.end()) return nullptr;
  if (expired(it->second, now)) {
    by_age_.erase(it->second.seq);
    sessions_.erase(it);
    return nullptr;
  }
  it->second.used = now;
  return &it->second;
}

void WebSessions::erase(std::string_view cookie) {
  const auto it = sessions_.find(key_of(cookie));
  if (it == sessions_.end()) return;
  by_age_.erase(it->second.seq);
  sessions_.erase(it);
}

void WebSessions::erase_token(int64_t token_id) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.token_id == token_id) {
      by_age_.erase(it->second.seq);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

void WebSessions::prune(Clock::time_point now) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (expired(it->second, now)) {
      by_age_.erase(it->second.seq);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

void WebSessions::later(event_base* base, std::chrono::milliseconds wait,
                        std::function<void()> fn) {
  auto& p = pending_.emplace_back();
  p.fn = std::move(fn);
  p.ev.reset(event_new(
      base, -1, 0,
      [](evutil_socket_t, short, void* arg) {
        auto* me = static_cast<Pending*>(arg);
        auto fn = std::move(me->fn);
        // The event is done firing: freeing it here is safe.
        me->owner->pending_.remove_if([me](const Pending& q) { return &q == me; });
        if (fn) fn();
      },
      &p));
  p.owner = this;
  const timeval tv = loop::to_timeval(wait);
  event_add(p.ev.get(), &tv);
}

// ---- the check

std::string_view session_cookie(const http::Request& head) {
  const auto v = http::find_cookie(head.header("Cookie"), kSessionCookie);
  if (v.size() != 64) return {};
  for (const char c : v)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return {};
  return v;
}

void check_session(Api& api, const ExchangePtr& x, bool csrf,
                   std::function<void(const Principal&)> ok,
                   std::function<void(int status, std::string error, std::string detail)> fail) {
  WebSessions* sessions = api.sessions();
  const std::string cookie(session_cookie(x->head()));
  WebSessions::Session* s =
      sessions && !cookie.empty() ? sessions->find(cookie, Clock::now()) : nullptr;
  if (!s) return fail(401, "invalid session", "the login has ended; log in again (POST /login)");
  if (csrf) {
    const auto sent = x->head().header("X-CSRF-Token");
    if (sent.size() != s->csrf.size() ||
        CRYPTO_memcmp(sent.data(), s->csrf.data(), sent.size()) != 0)
      return fail(403, "missing or wrong CSRF token",
                  "send X-CSRF-Token with the csrf that POST /login or GET /login answered");
  }
  token_row(api, s->token_id,
            [&api, x, cookie, ok = std::move(ok), fail = std::move(fail)](
                const PgReply* failed, const Api::CachedToken* row) {
              if (!x->alive()) return;
              if (failed) {
                const auto e = db_error(*failed);
                return fail(e.status, e.error, e.detail);
              }
              WebSessions::Session* s = api.sessions()->find(cookie, Clock::now());
              if (!s) return fail(401, "invalid session", "the login has ended; log in again");
              if (!row || row->hash != s->token_hash) {
                const int64_t id = s->token_id;
                api.sessions()->erase_token(id);
                return fail(401, "invalid session",
                            "the token of this login was revoked; log in again");
              }
              s->who = row->who;
              ok(row->who);
            });
}

void add_login_routes(Router& r) {
  r.add(route("POST", "/login", Role::kNone, post_login));
  r.add(route("GET", "/login", Role::kNone, get_login));
  // Role read: the connection checks the cookie and its CSRF header (or a
  // bearer token) like on any other route.
  r.add(route("POST", "/logout", Role::kRead, post_logout));
}

}  // namespace luacs::nbi
