#include "core/loop/tls_accept.h"

#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <string>

namespace luacs::loop {

BufferEvent tls_accepting(event_base* base, evutil_socket_t fd, SSL* ssl) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  BufferEvent bev(bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                 BEV_OPT_CLOSE_ON_FREE));
  // Null only when out of memory, the SSL and socket then left to libevent
  // (which versions free what differs: at worst a leak, never a double
  // free or a close of someone else's descriptor).
  if (bev) bufferevent_openssl_set_allow_dirty_shutdown(bev.get(), 1);
  return bev;
}

BufferEvent accepted(event_base* base, evutil_socket_t fd, const SslFactory* tls) {
  if (!tls) {
    BufferEvent bev(bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE));
    if (!bev) evutil_closesocket(fd);
    return bev;
  }
  SSL* ssl = (*tls)();
  if (!ssl) {
    evutil_closesocket(fd);
    return nullptr;
  }
  return tls_accepting(base, fd, ssl);
}

std::string tls_handshake_failed(bufferevent* bev) {
  std::string why;
  bool http = false;
  while (const unsigned long e = bufferevent_get_openssl_error(bev)) {
    http = http || ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST;
    const char* reason = ERR_reason_error_string(e);
    why += why.empty() ? "" : "; ";
    why += reason ? reason : "error " + std::to_string(e);
  }
  ERR_clear_error();
  if (http) {
    [[maybe_unused]] auto n = ::send(bufferevent_getfd(bev), kHttpsOnly.data(), kHttpsOnly.size(),
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  return why.empty() ? "connection closed" : why;
}

void tls_close_notify(bufferevent* bev) {
  if (SSL* ssl = bufferevent_openssl_get_ssl(bev)) {
    // Straight to the socket: nothing may call back while the connection
    // is being freed.
    SSL_shutdown(ssl);
  }
  ERR_clear_error();
}

}  // namespace luacs::loop
