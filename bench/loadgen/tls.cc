#include "bench/loadgen/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace luacs::loadgen {
namespace {

// The SSL's ex_data slot holding where its new sessions go.
int store_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::string openssl_reason() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// SSL_CTX_sess_set_new_cb: TLS 1.3 tickets come after the handshake, so
// the session to resume is the one the server issued last, not the one the
// handshake ended with.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto** store = static_cast<SSL_SESSION**>(SSL_get_ex_data(ssl, store_index()));
  if (!store) return 0;
  if (*store) SSL_SESSION_free(*store);
  *store = session;
  return 1;  // the reference is ours now
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

template <typename T, typename Read>
T* read_pem(const std::string& path, Read read) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "r"));
  if (!f) throw std::runtime_error("--tls-cert-dir: cannot read " + path);
  T* v = read(f.get(), nullptr, nullptr, nullptr);
  if (!v) throw std::runtime_error("--tls-cert-dir: " + path + ": " + openssl_reason());
  return v;
}

// The serial a certificate file is for: device-SERIAL.crt (what
// scripts/dev-ca makes) or SERIAL.crt; "" for other files.
std::string serial_of(const std::filesystem::path& p) {
  if (p.extension() != ".crt") return "";
  std::string stem = p.stem().string();
  constexpr std::string_view kPrefix = "device-";
  if (stem.compare(0, kPrefix.size(), kPrefix) == 0) stem.erase(0, kPrefix.size());
  return stem;
}

}  // namespace

TlsClient::TlsClient(const TlsOptions& o, const Target& target) : host_(target.host) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (!ctx_) throw std::runtime_error("tls: SSL_CTX_new: " + openssl_reason());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  if (!o.ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, o.ca.c_str(), nullptr) != 1)
      throw std::runtime_error("--tls-ca: " + o.ca + ": " + openssl_reason());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    verify_ = true;
  }
  in6_addr a6;
  host_is_ip_ =
      inet_pton(AF_INET, host_.c_str(), &a6) == 1 || inet_pton(AF_INET6, host_.c_str(), &a6) == 1;
  if (!o.sigalgs.empty() && SSL_CTX_set1_sigalgs_list(ctx_, o.sigalgs.c_str()) != 1)
    throw std::runtime_error("--tls-sigalgs: " + o.sigalgs + ": " + openssl_reason());
  if (o.resume) {
    // The sessions are kept by the caller (SSL_CTX_sess_set_new_cb), not
    // in OpenSSL's client cache.
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx_, on_new_session);
  }
  if (!o.cert_dir.empty()) load_cert_dir(o.cert_dir);
}

TlsClient::~TlsClient() {
  for (auto& [serial, p] : certs_) {
    X509_free(p.cert);
    EVP_PKEY_free(p.key);
  }
  SSL_CTX_free(ctx_);
}

void TlsClient::load_cert_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw std::runtime_error("--tls-cert-dir: " + dir + ": " + ec.message());
  for (const auto& entry : it) {
    std::string serial = serial_of(entry.path());
    if (serial.empty()) continue;
    fs::path key = entry.path();
    key.replace_extension(".key");
    if (!fs::exists(key)) continue;  // a CA or a server certificate
    Pair p;
    p.cert = read_pem<X509>(entry.path().string(), PEM_read_X509);
    p.key = read_pem<EVP_PKEY>(key.string(), PEM_read_PrivateKey);
    if (X509_check_private_key(p.cert, p.key) != 1) {
      X509_free(p.cert);
      EVP_PKEY_free(p.key);
      throw std::runtime_error("--tls-cert-dir: " + key.string() + " does not match its .crt");
    }
    auto [at, added] = certs_.emplace(serial, p);
    if (!added) {  // device-S.crt and S.crt: the first one read stays
      X509_free(p.cert);
      EVP_PKEY_free(p.key);
    }
  }
}

SSL* TlsClient::new_ssl(const std::string& serial, SSL_SESSION* resume, SSL_SESSION** store,
                        bool* with_cert) const {
  *with_cert = false;
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return nullptr;
  if (verify_) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    int ok = host_is_ip_ ? X509_VERIFY_PARAM_set1_ip_asc(param, host_.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, host_.c_str(), 0);
    if (ok != 1) {
      SSL_free(ssl);
      return nullptr;
    }
  }
  if (!host_is_ip_) SSL_set_tlsext_host_name(ssl, host_.c_str());
  if (auto it = certs_.find(serial); it != certs_.end()) {
    if (SSL_use_certificate(ssl, it->second.cert) != 1 ||
        SSL_use_PrivateKey(ssl, it->second.key) != 1) {
      SSL_free(ssl);
      return nullptr;
    }
    *with_cert = true;
  }
  if (store) SSL_set_ex_data(ssl, store_index(), store);
  if (resume) {
    // A copy: a TLS 1.3 client marks the session it resumed used up
    // (OpenSSL's advice: a ticket once). luacs issues no new ticket on a
    // resumed connection while its ticket key is current, so the one
    // ticket is offered again and again, as long as it lives.
    SSL_SESSION* copy = SSL_SESSION_dup(resume);
    if (!copy || SSL_set_session(ssl, copy) != 1) {
      SSL_SESSION_free(copy);
      SSL_free(ssl);
      return nullptr;
    }
    SSL_SESSION_free(copy);  // the SSL holds its own reference
  }
  return ssl;
}

}  // namespace luacs::loadgen
