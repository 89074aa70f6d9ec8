// One API connection: requests parsed by http::RequestParser one at a time.
//
// A request goes head -> route -> token check -> body -> handler -> answer.
// The token is checked before any body byte is read, so a 4 GiB upload
// without a valid token costs nothing. While the handler works (or an
// answer streams) the connection keeps reading only to notice the client
// closing; pipelined bytes wait in the input.
#include "core/nbi/connection.h"

#include <event2/buffer.h>

#include <cstring>

#include "core/http/response.h"
#include "core/loop/tls_accept.h"
#include "core/nbi/api.h"
#include "core/nbi/login.h"
#include "core/util/log.h"
#include "core/util/net.h"

namespace luacs::nbi {

namespace {

constexpr size_t kLowWater = 64 * 1024;
constexpr size_t kMaxPipelined = 64 * 1024;

http::Limits limits_for(const Options& o) {
  http::Limits l;
  l.max_header_bytes = 16 * 1024;
  l.max_headers = 100;
  l.max_body_bytes = std::max(o.max_body, o.max_file_bytes);
  return l;
}

}  // namespace

std::string_view role_name(Role r) {
  switch (r) {
    case Role::kRead:
      return "read";
    case Role::kOperate:
      return "operate";
    case Role::kAdmin:
      return "admin";
    case Role::kNone:
      break;
  }
  return "none";
}

std::optional<Role> parse_role(std::string_view s) {
  if (s == "read") return Role::kRead;
  if (s == "operate") return Role::kOperate;
  if (s == "admin") return Role::kAdmin;
  return std::nullopt;
}

// ---- Exchange

Exchange::Exchange(Api& api, Connection* conn) : api_(api), conn_(conn) {}
Exchange::~Exchange() = default;

std::optional<std::string> Exchange::q(std::string_view name) const {
  for (const auto& [k, v] : query_)
    if (k == name) return v;
  return std::nullopt;
}

std::optional<nlohmann::json> Exchange::json_body() {
  if (body_.empty()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(body_);
  } catch (const nlohmann::json::parse_error& e) {
    error(400, "malformed JSON",
          "at byte " + std::to_string(e.byte) + ": " +
              std::string(std::string_view(e.what()).substr(
                  std::string_view(e.what()).find("parse error"))));
    return std::nullopt;
  }
}

void Exchange::reply(int status, std::string_view content_type, std::string body, Headers extra) {
  if (answered_) return;
  answered_ = true;
  api_.count_request(route_ ? route_->pattern : std::string("(none)"), status);
  if (conn_) conn_->send(status, content_type, std::move(body), std::move(extra));
}

void Exchange::json(int status, const nlohmann::json& j, Headers extra) {
  reply(status, "application/json",
        j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", std::move(extra));
}

void Exchange::error(int status, std::string_view error, std::string_view detail, Headers extra) {
  nlohmann::json j = {{"error", error}, {"detail", detail}};
  json(status, j, std::move(extra));
}

void Exchange::begin_stream(int status, std::string_view content_type, Headers extra) {
  if (answered_) return;
  answered_ = true;
  streaming_ = true;
  api_.count_request(route_ ? route_->pattern : std::string("(none)"), status);
  if (conn_) conn_->begin_stream(status, content_type, std::move(extra));
}

bool Exchange::write(std::string_view chunk) {
  if (!conn_ || !streaming_) return false;
  conn_->write_chunk(chunk);
  return true;
}

void Exchange::end_stream() {
  if (!streaming_) return;
  streaming_ = false;
  if (conn_) conn_->end_stream();
}

size_t Exchange::buffered() const {
  return conn_ ? conn_->buffered() : 0;
}

void Exchange::on_drained(std::function<void()> fn) {
  on_drained_ = std::move(fn);
  if (conn_) conn_->watch_drain();
}

void Exchange::drained() {
  if (!on_drained_) return;
  auto fn = std::move(on_drained_);
  on_drained_ = nullptr;
  fn();
}

void Exchange::detach() {
  conn_ = nullptr;
  on_drained_ = nullptr;
  if (on_gone_) {
    auto fn = std::move(on_gone_);
    on_gone_ = nullptr;
    fn();
  }
}

// ---- Connection

Connection::Connection(Api& api, loop::BufferEvent bev, bool tls, const sockaddr* peer,
                       int peer_len)
    : api_(api), bev_(std::move(bev)), parser_(limits_for(api.options())) {
  std::memcpy(&peer_sa_, peer, std::min<size_t>(static_cast<size_t>(peer_len), sizeof peer_sa_));
  peer_ = util::format_peer(peer);
  address_ = util::address_of(peer_);
  if (tls) {
    handshaking_ = true;
    // A deadline for the whole handshake: the idle timeout alone would let
    // a client trickle it in for ever.
    handshake_ev_.reset(evtimer_new(
        api.base(),
        [](evutil_socket_t, short, void* self) { static_cast<Connection*>(self)->close(); }, this));
    const timeval tv = loop::to_timeval(api.options().tls_handshake_timeout);
    evtimer_add(handshake_ev_.get(), &tv);
  }
  bufferevent_setcb(bev_.get(), &Connection::on_read_cb, &Connection::on_write_cb,
                    &Connection::on_event_cb, this);
  idle_ = loop::to_timeval(api.options().idle_timeout);
  bufferevent_set_timeouts(bev_.get(), &idle_, &idle_);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  api_.adopt(this);
}

Connection::~Connection() {
  api_.forget(this);
  if (exchange_) exchange_->detach();
  if (stream_ && !stream_finished_) stream_->abort();
}

void Connection::close() {
  // The bufferevent first: nothing may call back into a half-destroyed
  // connection.
  if (tls_up_) loop::tls_close_notify(bev_.get());
  bev_.reset();
  delete this;
}

void Connection::on_read_cb(bufferevent*, void* self) {
  static_cast<Connection*>(self)->on_read();
}

void Connection::on_write_cb(bufferevent*, void* self) {
  static_cast<Connection*>(self)->on_write();
}

void Connection::on_event_cb(bufferevent*, short what, void* self) {
  auto* c = static_cast<Connection*>(self);
  if (c->handshaking_) return c->on_handshake_event(what);
  if (what & BEV_EVENT_TIMEOUT) {
    // An idle keep-alive connection, or a client that stopped sending or
    // reading mid-request.
    if (c->state_ == State::kHandling || c->state_ == State::kStreaming) {
      if (what & BEV_EVENT_READING) {
        bufferevent_enable(c->bev_.get(), EV_READ);  // reading only notices a close
        return;
      }
    }
  }
  c->close();
}

// The TLS handshake is done (requests follow as on plain HTTP) or has
// failed (closed; plain HTTP was told to use HTTPS).
void Connection::on_handshake_event(short what) {
  if (what & BEV_EVENT_CONNECTED) {
    handshaking_ = false;
    tls_up_ = true;
    handshake_ev_.reset();
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    const std::string why = loop::tls_handshake_failed(bev_.get());
    if (log::enabled(log::Level::kDebug))
      log::debug("api: tls handshake failed peer=" + peer_ + " reason=" + log::quoted(why));
  }
  close();
}

void Connection::on_read() {
  if (state_ == State::kHead || state_ == State::kBody) {
    parse_input();
    return;
  }
  // Handling or streaming: hold pipelined bytes, within reason.
  if (evbuffer_get_length(bufferevent_get_input(bev_.get())) > kMaxPipelined)
    bufferevent_disable(bev_.get(), EV_READ);
}

void Connection::on_write() {
  if (state_ == State::kClosing) {
    if (evbuffer_get_length(bufferevent_get_output(bev_.get())) == 0) close();
    return;
  }
  if (exchange_ && watching_drain_ && buffered() <= kLowWater) {
    watching_drain_ = false;
    auto keep = exchange_;
    keep->drained();
  }
}

size_t Connection::buffered() const {
  return bev_ ? evbuffer_get_length(bufferevent_get_output(bev_.get())) : 0;
}

// Runs `step` from the loop at its next turn (made once per connection and
// event): the caller may still be on this connection's stack.
template <void (Connection::*step)()>
void Connection::run_soon(loop::Event& ev) {
  if (!ev)
    ev.reset(event_new(
        api_.base(), -1, 0,
        [](evutil_socket_t, short, void* self) { (static_cast<Connection*>(self)->*step)(); },
        this));
  event_active(ev.get(), 0, 0);
}

void Connection::watch_drain() {
  watching_drain_ = true;
  bufferevent_setwatermark(bev_.get(), EV_WRITE, kLowWater, 0);
  if (buffered() <= kLowWater) {
    // Already drained: call back from the loop, not from inside the handler.
    run_soon<&Connection::on_write>(drain_ev_);
  }
}

// Feeds the parser from the input buffer until it wants more, a request is
// ready, or the connection must wait (a token check).
void Connection::parse_input() {
  evbuffer* in = bufferevent_get_input(bev_.get());
  while (state_ == State::kHead || state_ == State::kBody) {
    const size_t avail = evbuffer_get_length(in);
    const char* data = avail
                           ? reinterpret_cast<const char*>(evbuffer_pullup(
                                 in, static_cast<ev_ssize_t>(std::min<size_t>(avail, 256 * 1024))))
                           : "";
    const size_t len = std::min<size_t>(avail, 256 * 1024);
    size_t used = 0;
    const auto ev = parser_.feed(data, len, &used, state_ == State::kBody ? this : nullptr);
    evbuffer_drain(in, used);
    switch (ev) {
      case http::RequestParser::Event::kNeedMore:
        if (used == 0 || evbuffer_get_length(in) == 0) return;
        break;
      case http::RequestParser::Event::kHeadersComplete:
        head_complete();
        break;
      case http::RequestParser::Event::kMessageComplete:
        if (state_ == State::kHead) {
          // A body-less request: complete right after its head.
          break;
        }
        body_complete();
        return;
      case http::RequestParser::Event::kError:
        if (stream_ && !stream_finished_) {
          stream_finished_ = true;
          stream_->abort();
        }
        // The sink answered (413, 507...) and that answer closes the
        // connection: no second answer.
        if (state_ == State::kClosing) return;
        if (exchange_ && exchange_->answered()) {
          state_ = State::kHandling;  // the sink answered; wait for it to send
          return;
        }
        fail(parser_.error().status, parser_.error().reason);
        return;
    }
  }
}

bool Connection::on_body(const char* data, size_t len) {
  if (stream_ && !stream_finished_) return stream_->write(data, len);
  if (exchange_->body_.size() + len > api_.options().max_body) {
    parser_.fail(413, "the body is larger than [nbi] max_body (" +
                          std::to_string(api_.options().max_body) + " bytes)");
    return false;
  }
  exchange_->body_.append(data, len);
  return true;
}

void Connection::fail(int status, const std::string& why) {
  keep_alive_ = false;
  if (!exchange_) exchange_ = std::make_shared<Exchange>(api_, this);
  exchange_->error(status, http::reason_phrase(status), why);
}

void Connection::head_complete() {
  const auto& req = parser_.request();
  stream_.reset();  // the previous request's, finished
  stream_finished_ = false;
  exchange_ = std::make_shared<Exchange>(api_, this);
  auto& x = *exchange_;
  x.head_ = req;
  x.peer_ = peer_;
  x.peer_sa_ = peer_sa_;
  keep_alive_ = req.keep_alive;

  const std::string_view target = req.target;
  const auto qmark = target.find('?');
  const auto segments = split_path(target.substr(0, qmark));
  if (!segments) return fail(400, "the path has a bad percent-escape or a NUL");
  x.path_ = target.substr(0, qmark);
  if (qmark != std::string_view::npos) {
    std::string_view qs = target.substr(qmark + 1);
    while (!qs.empty()) {
      const auto amp = qs.find('&');
      const auto item = qs.substr(0, amp);
      if (!item.empty()) {
        const auto eq = item.find('=');
        auto k = percent_decode(item.substr(0, eq), true);
        auto v = percent_decode(eq == std::string_view::npos ? "" : item.substr(eq + 1), true);
        if (!k || !v) return fail(400, "the query has a bad percent-escape or a NUL");
        x.query_.emplace_back(std::move(*k), std::move(*v));
      }
      if (amp == std::string_view::npos) break;
      qs.remove_prefix(amp + 1);
    }
  }
  const std::string method =
      req.method == "HEAD" && !has_head_route(*segments) ? "GET" : req.method;
  auto m = api_.router().match(method, *segments);
  if (!m.route) {
    if (!m.allow.empty()) {
      keep_alive_ = false;
      x.error(405, "method not allowed", req.method + " is not allowed on " + x.path_,
              {{"Allow", m.allow}});
      return;
    }
    return fail(404, "no route " + x.path_ + " (see /openapi.json)");
  }
  x.route_ = m.route;
  x.params_ = std::move(m.params);
  head_only_ = req.method == "HEAD";

  if (!m.route->stream_body && req.content_length && *req.content_length > api_.options().max_body)
    return fail(413, "the body is larger than [nbi] max_body (" +
                         std::to_string(api_.options().max_body) + " bytes)");

  state_ = State::kAuth;
  bufferevent_disable(bev_.get(), EV_READ);
  authenticate();
}

bool Connection::has_head_route(const std::vector<std::string>& segments) const {
  return api_.router().match("HEAD", segments).route != nullptr;
}

void Connection::admit(const ExchangePtr& x, Principal p) {
  api_.throttle().succeeded(address_);
  const Route& route = x->route();
  if (p.role < route.role)
    return deny(403, "forbidden",
                "token '" + p.name + "' has role " + std::string(role_name(p.role)) +
                    "; this needs " + std::string(role_name(route.role)),
                false);
  if (route.fleet_wide && !p.scope_tag.empty())
    return deny(403, "forbidden",
                "token '" + p.name + "' is scoped to tag '" + p.scope_tag +
                    "'; this acts on the whole fleet",
                false);
  x->who_ = std::move(p);
  authorized();
}

void Connection::authenticate() {
  auto x = exchange_;
  const Route& route = *x->route_;
  if (route.role == Role::kNone) return authorized();
  const std::string_view bearer = bearer_of(x->head().header("Authorization"));
  if (route.metrics && bearer.empty()) {
    for (const auto& c : api_.options().metrics_allow)
      if (c.contains(x->peer_addr())) return authorized();
  }
  if (bearer.empty() && !session_cookie(x->head()).empty()) {
    // The web page's login (core/nbi/login.h): what is not GET or HEAD also
    // needs its CSRF header.
    const bool safe = x->method() == "GET" || x->method() == "HEAD";
    return check_session(
        api_, x, !safe, [this, x](const Principal& p) { admit(x, p); },
        [this](int status, std::string error, std::string detail) {
          deny(status, error, detail, false);
        });
  }
  if (bearer.empty())
    return deny(401, "missing token", "send Authorization: Bearer <token> (luacs token add)",
                false);
  const auto token = parse_token(bearer);
  const auto wait = api_.throttle().delay(address_, std::chrono::steady_clock::now());
  auto check = [this, x, token] {
    if (!token) return deny(401, "invalid token", "", true);
    auto& cache = api_.token_cache();
    if (const auto hit = cache.find(token->id);
        hit != cache.end() &&
        std::chrono::steady_clock::now() - hit->second.checked < Api::kTokenTtl) {
      if (secret_matches(hit->second.hash, token->secret)) return admit(x, hit->second.who);
      cache.erase(hit);  // a wrong secret is always checked against the table
    }
    Db* db = api_.db();
    if (!db)
      return deny(503, "no store", "tokens live in PostgreSQL and no [store] dsn is configured",
                  false);
    db->query("SELECT name, role, coalesce(scope_tag, ''), hash FROM api_tokens WHERE id = $1",
              {std::to_string(token->id)}, [this, x, token](PgReply r) {
                if (!x->alive()) return;
                if (!r.ok()) {
                  const auto e = db_error(r);
                  return deny(e.status, e.error, e.detail, false);
                }
                if (r.rows() != 1 || !secret_matches(r.get(0, 3), token->secret))
                  return deny(401, "invalid token", "", true);
                Principal p;
                p.token_id = token->id;
                p.name = std::string(r.get(0, 0));
                p.role = parse_role(r.get(0, 1)).value_or(Role::kNone);
                p.scope_tag = std::string(r.get(0, 2));
                auto& cache = api_.token_cache();
                if (cache.size() >= Api::kTokensCached) cache.clear();
                cache[token->id] = {std::string(r.get(0, 3)), p, std::chrono::steady_clock::now()};
                admit(x, std::move(p));
              });
  };
  if (wait.count() == 0) return check();
  // Slow an address that keeps presenting bad tokens down.
  pending_check_ = std::move(check);
  if (!delay_ev_)
    delay_ev_.reset(event_new(
        api_.base(), -1, 0,
        [](evutil_socket_t, short, void* self) {
          auto* c = static_cast<Connection*>(self);
          auto fn = std::move(c->pending_check_);
          c->pending_check_ = nullptr;
          if (fn) fn();
        },
        this));
  const timeval tv = loop::to_timeval(wait);
  event_add(delay_ev_.get(), &tv);
}

void Connection::deny(int status, const std::string& error, const std::string& detail,
                      bool counts) {
  if (counts) {
    api_.throttle().failed(address_, std::chrono::steady_clock::now());
    log::warn("api: " + error + " from " + address_ + " for " + exchange_->method() + " " +
              exchange_->path());
  }
  keep_alive_ = false;  // the body (if any) is not read
  Headers extra;
  if (status == 401) extra.emplace_back("WWW-Authenticate", "Bearer realm=\"luacs\"");
  exchange_->error(status, error, detail, std::move(extra));
}

void Connection::authorized() {
  auto x = exchange_;
  if (x->route_->stream_body) {
    stream_ = x->route_->stream_body(x);
    if (!stream_) {
      // The factory refused and answered (a bad name, no space...).
      keep_alive_ = false;
      if (!x->answered()) x->error(500, "internal error", "cannot accept the body");
      return;
    }
  }
  if (parser_.request().expect_continue)
    bufferevent_write(bev_.get(), http::kContinueResponse.data(), http::kContinueResponse.size());
  state_ = State::kBody;
  bufferevent_enable(bev_.get(), EV_READ);
  parse_input();
}

void Connection::body_complete() {
  state_ = State::kHandling;
  auto x = exchange_;
  if (stream_) {
    // Kept until the next request: finish() may answer from inside itself.
    stream_finished_ = true;
    stream_->finish();
    return;
  }
  x->route_->handler(x);
}

void Connection::send(int status, std::string_view content_type, std::string body, Headers extra) {
  std::vector<http::Header> hs;
  hs.reserve(extra.size());
  for (const auto& [k, v] : extra) hs.push_back({k, v});
  if (state_ == State::kAuth || state_ == State::kHead || state_ == State::kBody) {
    // Answered before the request was read to its end: close after it.
    keep_alive_ = false;
  }
  std::string out;
  if (head_only_) {
    http::append_head(out, status, content_type, hs, body.size(), keep_alive_);
  } else {
    http::append_response(out, status, content_type, hs, body, keep_alive_);
  }
  bufferevent_write(bev_.get(), out.data(), out.size());
  answer_done();
}

void Connection::begin_stream(int status, std::string_view content_type, Headers extra) {
  std::vector<http::Header> hs;
  for (const auto& [k, v] : extra) hs.push_back({k, v});
  chunked_ = parser_.request().minor_version >= 1;
  if (chunked_) hs.push_back({"Transfer-Encoding", "chunked"});
  if (!chunked_) keep_alive_ = false;  // HTTP/1.0: the end is the close
  std::string out;
  http::append_head(out, status, content_type, hs, std::nullopt, keep_alive_);
  bufferevent_write(bev_.get(), out.data(), out.size());
  state_ = State::kStreaming;
  // No read timeout while an answer streams: the client only listens.
  timeval write_to = idle_;
  bufferevent_set_timeouts(bev_.get(), nullptr, &write_to);
  bufferevent_enable(bev_.get(), EV_READ);
  if (head_only_) {
    // HEAD: the head is the whole answer.
    exchange_->streaming_ = false;
    if (chunked_) chunked_ = false;
    answer_done();
  }
}

void Connection::write_chunk(std::string_view chunk) {
  if (chunk.empty() || state_ != State::kStreaming) return;
  evbuffer* out = bufferevent_get_output(bev_.get());
  if (chunked_) evbuffer_add_printf(out, "%zx\r\n", chunk.size());
  evbuffer_add(out, chunk.data(), chunk.size());
  if (chunked_) evbuffer_add(out, "\r\n", 2);
}

void Connection::end_stream() {
  if (state_ != State::kStreaming) return;
  if (chunked_) bufferevent_write(bev_.get(), "0\r\n\r\n", 5);
  bufferevent_set_timeouts(bev_.get(), &idle_, &idle_);
  answer_done();
}

// The answer is queued: next request, or close once it is sent.
void Connection::answer_done() {
  if (exchange_) {
    exchange_->conn_ = nullptr;  // late writes from the handler go nowhere
    exchange_->on_gone_ = nullptr;
    exchange_.reset();
  }
  watching_drain_ = false;
  if (!keep_alive_) {
    state_ = State::kClosing;
    bufferevent_disable(bev_.get(), EV_READ);
    bufferevent_setwatermark(bev_.get(), EV_WRITE, 0, 0);
    if (buffered() == 0) {
      // Close from the loop: the caller may still be on this connection's stack.
      run_soon<&Connection::on_write>(drain_ev_);
    }
    return;
  }
  state_ = State::kHead;
  head_only_ = false;
  parser_.reset();
  bufferevent_enable(bev_.get(), EV_READ);
  if (evbuffer_get_length(bufferevent_get_input(bev_.get())) > 0) {
    // A pipelined request: from the loop, not from inside this answer.
    run_soon<&Connection::on_read>(next_ev_);
  }
}

}  // namespace luacs::nbi
