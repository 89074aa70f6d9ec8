// The simulated CPEs' connection-request listeners (wake.h).
#include "bench/loadgen/wake.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <stdexcept>

#include "core/connreq/stun.h"

namespace luacs::loadgen {
namespace {

constexpr size_t kMaxHead = 8 * 1024;
constexpr size_t kMaxConns = 4096;  // per listener; more are closed at once
constexpr int kIdleSeconds = 10;    // a connection silent this long is closed
constexpr std::string_view kRealm = "luacs-loadgen";
constexpr size_t kMaxDatagram = 2048;
constexpr int kDatagramsPerEvent = 256;  // then the loop serves the others

struct RequestHead {
  std::string_view method, target, authorization;
  bool close = false;
  bool body = false;  // a Content-Length > 0 or chunks: not a connection request
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_request_head(std::string_view head, RequestHead& h) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  h.method = line.substr(0, sp1);
  h.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version.substr(0, 5) != "HTTP/") return false;
  h.close = version == "HTTP/1.0";
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos || end == pos) break;
    std::string_view field = head.substr(pos, end - pos);
    pos = end + 2;
    size_t colon = field.find(':');
    if (colon == std::string_view::npos) return false;
    std::string_view name = field.substr(0, colon), value = trim(field.substr(colon + 1));
    if (iequals(name, "Authorization")) h.authorization = value;
    if (iequals(name, "Connection")) h.close = iequals(value, "close");
    if (iequals(name, "Content-Length") && value != "0") h.body = true;
    if (iequals(name, "Transfer-Encoding")) h.body = true;
  }
  return true;
}

// "/<decimal index>" -> the index.
std::optional<uint64_t> device_of_path(std::string_view target) {
  if (target.size() < 2 || target.front() != '/') return std::nullopt;
  std::string_view digits = target.substr(1);
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
  return n;
}

std::string status_line(int code, std::string_view reason, bool close,
                        std::string_view extra = "") {
  std::string out = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) + "\r\n";
  out += extra;
  if (close) out += "Connection: close\r\n";
  out += "Content-Length: 0\r\n\r\n";
  return out;
}

int bind_socket(int type, uint16_t port, uint16_t& bound) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 ||
      (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
    close(fd);
    throw std::runtime_error("cannot bind 127.0.0.1:" + std::to_string(port) +
                             (type == SOCK_STREAM ? " (tcp)" : " (udp)"));
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  bound = ntohs(a.sin_port);
  return fd;
}

}  // namespace

void CrStats::merge(const CrStats& o) {
  http_requests += o.http_requests;
  http_challenges += o.http_challenges;
  http_auth_failed += o.http_auth_failed;
  http_ok += o.http_ok;
  http_bad += o.http_bad;
  for (const auto& [k, v] : o.udp) udp[k] += v;
  stun_sent += o.stun_sent;
  stun_answers += o.stun_answers;
  stun_errors += o.stun_errors;
  received += o.received;
  deferred += o.deferred;
  merged += o.merged;
  ignored += o.ignored;
  woken_started += o.woken_started;
  woken_completed += o.woken_completed;
  tail_completed += o.tail_completed;
  wakes_sent += o.wakes_sent;
  skipped_no_device += o.skipped_no_device;
  skipped_inflight += o.skipped_inflight;
  for (const auto& [k, v] : o.api) api[k] += v;
  for (const auto& [k, v] : o.transports) transports[k] += v;
  api_us.merge(o.api_us);
  api_to_cr_us.merge(o.api_to_cr_us);
  wake_to_inform_us.merge(o.wake_to_inform_us);
  cr_to_inform_us.merge(o.cr_to_inform_us);
}

std::string path_segment(std::string_view id) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : id) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// ---- HTTP --------------------------------------------------------------------

struct CrHttpListener::Conn {
  CrHttpListener* l = nullptr;
  bufferevent* bev = nullptr;
  bool closing = false;  // the last answer is being written
};

