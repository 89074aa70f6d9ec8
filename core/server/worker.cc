#include "core/server/worker.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <set>
#include <stdexcept>

#include "core/metrics/metrics.h"
#include "core/util/hex.h"
#include "core/util/log.h"
#include "core/util/net.h"

namespace luacs::server {
namespace {

// The base URL CPEs fetch pushed files from: [files] url, else the host the
// CPE reached the CWMP port on, with the file server's port and scheme.
std::string files_base(const Shared& sh, std::string_view host) {
  if (!sh.cfg.files_url.empty()) return sh.cfg.files_url;
  if (!sh.files_port || host.empty()) return {};
  std::string h(host);
  if (h.front() == '[') {
    auto close = h.find(']');
    if (close == std::string::npos) return {};
    h.resize(close + 1);
  } else if (auto colon = h.find(':'); colon != std::string::npos) {
    h.resize(colon);
  }
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    if (!ok) return {};  // not a host name: no URL rather than a forged one
  }
  if (h.empty()) return {};
  return (sh.cfg.files_listen.tls ? "https://" : "http://") + h + ":" +
         std::to_string(sh.files_port);
}

}  // namespace

namespace {

std::string new_cookie() {
  return util::random_hex(16);
}

// The session's end for an observer: built only while one listens.
SessionEnd session_end(const cwmp::Session& s, const device::SessionResult& r,
                       std::chrono::nanoseconds took, const store::Store* store) {
  SessionEnd e;
  e.device_id = r.device_id;
  e.outcome = cwmp::to_string(s.end_reason());
  e.detail = s.end_detail();
  e.duration = std::chrono::duration_cast<std::chrono::milliseconds>(took);
  std::set<std::string> tags;
  if (store)
    if (auto dev = store->cached(r.device_id)) tags = dev->tags;
  for (const auto& t : r.tags_removed) tags.erase(t);
  tags.insert(r.tags_added.begin(), r.tags_added.end());
  e.tags.assign(tags.begin(), tags.end());
  e.faults = r.faults;
  e.task_results = r.task_results;
  return e;
}

}  // namespace

Worker::Worker(Shared& shared, int index)
    : shared_(shared), index_(index), base_(loop::new_base()) {
  // Two priorities: sessions in flight (and the store's answers they wait
  // for) before new connections. Saturated, a worker finishes what it
  // started; new arrivals wait, and past [limits] max_queue_delay get 503.
  event_base_priority_init(base(), 2);
  mailbox_ = std::make_unique<loop::Mailbox>(base(), kPriorityInFlight);
  sweep_event_.reset(event_new(base(), -1, EV_PERSIST, &Worker::on_sweep, this));
  pulse_event_.reset(event_new(base(), -1, EV_PERSIST, &Worker::on_pulse, this));
  event_priority_set(pulse_event_.get(), kPriorityNew);
  stop_event_.reset(event_new(
      base(), -1, 0,
      [](evutil_socket_t, short, void* arg) {
        event_base_loopbreak(static_cast<event_base*>(arg));
      },
      base()));
}

Worker::~Worker() {
  stop();
  // Sessions first (they may reference connections), then connections. Each
  // leaves its log line and its result for the store: a clean stop loses
  // nothing.
  std::vector<std::string> cookies;
  for (const auto& [cookie, slot] : sessions_) cookies.push_back(cookie);
  for (const auto& cookie : cookies) end_session(cookie);
  connections_.clear();
  mailbox_.reset();  // handovers still queued close their sockets
  engine_.reset();
}

