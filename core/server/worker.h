// Internal to core/server: a worker thread and the connections it serves.
//
// Thread: a Worker, its loop, its connections and its sessions belong to
// the worker's thread; other threads reach it only through post() and the
// Executor it gives out. Shared is read by every worker and is
// thread-safe.
#pragma once

#include <event2/event_struct.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/auth/digest.h"
#include "core/config/config.h"
#include "core/cwmp/session.h"
#include "core/http/request_parser.h"
#include "core/http/response.h"
#include "core/loop/loop.h"
#include "core/server/admission.h"
#include "core/server/handover.h"
#include "core/server/server.h"
#include "core/server/session_directory.h"
#include "core/session/driver.h"
#include "core/soap/reader.h"
#include "core/store/store.h"
#include "core/tls/context.h"
#include "lua/policy.h"

namespace luacs::server {

class Worker;
class Connection;

// Event priorities of a worker's loop (libevent runs lower numbers first).
inline constexpr int kPriorityInFlight = 0;  // connections with a session, store answers
inline constexpr int kPriorityNew = 1;       // the listener, connections without a session
inline constexpr std::chrono::milliseconds kPulse{10};  // period of the saturation probe

// A plain connection's bytes read and not yet parsed. A connection borrows
// one from its worker for as long as it holds such bytes -- between a recv
// and its parsing, as a rule -- so an idle keep-alive connection holds none
// and the buffers are allocated once per worker, not per connection.
struct InputBuffer {
  static constexpr size_t kSize = 16 << 10;  // one recv; and what is kept in the free list
  static constexpr size_t kMax = 64 << 10;   // unparsed bytes held before reading stops
  std::unique_ptr<char[]> bytes;
  size_t size = 0, begin = 0, end = 0;
  std::string_view view() const { return {bytes.get() + begin, end - begin}; }
  bool empty() const { return begin == end; }
  // Room for `n` more bytes at the end: moves what is held to the front, or
  // grows (doubling) up to kMax; false when that would pass kMax.
  bool reserve(size_t n);
};

// What all workers share. Everything in here is thread-safe.
struct Shared {
  explicit Shared(const config::Config& c) : cfg(c), auth(c) {}
  const config::Config& cfg;
  SessionDirectory directory;
  auth::Authenticator auth;
  Stats stats;
  store::Store* store = nullptr;           // null: nothing is kept between sessions
  lua::PolicyManager* policies = nullptr;  // null: no policy
  tls::Holder* tls = nullptr;              // null: no https:// listener
  lua::FileServices files;
  uint16_t files_port = 0;
  std::vector<Worker*> workers;
  SessionObserver observer;  // see Server::set_session_observer
  const std::atomic<bool>* observing = nullptr;
  // see Server::set_connection_request_observer
  std::function<void(const std::string& device_id)> connection_request_observer;
  // see session::Services::connection_request_credentials_set
  std::function<void(const std::string&, device::ConnectionRequestSecrets)>
      connection_request_credentials;
};

// A live session: its driver, and the connection serving it now, if any.
struct SessionSlot {
  std::unique_ptr<session::Driver> driver;
  Connection* conn = nullptr;  // change it through Worker::set_connection
  uint64_t bytes = 0;          // body bytes of the session's requests so far
  uint64_t abandoned = 0;      // of those, counted as held without a connection
};

class Worker {
 public:
  Worker(Shared& shared, int index);
  ~Worker();

  // Creates this worker's listening sockets (called before start()).
  void listen(const std::vector<config::ListenAddress>& addrs, std::vector<uint16_t>& ports);
  void start();
  void stop();  // any thread; joins

  // Any thread: give this worker a connection whose session it owns.
  void post_handover(Handover h);
  // Any thread: run fn on this worker's loop.
  void post(std::function<void()> fn) { mailbox_->post(std::move(fn)); }
  // Store completions come back to this worker through this. It stays safe
  // to call after the worker is gone (the work is then dropped).
  loop::Executor executor() const { return mailbox_->executor(); }

  int index() const { return index_; }
  event_base* base() const { return base_.get(); }
  Shared& shared() { return shared_; }
  lua::Engine* engine() { return engine_.get(); }  // null: no policy
  const Shared& shared() const { return shared_; }
  const config::Config& cfg() const { return shared_.cfg; }