CrHttpListener::CrHttpListener(event_base* base, const CrOptions& cr, uint16_t port, OwnsFn owns,
                               WakeFn wake, CrStats& stats)
    : cr_(cr),
      owns_(std::move(owns)),
      wake_(std::move(wake)),
      stats_(stats),
      nonces_(std::chrono::seconds(60)) {
  int fd = bind_socket(SOCK_STREAM, port, port_);
  listener_ = evconnlistener_new(base, on_accept, this, LEV_OPT_CLOSE_ON_FREE, -1, fd);
  if (!listener_) {
    close(fd);
    throw std::runtime_error("evconnlistener_new failed");
  }
}

CrHttpListener::~CrHttpListener() {
  close_all();
  if (listener_) evconnlistener_free(listener_);
}

void CrHttpListener::close_all() {
  for (auto& [p, c] : conns_) bufferevent_free(c->bev);
  conns_.clear();
}

void CrHttpListener::on_accept(evconnlistener* l, evutil_socket_t fd, sockaddr*, int, void* arg) {
  auto* self = static_cast<CrHttpListener*>(arg);
  if (self->conns_.size() >= kMaxConns) {
    close(fd);
    return;
  }
  auto c = std::make_unique<Conn>();
  c->l = self;
  c->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
  if (!c->bev) {
    close(fd);
    return;
  }
  bufferevent_setcb(c->bev, on_read, on_write, on_event, c.get());
  timeval tv{kIdleSeconds, 0};
  bufferevent_set_timeouts(c->bev, &tv, &tv);
  bufferevent_enable(c->bev, EV_READ | EV_WRITE);
  Conn* key = c.get();
  self->conns_.emplace(key, std::move(c));
}

void CrHttpListener::drop(Conn& c) {
  bufferevent_free(c.bev);
  conns_.erase(&c);
}

void CrHttpListener::on_read(bufferevent*, void* arg) {
  auto& c = *static_cast<Conn*>(arg);
  c.l->serve(c);
}

void CrHttpListener::on_write(bufferevent* bev, void* arg) {
  auto& c = *static_cast<Conn*>(arg);
  if (c.closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) c.l->drop(c);
}

void CrHttpListener::on_event(bufferevent*, short, void* arg) {
  auto& c = *static_cast<Conn*>(arg);
  c.l->drop(c);  // EOF, error or the idle timeout
}

void CrHttpListener::serve(Conn& c) {
  evbuffer* in = bufferevent_get_input(c.bev);
  while (!c.closing) {
    size_t len = evbuffer_get_length(in);
    evbuffer_ptr pos = evbuffer_search(in, "\r\n\r\n", 4, nullptr);
    if (pos.pos < 0) {
      if (len > kMaxHead) {
        ++stats_.http_bad;
        return drop(c);
      }
      return;
    }
    size_t head_len = static_cast<size_t>(pos.pos) + 4;
    if (head_len > kMaxHead) {
      ++stats_.http_bad;
      return drop(c);
    }
    std::string head(reinterpret_cast<const char*>(evbuffer_pullup(in, head_len)), head_len);
    evbuffer_drain(in, head_len);
    bool close = false;
    std::string out = answer(head, close);
    bufferevent_write(c.bev, out.data(), out.size());
    if (close) {
      c.closing = true;
      bufferevent_disable(c.bev, EV_READ);
    }
  }
}

std::string CrHttpListener::challenge(bool stale) {
  std::string h = "WWW-Authenticate: Digest realm=\"" + std::string(kRealm) +
                  "\", qop=\"auth\", nonce=\"" + nonces_.issue(std::chrono::system_clock::now()) +
                  "\", algorithm=MD5";
  if (stale) h += ", stale=true";
  return h + "\r\n";
}

