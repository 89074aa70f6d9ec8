// A blocking TLS client playing the CPE in integration tests of the
// https:// listeners: OpenSSL over a loopback socket whose every read and
// write has a timeout, so a test never hangs. It verifies the server's
// certificate against the CAs it is given, for the name "localhost".
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/cpe_client.h"

namespace luacs::test {

using SslSession = std::shared_ptr<SSL_SESSION>;

struct TlsOptions {
  std::vector<std::string> cas;  // PEM files the server's certificate must chain to
  std::string sigalgs;           // "" = OpenSSL's default ("ECDSA+SHA256" picks ECDSA)
  int max_version = 0;           // 0 = any; TLS1_1_VERSION offers 1.0 and 1.1 only
  SslSession resume;             // a session to resume
  std::string cert, key;         // a client certificate (PEM chain) and its key; "" = none
  std::chrono::milliseconds timeout{10'000};
};

class TlsClient {
 public:
  TlsClient(uint16_t port, TlsOptions o = {});
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // The handshake succeeded (else error() says why).
  bool connected() const { return ok_; }
  const std::string& error() const { return error_; }
  // POST with Content-Length, the cookie echoed as CpeClient does.
  HttpResponse post(std::string_view body, const std::vector<std::string>& extra_headers = {});
  // GET (Host: localhost, the cookie) with extra header lines.
  HttpResponse get(std::string_view target, const std::vector<std::string>& extra_headers = {});
  // Bytes as they are (a request of the test's own making).
  bool send_raw(std::string_view bytes);
  // The next response: its body by Content-Length or chunked (de-chunked).
  HttpResponse read_response();
  // Reads until `needle` has arrived (a streamed answer) or `wait` passed;
  // what arrived stays in received() and is not read by read_response.
  bool wait_for(std::string_view needle, std::chrono::milliseconds wait);
  const std::string& received() const { return buf_; }
  // Whether the server asked for a client certificate in the handshake.
  bool certificate_requested() const { return cert_requested_; }
  // The server closed the connection (EOF or an error) within `wait`.
  bool closed_by_peer(std::chrono::milliseconds wait = std::chrono::seconds(5));

  // A TLS 1.2 renegotiation; whether the server went along.
  bool renegotiate();

  bool resumed() const;
  SslSession session() const;           // for a later TlsOptions::resume
  std::string server_serial() const;    // hex, of the certificate the server sent
  std::string server_sha256() const;    // its fingerprint
  std::string server_key_type() const;  // "EC" or "RSA"

  std::string cookie;

 private:
  bool fill();
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
  bool cert_requested_ = false;
  std::string error_;
  std::string buf_;
};

}  // namespace luacs::test
