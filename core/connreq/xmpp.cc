#include "core/connreq/xmpp.h"

#include <strophe.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include "core/util/log.h"

namespace luacs::connreq {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kConnReqNs = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0";
constexpr const char* kStanzaErrorNs = "urn:ietf:params:xml:ns:xmpp-stanzas";
// How long one xmpp_run_once waits for network input: the latency with
// which a queued request or a stop is noticed.
constexpr unsigned long kPollMs = 50;
// TR-069 ConnectionRequestUsername/Password are string(256).
constexpr size_t kMaxCredential = 256;

struct StanzaDeleter {
  void operator()(xmpp_stanza_t* s) const {
    if (s) xmpp_stanza_release(s);
  }
};
using Stanza = std::unique_ptr<xmpp_stanza_t, StanzaDeleter>;

void init_library() {
  // Never paired with xmpp_shutdown: other clients (and tests' simulated
  // devices) may live in the same process.
  static std::once_flag once;
  std::call_once(once, [] { xmpp_initialize(); });
}

// libstrophe's own messages, warnings and errors only: its debug output
// carries the raw stream, SASL exchange included. The last one is kept
// (`last`) to explain a failed login.
void on_library_log(void* last, xmpp_log_level_t level, const char* area, const char* msg) {
  if (level < XMPP_LEVEL_WARN) return;
  const std::string text = std::string(area ? area : "") + ": " +
                           std::string(std::string_view(msg ? msg : "").substr(0, 200));
  *static_cast<std::string*>(last) = text;
  if (level == XMPP_LEVEL_ERROR)
    log::error("xmpp: libstrophe " + text);
  else
    log::warn("xmpp: libstrophe " + text);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

struct Jid {
  std::string bare;  // lower-cased user@domain (the server normalises these parts)
  std::string domain;
  std::string resource;
};

Jid split_jid(std::string_view s) {
  Jid j;
  const auto slash = s.find('/');
  if (slash != std::string_view::npos) j.resource = std::string(s.substr(slash + 1));
  j.bare = lower(s.substr(0, slash));
  const auto at = j.bare.find('@');
  j.domain = at == std::string::npos ? j.bare : j.bare.substr(at + 1);
  return j;
}

// Whether an answer to an IQ sent to `to` came from there. The server
// answers for an offline device with the device's JID (or its bare JID or
// domain) as the sender, or none at all.
bool answer_from(const char* from, const Jid& to, bool is_error) {
  if (!from || !*from) return is_error;
  const Jid f = split_jid(from);
  if (f.bare == to.bare && f.resource == to.resource) return true;
  if (!is_error) return false;
  return (f.bare == to.bare && f.resource.empty()) || (f.bare == to.domain && f.resource.empty());
}

// The defined condition of an <error/> (RFC 6120 8.3), "" if none.
std::string error_condition(xmpp_stanza_t* iq) {
  xmpp_stanza_t* error = xmpp_stanza_get_child_by_name(iq, "error");
  if (!error) return "";
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(error); c; c = xmpp_stanza_get_next(c)) {
    if (!xmpp_stanza_is_tag(c)) continue;
    const char* ns = xmpp_stanza_get_ns(c);
    const char* name = xmpp_stanza_get_name(c);
    if (ns && name && std::strcmp(ns, kStanzaErrorNs) == 0 && std::strcmp(name, "text") != 0)
      return std::string(name).substr(0, 64);
  }
  return "";
}

XmppResult result_of_error(const std::string& condition) {
  static constexpr std::string_view kOffline[] = {
      "service-unavailable",     "recipient-unavailable", "item-not-found",
      "remote-server-not-found", "remote-server-timeout", "gone"};
  for (const auto o : kOffline)
    if (condition == o) return {XmppOutcome::kOffline, "offline (" + condition + ")"};
  if (condition == "not-authorized")
    return {XmppOutcome::kAuthFailed, "the device rejected the credentials (not-authorized)"};
  return {XmppOutcome::kRefused,
          "error from the device or server: " + (condition.empty() ? "unknown" : condition)};
}

// "host", "host:port", "[v6]:port" -> host and port (0 = the default).
void split_server(std::string_view s, std::string& host, unsigned short& port) {
  host = std::string(s);
  port = 0;
  std::string_view p;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    host = std::string(s.substr(1, close - 1));
    if (close + 1 < s.size()) p = s.substr(close + 2);
  } else if (s.find(':') != std::string_view::npos && s.find(':') == s.rfind(':')) {
    host = std::string(s.substr(0, s.find(':')));
    p = s.substr(s.find(':') + 1);
  }
  unsigned v = 0;
  for (const char c : p) v = v * 10 + static_cast<unsigned>(c - '0');
  port = static_cast<unsigned short>(v);
}

