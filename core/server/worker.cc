#include "core/server/worker.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>

#include "core/util/log.h"

namespace luacs::server {
namespace {

std::string format_peer(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN + 8] = {};
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "?";
}

std::string new_cookie() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  static const char hex[] = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[2 * i] = hex[raw[i] >> 4];
    s[2 * i + 1] = hex[raw[i] & 15];
  }
  return s;
}

// The one log line a session leaves behind.
std::string session_line(const cwmp::Session& s, const std::string& peer) {
  std::string line = "session device=";
  line += s.device_id().empty() ? "-" : s.device_id();
  line += " peer=" + peer + " events=\"";
  bool first = true;
  for (const auto& e : s.inform().events) {
    if (!first) line += ',';
    first = false;
    line += e.code;
    if (!e.command_key.empty()) line += "(" + e.command_key + ")";
  }
  line += "\" cpe_requests=" + std::to_string(s.cpe_requests()) + " rpcs=\"";
  first = true;
  for (const auto& r : s.rpcs()) {
    if (!first) line += ',';
    first = false;
    line += r.method + ":" + r.outcome;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cwmp::Clock::now() - s.started());
  line += "\" duration_ms=" + std::to_string(ms.count());
  line += " result=";
  line += cwmp::to_string(s.end_reason());
  if (!s.end_detail().empty()) line += " detail=\"" + s.end_detail() + "\"";
  return line;
}

}  // namespace

Worker::Worker(Shared& shared, int index) : shared_(shared), index_(index) {
  base_ = event_base_new();
  if (!base_) throw std::runtime_error("event_base_new failed");
  inbox_event_ = event_new(base_, -1, 0, &Worker::on_inbox, this);
  sweep_event_ = event_new(base_, -1, EV_PERSIST, &Worker::on_sweep, this);
  stop_event_ = event_new(
      base_, -1, 0,
      [](evutil_socket_t, short, void* arg) {
        event_base_loopbreak(static_cast<event_base*>(arg));
      },
      base_);
}

Worker::~Worker() {
  stop();
  // Sessions first (they may reference connections), then connections.
  for (auto& [cookie, slot] : sessions_) {
    if (!slot->session->ended()) slot->session->abort(cwmp::EndReason::kAborted, "shutdown");
  }
  sessions_.clear();
  connections_.clear();
  for (auto* l : listeners_) evconnlistener_free(l);
  for (auto& h : inbox_) {
    evutil_closesocket(h.fd);
    if (h.input) evbuffer_free(h.input);
  }
  event_free(inbox_event_);
  event_free(sweep_event_);
  event_free(stop_event_);
  handler_.reset();
  event_base_free(base_);
}

void Worker::listen(const std::vector<config::ListenAddress>& addrs, std::vector<uint16_t>& ports) {
  for (size_t i = 0; i < addrs.size(); ++i) {
    const auto& a = addrs[i];
    sockaddr_storage ss{};
    socklen_t len = 0;
    uint16_t port = ports[i] ? ports[i] : a.port;
    std::string spec = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
    spec += ":" + std::to_string(port);
    auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, a.host.c_str(), &in4->sin_addr) == 1) {
      in4->sin_family = AF_INET;
      in4->sin_port = htons(port);
      len = sizeof *in4;
    } else if (inet_pton(AF_INET6, a.host.c_str(), &in6->sin6_addr) == 1) {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(port);
      len = sizeof *in6;
    } else {
      throw std::runtime_error("bad listen address " + spec);
    }
    if (a.tls)
      throw std::runtime_error("cannot listen on " + spec + ": HTTPS is not supported yet");
    unsigned flags =
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC;
    if (ss.ss_family == AF_INET6) flags |= LEV_OPT_BIND_IPV6ONLY;
    evconnlistener* l = evconnlistener_new_bind(
        base_, &Worker::on_accept, this, flags, static_cast<int>(cfg().listen_backlog),
        reinterpret_cast<sockaddr*>(&ss), static_cast<int>(len));
    if (!l) {
      throw std::runtime_error("cannot listen on " + spec + ": " +
                               evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
    if (ports[i] == 0) {
      sockaddr_storage bound{};
      socklen_t blen = sizeof bound;
      getsockname(evconnlistener_get_fd(l), reinterpret_cast<sockaddr*>(&bound), &blen);
      ports[i] = bound.ss_family == AF_INET6
                     ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                     : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }
    listeners_.push_back(l);
  }
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::run() {
  if (shared_.factory) handler_ = shared_.factory(index_);
  timeval one_second{1, 0};
  event_add(sweep_event_, &one_second);
  event_base_dispatch(base_);
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  event_active(stop_event_, 0, 0);
  thread_.join();
}

void Worker::post_handover(Handover h) {
  {
    std::lock_guard lock(inbox_mu_);
    inbox_.push_back(std::move(h));
  }
  event_active(inbox_event_, 0, 0);
}

void Worker::on_inbox(evutil_socket_t, short, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  std::vector<Handover> batch;
  {
    std::lock_guard lock(w->inbox_mu_);
    batch.swap(w->inbox_);
  }
  for (auto& h : batch) {
    auto c = std::make_unique<Connection>(*w, std::move(h));
    Connection* raw = c.get();
    w->connections_.emplace(raw, std::move(c));
    raw->resume();  // may close it again: nothing may touch raw after this
  }
}

void Worker::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  auto& st = w->shared_.stats;
  st.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  if (st.connections_open.load(std::memory_order_relaxed) >= w->cfg().max_connections) {
    evutil_closesocket(fd);
    return;
  }
  auto c = std::make_unique<Connection>(*w, fd, format_peer(sa));
  Connection* raw = c.get();
  w->connections_.emplace(raw, std::move(c));
}

