// One CPE connection: HTTP/1.1 framing on the socket (or, under TLS, on
// libevent's OpenSSL bufferevent), the body streamed
// into a SOAP reader as it arrives, the parsed message handed to the session
// engine and its reply written back.
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <cerrno>

#include "core/cwmp/device_id.h"
#include "core/http/cookie.h"
#include "core/loop/tls_accept.h"
#include "core/metrics/metrics.h"
#include "core/server/worker.h"
#include "core/util/log.h"
#include "core/util/net.h"

namespace luacs::server {
namespace {

constexpr std::string_view kXml = "text/xml; charset=\"utf-8\"";
constexpr std::string_view kText = "text/plain; charset=utf-8";

}  // namespace

Connection::Connection(Worker& w, evutil_socket_t fd, std::string peer, SSL* ssl)
    : w_(w), id_(w.next_connection_id()), peer_(std::move(peer)) {
  peer_addr_ = util::address_of(peer_);
  setup(fd, ssl, false);
  make_parser();
  if (ssl) {
    handshaking_ = true;
    arm_timer(w_.cfg().tls_handshake_timeout);
  } else {
    arm_timer(w_.cfg().header_timeout);
  }
}

// The socket has TCP_NODELAY from its listener (Worker::listen).
void Connection::setup(evutil_socket_t fd, SSL* ssl, bool handshake_done) {
  if (ssl) {
    tls_ = true;
    ssl_ = ssl;
    tls_fd_ = fd;
    bev_.reset(bufferevent_openssl_socket_new(
        w_.base(), fd, ssl, handshake_done ? BUFFEREVENT_SSL_OPEN : BUFFEREVENT_SSL_ACCEPTING, 0));
    // A CPE that closes without close_notify is an EOF like any other.
    bufferevent_openssl_set_allow_dirty_shutdown(bev_.get(), 1);
    bufferevent_setcb(bev_.get(), &Connection::on_read_cb, &Connection::on_write_cb,
                      &Connection::on_event_cb, this);
  } else {
    // Plain TCP is read and written on the socket itself: a bufferevent
    // would cost an FIONREAD per read, its buffers and callbacks per
    // connection. Writing is armed only while a reply waits for room.
    fd_ = fd;
    event_assign(&rd_, w_.base(), fd, EV_READ | EV_PERSIST, &Connection::on_readable_cb, this);
    event_assign(&wr_, w_.base(), fd, EV_WRITE | EV_PERSIST, &Connection::on_writable_cb, this);
  }
  timer_.reset(evtimer_new(w_.base(), &Connection::on_timer_cb, this));
  resume_.reset(event_new(w_.base(), -1, 0, &Connection::on_resume_cb, this));
  set_priority(kPriorityNew);
  if (tls_)
    bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  else
    enable_reading(true);
  w_.shared().stats.connections_open.fetch_add(1, std::memory_order_relaxed);
}

void Connection::set_priority(int priority) {
  if (!tls_) {
    event_priority_set(&rd_, priority);
    event_priority_set(&wr_, priority);
    event_priority_set(resume_.get(), priority);
    return;
  }
  // bufferevent_priority_set takes socket bufferevents only; an OpenSSL one
  // runs on the same two events.
  event_priority_set(&bev_->ev_read, priority);
  event_priority_set(&bev_->ev_write, priority);
  event_priority_set(resume_.get(), priority);
}

Connection::~Connection() {
  if (reader_) w_.release_reader(reader_);
  if (parser_) w_.release_parser(std::move(parser_));
  if (body_bytes_ > Worker::kBigBody) w_.freed_big();
  if (!cookie_.empty()) {
    SessionSlot* slot = w_.find_session(cookie_);
    if (slot && slot->conn == this) w_.set_connection(*slot, nullptr);
  }
  if (!tls_) {
    event_del(&rd_);
    event_del(&wr_);
    if (fd_ >= 0) evutil_closesocket(fd_);
    if (in_) w_.release_input(std::move(in_));
  }
  bev_.reset();
  if (ssl_) {
    // close_notify when the session is sound (one try: the socket does not
    // wait for it); the thread's error queue is left clean for the others.
    if (!handshaking_ && !tls_failed_) SSL_shutdown(ssl_);
    ERR_clear_error();
    SSL_free(ssl_);
  }
  if (tls_fd_ >= 0) evutil_closesocket(tls_fd_);
  w_.shared().stats.connections_open.fetch_sub(1, std::memory_order_relaxed);
}

void Connection::on_handshake() {
  handshaking_ = false;
  auto& st = w_.shared().stats;
  st.tls_handshakes_ok.fetch_add(1, std::memory_order_relaxed);
  if (SSL_session_reused(ssl_)) st.tls_resumed.fetch_add(1, std::memory_order_relaxed);
  arm_timer(w_.cfg().header_timeout);  // what a plain connection gets at accept
}

// Counted, logged at debug (a scanner would flood the log), and closed.
void Connection::on_handshake_failed() {
  handshaking_ = false;
  tls_failed_ = true;
  w_.shared().stats.tls_handshakes_failed.fetch_add(1, std::memory_order_relaxed);
  // Plain HTTP to the TLS port is answered with a 400 saying so.
  const std::string why = loop::tls_handshake_failed(bev_.get());
  if (log::enabled(log::Level::kDebug))
    log::debug("tls handshake failed peer=" + peer_ + " reason=" + log::quoted(why));
  close_now();
}

void Connection::close_now() {
  w_.connection_closed(this);
}

void Connection::resume() {
  arm_timer(w_.cfg().body_timeout);
  if (!route()) return;
  start_body();
  process();
}

void Connection::on_read_cb(bufferevent*, void* arg) {
  static_cast<Connection*>(arg)->process();
}

// Runs when the output has drained (the low-water mark is 0).
void Connection::on_write_cb(bufferevent* bev, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  if (evbuffer_get_length(bufferevent_get_output(bev)) != 0) return;
  c->output_drained();
}

void Connection::on_resume_cb(evutil_socket_t, short, void* arg) {
  static_cast<Connection*>(arg)->process();
}

void Connection::on_event_cb(bufferevent*, short what, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    c->on_handshake();
    return;
  }
  if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) return;
  if (c->handshaking_) {
    c->on_handshake_failed();
    return;
  }
  c->close_now();
}

