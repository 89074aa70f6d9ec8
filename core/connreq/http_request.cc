#include "core/connreq/http_request.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/util.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "core/util/text.h"

namespace luacs::connreq {

namespace {

constexpr size_t kMaxHead = 8 << 10;
// A 401 body up to this size is read and dropped so the answer can reuse the
// connection; a larger (or unsized) one closes it and the answer goes out on
// a new connection.
constexpr size_t kMaxDrain = 4 << 10;

std::string& fixed_cnonce() {
  static std::string c;
  return c;
}

bool offline_errno(int e) {
  return e == ECONNREFUSED || e == ECONNRESET || e == EHOSTUNREACH || e == ENETUNREACH ||
         e == EPIPE || e == ECONNABORTED;
}

}  // namespace

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kAnswered:
      return "answered";
    case Outcome::kAuthFailed:
      return "auth_failed";
    case Outcome::kOffline:
      return "offline";
    case Outcome::kTimedOut:
      return "timed_out";
    case Outcome::kDenied:
      return "denied";
    case Outcome::kNoUrl:
      return "no_url";
    case Outcome::kError:
      return "error";
  }
  return "error";
}

// A response head: the status and the headers luacs looks at.
struct HttpRequest::Head {
  int status = 0;
  bool http10 = false;
  std::vector<std::string> challenges;  // WWW-Authenticate values
  std::optional<size_t> content_length;
  bool chunked = false;
  bool close = false;
};

namespace {

// nullopt when `text` (without the blank line) is not an HTTP/1.x head.
std::optional<HttpRequest::Head> parse_head(std::string_view text);

}  // namespace

void HttpRequest::set_fixed_cnonce(std::string cnonce) {
  fixed_cnonce() = std::move(cnonce);
}

HttpRequest::HttpRequest(event_base* base, evdns_base* dns, const Rules& rules, RequestSpec spec,
                         Done done)
    : base_(base), dns_(dns), rules_(rules), spec_(std::move(spec)), done_(std::move(done)) {
  timer_.reset(evtimer_new(base_, &HttpRequest::on_timeout, this));
  const timeval tv = loop::to_timeval(spec_.timeout);
  evtimer_add(timer_.get(), &tv);
  // Started from the loop so that `done` never runs inside the constructor.
  start_.reset(event_new(base_, -1, 0, &HttpRequest::on_start, this));
  event_active(start_.get(), 0, 0);
}

HttpRequest::~HttpRequest() {
  if (dns_req_) evdns_getaddrinfo_cancel(dns_req_);
}

void HttpRequest::on_start(evutil_socket_t, short, void* self) {
  auto* r = static_cast<HttpRequest*>(self);
  if (r->resolved_) return r->after_resolve();
  r->begin();
}

void HttpRequest::on_timeout(evutil_socket_t, short, void* self) {
  auto* r = static_cast<HttpRequest*>(self);
  r->finish(Outcome::kTimedOut,
            "no answer within " + std::to_string(r->spec_.timeout.count()) + " ms");
}

void HttpRequest::begin() {
  if (spec_.url.empty())
    return finish(Outcome::kNoUrl, "the device reported no ConnectionRequestURL");
  try {
    url_ = parse_url(spec_.url);
  } catch (const BadTarget& e) {
    return finish(Outcome::kNoUrl, std::string("bad ConnectionRequestURL: ") + e.what());
  }
  if (url_.numeric) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, url_.host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(url_.port);
      len = sizeof *v4;
    } else if (inet_pton(AF_INET6, url_.host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(url_.port);
      len = sizeof *v6;
    }
    return use_address(reinterpret_cast<sockaddr*>(&ss), len);
  }
  if (!dns_) return finish(Outcome::kError, "host names are not resolved here");
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = EVUTIL_AI_NUMERICSERV | EVUTIL_AI_ADDRCONFIG;
  // The callback may run inside this call (then it returns null); it only
  // records the answer and goes on from the loop.
  dns_req_ = evdns_getaddrinfo(dns_, url_.host.c_str(), std::to_string(url_.port).c_str(), &hints,
                               &HttpRequest::on_resolved, this);
}