// An element <name>text</name>, the text escaped by libstrophe.
Stanza text_element(xmpp_ctx_t* ctx, const char* name, const std::string& text) {
  Stanza el(xmpp_stanza_new(ctx));
  xmpp_stanza_set_name(el.get(), name);
  if (!text.empty()) {
    Stanza t(xmpp_stanza_new(ctx));
    xmpp_stanza_set_text(t.get(), text.c_str());
    xmpp_stanza_add_child(el.get(), t.get());
  }
  return el;
}

}  // namespace

std::string_view outcome_name(XmppOutcome outcome) {
  switch (outcome) {
    case XmppOutcome::kAnswered:
      return "answered";
    case XmppOutcome::kOffline:
      return "offline";
    case XmppOutcome::kAuthFailed:
      return "auth_failed";
    case XmppOutcome::kRefused:
      return "refused";
    case XmppOutcome::kTimedOut:
      return "timed_out";
    case XmppOutcome::kUnavailable:
      return "unavailable";
    case XmppOutcome::kInvalid:
      return "invalid";
  }
  return "unknown";
}

bool is_device_jid(std::string_view s) {
  if (s.empty() || s.size() > 3071) return false;
  for (const char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  const auto at = s.find('@');
  const auto slash = s.find('/');
  if (at == std::string_view::npos || at == 0) return false;
  if (slash != std::string_view::npos && (slash < at + 2 || slash + 1 == s.size())) return false;
  return at + 1 < s.size() && s[at + 1] != '/';
}

XmppSettings XmppSettings::from(const config::Config& cfg) {
  XmppSettings s;
  s.jid = cfg.xmpp_jid;
  s.password = cfg.xmpp_password;
  s.server = cfg.xmpp_server;
  s.tls = cfg.xmpp_tls;
  s.timeout = cfg.xmpp_timeout;
  return s;
}

struct XmppClient::Impl {
  struct Request {
    std::string jid, username, password;
    XmppDone done;
    Clock::time_point deadline;
  };
  struct Pending {
    Jid to;
    XmppDone done;
    Clock::time_point deadline;
  };

  XmppSettings settings;

  // Shared with other threads.
  mutable std::mutex mu;
  std::deque<Request> queue;
  size_t in_flight = 0;  // queued + pending, for max_pending
  std::string status = "connecting";
  std::atomic<bool> logged_in{false};
  std::atomic<bool> stop{false};

  // The XMPP thread's own.
  xmpp_ctx_t* ctx = nullptr;
  xmpp_conn_t* conn = nullptr;
  bool conn_dead = false;    // the handler saw it close: release it outside the handler
  bool ever_logged = false;  // this connection got as far as a login
  Clock::time_point next_attempt{};
  milliseconds backoff{0};
  std::map<std::string, Pending> pending;  // by IQ id
  std::string id_prefix;
  uint64_t next_id = 0;
  std::string last_library_message;  // from on_library_log, this connection's
  xmpp_log_t library_log{&on_library_log, &last_library_message};
  std::thread thread;

  explicit Impl(XmppSettings s) : settings(std::move(s)) {
    std::random_device rd;
    const uint64_t r = (uint64_t{rd()} << 32) | rd();
    char buf[32];
    std::snprintf(buf, sizeof buf, "luacs-%016llx-", static_cast<unsigned long long>(r));
    id_prefix = buf;
    backoff = settings.reconnect_min;
  }

  void set_status(std::string s) {
    std::lock_guard lock(mu);
    status = std::move(s);
  }
  std::string current_status() const {
    std::lock_guard lock(mu);
    return status;
  }

  void finish(XmppDone& done, XmppResult r) {
    {
      std::lock_guard lock(mu);
      --in_flight;
    }
    done(r);
  }

  void run() {
    ctx = xmpp_ctx_new(nullptr, &library_log);
    while (!stop) {
      if (!conn && Clock::now() >= next_attempt) connect();
      drain();
      xmpp_run_once(ctx, kPollMs);
      if (conn_dead) release_conn();
      expire();
    }
    shutdown();
  }

  void connect() {
    conn = xmpp_conn_new(ctx);
    long flags = XMPP_CONN_FLAG_DISABLE_SM;  // no resending of stale requests after a reconnect
    if (settings.tls == config::XmppTls::kRequired) flags |= XMPP_CONN_FLAG_MANDATORY_TLS;
    if (settings.tls == config::XmppTls::kOff) flags |= XMPP_CONN_FLAG_DISABLE_TLS;
    xmpp_conn_set_flags(conn, flags);
    xmpp_conn_set_jid(conn, settings.jid.c_str());
    xmpp_conn_set_pass(conn, settings.password.c_str());
    xmpp_conn_set_sockopt_callback(conn, &xmpp_sockopt_cb_keepalive);
    xmpp_handler_add(conn, &on_iq_thunk, nullptr, "iq", nullptr, this);
    std::string host;
    unsigned short port = 0;
    if (!settings.server.empty()) split_server(settings.server, host, port);
    conn_dead = false;
    ever_logged = false;
    last_library_message.clear();
    if (xmpp_connect_client(conn, host.empty() ? nullptr : host.c_str(), port, &on_conn_thunk,
                            this) != XMPP_EOK) {
      release_conn();
      retry_later("cannot start a connection to " + server_name());
    }
  }

  std::string server_name() const {
    return settings.server.empty() ? split_jid(settings.jid).domain : settings.server;
  }

  // Called by libstrophe inside xmpp_run_once.
  void on_conn(xmpp_conn_event_t event, int error, xmpp_stream_error_t* stream_error) {
    if (event == XMPP_CONN_CONNECT) {
      ever_logged = true;
      backoff = settings.reconnect_min;
      logged_in = true;
      set_status("");
      log::info("xmpp: logged in as " + settings.jid + " on " + server_name());
      return;
    }
    if (event != XMPP_CONN_DISCONNECT && event != XMPP_CONN_FAIL) return;
    std::string why;
    if (ever_logged)
      why = "connection to " + server_name() + " lost";
    else if (error != 0)
      why = "cannot connect to " + server_name() + ": " + std::strerror(error);
    else if (!last_library_message.empty())
      why = "login to " + server_name() + " failed: " + last_library_message;
    else
      why = "cannot connect to " + server_name() + ", or it closed the stream before the login";
    if (stream_error && stream_error->type == XMPP_SE_CONFLICT)
      why += ": another client logged in with the same JID and resource";
    if (stop) return;  // shutdown() takes it from here
    conn_dead = true;
    retry_later(std::move(why));
  }

  void retry_later(std::string why) {
    logged_in = false;
    next_attempt = Clock::now() + backoff;
    log::warn("xmpp: " + why + "; retrying in " + std::to_string(backoff.count()) + " ms");
    backoff = std::min(backoff * 2, settings.reconnect_max);
    set_status(std::move(why));
  }

  // Answers to our IQs; any other IQ get/set gets service-unavailable, as
  // RFC 6120 8.2.3 asks of a client.
  int on_iq(xmpp_conn_t* c, xmpp_stanza_t* stanza) {
    const char* type = xmpp_stanza_get_type(stanza);
    const char* id = xmpp_stanza_get_id(stanza);
    if (!type) return 1;
    const bool is_error = std::strcmp(type, "error") == 0;
    if (std::strcmp(type, "result") != 0 && !is_error) {
      if (std::strcmp(type, "get") == 0 || std::strcmp(type, "set") == 0) {
        Stanza reply(xmpp_stanza_reply_error(stanza, "cancel", "service-unavailable", nullptr));
        if (reply) xmpp_send(c, reply.get());
      }
      return 1;
    }
    if (!id) return 1;
    const auto it = pending.find(id);
    if (it == pending.end()) return 1;
    if (!answer_from(xmpp_stanza_get_from(stanza), it->second.to, is_error)) return 1;
    XmppResult r = is_error ? result_of_error(error_condition(stanza))
                            : XmppResult{XmppOutcome::kAnswered, "answered"};
    XmppDone done = std::move(it->second.done);
    pending.erase(it);
    finish(done, std::move(r));
    return 1;
  }

  void drain() {
    std::deque<Request> batch;
    {
      std::lock_guard lock(mu);
      batch.swap(queue);
    }
    for (auto& r : batch) send(r);
  }

  void send(Request& r) {
    if (!logged_in || !conn) {
      const std::string why = current_status();
      finish(r.done, {XmppOutcome::kUnavailable,
                      "not logged in to the XMPP server" + (why.empty() ? "" : ": " + why)});
      return;
    }
    const std::string id = id_prefix + std::to_string(++next_id);
    Stanza iq(xmpp_iq_new(ctx, "get", id.c_str()));
    xmpp_stanza_set_to(iq.get(), r.jid.c_str());
    Stanza req(xmpp_stanza_new(ctx));
    xmpp_stanza_set_name(req.get(), "connectionRequest");
    xmpp_stanza_set_ns(req.get(), kConnReqNs);
    xmpp_stanza_add_child(req.get(), text_element(ctx, "username", r.username).get());
    xmpp_stanza_add_child(req.get(), text_element(ctx, "password", r.password).get());
    xmpp_stanza_add_child(iq.get(), req.get());
    pending.emplace(id, Pending{split_jid(r.jid), std::move(r.done), r.deadline});
    xmpp_send(conn, iq.get());
  }

  void expire() {
    const auto now = Clock::now();
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      XmppDone done = std::move(it->second.done);
      it = pending.erase(it);
      finish(done, {XmppOutcome::kTimedOut,
                    "no answer within " + std::to_string(settings.timeout.count()) + " ms"});
    }
  }

  // The connection is gone: the answers it would have brought will not come.
  void release_conn() {
    if (conn) xmpp_conn_release(conn);
    conn = nullptr;
    conn_dead = false;
    auto lost = std::move(pending);
    pending.clear();
    for (auto& [id, p] : lost)
      finish(p.done, {XmppOutcome::kUnavailable, "the connection to the XMPP server was lost"});
  }

  void shutdown() {
    if (conn && xmpp_conn_is_connected(conn)) {
      xmpp_disconnect(conn);
      // Let the closing </stream:stream> go out.
      for (int i = 0; i < 10 && !xmpp_conn_is_disconnected(conn); ++i) xmpp_run_once(ctx, 20);
    }
    logged_in = false;
    if (conn) xmpp_conn_release(conn);
    conn = nullptr;
    auto lost = std::move(pending);
    pending.clear();
    for (auto& [id, p] : lost) finish(p.done, {XmppOutcome::kUnavailable, "luacs is stopping"});
    std::deque<Request> rest;
    {
      std::lock_guard lock(mu);
      rest.swap(queue);
    }
    for (auto& r : rest) finish(r.done, {XmppOutcome::kUnavailable, "luacs is stopping"});
    xmpp_ctx_free(ctx);
    ctx = nullptr;
  }

  static void on_conn_thunk(xmpp_conn_t*, xmpp_conn_event_t event, int error,
                            xmpp_stream_error_t* stream_error, void* self) {
    try {
      static_cast<Impl*>(self)->on_conn(event, error, stream_error);
    } catch (const std::exception& e) {  // never unwind through C
      log::error(std::string("xmpp: ") + e.what());
    }
  }
  static int on_iq_thunk(xmpp_conn_t* c, xmpp_stanza_t* stanza, void* self) {
    try {
      return static_cast<Impl*>(self)->on_iq(c, stanza);
    } catch (const std::exception& e) {  // never unwind through C
      log::error(std::string("xmpp: ") + e.what());
      return 1;
    }
  }
};