void Connection::on_timer_cb(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  if (c->handshaking_) {
    // Stalled in the handshake ([cwmp] tls_handshake_timeout).
    c->w_.shared().stats.tls_handshake_timeouts.fetch_add(1, std::memory_order_relaxed);
    c->close_now();
    return;
  }
  if (c->in_request_ && !c->closing_) {
    // Slow or stalled request: say so, then drop the connection.
    c->send_error(408, "Request timeout", true);
    return;
  }
  c->close_now();
}

void Connection::arm_timer(std::chrono::milliseconds t) {
  const timeval tv = loop::to_timeval(t);
  evtimer_add(timer_.get(), &tv);
}

// Feeds what has arrived to the HTTP parser. Everything after a call that may
// close or hand over the connection returns at once: `this` may be gone.
void Connection::process() {
  slice_bytes_ = 0;
  while (!closing_ && !waiting_) {
    size_t avail = input_length();
    if (!in_request_) {
      if (avail == 0) return;
      // A client that sends and does not read: its replies stay queued,
      // and the next request waits until they have gone.
      if (output_length() > w_.cfg().reply_high_water) {
        if (!reading_paused_) {
          reading_paused_ = true;
          w_.shared().stats.reads_paused.fetch_add(1, std::memory_order_relaxed);
          enable_reading(false);
        }
        return;
      }
      in_request_ = true;
      request_start_ = std::chrono::steady_clock::now();
      if (!parser_) make_parser();
      arm_timer(w_.cfg().header_timeout);
    }
    const std::string_view chunk = avail ? input_chunk() : std::string_view();
    const char* data = chunk.empty() ? "" : chunk.data();
    size_t len = chunk.size();
    // A compressed body in small pieces: deflate inflates up to ~1000:1,
    // and one piece's output is parsed before the parser returns.
    if (parser_->request().coding != http::ContentCoding::kIdentity)
      len = std::min<size_t>(len, kSliceBytes / 1024);
    size_t consumed = 0;
    auto event = parser_->feed(data, len, &consumed, this);
    if (consumed) drain_input(consumed);
    switch (event) {
      case http::RequestParser::Event::kNeedMore:
        if (consumed == 0 || input_length() == 0) return;
        if (slice_bytes_ >= kSliceBytes) {
          // Enough for one turn: the other connections of this worker go
          // first, then the rest of this request.
          event_active(resume_.get(), EV_TIMEOUT, 1);
          return;
        }
        break;
      case http::RequestParser::Event::kHeadersComplete:
        if (!on_head()) return;
        break;
      case http::RequestParser::Event::kMessageComplete:
        on_message();
        break;
      case http::RequestParser::Event::kError: {
        w_.shared().stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
        const auto& err = parser_->error();
        std::string reason = !reader_failed_         ? err.reason
                             : reader_status_ == 400 ? cwmp::malformed_reply(reader_error_).body
                                                     : reader_error_;
        int status = reader_failed_ ? reader_status_ : err.status;
        if (reader_failed_ && !cookie_.empty()) {
          // (A stranger's bad request does not end the session whose cookie it shows.)
          SessionSlot* slot = w_.find_session(cookie_);
          if (slot && may_continue(*slot)) {
            slot->driver->handle_malformed(reader_error_, cwmp::Clock::now());
            w_.end_session(cookie_);
          }
        }
        log::warn_from(peer_addr_, "http " + std::to_string(status) + " peer=" + peer_ +
                                       " reason=" + log::quoted(reason));
        send_error(status, reason, true);
        return;
      }
    }
  }
}