void Worker::listen(const std::vector<config::ListenAddress>& addrs, std::vector<uint16_t>& ports) {
  for (size_t i = 0; i < addrs.size(); ++i) {
    const auto& a = addrs[i];
    const util::ListenAddr addr = util::listen_addr(a.host, ports[i] ? ports[i] : a.port);
    if (a.tls && !shared_.tls)
      throw std::runtime_error("cannot listen on https://" + addr.spec +
                               ": no TLS certificates (tls_cert, tls_key)");
    loop::ListenOptions opts;
    opts.backlog = static_cast<int>(cfg().listen_backlog);
    opts.reuse_port = true;  // Server::start made sure no other process has it
    opts.no_delay = true;    // replies are whole; each connection inherits it
    listeners_.push_back(loop::listen(
        base(), addr, a.tls ? &Worker::on_accept_tls : &Worker::on_accept, this, opts));
    if (ports[i] == 0) ports[i] = util::bound_port(evconnlistener_get_fd(listeners_.back().get()));
  }
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::run() {
  if (shared_.policies) {
    lua::FileServices files = shared_.files;
    files.base_url = [&sh = shared_](std::string_view host) { return files_base(sh, host); };
    engine_ = std::make_unique<lua::Engine>(*shared_.policies, std::move(files), index_);
  }
  services_.engine = engine_.get();
  if (store::Store* st = shared_.store)
    services_.transfer_sent = [st](device::Transfer t) { st->record_transfer_sent(std::move(t)); };
  services_.connection_request_credentials_set = shared_.connection_request_credentials;
  const timeval one_second{1, 0};
  event_add(sweep_event_.get(), &one_second);
  if (cfg().max_queue_delay.count() > 0) {
    last_pulse_ = std::chrono::steady_clock::now();
    const timeval pulse{0, std::chrono::microseconds(kPulse).count()};
    event_add(pulse_event_.get(), &pulse);
  }
  event_base_dispatch(base());
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  event_active(stop_event_.get(), 0, 0);
  thread_.join();
}

void Worker::post_handover(Handover h) {
  // std::function wants a copyable callable: the handover travels in a
  // shared_ptr (and closes its socket if the worker is gone first).
  post([this, h = std::make_shared<Handover>(std::move(h))] {
    auto c = std::make_unique<Connection>(*this, std::move(*h));
    Connection* raw = c.get();
    connections_.emplace(raw->id(), std::move(c));
    raw->resume();  // may close it again: nothing may touch raw after this
  });
}

void Worker::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int, void* arg) {
  static_cast<Worker*>(arg)->accept(fd, sa, nullptr);
}

void Worker::on_accept_tls(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  // The context of this moment: a reload changes what the next handshake
  // gets; this connection keeps its own (the SSL holds a reference).
  SSL* ssl = SSL_new(w->shared_.tls->current()->get());
  if (!ssl) {
    w->shared_.stats.tls_handshakes_failed.fetch_add(1, std::memory_order_relaxed);
    log::warn("tls: SSL_new failed: " + tls::openssl_errors());
    evutil_closesocket(fd);
    return;
  }
  w->accept(fd, sa, ssl);
}

void Worker::accept(evutil_socket_t fd, sockaddr* sa, SSL* ssl) {
  auto& st = shared_.stats;
  st.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  if (st.connections_open.load(std::memory_order_relaxed) >= cfg().max_connections) {
    if (ssl) SSL_free(ssl);
    evutil_closesocket(fd);
    return;
  }
  auto c = std::make_unique<Connection>(*this, fd, util::format_peer(sa), ssl);
  connections_.emplace(c->id(), std::move(c));
}

void Worker::on_pulse(evutil_socket_t, short, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  const auto now = std::chrono::steady_clock::now();
  const auto late = now - w->last_pulse_ - kPulse;
  w->last_pulse_ = now;
  // Shed for a while after a late pulse (hysteresis, as CoDel keeps
  // dropping for an interval): one on-time pulse between two bursts does
  // not mean the worker keeps up again.
  const auto delay = w->cfg().max_queue_delay;
  if (late > delay)
    w->saturated_until_ = now + std::max<std::chrono::nanoseconds>(2 * delay, 10 * kPulse);
}

void Worker::on_sweep(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->sweep();
}

void Worker::sweep() {
  if (std::exchange(trim_wanted_, false)) {
    // Big bodies were parsed and freed: hand the pages back to the system,
    // or RSS stays where a burst of them left it (glibc keeps freed memory
    // of a thread's arena until told).
    malloc_trim(0);
  }
  auto now = cwmp::Clock::now();
  std::vector<std::string> expired;
  for (auto& [cookie, slot] : sessions_)
    if (slot->driver->expired(now)) expired.push_back(cookie);
  for (const auto& cookie : expired) {
    auto it = sessions_.find(cookie);
    SessionSlot* slot = it->second.get();
    slot->driver->abort(cwmp::EndReason::kTimeout, "no message from the CPE in time");
    Connection* c = slot->conn;
    end_session(cookie);
    if (c) c->close_now();
  }
}