  soap::Reader* acquire_reader();
  void release_reader(soap::Reader* r);
  std::unique_ptr<InputBuffer> acquire_input();
  void release_input(std::unique_ptr<InputBuffer> b);
  // HTTP parsers for [limits]; a released one is reset and keeps its
  // header strings (bounded by max_header_bytes) for the next connection.
  std::unique_ptr<http::RequestParser> acquire_parser();
  void release_parser(std::unique_ptr<http::RequestParser> p);

  SessionSlot* find_session(const std::string& cookie);
  size_t live_sessions() const { return sessions_.size(); }
  // New connections wait longer than [limits] max_queue_delay to be served.
  bool saturated() const { return std::chrono::steady_clock::now() < saturated_until_; }
  // Registers a new session for `device`; nullptr when the device is already
  // in a session elsewhere. A session of this worker whose CPE has gone (see
  // end_abandoned_session) does not count: it is ended first.
  // nullptr with `why` set: [limits] sessions_per_address reached for the
  // origin's address.
  SessionSlot* create_session(const std::string& device, session::Origin origin,
                              std::optional<Refusal>* why);
  // The connection serving `slot` changes; nullptr: it has gone. A session
  // left without one keeps what it has read until its CPE comes back or
  // idle_timeout; past [limits] max_abandoned_bytes held that way on this
  // worker, the largest of them are ended at once.
  void set_connection(SessionSlot& slot, Connection* c);
  // When `device`'s live session belongs to this worker and has no open
  // connection (or its connection is closed by the peer), ends it as
  // aborted -- a CPE that crashed or rebooted mid-session and comes back
  // with a new Inform is served at once -- and returns true. False while
  // its connection is alive (a true concurrent session) or the session is
  // another worker's.
  bool end_abandoned_session(const std::string& device);
  // Logs the session line, hands the session's result to the store and
  // forgets the session. When the result must be committed before the CPE is
  // answered (tags, faults, task results), returns true and calls
  // `committed` once it is; otherwise returns false and never calls it.
  bool end_session(const std::string& cookie, std::function<void(bool ok)> committed = nullptr);

  // A connection by id, or nullptr when it has gone (store completions
  // arrive after the fact).
  Connection* find_connection(uint64_t id);
  void connection_closed(Connection* c);
  uint64_t next_connection_id() { return ++last_connection_id_; }
  std::string& scratch() { return scratch_; }
  // A request body past this was parsed (or a session that read that much
  // ended): the next sweep returns freed memory to the system.
  static constexpr uint64_t kBigBody = 1 << 20;
  void freed_big() { trim_wanted_ = true; }

 private:
  static void on_accept(evconnlistener*, evutil_socket_t, sockaddr*, int, void*);
  static void on_accept_tls(evconnlistener*, evutil_socket_t, sockaddr*, int, void*);
  // A new connection; `ssl` set for an https:// listener (the handshake
  // comes first).
  void accept(evutil_socket_t fd, sockaddr* sa, SSL* ssl);
  static void on_sweep(evutil_socket_t, short, void*);
  static void on_pulse(evutil_socket_t, short, void*);
  void run();
  void sweep();
  void end_abandoned_over_cap();
  void unhold(SessionSlot& slot);  // no longer counted as abandoned

  Shared& shared_;
  int index_;
  loop::Base base_;
  std::vector<loop::Listener> listeners_;
  loop::Event sweep_event_;
  // A low-priority tick: how late it runs is how long new work waits here.
  loop::Event pulse_event_;
  std::chrono::steady_clock::time_point last_pulse_{};
  // Until then new sessions are shed: a pulse was later than max_queue_delay.
  std::chrono::steady_clock::time_point saturated_until_{};
  loop::Event stop_event_;
  // Work and handed-over connections from other threads.
  std::unique_ptr<loop::Mailbox> mailbox_;
  std::thread thread_;