bool Connection::on_head() {
  auto& st = w_.shared().stats;
  st.requests.fetch_add(1, std::memory_order_relaxed);
  const http::Request& req = parser_->request();
  arm_timer(w_.cfg().body_timeout);

  if (req.method != "POST") {
    st.bad_requests.fetch_add(1, std::memory_order_relaxed);
    http::Header allow[] = {{"Allow", "POST"}};
    send(405, kText, allow, "CWMP takes POST only\n", true);
    return false;
  }

  if (ssl_ && !certificate_passes()) return false;
  auto& authn = w_.shared().auth;
  const tls::PeerCertificate* cert = ssl_ ? client_certificate() : nullptr;
  if (authn.enabled() && !auth_.authenticated && w_.cfg().certificate_alone && cert &&
      cert->present) {
    // Verified above; the Inform checks that it names the device.
    auth_.authenticated = true;
    auth_.step("certificate");
  }
  if (authn.enabled() && !auth_.authenticated) {
    auto res = authn.check(req.method, req.target, req.header("Authorization"), tls_,
                           std::chrono::system_clock::now());
    // Only a wrong password (or a malformed header) counts as a failure and
    // is logged; a CPE that tries Basic first or reuses an old nonce is
    // simply challenged again (docs/interop.md).
    switch (res.verdict) {
      case auth::Verdict::kOk:
        auth_.authenticated = true;
        auth_.device_id = res.device_id;
        auth_.step(auth::to_string(res.method));
        break;
      case auth::Verdict::kMissing:
        auth_.step("challenge");
        after_body_status_ = 401;
        break;
      case auth::Verdict::kOtherScheme:
        auth_.step(res.method == auth::Method::kBasic ? "basic-off" : "other-scheme");
        after_body_status_ = 401;
        break;
      case auth::Verdict::kStale:
        auth_.step("stale");
        after_body_status_ = 401;
        after_body_stale_ = true;
        break;
      case auth::Verdict::kFailed:
        auth_.step("failed");
        st.auth_failures.fetch_add(1, std::memory_order_relaxed);
        log::warn_from(peer_addr_, "auth failed peer=" + peer_ +
                                       " user=" + log::quoted(res.username) +
                                       " reason=" + log::quoted(res.reason));
        if (++auth_.failures >= 2) {
          send_challenge(false, true);
          return false;
        }
        after_body_status_ = 401;
        break;
    }
  }

  if (!after_body_status_ && !route()) return false;
  start_body();
  return true;
}

