// TLS server contexts (issue 14): what an https:// listener hands every new
// connection, built once from the configuration and swapped whole on reload.
//
// - Context: one immutable SSL_CTX with every certificate/key pair of the
//   configuration side by side (an ECDSA and an RSA one: OpenSSL picks the
//   one the client's signature algorithms allow), the protocol floor,
//   cipher lists, the session cache, session tickets, and the client
//   certificate settings (CA, CRL). Renegotiation and compression are off;
//   buffers are released while a connection is idle.
// - TicketKeys: the keys session tickets are sealed with, shared by every
//   Context of the process so that a reload keeps resumption working, and
//   rotated: a new key every `rotate`, the previous one still opening
//   tickets (which are then renewed).
// - Holder: the Context new connections get. reload() builds a new one
//   from the files; when that fails the old one stays and the error is
//   returned (like a broken policy). A connection keeps the SSL_CTX it
//   started with (OpenSSL counts the references).
// - PeerCertificate: what a client certificate says and whether it
//   verified, read after the handshake. The handshake never fails on a bad
//   client certificate: the server refuses the request itself, with the
//   reason in its log line and a 403, rather than a bare TLS alert.
//
// Pure OpenSSL: no sockets, no event loop; any thread.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace luacs::tls {

enum class ClientAuth { kNone, kOptional, kRequired };

struct Settings {
  // PEM certificate chains and their private keys, paired by position.
  std::vector<std::string> certs, keys;
  std::string min_version = "1.2";  // "1.0", "1.1", "1.2" or "1.3"
  std::string ciphers;              // TLS <= 1.2 (OpenSSL syntax); "" = OpenSSL's default
  std::string ciphersuites;         // TLS 1.3; "" = OpenSSL's default
  ClientAuth client_auth = ClientAuth::kNone;
  std::string client_ca;          // PEM CAs client certificates must chain to
  std::string crl;                // PEM CRLs of those CAs ("" = none checked)
  size_t session_cache = 20'000;  // sessions kept for resumption by id; 0 = off
  bool session_tickets = true;
  std::chrono::seconds session_lifetime{7200};
};

class TicketKeys {
 public:
  explicit TicketKeys(std::chrono::seconds rotate = std::chrono::hours(12));
  struct Key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    std::chrono::steady_clock::time_point made;
  };
  // The key to seal a new ticket with (a fresh one once it is `rotate` old).
  Key current();
  // The key named `name`, and whether it is the current one; false when
  // it is neither the current nor the previous one.
  bool find(const unsigned char name[16], Key* out, bool* is_current);
  uint64_t rotations() const;

 private:
  Key make() const;
  const std::chrono::seconds rotate_;
  mutable std::mutex mu_;
  Key current_{}, previous_{};
  bool has_previous_ = false;
  uint64_t rotations_ = 0;
};

class Context {
 public:
  // Reads and checks every file. Throws std::runtime_error naming the file
  // and OpenSSL's reason ("tls: /etc/luacs/cwmp.key: does not match
  // /etc/luacs/cwmp.crt").
  static std::shared_ptr<const Context> load(const Settings& s, std::shared_ptr<TicketKeys> keys);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  SSL_CTX* get() const { return ctx_; }
  const Settings& settings() const { return settings_; }
  // One line per certificate: "ECDSA P-256 CN=acs.example.net until
  // 2027-03-01" / "RSA-2048 ...", for the start-up and reload log lines.
  const std::vector<std::string>& describe() const { return described_; }

 private:
  Context() = default;
  SSL_CTX* ctx_ = nullptr;
  Settings settings_;
  std::shared_ptr<TicketKeys> keys_;  // the ticket callback reads them via app data
  std::vector<std::string> described_;
};

class Holder {
 public:
  Holder(Settings s, std::shared_ptr<TicketKeys> keys);  // throws as Context::load
  std::shared_ptr<const Context> current() const;
  // Builds a new Context from `s` (the files read again). "" when it
  // serves now; else the error, and the old one still serves.
  std::string reload(const Settings& s);
  std::string reload() { return reload(current()->settings()); }

 private:
  std::shared_ptr<TicketKeys> keys_;
  mutable std::mutex mu_;
  std::shared_ptr<const Context> current_;
};

struct PeerCertificate {
  bool present = false;
  bool verified = false;  // chains to client_ca, in its validity, not revoked
  std::string reason;     // why not verified ("certificate has expired", "certificate revoked")
  std::string subject, issuer;  // one-line RFC 2253 form
  std::string common_name;
  std::vector<std::string> sans;  // "DNS:...", "URI:...", "IP:...", "email:..."
  std::string serial;             // hex
  std::string sha256;             // fingerprint, lower-case hex
  std::string not_after;          // "2027-03-01T12:00:00Z"
};
// After the handshake of `ssl`.
PeerCertificate peer_certificate(SSL* ssl);

// The OpenSSL error queue as one line (and cleared).
std::string openssl_errors();

}  // namespace luacs::tls