  std::unique_ptr<lua::Engine> engine_;                        // this worker's Lua states
  session::Services services_;                                 // what its session drivers use
  std::vector<std::unique_ptr<soap::Reader>> readers_;         // free list
  std::vector<std::unique_ptr<InputBuffer>> inputs_;           // free list
  std::vector<std::unique_ptr<http::RequestParser>> parsers_;  // free list
  std::unordered_map<std::string, std::unique_ptr<SessionSlot>> sessions_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  uint64_t last_connection_id_ = 0;
  uint64_t abandoned_bytes_ = 0;  // SessionSlot::abandoned, summed
  bool trim_wanted_ = false;
  std::string scratch_;
};

// One TCP connection (plain on the socket itself, or TLS through
// libevent's OpenSSL bufferevent): HTTP framing, body streaming into the SOAP reader,
// dispatch to the session's driver. Admission (admission.h) and the move to
// another worker (handover.h) have files of their own. Thread: the worker
// that owns it; a connection that must move is rebuilt on the other worker
// from a Handover, never touched across threads.
class Connection final : public http::BodySink {
 public:
  // `ssl`: a TLS connection whose handshake is still to come (owned from
  // here on); null for plain HTTP.
  Connection(Worker& w, evutil_socket_t fd, std::string peer, SSL* ssl);
  Connection(Worker& w, Handover&& h);
  ~Connection() override;

  bool on_body(const char* data, size_t len) override;
  // Continues a handed-over request on its new worker.
  void resume();
  // The session this connection serves was taken by another connection or
  // ended by the worker.
  void detach_session() { cookie_.clear(); }
  void close_now();
  uint64_t id() const { return id_; }
  // The peer has closed (or reset) the connection, or we are closing it.
  bool peer_gone() const;

 private:
  // TLS: the bufferevent's.
  static void on_read_cb(bufferevent*, void*);
  static void on_write_cb(bufferevent*, void*);
  static void on_event_cb(bufferevent*, short, void*);
  // Plain TCP: the socket's.
  static void on_readable_cb(evutil_socket_t, short, void*);
  static void on_writable_cb(evutil_socket_t, short, void*);
  static void on_timer_cb(evutil_socket_t, short, void*);
  // Plain TCP: one recv into in_, then process().
  void read_socket();
  // The output has drained: close when closing, read again when paused.
  void output_drained();

  // The input and output, whichever carries the connection.
  size_t input_length() const;
  std::string_view input_chunk() const;  // the first contiguous part
  void drain_input(size_t n);
  size_t output_length() const;
  void enable_reading(bool on);
  evutil_socket_t socket_fd() const;

  // A TLS connection's bufferevent does not close the socket nor free the
  // SSL (they may move to another worker, handover.h): the connection does.
  void setup(evutil_socket_t fd, SSL* ssl, bool handshake_done);
  void on_handshake();
  void on_handshake_failed();
  // The connection's events' priority (kPriorityInFlight, kPriorityNew).
  void set_priority(int priority);
  void process();
  // Parsing yields to the loop after this many body bytes in one turn (a
  // small compressed read can inflate to megabytes).
  static constexpr size_t kSliceBytes = 256 << 10;
  static void on_resume_cb(evutil_socket_t, short, void*);
  // false: stop processing (handed over or closing).
  bool on_head();
  // Finds the session of the request; false when the connection was handed
  // to the worker that owns it.
  bool route();
  // Readies the body for the SOAP reader (or for discarding).
  void start_body();
  void on_message();
  // Starts the Inform's session (see connection.cc).
  void open_session(std::shared_ptr<soap::Envelope> env, const std::string& device, bool asked);
  // The parsed message goes to its session; `dev` is the stored device for a
  // session's first message.
  // Hands `env` to the session (moved from: an Inform's parameters are kept).
  void dispatch(const std::string& cookie, soap::Envelope& env, bool new_session);
  // Ends the request with the session's reply, once the store has committed
  // whatever must be committed first.
  void complete(const std::string& cookie, cwmp::Reply reply, bool new_session, bool close);
  void send_reply(const cwmp::Reply& reply, bool new_session, bool close);
  // A store completion lets the connection go on.
  void unblock();
  void send(int status, std::string_view content_type, std::span<const http::Header> headers,
            std::string_view body, bool close);
  void send_error(int status, std::string_view reason, bool close);
  // Bytes for the client: on plain TCP with nothing queued, straight to the
  // socket, what it does not take queued until it is writable; under TLS,
  // through the bufferevent. With `close`, the connection closes once they
  // have gone.
  void write_out(std::string_view bytes, bool close);
  // 503 + Retry-After and close, worded and counted as admission.h says.
  void send_busy(Refusal why);
  // Moves this connection, its request head parsed, to worker `owner`,
  // which has the session of `cookie` (handover.cc).
  void hand_over(int owner, std::string cookie);
  void send_challenge(bool stale, bool close);