soap::Reader* Worker::acquire_reader() {
  if (readers_.empty()) {
    soap::ReaderLimits limits;
    limits.max_depth = cfg().xml_max_depth;
    limits.max_token_bytes = cfg().xml_max_token;
    return new soap::Reader(limits);
  }
  soap::Reader* r = readers_.back().release();
  readers_.pop_back();
  return r;
}

void Worker::release_reader(soap::Reader* r) {
  // A free reader holds nothing of its last document (the body of a request
  // whose client went away mid-way may be megabytes), and the free list
  // stays as long as a busy moment needed, up to a bound.
  constexpr size_t kMaxFree = 64;
  if (readers_.size() >= kMaxFree) {
    delete r;
    return;
  }
  r->drop_document();
  readers_.emplace_back(r);
}

bool InputBuffer::reserve(size_t n) {
  if (size - end >= n) return true;
  const size_t held = end - begin;
  if (held + n > kMax) return false;
  if (held + n <= size) {
    std::memmove(bytes.get(), bytes.get() + begin, held);
  } else {
    size_t grown = size;
    while (grown < held + n) grown *= 2;
    grown = std::min(grown, kMax);
    auto bigger = std::make_unique<char[]>(grown);
    std::memcpy(bigger.get(), bytes.get() + begin, held);
    bytes = std::move(bigger);
    size = grown;
  }
  begin = 0;
  end = held;
  return true;
}

std::unique_ptr<InputBuffer> Worker::acquire_input() {
  if (inputs_.empty()) {
    auto b = std::make_unique<InputBuffer>();
    b->bytes = std::make_unique_for_overwrite<char[]>(InputBuffer::kSize);
    b->size = InputBuffer::kSize;
    return b;
  }
  auto b = std::move(inputs_.back());
  inputs_.pop_back();
  return b;
}

void Worker::release_input(std::unique_ptr<InputBuffer> b) {
  // As many as a busy moment had in use, up to a bound; a grown one goes.
  constexpr size_t kMaxFree = 64;
  if (b->size != InputBuffer::kSize || inputs_.size() >= kMaxFree) return;
  b->begin = b->end = 0;
  inputs_.push_back(std::move(b));
}

std::unique_ptr<http::RequestParser> Worker::acquire_parser() {
  if (parsers_.empty()) {
    http::Limits limits;
    limits.max_header_bytes = cfg().max_header_bytes;
    limits.max_body_bytes = cfg().max_body_bytes;
    return std::make_unique<http::RequestParser>(limits);
  }
  auto p = std::move(parsers_.back());
  parsers_.pop_back();
  return p;
}

void Worker::release_parser(std::unique_ptr<http::RequestParser> p) {
  constexpr size_t kMaxFree = 64;
  if (parsers_.size() >= kMaxFree) return;
  p->reset();
  parsers_.push_back(std::move(p));
}

SessionSlot* Worker::find_session(const std::string& cookie) {
  auto it = sessions_.find(cookie);
  return it == sessions_.end() ? nullptr : it->second.get();
}

SessionSlot* Worker::create_session(const std::string& device, session::Origin origin,
                                    std::optional<Refusal>* why) {
  std::string cookie = new_cookie();
  if (!shared_.directory.claim_device(device, cookie) &&
      !(end_abandoned_session(device) && shared_.directory.claim_device(device, cookie)))
    return nullptr;
  const unsigned per_address = cfg().sessions_per_address;
  if (!shared_.directory.add(cookie, index_, per_address ? util::address_of(origin.peer) : "",
                             per_address)) {
    shared_.directory.remove(cookie, device);  // the claim
    *why = Refusal::kAddressLimit;
    return nullptr;
  }
  auto slot = std::make_unique<SessionSlot>();
  cwmp::SessionLimits limits;
  limits.max_rpcs = cfg().rpcs_per_session;
  limits.max_cpe_requests = cfg().cpe_requests_per_session;
  limits.session_timeout = cfg().session_timeout;
  limits.idle_timeout = cfg().idle_timeout;
  slot->driver = std::make_unique<session::Driver>(cookie, limits, services_, std::move(origin),
                                                   cwmp::Clock::now());
  SessionSlot* raw = slot.get();
  sessions_.emplace(cookie, std::move(slot));
  shared_.stats.sessions_started.fetch_add(1, std::memory_order_relaxed);
  shared_.stats.sessions_live.fetch_add(1, std::memory_order_relaxed);
  return raw;
}

