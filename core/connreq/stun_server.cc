// The STUN thread: UDP sockets, Binding answers, the table of bindings,
// and the timers of the connection requests in flight.
#include "core/connreq/stun_server.h"

#include <arpa/inet.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "core/connreq/udp_request.h"
#include "core/loop/loop.h"
#include "core/util/hex.h"
#include "core/util/log.h"
#include "core/util/net.h"

namespace luacs::connreq {

namespace {

using Clock = std::chrono::steady_clock;

// Drop reasons: the parse errors first, in their enum's order.
constexpr std::string_view kDropReasons[] = {"truncated",     "oversized",       "not_stun",
                                             "bad_length",    "bad_cookie",      "unknown_method",
                                             "bad_attribute", "bad_fingerprint", "not_request",
                                             "bad_request",   "unauthorized"};
constexpr size_t kNotRequest = 8, kBadRequest = 9, kUnauthorized = 10;
constexpr size_t kReasons = std::size(kDropReasons);

std::string random_id() {
  uint32_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return std::to_string(v);
}

struct Socket {
  int fd = -1;
  int family = 0;
  uint16_t port = 0;
  loop::Event ev;
  ~Socket() {
    ev.reset();
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

struct StunServer::Impl {
  StunServerOptions opts;
  StunCredentials credentials;
  loop::Base base;
  std::unique_ptr<loop::Mailbox> mailbox;
  std::vector<std::unique_ptr<Socket>> sockets;
  std::thread thread;

  std::array<std::atomic<uint64_t>, kReasons> drops{};
  std::atomic<uint64_t> answered{0}, sent{0};

  // The bindings, least recently seen first in `order`.
  struct Entry {
    Binding binding;
    size_t socket = 0;
    std::list<std::string>::iterator pos;
  };
  mutable std::mutex mu;
  std::unordered_map<std::string, Entry> bindings;
  std::list<std::string> order;

  // Connection requests in flight (STUN thread only), by target address.
  struct Flight {
    Impl* impl = nullptr;
    std::string key;
    std::string datagram;
    sockaddr_storage to{};
    socklen_t to_len = 0;
    int fd = -1;
    size_t next = 0;  // index into send_schedule
    bool any_sent = false;
    Clock::time_point started;
    loop::Event timer;
    std::function<void(SendResult)> done;
  };
  std::map<std::string, std::unique_ptr<Flight>> flights;
  // First send of each target within replay_window, and the same in time order.
  std::unordered_map<std::string, Clock::time_point> recent;
  std::deque<std::pair<Clock::time_point, std::string>> recent_order;
  std::atomic<bool> running{false};

  void open(const config::ListenAddress& l);
  static void on_read(evutil_socket_t fd, short, void* arg);
  void handle(size_t socket, std::string_view datagram, const sockaddr* peer, socklen_t len);
  void learn(const std::string& username, const stun::Address& a, const stun::Message& m,
             bool authenticated, size_t socket);
  void reply(int fd, const std::string& bytes, const sockaddr* peer, socklen_t len);

  void start_request(const std::string& target, UdpRequestCredentials c,
                     std::function<void(SendResult)> done);
  static void on_timer(evutil_socket_t, short, void* arg);
  void send_next(Flight& f);
  void settle(const std::string& target);
};

namespace {
struct SocketArg {
  StunServer::Impl* impl;
  size_t index;
};
}  // namespace

void StunServer::Impl::open(const config::ListenAddress& l) {
  const util::ListenAddr a = util::listen_addr(l.host, l.port);
  auto s = std::make_unique<Socket>();
  s->family = a.ss.ss_family;
  s->fd = ::socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  auto fail = [&](int err) {
    throw std::runtime_error("cannot listen on " + a.spec + ": " + std::strerror(err));
  };
  if (s->fd < 0) fail(errno);
  const int one = 1;
  // [::] and 0.0.0.0 may both be listed.
  if (s->family == AF_INET6) setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(s->fd, a.sa(), a.len) != 0) fail(errno);
  s->port = util::bound_port(s->fd);
  sockets.push_back(std::move(s));
}

void StunServer::Impl::on_read(evutil_socket_t fd, short, void* arg) {
  auto* sa = static_cast<SocketArg*>(arg);
  // A bounded batch per wake-up, so one busy socket cannot starve the timers.
  for (int i = 0; i < 64; ++i) {
    char buf[stun::kMaxMessageSize + 1];
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    // MSG_TRUNC: the datagram's real size, even when it does not fit.
    const ssize_t n =
        ::recvfrom(fd, buf, sizeof buf, MSG_TRUNC, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n < 0) return;  // EAGAIN, or an ICMP error reported on the socket
    if (static_cast<size_t>(n) > stun::kMaxMessageSize) {
      ++sa->impl->drops[static_cast<size_t>(stun::ParseError::kOversized)];
      continue;
    }
    sa->impl->handle(sa->index, std::string_view(buf, static_cast<size_t>(n)),
                     reinterpret_cast<sockaddr*>(&peer), len);
  }
}

void StunServer::Impl::reply(int fd, const std::string& bytes, const sockaddr* peer,
                             socklen_t len) {
  // Non-blocking; a full socket buffer loses the answer, as UDP may anyway
  // (the CPE retransmits).
  ::sendto(fd, bytes.data(), bytes.size(), 0, peer, len);
}

void StunServer::Impl::handle(size_t socket, std::string_view datagram, const sockaddr* peer,
                              socklen_t len) {
  const auto parsed = stun::parse(datagram);
  if (!parsed.message) {
    ++drops[static_cast<size_t>(parsed.error)];
    return;
  }
  const stun::Message& m = *parsed.message;
  const auto from = stun::address_of(peer);
  if (m.cls != stun::Class::kRequest || !from) {
    ++drops[kNotRequest];
    return;
  }
  const int fd = sockets[socket]->fd;
  if (m.has_integrity && !m.username) {  // RFC 5389 §10.1.2
    ++drops[kBadRequest];
    reply(fd, stun::binding_error(m.transaction, 400, "Bad Request"), peer, len);
    return;
  }
  std::optional<std::string> password;
  if (m.username && credentials) password = credentials(*m.username);
  if (password && !stun::integrity_ok(m, *password)) {
    ++drops[kUnauthorized];
    reply(fd, stun::binding_error(m.transaction, 401, "Unauthorized"), peer, len);
    return;
  }
  // Learned and counted before the answer leaves: whoever has the answer
  // finds the binding.
  if (m.username) learn(*m.username, *from, m, password.has_value(), socket);
  ++answered;
  std::optional<std::string_view> key;
  if (password) key = *password;
  reply(fd, stun::binding_success(m.transaction, *from, key), peer, len);
}

void StunServer::Impl::learn(const std::string& username, const stun::Address& a,
                             const stun::Message& m, bool authenticated, size_t socket) {
  const auto now = std::chrono::system_clock::now();
  std::lock_guard lock(mu);
  auto it = bindings.find(username);
  if (it == bindings.end()) {
    if (opts.max_bindings == 0) return;
    if (bindings.size() >= opts.max_bindings) {
      bindings.erase(order.front());
      order.pop_front();
    }
    it = bindings.emplace(username, Entry{}).first;
    it->second.pos = order.insert(order.end(), username);
    it->second.binding.changed = now;
  } else {
    order.splice(order.end(), order, it->second.pos);
    if (it->second.binding.address != a) it->second.binding.changed = now;
  }
  Binding& b = it->second.binding;
  b.address = a;
  b.seen = now;
  b.binding_change = m.binding_change;
  b.connection_request_binding = m.connection_request_binding;
  b.authenticated = authenticated;
  it->second.socket = socket;
}

void StunServer::Impl::start_request(const std::string& target, UdpRequestCredentials c,
                                     std::function<void(SendResult)> done) {
  std::optional<stun::Address> to = numeric_target(target);
  std::optional<size_t> socket;
  if (!to) {
    std::lock_guard lock(mu);
    const auto it = bindings.find(target);
    if (it == bindings.end()) return done(SendResult::kNoBinding);
    to = it->second.binding.address;
    socket = it->second.socket;
  }
  if (!socket) {
    for (size_t i = 0; i < sockets.size() && !socket; ++i)
      if (sockets[i]->family == to->family) socket = i;
    if (!socket) return done(SendResult::kBadTarget);
  }
  const std::string key = stun::to_string(*to);
  socklen_t to_len = 0;
  const sockaddr_storage to_sa = to_sockaddr(*to, to_len);
  if (opts.refuse && opts.refuse(reinterpret_cast<const sockaddr*>(&to_sa)))
    return done(SendResult::kDenied);
  const auto now = Clock::now();
  if (flights.count(key)) return done(SendResult::kMerged);
  // Forget what is past the window, so `recent` holds one window's requests.
  while (!recent_order.empty() && now - recent_order.front().first >= opts.replay_window) {
    const auto r = recent.find(recent_order.front().second);
    if (r != recent.end() && r->second == recent_order.front().first) recent.erase(r);
    recent_order.pop_front();
  }
  if (recent.count(key)) return done(SendResult::kMerged);
  recent[key] = now;
  recent_order.emplace_back(now, key);

  auto f = std::make_unique<Flight>();
  f->impl = this;
  f->key = key;
  f->fd = sockets[*socket]->fd;
  f->to = to_sa;
  f->to_len = to_len;
  f->started = now;
  f->done = std::move(done);
  UdpRequest r;
  const std::string host_port = stun::to_string(*to);
  r.host = host_port.substr(0, host_port.rfind(':'));
  r.port = to->port;
  r.ts = static_cast<uint64_t>(std::time(nullptr));
  r.id = random_id();
  r.username = std::move(c.username);
  r.cnonce = util::random_hex(8);
  f->datagram = format_udp_request(r, c.password);
  f->timer.reset(evtimer_new(base.get(), &Impl::on_timer, f.get()));
  Flight& ref = *f;
  flights.emplace(key, std::move(f));
  send_next(ref);
}

void StunServer::Impl::on_timer(evutil_socket_t, short, void* arg) {
  auto* f = static_cast<Flight*>(arg);
  f->impl->send_next(*f);
}

// Sends every datagram that is due, then arms the timer for the next one,
// or ends the flight.
void StunServer::Impl::send_next(Flight& f) {
  const auto& schedule = opts.send_schedule;
  while (f.next < schedule.size() && Clock::now() - f.started >= schedule[f.next]) {
    const auto n = ::sendto(f.fd, f.datagram.data(), f.datagram.size(), 0,
                            reinterpret_cast<const sockaddr*>(&f.to), f.to_len);
    if (n == static_cast<ssize_t>(f.datagram.size())) {
      f.any_sent = true;
      ++sent;
    }
    ++f.next;
  }
  if (f.next < schedule.size()) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        f.started + schedule[f.next] - Clock::now());
    const timeval tv = loop::to_timeval(wait);
    evtimer_add(f.timer.get(), &tv);
    return;
  }
  auto node = flights.extract(f.key);  // f lives in node until the end of this function
  node.mapped()->done(f.any_sent ? SendResult::kSent : SendResult::kSendFailed);
}

void StunServer::Impl::settle(const std::string& target) {
  std::optional<stun::Address> to = numeric_target(target);
  if (!to) {
    std::lock_guard lock(mu);
    const auto it = bindings.find(target);
    if (it == bindings.end()) return;
    to = it->second.binding.address;
  }
  const std::string key = stun::to_string(*to);
  recent.erase(key);  // its recent_order entry no longer matches: skipped
  const auto it = flights.find(key);
  if (it == flights.end()) return;
  auto node = flights.extract(it);
  node.mapped()->timer.reset();
  node.mapped()->done(node.mapped()->any_sent ? SendResult::kSent : SendResult::kSendFailed);
}

// ---- the public face

sockaddr_storage to_sockaddr(const stun::Address& a, socklen_t& len) {
  sockaddr_storage ss{};
  if (a.family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(a.port);
    std::memcpy(&in->sin_addr, a.ip.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a.port);
    std::memcpy(&in6->sin6_addr, a.ip.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  return ss;
}

std::optional<stun::Address> numeric_target(std::string_view s) {
  std::string_view host, port;
  stun::Address a;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    a.family = AF_INET6;
  } else {
    const auto colon = s.find(':');
    if (colon == std::string_view::npos || s.find(':', colon + 1) != std::string_view::npos)
      return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    a.family = AF_INET;
  }
  if (inet_pton(a.family, std::string(host).c_str(), a.ip.data()) != 1) return std::nullopt;
  unsigned p = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
    return std::nullopt;
  a.port = static_cast<uint16_t>(p);
  return a;
}

StunServerOptions stun_options_from(const config::Config& cfg) {
  StunServerOptions o;
  o.listen = cfg.stun_listen;
  o.send_schedule.clear();
  std::chrono::milliseconds at{0}, step = cfg.stun_retry_interval;
  for (unsigned i = 0; i < cfg.stun_retries; ++i) {
    o.send_schedule.push_back(at);
    at += step;
    step *= 2;
  }
  o.replay_window = cfg.stun_replay_window;
  return o;
}

std::string_view to_string(SendResult r) {
  switch (r) {
    case SendResult::kSent:
      return "sent";
    case SendResult::kMerged:
      return "merged";
    case SendResult::kNoBinding:
      return "no_binding";
    case SendResult::kBadTarget:
      return "bad_target";
    case SendResult::kSendFailed:
      return "send_failed";
    case SendResult::kStopped:
      return "stopped";
    case SendResult::kDenied:
      return "denied";
  }
  return "?";
}

StunServer::StunServer(StunServerOptions opts, StunCredentials credentials)
    : impl_(std::make_unique<Impl>()) {
  static const bool threads_ready = [] { return evthread_use_pthreads() == 0; }();
  if (!threads_ready) throw std::runtime_error("libevent: evthread_use_pthreads failed");
  if (opts.send_schedule.empty()) opts.send_schedule.push_back(std::chrono::milliseconds{0});
  impl_->opts = std::move(opts);
  impl_->credentials = std::move(credentials);
  impl_->base = loop::new_base();
  impl_->mailbox = std::make_unique<loop::Mailbox>(impl_->base.get());
}

StunServer::~StunServer() {
  stop();
}

void StunServer::start() {
  Impl& i = *impl_;
  if (i.thread.joinable()) return;
  for (const auto& l : i.opts.listen) i.open(l);
  static_assert(std::is_trivially_destructible_v<SocketArg>);
  for (size_t k = 0; k < i.sockets.size(); ++k) {
    // The argument lives as long as the event: freed with the socket.
    auto* arg = new SocketArg{&i, k};
    Socket& s = *i.sockets[k];
    s.ev.reset(event_new(i.base.get(), s.fd, EV_READ | EV_PERSIST, &Impl::on_read, arg));
    if (!s.ev) {
      delete arg;
      throw std::runtime_error("libevent: event_new failed");
    }
    event_add(s.ev.get(), nullptr);
  }
  i.running = true;
  i.thread = std::thread([&i] { event_base_dispatch(i.base.get()); });
}

void StunServer::stop() {
  Impl& i = *impl_;
  i.running = false;
  if (i.thread.joinable()) {
    i.mailbox->post([&i] { event_base_loopbreak(i.base.get()); });
    i.thread.join();
  }
  for (auto& s : i.sockets) {
    if (s->ev) delete static_cast<SocketArg*>(event_get_callback_arg(s->ev.get()));
    s->ev.reset();
  }
  i.sockets.clear();
  auto flights = std::move(i.flights);
  i.flights.clear();
  for (auto& [key, f] : flights) {
    f->timer.reset();
    if (f->done) f->done(SendResult::kStopped);
  }
}

std::vector<uint16_t> StunServer::ports() const {
  std::vector<uint16_t> out;
  for (const auto& s : impl_->sockets) out.push_back(s->port);
  return out;
}

std::optional<Binding> StunServer::binding(const std::string& username) const {
  std::lock_guard lock(impl_->mu);
  const auto it = impl_->bindings.find(username);
  if (it == impl_->bindings.end()) return std::nullopt;
  return it->second.binding;
}

size_t StunServer::binding_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->bindings.size();
}

void StunServer::send_connection_request(const std::string& target,
                                         UdpRequestCredentials credentials,
                                         std::function<void(SendResult)> done) {
  Impl* i = impl_.get();
  if (!i->running) return done(SendResult::kStopped);
  i->mailbox->post([i, target, c = std::move(credentials), done = std::move(done)]() mutable {
    i->start_request(target, std::move(c), std::move(done));
  });
}

void StunServer::settled(const std::string& target) {
  Impl* i = impl_.get();
  if (!i->running) return;
  i->mailbox->post([i, target] { i->settle(target); });
}

std::vector<std::pair<std::string, uint64_t>> StunServer::drops() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (size_t k = 0; k < kReasons; ++k)
    out.emplace_back(std::string(kDropReasons[k]), impl_->drops[k].load());
  return out;
}

uint64_t StunServer::dropped(std::string_view reason) const {
  for (size_t k = 0; k < kReasons; ++k)
    if (kDropReasons[k] == reason) return impl_->drops[k].load();
  return 0;
}

uint64_t StunServer::answered() const {
  return impl_->answered.load();
}

uint64_t StunServer::datagrams_sent() const {
  return impl_->sent.load();
}

}  // namespace luacs::connreq