XmppClient::XmppClient(XmppSettings settings) {
  if (settings.jid.empty()) throw std::invalid_argument("xmpp: no JID configured");
  init_library();
  impl_ = std::make_unique<Impl>(std::move(settings));
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

XmppClient::~XmppClient() {
  impl_->stop = true;
  impl_->thread.join();
}

void XmppClient::connection_request(std::string device_jid, std::string username,
                                    std::string password, XmppDone done) {
  if (!is_device_jid(device_jid)) {
    done({XmppOutcome::kInvalid, "the device's ConnReqJabberID is not a JID"});
    return;
  }
  if (username.size() > kMaxCredential || password.size() > kMaxCredential) {
    done({XmppOutcome::kInvalid, "connection request username or password over 256 bytes"});
    return;
  }
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->in_flight < impl_->settings.max_pending) {
      ++impl_->in_flight;
      impl_->queue.push_back({std::move(device_jid), std::move(username), std::move(password),
                              std::move(done), Clock::now() + impl_->settings.timeout});
      return;
    }
  }
  done({XmppOutcome::kUnavailable, "too many XMPP connection requests pending"});
}

bool XmppClient::logged_in() const {
  return impl_->logged_in;
}

std::string XmppClient::status() const {
  return impl_->current_status();
}

}  // namespace luacs::connreq