  // Client certificates (client_cert.cc). The certificate of a TLS
  // connection when [cwmp] tls_client_ca asks for one, read once; null
  // otherwise.
  const tls::PeerCertificate* client_certificate();
  // Before a request is read: false (and a 403) for a certificate that
  // does not verify, or none where one is required.
  bool certificate_passes();
  enum class CertRefusal { kMissing, kInvalid, kDevice, kPolicy };
  void refuse_certificate(CertRefusal why, const std::string& reason, const std::string& device);
  // At the Inform: the device must be the one the certificate names (the
  // rule, or the policy's authorize), then its session opens.
  void admit(std::shared_ptr<soap::Envelope> env, const std::string& device);
  void authorize(std::shared_ptr<soap::Envelope> env, const std::string& device,
                 std::shared_ptr<const device::Device> stored, bool bound);
  // A later message of a session: over a connection with the certificate
  // the session began with (else a 403).
  bool same_certificate(const SessionSlot& slot);
  // A request with the cookie of `slot`, a session that began on another
  // connection: from the session's address ([limits] session_same_address)
  // and, when its credentials name a device, for that device.
  bool may_continue(const SessionSlot& slot) const;
  std::string foreign_because(const SessionSlot& slot) const;  // "": it may
  void refuse_foreign(const SessionSlot& slot);
  std::optional<device::ClientCertificate> admitted_certificate();

  void arm_timer(std::chrono::milliseconds t);
  void make_parser();
  void finish_request(bool close);

  Worker& w_;
  uint64_t id_;
  loop::BufferEvent bev_;  // TLS only
  // Plain TCP: the socket (owned) and its events, bytes read and not yet
  // parsed (in_, borrowed from the worker while there are any), and reply
  // bytes the socket has not taken yet (out_ past out_sent_).
  evutil_socket_t fd_ = -1;
  event rd_{};
  event wr_{};
  bool reading_ = false;  // rd_ is added
  bool writing_ = false;  // wr_ is added
  bool input_full_ = false;
  std::unique_ptr<InputBuffer> in_;
  std::string out_;
  size_t out_sent_ = 0;
  loop::Event timer_;
  loop::Event resume_;  // the next slice of a request (kSliceBytes)
  std::unique_ptr<http::RequestParser> parser_;
  soap::Reader* reader_ = nullptr;
  bool reader_failed_ = false;
  int reader_status_ = 400;  // the answer when reader_failed_
  std::string reader_error_;
  uint64_t body_bytes_ = 0;            // of this request, after decompression
  uint64_t session_bytes_before_ = 0;  // of the session's earlier requests
  size_t slice_bytes_ = 0;             // body bytes parsed in this turn of the loop
  bool reading_paused_ = false;        // [limits] reply_high_water
  // When set, the body is read and thrown away, then this status is sent
  // (401 challenge before the CPE re-sends with credentials).
  int after_body_status_ = 0;
  bool after_body_stale_ = false;
  ConnAuth auth_;
  // TLS: the session and the socket, owned here (not by bev_); both -1/null
  // once handed over.
  SSL* ssl_ = nullptr;
  evutil_socket_t tls_fd_ = -1;
  bool tls_ = false;
  bool handshaking_ = false;
  bool tls_failed_ = false;
  std::optional<tls::PeerCertificate> peer_cert_;
  bool cert_checked_ = false;
  std::string cookie_;  // the session this connection serves
  std::string peer_;
  std::string peer_addr_;  // peer_ without the port: warnings are limited per address
  std::chrono::steady_clock::time_point request_start_{};  // the first byte of the request

  bool closing_ = false;
  bool handed_over_ = false;
  bool in_request_ = false;
  bool waiting_ = false;  // for the store: input is not processed meanwhile
};

}  // namespace luacs::server
