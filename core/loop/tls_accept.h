// TLS on an event loop, server side, for the ports whose connections are
// simple enough to let the bufferevent own everything (the API's and the
// file server's; the CWMP port keeps its socket and SSL apart from the
// bufferevent so that a connection can move to another worker).
//
// - SslFactory: what a TLS listener gets each connection's SSL from (the
//   context serving at that moment: a certificate reload changes what the
//   next handshake gets, a connection keeps the one it started with).
// - tls_accepting: the bufferevent that takes the client's handshake and
//   then carries the plain bytes; BEV_EVENT_CONNECTED says it is done.
// - tls_handshake_failed: what to do when it is not (plain HTTP to the TLS
//   port gets a plain 400 saying so).
// - tls_close_notify: a clean end of a sound session.
#pragma once

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include <functional>
#include <string>
#include <string_view>

#include "core/loop/loop.h"

namespace luacs::loop {

// A fresh SSL for a new connection; null when OpenSSL cannot make one.
// Any thread.
using SslFactory = std::function<SSL*()>;

// What plain HTTP at a TLS port is answered with, before the close.
inline constexpr std::string_view kHttpsOnly =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 28\r\nConnection: close\r\n\r\nThis port speaks HTTPS only\n";

// A bufferevent on `fd` taking the client's handshake with `ssl`, owning
// both (freeing it frees the SSL and closes the socket). A client that
// closes without a close_notify is an EOF like any other.
BufferEvent tls_accepting(event_base* base, evutil_socket_t fd, SSL* ssl);

// The bufferevent of a connection just accepted, owning the socket: a
// tls_accepting one with a fresh SSL from `tls`, or without `tls` a plain
// socket one. Null, the socket closed, when either cannot be made.
BufferEvent accepted(event_base* base, evutil_socket_t fd, const SslFactory* tls);

// After BEV_EVENT_EOF or BEV_EVENT_ERROR on a tls_accepting bufferevent
// before BEV_EVENT_CONNECTED: OpenSSL's reasons (its error queue left
// clean), or "connection closed", for a debug line -- never more (a
// scanner would flood the log). Plain HTTP is answered with kHttpsOnly,
// written straight to the socket (there is no TLS to write through).
std::string tls_handshake_failed(bufferevent* bev);

// One close_notify before a connection whose handshake completed is freed
// (not waited for: the socket closes right after).
void tls_close_notify(bufferevent* bev);

}  // namespace luacs::loop
