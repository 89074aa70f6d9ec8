// The load generator's TLS client side (--tls): one SSL_CTX for the run,
// shared by every thread, the devices' client certificates, and the hook
// that keeps the sessions the server issues for --tls-resume.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <unordered_map>

#include "bench/loadgen/options.h"

namespace luacs::loadgen {

class TlsClient {
 public:
  // Reads --tls-ca and every certificate of --tls-cert-dir up front (no
  // file is read during the run). Throws std::runtime_error naming the
  // file and OpenSSL's reason.
  TlsClient(const TlsOptions& o, const Target& target);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // An SSL for a new connection of the device with this serial: its client
  // certificate when the directory has one (*with_cert says whether),
  // `resume` offered when not null. A session the server issues on it is
  // stored in *store (the previous one there freed) when store is not
  // null; *store must outlive the SSL. Null when OpenSSL fails.
  SSL* new_ssl(const std::string& serial, SSL_SESSION* resume, SSL_SESSION** store,
               bool* with_cert) const;

  size_t certificates() const { return certs_.size(); }

 private:
  struct Pair {
    X509* cert = nullptr;
    EVP_PKEY* key = nullptr;
  };
  void load_cert_dir(const std::string& dir);

  SSL_CTX* ctx_ = nullptr;
  std::string host_;  // what the server's certificate must name (--tls-ca)
  bool host_is_ip_ = false;
  bool verify_ = false;
  std::unordered_map<std::string, Pair> certs_;  // by serial
};

}  // namespace luacs::loadgen