bool Connection::route() {
  const http::Request& req = parser_->request();
  std::string_view cookie = http::find_cookie(req.header("Cookie"), w_.cfg().cookie_name);
  if (!cookie.empty() && cookie != cookie_) {
    int owner = w_.shared().directory.owner(cookie);
    if (owner >= 0 && owner != w_.index()) {
      hand_over(owner, std::string(cookie));
      return false;
    }
    if (owner == w_.index()) cookie_ = std::string(cookie);
  }

  // A request that starts a new session: refuse it early when we are full
  // or cannot remember what it does.
  bool has_session = !cookie_.empty() && w_.find_session(cookie_);
  if (!has_session) {
    if (auto refusal = admit_new_session(w_)) {
      send_busy(*refusal);
      return false;
    }
  }
  return true;
}

void Connection::send_busy(Refusal why) {
  counter(w_.shared().stats, why).fetch_add(1, std::memory_order_relaxed);
  metrics::refused(metric_name(why));
  const std::string retry = std::to_string(w_.cfg().retry_after_s);
  const http::Header h[] = {{"Retry-After", retry}};
  std::string body(wording(why));
  body += '\n';
  send(503, kText, h, body, true);
}

void Connection::start_body() {
  const http::Request& req = parser_->request();
  if (req.expect_continue && !after_body_status_) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    write_out(kContinue, false);
  }
  reader_failed_ = false;
  reader_status_ = 400;
  reader_error_.clear();
  body_bytes_ = 0;
  const SessionSlot* slot = cookie_.empty() ? nullptr : w_.find_session(cookie_);
  session_bytes_before_ = slot ? slot->bytes : 0;
  if (!after_body_status_) {
    reader_ = w_.acquire_reader();
    reader_->reset(req.charset);
  }
}

bool Connection::on_body(const char* data, size_t len) {
  if (!reader_) return true;  // discarding (401 pending)
  body_bytes_ += len;
  slice_bytes_ += len;
  if (session_bytes_before_ + body_bytes_ > w_.cfg().max_session_bytes) {
    w_.shared().stats.sessions_over_bytes.fetch_add(1, std::memory_order_relaxed);
    reader_failed_ = true;
    reader_status_ = 413;
    reader_error_ = "Session too large: its requests passed [limits] max_session_bytes (" +
                    std::to_string(w_.cfg().max_session_bytes) + " bytes)";
    return false;
  }
  if (reader_->feed(data, len)) return true;
  reader_failed_ = true;
  reader_error_ = reader_->error();
  return false;
}

