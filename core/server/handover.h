// Internal to core/server: a connection moving to the worker that owns its
// session, and the authentication state that travels with it.
//
// A CPE that opens a new TCP connection mid-session (after a NAT timeout, or
// simply per request) lands on whichever worker the kernel picks. Sessions
// are never shared between threads, so the connection goes to the session:
// the worker that read the request head hands over the socket, the parsed
// head and the bytes it already read (Connection::hand_over), and the owner
// continues the request (Connection's Handover constructor, resume()).
#pragma once

#include <event2/util.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/http/request_parser.h"
#include "core/loop/loop.h"

namespace luacs::server {

// Per-connection authentication state; it travels with a handed-over
// connection so the CPE is not challenged twice.
struct ConnAuth {
  bool authenticated = false;
  int failures = 0;
  std::string device_id;  // the credential's bound device ("" = any)
  // How the CPE got in, for the session log line: "challenge>digest",
  // "basic-off>digest", "stale>digest", ... ("kept" for a later session
  // on an authenticated connection).
  std::string path;
  void step(std::string_view s) {
    if (path.size() > 64) return;  // a CPE looping on challenges
    if (!path.empty()) path += '>';
    path += s;
  }
  std::string take_path() { return path.empty() ? "kept" : std::exchange(path, {}); }
};

// What moves. Owns the socket (and the SSL) until the new worker takes it (a handover
// dropped on the way, at shutdown, closes it).
struct Handover {
  Handover() = default;
  Handover(Handover&& o) noexcept { *this = std::move(o); }
  Handover& operator=(Handover&& o) noexcept {
    std::swap(fd, o.fd);
    std::swap(ssl, o.ssl);
    parser = std::move(o.parser);
    input = std::move(o.input);
    cookie = std::move(o.cookie);
    peer = std::move(o.peer);
    auth = std::move(o.auth);
    return *this;
  }
  ~Handover() {
    if (ssl) SSL_free(ssl);
    if (fd >= 0) evutil_closesocket(fd);
  }
  evutil_socket_t take_fd() { return std::exchange(fd, -1); }
  SSL* take_ssl() { return std::exchange(ssl, nullptr); }

  evutil_socket_t fd = -1;
  // A TLS connection's session, its handshake done: the new worker wraps
  // the same socket and SSL in a bufferevent of its own. Nothing of it is
  // buffered in OpenSSL (the old bufferevent read all it had into `input`).
  SSL* ssl = nullptr;
  std::unique_ptr<http::RequestParser> parser;  // head parsed, body pending
  loop::Buffer input;                           // bytes read past the head
  std::string cookie;
  std::string peer;
  ConnAuth auth;
};

}  // namespace luacs::server