void Worker::unhold(SessionSlot& slot) {
  if (!slot.abandoned) return;
  abandoned_bytes_ -= slot.abandoned;
  shared_.stats.abandoned_bytes.fetch_sub(static_cast<int64_t>(slot.abandoned),
                                          std::memory_order_relaxed);
  slot.abandoned = 0;
}

void Worker::set_connection(SessionSlot& slot, Connection* c) {
  slot.conn = c;
  unhold(slot);
  if (c || slot.bytes == 0) return;
  slot.abandoned = slot.bytes;
  abandoned_bytes_ += slot.bytes;
  shared_.stats.abandoned_bytes.fetch_add(static_cast<int64_t>(slot.bytes),
                                          std::memory_order_relaxed);
  if (abandoned_bytes_ > cfg().max_abandoned_bytes) end_abandoned_over_cap();
}

// Rare (a flood of big Informs whose senders vanish): a scan is fine.
void Worker::end_abandoned_over_cap() {
  std::vector<std::pair<uint64_t, std::string>> held;
  for (const auto& [cookie, slot] : sessions_)
    if (slot->abandoned) held.emplace_back(slot->abandoned, cookie);
  std::sort(held.begin(), held.end(), std::greater<>());
  // Down to half the cap, so that the next one does not scan again at once.
  for (const auto& [bytes, cookie] : held) {
    if (abandoned_bytes_ <= cfg().max_abandoned_bytes / 2) break;
    SessionSlot* slot = find_session(cookie);
    slot->driver->abort(cwmp::EndReason::kAborted,
                        "the CPE went away; its session held too much ([limits] "
                        "max_abandoned_bytes)");
    shared_.stats.abandoned_ended.fetch_add(1, std::memory_order_relaxed);
    end_session(cookie);
  }
}

bool Worker::end_abandoned_session(const std::string& device) {
  const std::string cookie = shared_.directory.device_session(device);
  if (cookie.empty()) return true;  // ended meanwhile
  SessionSlot* slot = find_session(cookie);
  if (!slot) return false;
  Connection* c = slot->conn;
  if (c && !c->peer_gone()) return false;
  slot->driver->abort(cwmp::EndReason::kAborted,
                      "the CPE went away; a new Inform began another session");
  end_session(cookie);
  if (c) c->close_now();
  return true;
}

bool Worker::end_session(const std::string& cookie, std::function<void(bool ok)> committed) {
  auto it = sessions_.find(cookie);
  if (it == sessions_.end()) return false;
  std::unique_ptr<SessionSlot> slot = std::move(it->second);
  sessions_.erase(it);
  if (slot->bytes > kBigBody) trim_wanted_ = true;
  unhold(*slot);
  session::Driver& d = *slot->driver;
  if (!d.ended()) d.abort(cwmp::EndReason::kAborted, "ended by the server");
  auto& st = shared_.stats;
  st.sessions_live.fetch_sub(1, std::memory_order_relaxed);
  (d.session().end_reason() == cwmp::EndReason::kCompleted ? st.sessions_completed
                                                           : st.sessions_failed)
      .fetch_add(1, std::memory_order_relaxed);
  shared_.directory.remove(cookie, d.device_id());
  if (slot->conn) slot->conn->detach_session();
  const cwmp::Session& s = d.session();
  const auto took = cwmp::Clock::now() - s.started();
  metrics::session_ended(cwmp::to_string(s.end_reason()), took);
  for (const auto& rpc : s.rpcs()) metrics::rpc_done(rpc.method, rpc.outcome);
  session::Outcome out = d.finish(log::enabled(log::Level::kInfo));
  if (!out.log_line.empty()) log::info(out.log_line);
  if (shared_.observing && shared_.observing->load(std::memory_order_relaxed) &&
      !out.result.device_id.empty())
    shared_.observer(session_end(s, out.result, took, shared_.store));
  if (!shared_.store || out.result.device_id.empty()) return false;
  if (out.durable && committed) {
    shared_.store->write_session(std::move(out.result), executor(), std::move(committed));
    return true;
  }
  shared_.store->write_session(std::move(out.result));
  return false;
}

Connection* Worker::find_connection(uint64_t id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second.get();
}

void Worker::connection_closed(Connection* c) {
  connections_.erase(c->id());
}

}  // namespace luacs::server