void Connection::on_message() {
  const http::Request& req = parser_->request();
  bool keep_alive = req.keep_alive;
  auto& st = w_.shared().stats;

  if (after_body_status_) {
    bool stale = after_body_stale_;
    after_body_status_ = 0;
    after_body_stale_ = false;
    send_challenge(stale, !keep_alive);
    finish_request(!keep_alive);
    return;
  }

  auto env = std::make_shared<soap::Envelope>();
  bool ok = reader_->finish(*env);
  std::string error = ok ? std::string() : reader_->error();
  w_.release_reader(reader_);
  reader_ = nullptr;
  if (body_bytes_ > Worker::kBigBody) w_.freed_big();

  auto now = cwmp::Clock::now();
  SessionSlot* slot = cookie_.empty() ? nullptr : w_.find_session(cookie_);
  if (slot && ok && slot->conn != this && std::holds_alternative<soap::Inform>(env->body)) {
    // An Inform always begins a new session (TR-069 3.7.1.1), also on a new
    // connection that still presents an earlier session's cookie: that
    // session is left to the device claim below, which ends it if its CPE
    // has gone.
    slot = nullptr;
    cookie_.clear();
  }
  if (slot && !may_continue(*slot)) {
    refuse_foreign(*slot);
    return;
  }
  if (slot) {
    slot->bytes += body_bytes_;
    if (ok) {
      if (ssl_ && !same_certificate(*slot)) {
        finish_request(true);
        return;
      }
      dispatch(cookie_, *env, false);
      return;
    }
    st.bad_requests.fetch_add(1, std::memory_order_relaxed);
    log::warn_from(peer_addr_, "malformed SOAP peer=" + peer_ + " reason=" + log::quoted(error));
    complete(cookie_, slot->driver->handle_malformed(error, now), false, true);
    return;
  }

  cwmp::Reply reply;
  if (!ok) {
    st.bad_requests.fetch_add(1, std::memory_order_relaxed);
    log::warn_from(peer_addr_, "malformed SOAP peer=" + peer_ + " reason=" + log::quoted(error));
    send_reply(cwmp::malformed_reply(error), false, true);
    finish_request(true);
    return;
  }
  const auto* inform = std::get_if<soap::Inform>(&env->body);
  if (!inform) {
    st.bad_requests.fetch_add(1, std::memory_order_relaxed);
    send_reply(cwmp::bad_state_reply(std::string("no session for this ") +
                                     (cookie_.empty() ? "connection" : "cookie") +
                                     "; a session starts with an Inform"),
               false, true);
    finish_request(true);
    return;
  }
  if (!cwmp::names_device(inform->device_id)) {
    // Let the engine word the refusal; nothing is registered.
    cwmp::Session refused("", {}, nullptr, now);
    reply = refused.handle(*env, now);
    log::warn_from(peer_addr_,
                   "refused Inform without OUI or SerialNumber peer=" + peer_ +
                       " manufacturer=" + log::quoted(inform->device_id.manufacturer) +
                       " product_class=" + log::quoted(inform->device_id.product_class));
    send_reply(reply, false, true);
    finish_request(true);
    return;
  }

  std::string device = cwmp::device_id(inform->device_id);
  if (!auth_.device_id.empty() && auth_.device_id != device) {
    st.auth_failures.fetch_add(1, std::memory_order_relaxed);
    log::warn_from(peer_addr_, "auth failed peer=" + peer_ + " device=" + device +
                                   " reason=\"credentials belong to another device\"");
    send_challenge(false, true);
    finish_request(true);
    return;
  }
  admit(std::move(env), device);
}

// Registers the Inform's session and dispatches it once the stored device
// is at hand. A device already in a session whose CPE has gone (its
// connection closed) has that session ended first; if it lives on another
// worker, that worker is asked and this is called again with `asked` set.
void Connection::open_session(std::shared_ptr<soap::Envelope> env, const std::string& device,
                              bool asked) {
  session::Origin origin;
  origin.peer = peer_;
  origin.host = std::string(parser_->request().header("Host"));
  origin.auth = w_.shared().auth.enabled() ? auth_.take_path() : "off";
  if (ssl_) origin.client_certificate = admitted_certificate();
  std::optional<Refusal> refused;
  SessionSlot* slot = w_.create_session(device, std::move(origin), &refused);
  if (!slot && refused) {
    log::warn_from(peer_addr_, "busy device=" + device + " peer=" + peer_ +
                                   " reason=\"sessions_per_address reached\"");
    send_busy(*refused);
    finish_request(true);
    return;
  }
  if (!slot) {
    const int holder = w_.shared().directory.device_owner(device);
    if (!asked && holder >= 0 && holder != w_.index()) {
      waiting_ = true;
      Worker* owner = w_.shared().workers[static_cast<size_t>(holder)];
      owner->post([owner, back = w_.executor(), w = &w_, cid = id_, env, device] {
        owner->end_abandoned_session(device);
        back([w, cid, env, device] {
          Connection* c = w->find_connection(cid);
          if (!c) return;
          c->waiting_ = false;
          c->open_session(env, device, true);
          c->unblock();
        });
      });
      return;
    }
    log::info("busy device=" + device + " peer=" + peer_ + " reason=\"already in a session\"");
    send_busy(Refusal::kDeviceBusy);
    finish_request(true);
    return;
  }
  cookie_ = slot->driver->id();
  slot->bytes = body_bytes_;
  w_.set_connection(*slot, this);
  if (const auto& woken = w_.shared().connection_request_observer) {
    const auto& events = std::get<soap::Inform>(env->body).events;
    for (const auto& e : events)
      if (e.code == "6 CONNECTION REQUEST") {
        woken(device);
        break;
      }
  }

  store::Store* store = w_.shared().store;
  if (!store) {
    dispatch(cookie_, *env, true);
    return;
  }
  if (auto cached = store->cached(device)) {
    slot->driver->set_device(std::move(cached));
    dispatch(cookie_, *env, true);
    return;
  }
  // Not in memory: this session (not the worker) waits for PostgreSQL.
  waiting_ = true;
  store->load_device(device, w_.executor(),
                     [w = &w_, cid = id_, cookie = cookie_, env](
                         std::shared_ptr<const store::Device> dev, bool ok) {
                       static const auto kUnknown = std::make_shared<const store::Device>();
                       SessionSlot* sl = w->find_session(cookie);
                       Connection* c = w->find_connection(cid);
                       if (!ok || !sl || !c) {
                         if (sl) {
                           sl->driver->abort(cwmp::EndReason::kAborted,
                                             "device could not be loaded");
                           w->end_session(cookie);
                         }
                         if (c) {
                           c->waiting_ = false;
                           c->send_busy(Refusal::kStoreDown);
                           c->finish_request(true);
                         }
                         return;
                       }
                       sl->driver->set_device(dev ? std::move(dev) : kUnknown);
                       c->waiting_ = false;
                       c->dispatch(cookie, *env, true);
                       c->unblock();
                     });
}