void HttpRequest::on_resolved(int err, evutil_addrinfo* res, void* self) {
  if (err == EVUTIL_EAI_CANCEL) return;  // the attempt is gone
  auto* r = static_cast<HttpRequest*>(self);
  r->dns_req_ = nullptr;
  r->resolved_ = true;
  if (err != 0) {
    r->resolve_error_ = "cannot resolve " + r->url_.host + ": " + evutil_gai_strerror(err);
  } else {
    // The first address the rules allow; otherwise the first refusal.
    r->resolve_error_.clear();
    bool found = false;
    for (auto* a = res; a && !found; a = a->ai_next) {
      if (a->ai_addrlen > sizeof r->addr_) continue;
      if (auto why = r->rules_.refuse(a->ai_addr)) {
        if (r->resolve_error_.empty()) r->resolve_error_ = *why;
        continue;
      }
      std::memcpy(&r->addr_, a->ai_addr, a->ai_addrlen);
      r->addr_len_ = static_cast<socklen_t>(a->ai_addrlen);
      found = true;
    }
    if (!found && r->resolve_error_.empty()) r->resolve_error_ = "no address for " + r->url_.host;
    if (found) r->resolve_error_.clear();
    r->denied_ = !found && res != nullptr;
  }
  if (res) evutil_freeaddrinfo(res);
  event_active(r->start_.get(), 0, 0);
}

void HttpRequest::after_resolve() {
  if (!resolve_error_.empty())
    return finish(denied_ ? Outcome::kDenied : Outcome::kError, resolve_error_);
  connect();
  send("");
}

void HttpRequest::use_address(const sockaddr* sa, socklen_t len) {
  if (auto why = rules_.refuse(sa)) return finish(Outcome::kDenied, *why);
  std::memcpy(&addr_, sa, len);
  addr_len_ = len;
  connect();
  send("");
}

void HttpRequest::connect() {
  got_bytes_ = false;
  draining_ = false;
  bev_.reset(bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE));
  bufferevent_setcb(bev_.get(), &HttpRequest::on_read, nullptr, &HttpRequest::on_event, this);
  // A head over the cap is an error: never read far beyond it.
  bufferevent_setwatermark(bev_.get(), EV_READ, 0, kMaxHead + kMaxDrain + 1);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  if (bufferevent_socket_connect(bev_.get(), reinterpret_cast<sockaddr*>(&addr_),
                                 static_cast<int>(addr_len_)) != 0) {
    // Failures the kernel reports at once (no route...) arrive as an event.
  }
}

void HttpRequest::send(const std::string& authorization) {
  got_bytes_ = false;
  std::string req = "GET " + url_.target + " HTTP/1.1\r\nHost: " + url_.host_header + "\r\n";
  if (!authorization.empty()) req += "Authorization: " + authorization + "\r\n";
  req += "\r\n";
  bufferevent_write(bev_.get(), req.data(), req.size());
}

void HttpRequest::on_read(bufferevent*, void* self) {
  static_cast<HttpRequest*>(self)->read();
}

void HttpRequest::read() {
  evbuffer* in = bufferevent_get_input(bev_.get());
  if (evbuffer_get_length(in) > 0) got_bytes_ = true;
  if (draining_) {
    const size_t n = std::min(body_left_, evbuffer_get_length(in));
    evbuffer_drain(in, n);
    body_left_ -= n;
    if (body_left_ > 0) return;
    draining_ = false;
    second_ = true;
    return send(authorization_);
  }
  const evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, nullptr);
  if (end.pos < 0) {
    if (evbuffer_get_length(in) > kMaxHead)
      return finish(Outcome::kError, "response head over 8 KiB");
    return;
  }
  if (static_cast<size_t>(end.pos) > kMaxHead)
    return finish(Outcome::kError, "response head over 8 KiB");
  std::string text(static_cast<size_t>(end.pos), '\0');
  evbuffer_remove(in, text.data(), text.size());
  evbuffer_drain(in, 4);
  const auto head = parse_head(text);
  if (!head) return finish(Outcome::kError, "not an HTTP response");
  status_ = head->status;
  handle_head(*head);
}

void HttpRequest::handle_head(const Head& h) {
  const int s = h.status;
  if (s == 200 || s == 204) return finish(Outcome::kAnswered, "HTTP " + std::to_string(s));
  if (s == 401 && second_) return finish(Outcome::kAuthFailed, "the CPE refused the credentials");
  if (s == 401) return answer_challenge(h);
  if (s == 503) return finish(Outcome::kOffline, "HTTP 503");
  if (s >= 300 && s < 400)
    return finish(Outcome::kError, "HTTP " + std::to_string(s) + " (redirects are not followed)");
  finish(Outcome::kError, "HTTP " + std::to_string(s));
}