void Worker::on_sweep(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->sweep();
}

void Worker::sweep() {
  auto now = cwmp::Clock::now();
  std::vector<std::string> expired;
  for (auto& [cookie, slot] : sessions_)
    if (slot->session->expired(now)) expired.push_back(cookie);
  for (const auto& cookie : expired) {
    auto it = sessions_.find(cookie);
    SessionSlot* slot = it->second.get();
    slot->session->abort(cwmp::EndReason::kTimeout, "no message from the CPE in time");
    Connection* c = slot->conn;
    end_session(cookie);
    if (c) c->close_now();
  }
}

soap::Reader* Worker::acquire_reader() {
  if (readers_.empty()) {
    soap::ReaderLimits limits;
    limits.max_depth = cfg().xml_max_depth;
    return new soap::Reader(limits);
  }
  soap::Reader* r = readers_.back().release();
  readers_.pop_back();
  return r;
}

void Worker::release_reader(soap::Reader* r) {
  readers_.emplace_back(r);
}

SessionSlot* Worker::find_session(const std::string& cookie) {
  auto it = sessions_.find(cookie);
  return it == sessions_.end() ? nullptr : it->second.get();
}

SessionSlot* Worker::create_session(const std::string& device, const std::string& peer) {
  std::string cookie = new_cookie();
  if (!shared_.directory.claim_device(device, cookie)) return nullptr;
  shared_.directory.add(cookie, index_);
  auto slot = std::make_unique<SessionSlot>();
  cwmp::SessionLimits limits;
  limits.max_rpcs = cfg().rpcs_per_session;
  limits.session_timeout = cfg().session_timeout;
  limits.idle_timeout = cfg().idle_timeout;
  slot->session =
      std::make_unique<cwmp::Session>(cookie, limits, handler_.get(), cwmp::Clock::now());
  slot->peer = peer;
  slot->device_claimed = true;
  SessionSlot* raw = slot.get();
  sessions_.emplace(cookie, std::move(slot));
  shared_.stats.sessions_started.fetch_add(1, std::memory_order_relaxed);
  shared_.stats.sessions_live.fetch_add(1, std::memory_order_relaxed);
  return raw;
}

void Worker::end_session(const std::string& cookie) {
  auto it = sessions_.find(cookie);
  if (it == sessions_.end()) return;
  std::unique_ptr<SessionSlot> slot = std::move(it->second);
  sessions_.erase(it);
  cwmp::Session& s = *slot->session;
  if (!s.ended()) s.abort(cwmp::EndReason::kAborted, "ended by the server");
  auto& st = shared_.stats;
  st.sessions_live.fetch_sub(1, std::memory_order_relaxed);
  (s.end_reason() == cwmp::EndReason::kCompleted ? st.sessions_completed : st.sessions_failed)
      .fetch_add(1, std::memory_order_relaxed);
  if (log::enabled(log::Level::kInfo)) log::info(session_line(s, slot->peer));
  shared_.directory.remove(cookie, s.device_id());
  if (slot->conn) slot->conn->detach_session();
}

void Worker::connection_closed(Connection* c) {
  connections_.erase(c);
}

}  // namespace luacs::server