bool Connection::peer_gone() const {
  if (closing_) return true;
  // The socket at EOF (or reset) whose event this loop has not run yet.
  char b;
  const ssize_t n = recv(socket_fd(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void Connection::dispatch(const std::string& cookie, soap::Envelope& env, bool new_session) {
  SessionSlot* slot = w_.find_session(cookie);
  if (slot->conn && slot->conn != this) slot->conn->detach_session();
  w_.set_connection(*slot, this);
  set_priority(kPriorityInFlight);
  session::Turn turn = slot->driver->handle(std::move(env), cwmp::Clock::now());
  cwmp::Reply& reply = turn.reply;
  bool close = reply.close || !parser_->request().keep_alive;

  // What the driver says must be committed before the CPE hears the reply.
  store::Store* store = w_.shared().store;
  if (store && turn.commit_first) {
    waiting_ = true;
    auto pending = std::make_shared<cwmp::Reply>(std::move(reply));
    store->write_transfer(std::move(*turn.commit_first), w_.executor(),
                          [w = &w_, cid = id_, cookie, pending, new_session, close](bool ok) {
                            Connection* c = w->find_connection(cid);
                            if (!ok) {
                              // Not stored, so not acknowledged: the CPE retries the session.
                              if (SessionSlot* sl = w->find_session(cookie)) {
                                sl->driver->abort(cwmp::EndReason::kAborted,
                                                  "transfer result not stored");
                                w->end_session(cookie);
                              }
                              if (c) {
                                // Said in words: 503 + Retry-After, as to a new
                                // session while PostgreSQL is away.
                                c->waiting_ = false;
                                c->send_busy(Refusal::kStoreDown);
                                c->finish_request(true);
                              }
                              return;
                            }
                            if (!c)
                              return;  // the CPE will send it again; storing it twice is harmless
                            c->waiting_ = false;
                            c->complete(cookie, std::move(*pending), new_session, close);
                            c->unblock();
                          });
    return;
  }
  complete(cookie, std::move(reply), new_session, close);
}

void Connection::complete(const std::string& cookie, cwmp::Reply reply, bool new_session,
                          bool close) {
  SessionSlot* slot = w_.find_session(cookie);
  if (slot && slot->driver->ended()) {
    auto pending = std::make_shared<cwmp::Reply>(std::move(reply));
    bool wait = w_.end_session(cookie, [w = &w_, cid = id_, pending, new_session, close](bool ok) {
      Connection* c = w->find_connection(cid);
      if (!c) return;
      c->waiting_ = false;
      if (!ok) {
        // Not committed: no 204 but a 503 + Retry-After; the CPE retries.
        c->send_busy(Refusal::kStoreDown);
        c->finish_request(true);
        return;
      }
      c->send_reply(*pending, new_session, close);
      c->finish_request(close);
      c->unblock();
    });
    if (wait) {
      waiting_ = true;
      return;
    }
    reply = std::move(*pending);
  }
  send_reply(reply, new_session, close);
  finish_request(close);
}

void Connection::unblock() {
  if (!closing_ && !waiting_) process();
}

bool Connection::may_continue(const SessionSlot& slot) const {
  return slot.conn == this || foreign_because(slot).empty();
}

std::string Connection::foreign_because(const SessionSlot& slot) const {
  if (!auth_.device_id.empty() && auth_.device_id != slot.driver->device_id())
    return "credentials of another device";
  const std::string began = util::address_of(slot.driver->origin().peer);
  if (w_.cfg().session_same_address && began != peer_addr_)
    return "the session began from another address (" + began + ")";
  return {};
}

// The session goes on untouched; its own CPE is not told anything.
void Connection::refuse_foreign(const SessionSlot& slot) {
  w_.shared().stats.foreign_cookies.fetch_add(1, std::memory_order_relaxed);
  log::warn_from(peer_addr_, "foreign session cookie peer=" + peer_ +
                                 " device=" + slot.driver->device_id() +
                                 " reason=" + log::quoted(foreign_because(slot)));
  cookie_.clear();
  send_error(403, "Forbidden: this cookie belongs to a session of another connection", true);
  finish_request(true);
}

void Connection::send_reply(const cwmp::Reply& reply, bool new_session, bool close) {
  auto& st = w_.shared().stats;
  if (reply.status == 204) {
    send(204, {}, {}, {}, close);
  } else if (reply.status == 200 || reply.status == 500) {
    if (new_session && reply.status == 200) {
      metrics::inform_answered(std::chrono::steady_clock::now() - request_start_);
      std::string cookie = w_.cfg().cookie_name + "=" + cookie_ + "; Path=/";
      http::Header h[] = {{"Set-Cookie", cookie}};
      send(reply.status, kXml, h, reply.body, close);
    } else {
      send(reply.status, kXml, {}, reply.body, close);
    }
  } else {
    if (reply.status == 400) st.bad_requests.fetch_add(1, std::memory_order_relaxed);
    send(reply.status, kText, {}, reply.body, close);
  }
}

void Connection::make_parser() {
  parser_ = w_.acquire_parser();
}

void Connection::finish_request(bool close) {
  if (closing_) return;
  // Between the requests of a session the parser keeps its buffers for
  // reuse; a connection left idle by a finished session (a CPE keeping it
  // open until its next periodic Inform) holds none.
  if (cookie_.empty()) {
    w_.release_parser(std::move(parser_));
    set_priority(kPriorityNew);
  } else {
    parser_->reset();
  }
  in_request_ = false;
  if (close) {
    closing_ = true;
    return;
  }
  arm_timer(w_.cfg().keepalive_timeout);
}

void Connection::send(int status, std::string_view content_type,
                      std::span<const http::Header> headers, std::string_view body, bool close) {
  std::string& out = w_.scratch();
  out.clear();
  http::append_response(out, status, content_type, headers, body, !close);
  write_out(out, close);
  if (close) closing_ = true;
}

void Connection::send_error(int status, std::string_view reason, bool close) {
  std::string body(reason);
  body += '\n';
  send(status, kText, {}, body, close);
}

void Connection::send_challenge(bool stale, bool close) {
  auto challenges = w_.shared().auth.challenges(stale, tls_, std::chrono::system_clock::now());
  std::vector<http::Header> headers;
  for (const auto& c : challenges) headers.push_back({"WWW-Authenticate", c});
  send(401, kText, headers, "Authentication required\n", close);
}

}  // namespace luacs::server
