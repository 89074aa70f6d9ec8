#include "support/tls_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace luacs::test {
namespace {

std::string ssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "closed" : out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

TlsClient::TlsClient(uint16_t port, TlsOptions o) {
  fd_ = connect_loopback(port);
  if (fd_ < 0) {
    error_ = "connection refused";
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const timeval tv{static_cast<time_t>(o.timeout.count() / 1000),
                   static_cast<suseconds_t>(o.timeout.count() % 1000 * 1000)};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  ctx_ = SSL_CTX_new(TLS_client_method());
  for (const auto& ca : o.cas) SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  if (!o.sigalgs.empty()) SSL_CTX_set1_sigalgs_list(ctx_, o.sigalgs.c_str());
  if (!o.cert.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx_, o.cert.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx_, o.key.c_str(), SSL_FILETYPE_PEM) != 1)) {
    error_ = "cannot load the client certificate " + o.cert;
    return;
  }
  if (o.max_version) {
    SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, o.max_version);
    SSL_CTX_set_security_level(ctx_, 0);
  }
  // Called when the server asks for a certificate and none is set: noted,
  // and the handshake goes on without one.
  SSL_CTX_set_client_cert_cb(ctx_, [](SSL* ssl, X509**, EVP_PKEY**) {
    static_cast<TlsClient*>(SSL_get_app_data(ssl))->cert_requested_ = true;
    return 0;
  });
  ssl_ = SSL_new(ctx_);
  SSL_set_app_data(ssl_, this);
  SSL_set_fd(ssl_, fd_);
  SSL_set_tlsext_host_name(ssl_, "localhost");
  SSL_set1_host(ssl_, "localhost");
  if (o.resume) SSL_set_session(ssl_, o.resume.get());
  ERR_clear_error();
  ok_ = SSL_connect(ssl_) == 1;
  if (!ok_) error_ = ssl_errors();
}

TlsClient::~TlsClient() {
  if (ssl_) {
    if (ok_) SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  if (ctx_) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

bool TlsClient::fill() {
  char tmp[16384];
  const int n = SSL_read(ssl_, tmp, sizeof tmp);
  if (n <= 0) return false;
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

HttpResponse TlsClient::post(std::string_view body, const std::vector<std::string>& extra) {
  std::string req = "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!cookie.empty()) req += "Cookie: " + cookie + "\r\n";
  for (const auto& h : extra) req += h + "\r\n";
  req += "\r\n";
  req += body;
  if (!send_raw(req)) return {};
  return read_response();
}

HttpResponse TlsClient::get(std::string_view target, const std::vector<std::string>& extra) {
  std::string req = "GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n";
  if (!cookie.empty()) req += "Cookie: " + cookie + "\r\n";
  for (const auto& h : extra) req += h + "\r\n";
  req += "\r\n";
  if (!send_raw(req)) return {};
  return read_response();
}

bool TlsClient::send_raw(std::string_view bytes) {
  return ok_ && SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) > 0;
}

HttpResponse TlsClient::read_response() {
  HttpResponse r;
  if (!ok_) return r;
  size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
    if (!fill()) return r;
  const std::string head = buf_.substr(0, end);
  buf_.erase(0, end + 4);
  size_t pos = head.find("\r\n");
  const std::string status_line = head.substr(0, pos);
  r.status = std::stoi(status_line.substr(status_line.find(' ') + 1));
  while (pos != std::string::npos) {
    const size_t next = head.find("\r\n", pos + 2);
    const std::string line =
        head.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
    pos = next;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    r.headers.emplace(lower(line.substr(0, colon)), value);
  }
  if (lower(r.header("transfer-encoding")) == "chunked") {
    for (;;) {
      size_t eol;
      while ((eol = buf_.find("\r\n")) == std::string::npos)
        if (!fill()) return HttpResponse{};
      const size_t n = std::stoul(buf_.substr(0, eol), nullptr, 16);
      while (buf_.size() < eol + 2 + n + 2)
        if (!fill()) return HttpResponse{};
      r.body.append(buf_, eol + 2, n);
      buf_.erase(0, eol + 2 + n + 2);
      if (n == 0) break;  // no trailers from luacs
    }
  } else {
    const size_t len = r.has("content-length") ? std::stoul(r.header("content-length")) : 0;
    while (buf_.size() < len)
      if (!fill()) return HttpResponse{};
    r.body = buf_.substr(0, len);
    buf_.erase(0, len);
  }
  const std::string set = r.header("set-cookie");
  if (!set.empty()) cookie = set.substr(0, set.find(';'));
  return r;
}

bool TlsClient::wait_for(std::string_view needle, std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (buf_.find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline || !fill()) return false;
  }
  return true;
}

bool TlsClient::closed_by_peer(std::chrono::milliseconds wait) {
  if (!ssl_) return true;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    char b[256];
    const int n = SSL_read(ssl_, b, sizeof b);
    if (n > 0) continue;
    const int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SSL) return true;
    if (e == SSL_ERROR_SYSCALL) return errno != EAGAIN && errno != EWOULDBLOCK;
  }
  return false;
}

bool TlsClient::renegotiate() {
  if (!ok_ || SSL_version(ssl_) != TLS1_2_VERSION || SSL_renegotiate(ssl_) != 1) return false;
  const int r = SSL_do_handshake(ssl_);
  ERR_clear_error();
  return r == 1;
}

bool TlsClient::resumed() const {
  return ok_ && SSL_session_reused(ssl_);
}

SslSession TlsClient::session() const {
  return SslSession(SSL_get1_session(ssl_), SSL_SESSION_free);
}

std::string TlsClient::server_serial() const {
  X509* cert = ok_ ? SSL_get0_peer_certificate(ssl_) : nullptr;
  if (!cert) return "";
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

std::string TlsClient::server_sha256() const {
  X509* cert = ok_ ? SSL_get0_peer_certificate(ssl_) : nullptr;
  if (!cert) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(cert, EVP_sha256(), md, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string TlsClient::server_key_type() const {
  X509* cert = ok_ ? SSL_get0_peer_certificate(ssl_) : nullptr;
  if (!cert) return "";
  const EVP_PKEY* key = X509_get0_pubkey(cert);
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) return "EC";
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) return "RSA";
  return "other";
}

}  // namespace luacs::test