void HttpRequest::answer_challenge(const Head& h) {
  if (spec_.credentials.username.empty())
    return finish(Outcome::kAuthFailed, "the CPE asks for credentials and none are configured");
  std::optional<Challenge> digest, basic;
  for (const auto& text : h.challenges) {
    const auto c = parse_challenge(text);
    if (!c) continue;
    if (c->scheme == Challenge::Scheme::kDigest && !digest) digest = c;
    if (c->scheme == Challenge::Scheme::kBasic && !basic) basic = c;
  }
  std::optional<std::string> answer;
  const std::string cnonce = fixed_cnonce().empty() ? random_cnonce() : fixed_cnonce();
  if (digest) answer = authorization(*digest, spec_.credentials, "GET", url_.target, cnonce, false);
  if (!answer && basic)
    answer =
        authorization(*basic, spec_.credentials, "GET", url_.target, cnonce, spec_.allow_basic);
  if (!answer) {
    if (basic && !digest)
      return finish(Outcome::kAuthFailed,
                    "the CPE asks for Basic authentication, which [connection_request] "
                    "allow_basic does not allow");
    return finish(Outcome::kAuthFailed, "no challenge luacs can answer (Digest MD5 or Basic)");
  }
  authorization_ = *answer;
  const bool reuse =
      !h.close && !h.http10 && !h.chunked && h.content_length && *h.content_length <= kMaxDrain;
  if (!reuse) {
    reconnected_ = true;
    second_ = true;
    connect();
    return send(authorization_);
  }
  body_left_ = *h.content_length;
  draining_ = true;
  read();
}

void HttpRequest::on_event(bufferevent*, short what, void* self) {
  auto* r = static_cast<HttpRequest*>(self);
  if (what & BEV_EVENT_CONNECTED) return;
  const int err = EVUTIL_SOCKET_ERROR();
  // A CPE may close the connection after its 401 even without saying so:
  // the answer then goes out once on a new connection.
  if ((r->draining_ || (r->second_ && !r->got_bytes_)) && !r->reconnected_) {
    r->reconnected_ = true;
    r->second_ = true;
    r->connect();
    return r->send(r->authorization_);
  }
  if ((what & BEV_EVENT_ERROR) && offline_errno(err))
    return r->finish(Outcome::kOffline, evutil_socket_error_to_string(err));
  if (what & BEV_EVENT_ERROR) return r->finish(Outcome::kError, evutil_socket_error_to_string(err));
  r->finish(r->got_bytes_ ? Outcome::kError : Outcome::kOffline,
            r->got_bytes_ ? "connection closed inside the answer"
                          : "connection closed without an answer");
}

void HttpRequest::finish(Outcome o, std::string detail) {
  bev_.reset();
  timer_.reset();
  start_.reset();
  if (dns_req_) {
    evdns_getaddrinfo_cancel(dns_req_);
    dns_req_ = nullptr;
  }
  auto done = std::move(done_);
  done_ = nullptr;
  // Last: `done` may destroy this object.
  if (done) done(Result{o, status_, std::move(detail)});
}

namespace {

std::optional<HttpRequest::Head> parse_head(std::string_view text) {
  HttpRequest::Head h;
  auto eol = text.find("\r\n");
  const std::string_view status = text.substr(0, eol);
  // "HTTP/1.1 401 Unauthorized" (the reason phrase may be empty)
  if (status.size() < 12 || status.substr(0, 7) != "HTTP/1." || status[8] != ' ' ||
      (status.size() > 12 && status[12] != ' '))
    return std::nullopt;
  h.http10 = status[7] == '0';
  for (int i = 9; i < 12; ++i) {
    if (status[i] < '0' || status[i] > '9') return std::nullopt;
    h.status = h.status * 10 + (status[i] - '0');
  }
  while (eol != std::string_view::npos) {
    text.remove_prefix(eol + 2);
    eol = text.find("\r\n");
    const std::string_view line = text.substr(0, eol);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    const auto name = line.substr(0, colon);
    const auto value = text::trim(line.substr(colon + 1));
    if (text::iequals(name, "WWW-Authenticate")) {
      h.challenges.emplace_back(value);
    } else if (text::iequals(name, "Content-Length")) {
      size_t n = 0;
      if (value.empty() || value.size() > 12) return std::nullopt;
      for (const char c : value) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<size_t>(c - '0');
      }
      h.content_length = n;
    } else if (text::iequals(name, "Transfer-Encoding")) {
      h.chunked = true;
    } else if (text::iequals(name, "Connection")) {
      h.close = text::has_token(value, "close");
    }
  }
  return h;
}

}  // namespace

}  // namespace luacs::connreq