std::string CrHttpListener::answer(std::string_view head, bool& close) {
  ++stats_.http_requests;
  RequestHead h;
  if (!parse_request_head(head, h) || h.body) {
    ++stats_.http_bad;
    close = true;
    return status_line(400, "Bad Request", true);
  }
  close = h.close;
  auto device = device_of_path(h.target);
  if (h.method != "GET" || !device || !owns_(*device)) {
    ++stats_.http_bad;
    close = true;
    return status_line(h.method != "GET" ? 405 : 404,
                       h.method != "GET" ? "Not Allowed" : "Not Found", true);
  }
  auto unauthorized = [&](bool stale) {
    return status_line(401, "Unauthorized", close, challenge(stale));
  };
  if (h.authorization.empty()) {
    ++stats_.http_challenges;
    return unauthorized(false);
  }
  auto p = auth::parse_digest(h.authorization);
  const std::string user = cr_username(cr_, *device);
  if (!p || p->qop != "auth" || p->username != user || p->realm != kRealm || p->uri != h.target ||
      (!p->algorithm.empty() && !iequals(p->algorithm, "MD5"))) {
    ++stats_.http_auth_failed;
    return unauthorized(false);
  }
  std::string ha1 = auth::md5_hex(user + ":" + std::string(kRealm) + ":" + cr_.password);
  std::string ha2 = auth::md5_hex("GET:" + std::string(h.target));
  std::string expect =
      auth::md5_hex(ha1 + ":" + p->nonce + ":" + p->nc + ":" + p->cnonce + ":auth:" + ha2);
  if (expect != p->response) {
    ++stats_.http_auth_failed;
    return unauthorized(false);
  }
  // Right credentials on a nonce we cannot take (expired, replayed, not
  // ours): a fresh one, as a CPE does.
  if (nonces_.check(p->nonce, p->nc, std::chrono::system_clock::now()) !=
      auth::NonceTable::Check::kValid) {
    ++stats_.http_challenges;
    return unauthorized(true);
  }
  ++stats_.http_ok;
  wake_(*device, false);
  return status_line(200, "OK", close);
}

// ---- UDP ---------------------------------------------------------------------

CrUdpListener::CrUdpListener(event_base* base, const CrOptions& cr, uint16_t port, uint64_t first,
                             uint64_t step, size_t count, WakeFn wake, CrStats& stats)
    : cr_(cr), wake_(std::move(wake)), stats_(stats), socks_(count) {
  for (size_t i = 0; i < count; ++i) {
    Sock& s = socks_[i];
    s.l = this;
    s.device = first + i * step;
    s.fd = bind_socket(SOCK_DGRAM, port ? static_cast<uint16_t>(port + s.device) : 0, s.port);
    s.ev = event_new(base, s.fd, EV_READ | EV_PERSIST, on_read, &s);
    event_add(s.ev, nullptr);
  }
}

CrUdpListener::~CrUdpListener() {
  for (Sock& s : socks_) {
    if (s.ev) event_free(s.ev);
    if (s.fd >= 0) close(s.fd);
  }
}

void CrUdpListener::on_read(evutil_socket_t fd, short, void* arg) {
  Sock& s = *static_cast<Sock*>(arg);
  char buf[kMaxDatagram + 1];
  for (int i = 0; i < kDatagramsPerEvent; ++i) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) return;  // EAGAIN, or an ICMP error from a STUN send
    s.l->datagram(s, {buf, static_cast<size_t>(n)});
  }
}

void CrUdpListener::datagram(Sock& s, std::string_view d) {
  // A STUN message starts with two zero bits; a TR-111 request with "GET".
  if (!d.empty() && (static_cast<unsigned char>(d[0]) & 0xC0) == 0) {
    auto parsed = connreq::stun::parse(d);
    if (parsed.message && parsed.message->cls == connreq::stun::Class::kSuccess)
      ++stats_.stun_answers;
    else
      ++stats_.stun_errors;
    return;
  }
  if (!s.verifier)
    s.verifier =
        std::make_unique<connreq::UdpRequestVerifier>(cr_username(cr_, s.device), cr_.password);
  auto verdict = s.verifier->check(d);
  ++stats_.udp[std::string(connreq::to_string(verdict))];
  if (verdict == connreq::UdpRequestVerifier::Verdict::kAccepted) wake_(s.device, true);
}

void CrUdpListener::send_stun(size_t local) {
  const Sock& s = socks_[local];
  connreq::stun::RequestOptions o;
  o.username = cr_username(cr_, s.device);
  o.connection_request_binding = true;
  std::string msg = connreq::stun::binding_request(connreq::stun::random_transaction(), o);
  if (sendto(s.fd, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&cr_.stun_addr),
             cr_.stun_addr_len) == static_cast<ssize_t>(msg.size()))
    ++stats_.stun_sent;
}

}  // namespace luacs::loadgen
