// Internal to core/nbi: one API connection (see connection.cc).
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/http/request_parser.h"
#include "core/loop/loop.h"
#include "core/nbi/exchange.h"

namespace luacs::nbi {

class Api;

class Connection final : public http::BodySink {
 public:
  // Owns itself: deleted when the connection closes. `bev` is a socket
  // one, or with `tls` (an https:// listen) a loop::tls_accepting one: the
  // client's handshake comes first.
  Connection(Api& api, loop::BufferEvent bev, bool tls, const sockaddr* peer, int peer_len);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void close();

  // For the Exchange.
  void send(int status, std::string_view content_type, std::string body, Headers extra);
  void begin_stream(int status, std::string_view content_type, Headers extra);
  void write_chunk(std::string_view chunk);
  void end_stream();
  size_t buffered() const;
  void watch_drain();

 private:
  enum class State { kHead, kAuth, kBody, kHandling, kStreaming, kClosing };

  static void on_read_cb(bufferevent*, void* self);
  static void on_write_cb(bufferevent*, void* self);
  static void on_event_cb(bufferevent*, short what, void* self);
  void on_handshake_event(short what);
  void on_read();
  void on_write();
  void parse_input();
  bool on_body(const char* data, size_t len) override;
  void head_complete();
  bool has_head_route(const std::vector<std::string>& segments) const;
  void authenticate();
  void authorized();
  void admit(const ExchangePtr& x, Principal p);  // a valid token: its role and scope
  void deny(int status, const std::string& error, const std::string& detail, bool counts);
  void body_complete();
  void fail(int status, const std::string& why);
  void answer_done();
  template <void (Connection::*step)()>
  void run_soon(loop::Event& ev);

  Api& api_;
  loop::BufferEvent bev_;
  http::RequestParser parser_;
  sockaddr_storage peer_sa_{};
  std::string peer_, address_;
  timeval idle_{};
  State state_ = State::kHead;
  bool keep_alive_ = true;
  bool head_only_ = false;
  bool chunked_ = false;
  bool watching_drain_ = false;
  ExchangePtr exchange_;
  std::unique_ptr<BodyStream> stream_;
  bool stream_finished_ = false;
  std::function<void()> pending_check_;
  loop::Event delay_ev_, drain_ev_, next_ev_;
  // TLS: the handshake deadline ([cwmp] tls_handshake_timeout), and
  // whether the handshake is still going or has completed.
  loop::Event handshake_ev_;
  bool handshaking_ = false, tls_up_ = false;
};

}  // namespace luacs::nbi
