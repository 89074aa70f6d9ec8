// The CWMP listener: N worker threads, each with its own event loop and its
// own SO_REUSEPORT listening socket(s), serving HTTP/1.1 keep-alive CWMP
// sessions. This is the public face of core/server.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/cwmp/session.h"
#include "core/device/device.h"

namespace luacs::store {
class Store;
}
namespace luacs::tls {
class Holder;
}
namespace luacs::lua {
class PolicyManager;
struct FileServices;
}  // namespace luacs::lua

namespace luacs::server {

// Counters shared by all workers (relaxed atomics; read by `luacs status`
// and the tests).
struct Stats {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> sessions_started{0};
  std::atomic<uint64_t> sessions_completed{0};
  std::atomic<uint64_t> sessions_failed{0};
  std::atomic<int64_t> sessions_live{0};
  std::atomic<uint64_t> handovers{0};
  std::atomic<uint64_t> rejected_busy{0};     // 503: too many sessions, device busy, store down
  std::atomic<uint64_t> rejected_backlog{0};  // 503: the store is behind ([store] max_backlog)
  std::atomic<uint64_t> rejected_overload{
      0};  // 503: waited too long in luacs ([limits] max_queue_delay)
  std::atomic<uint64_t> auth_failures{0};
  std::atomic<uint64_t> bad_requests{0};  // 4xx other than auth
  // https:// listeners: handshakes done, failed (a TLS error, plain HTTP at
  // the TLS port, a client gone mid-handshake), cut at tls_handshake_timeout;
  // of the done ones, those that resumed a session.
  std::atomic<uint64_t> tls_handshakes_ok{0};
  std::atomic<uint64_t> tls_handshakes_failed{0};
  std::atomic<uint64_t> tls_handshake_timeouts{0};
  std::atomic<uint64_t> tls_resumed{0};
  // Requests refused for their client certificate (client_cert.cc).
  std::atomic<uint64_t> tls_client_missing{0};
  std::atomic<uint64_t> tls_client_invalid{0};
  std::atomic<uint64_t> tls_client_wrong_device{0};
  std::atomic<uint64_t> tls_client_policy{0};
  // A live session's cookie from another address or another device's
  // credentials: 403, the session untouched.
  std::atomic<uint64_t> foreign_cookies{0};
  // Sessions ended for holding too much: past [limits] max_session_bytes
  // (413), or abandoned (their connection gone) past max_abandoned_bytes.
  std::atomic<uint64_t> sessions_over_bytes{0};
  std::atomic<uint64_t> abandoned_ended{0};
  std::atomic<int64_t> abandoned_bytes{0};  // held now by sessions without a connection
  // Connections not read for a while: their unread replies passed
  // [limits] reply_high_water.
  std::atomic<uint64_t> reads_paused{0};
};

// A finished session, for whoever watches them (the API's /events).
struct SessionEnd {
  std::string device_id;
  std::string outcome;  // "completed", "timeout", ... (cwmp::EndReason)
  std::string detail;
  std::chrono::milliseconds duration{};
  // The device's tags after the session (those of the cached device and
  // the session's changes; only the changes when it is not cached).
  std::vector<std::string> tags;
  std::vector<device::Fault> faults;
  std::vector<device::TaskResult> task_results;
};
using SessionObserver = std::function<void(SessionEnd)>;

class Server {
 public:
  explicit Server(config::Config cfg);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Where sessions are remembered (before start()); without one, nothing is
  // kept between sessions. The store must outlive stop().
  void set_store(store::Store* store);
  // The policy every session runs (before start()); without one, sessions
  // run only the tasks queued for the device. `files` publishes what the
  // policy pushes; `files_port` is the file server's port, for the URLs
  // CPEs get when [files] url is not set (0: no file server).
  void set_policy(lua::PolicyManager* policies, lua::FileServices files, uint16_t files_port);
  // The certificates of the https:// listeners (before start(); required
  // by one). New handshakes take holder->current(); a connection keeps the
  // context it started with. The holder must outlive stop().
  void set_tls(tls::Holder* holder);
  // Called on a worker thread at the end of every session with a device
  // while `*active` reads true, which its owner sets while someone listens
  // (before start()). It must not block: it hands the end to its own loop.
  // Nothing at all is built for it while `*active` is false.
  void set_session_observer(SessionObserver observer, const std::atomic<bool>* active);

  // Called on a worker thread when an Inform carrying `6 CONNECTION REQUEST`
  // starts a session (before start()): the device answered a connection
  // request. It must not block (it posts to its own loop). Unset: nothing.
  void set_connection_request_observer(std::function<void(const std::string& device_id)> observer);
  // Called on a worker thread when a SetParameterValues the CPE accepted set
  // its ConnectionRequestUsername/Password and/or STUNUsername/Password
  // (nullopt: not that one), before start(). It must not block. Unset: nothing.
  void set_connection_request_credentials_observer(
      std::function<void(const std::string& device_id, device::ConnectionRequestSecrets)> observer);

  // Binds every listen address (port 0 picks a free port, shared by all
  // workers) and starts the workers. Throws std::runtime_error on failure.
  void start();
  // Stops accepting, closes connections, ends live sessions, joins workers.
  void stop();

  // The ports actually bound, in the order of cfg.listen.
  const std::vector<uint16_t>& ports() const;
  const Stats& stats() const;
  unsigned workers() const;
  // Any thread: whether the device has a live session now.
  bool device_in_session(const std::string& device_id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace luacs::server
