// --tls: a slot's connection through libevent's OpenSSL bufferevent. The
// request is written at once and goes out when the handshake is done;
// BEV_EVENT_CONNECTED comes after the handshake, not after the TCP connect.
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>

#include "bench/loadgen/runner_impl.h"
#include "bench/loadgen/tls.h"

namespace luacs::loadgen {

SSL_SESSION** Runner::Impl::session_store(Slot& s) {
  if (!opt.tls.resume) return nullptr;
  return device_sessions.empty() ? &s.tls_session : &device_sessions[s.local];
}

bool Runner::Impl::open_tls_connection(Slot& s) {
  const Target& t = opt.target;
  SSL_SESSION** store = session_store(s);
  bool with_cert = false;
  SSL* ssl = sh.tls->new_ssl(s.serial, store ? *store : nullptr, store, &with_cert);
  if (!ssl) {
    fail(s, ErrorKind::kTls);
    return false;
  }
  // The socket is made by bufferevent_socket_connect (it sets the SSL's
  // BIO); SSL_free comes with bufferevent_free.
  s.bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
  if (!s.bev) {
    SSL_free(ssl);
    fail(s, ErrorKind::kConnect);
    return false;
  }
  // A server closing without close_notify ends the stream like a plain
  // TCP close does (a response body up to EOF, a dropped keep-alive).
  bufferevent_openssl_set_allow_dirty_shutdown(s.bev, 1);
  bufferevent_setcb(s.bev, on_read, nullptr, on_event, &s);
  timeval tv = to_timeval(std::chrono::microseconds(opt.timeout).count());
  bufferevent_set_timeouts(s.bev, &tv, &tv);
  bufferevent_enable(s.bev, EV_READ | EV_WRITE);
  s.connected = false;
  s.t_connect = monotonic_us();
  if (with_cert) ++stats.tls_client_certs;
  ++stats.connections;
  if (bufferevent_socket_connect(s.bev, reinterpret_cast<const sockaddr*>(&t.addr),
                                 static_cast<int>(t.addr_len)) < 0) {
    fail(s, ErrorKind::kConnect);
    return false;
  }
  // Nothing is sent before the event loop runs again: no Nagle delay for
  // the request that follows the client's Finished.
  int one = 1;
  setsockopt(bufferevent_getfd(s.bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return true;
}

namespace {

const char* key_type(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  EVP_PKEY* key = cert ? X509_get0_pubkey(cert) : nullptr;
  switch (key ? EVP_PKEY_base_id(key) : EVP_PKEY_NONE) {
    case EVP_PKEY_EC:
      return "EC";
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      return "RSA";
    case EVP_PKEY_NONE:
      return "none";
    default:
      return "other";
  }
}

}  // namespace

void Runner::Impl::tls_connected(Slot& s) {
  SSL* ssl = bufferevent_openssl_get_ssl(s.bev);
  ++stats.tls_handshakes;
  stats.tls_handshake_us.record(static_cast<uint64_t>(monotonic_us() - s.t_connect));
  if (SSL_session_reused(ssl)) ++stats.tls_resumed;
  ++stats.tls_server_keys[key_type(ssl)];
}

// The connection ended before its handshake did. A connect the kernel
// refused is kConnect as on plain HTTP; anything later counts as a failed
// handshake: kTls when OpenSSL refused it (an alert, a certificate not
// verified), kTimeout or kReset otherwise.
ErrorKind Runner::Impl::tls_failure(Slot& s, short what, int socket_error) {
  // libevent keeps a stack: SSL_get_error()'s code first, then OpenSSL's
  // queue; the code comes off last.
  unsigned long code = 0;
  while (unsigned long e = bufferevent_get_openssl_error(s.bev)) code = e;
  const bool refused_by_openssl = code == SSL_ERROR_SSL;
  if (!(what & BEV_EVENT_TIMEOUT) && !refused_by_openssl &&
      (socket_error == ECONNREFUSED || socket_error == ENETUNREACH || socket_error == EHOSTUNREACH))
    return ErrorKind::kConnect;
  ++stats.tls_handshake_failures;
  if (what & BEV_EVENT_TIMEOUT) return ErrorKind::kTimeout;
  return refused_by_openssl ? ErrorKind::kTls : ErrorKind::kReset;
}

// close_notify before the close, as a well-behaved client sends it: an SSL
// freed without it marks its session not resumable.
void Runner::Impl::close_tls(Slot& s) {
  if (!s.connected) return;
  SSL* ssl = bufferevent_openssl_get_ssl(s.bev);
  if (ssl && SSL_is_init_finished(ssl)) SSL_shutdown(ssl);
}

}  // namespace luacs::loadgen
