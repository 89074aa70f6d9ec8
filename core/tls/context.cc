#include "core/tls/context.h"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>
#include <stdexcept>

#include "core/util/hex.h"

namespace luacs::tls {

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::string why = openssl_errors();
  throw std::runtime_error("tls: " + what + (why.empty() ? "" : ": " + why));
}

int version_of(const std::string& v) {
  if (v == "1.0") return TLS1_VERSION;
  if (v == "1.1") return TLS1_1_VERSION;
  if (v == "1.2") return TLS1_2_VERSION;
  if (v == "1.3") return TLS1_3_VERSION;
  throw std::runtime_error("tls: min_version '" + v + "' is not 1.0, 1.1, 1.2 or 1.3");
}

// The index of the TicketKeys pointer in an SSL_CTX's app data.
int keys_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Seals (enc = 1) or opens a session ticket with the process's rotating
// keys (SSL_CTX_set_tlsext_ticket_key_evp_cb). Opening: 0 = unknown key
// (a full handshake follows), 1 = the current key, 2 = the previous one
// or TLS 1.3 (OpenSSL then issues a fresh ticket). A TLS 1.3 client uses a
// ticket once (RFC 8446 C.4, and OpenSSL's client does so): without a new
// one after each resumption, a CPE would resume only every other
// connection (the load generator measured 50 %).
int ticket_key_cb(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                  EVP_MAC_CTX* mac, int enc) {
  auto* keys = static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keys_index()));
  if (!keys) return -1;
  TicketKeys::Key k{};
  bool is_current = true;
  if (enc) {
    k = keys->current();
    std::memcpy(key_name, k.name, sizeof k.name);
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) return -1;
  } else if (!keys->find(key_name, &k, &is_current)) {
    return 0;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof k.hmac),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  const int ok = enc ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes, iv)
                     : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes, iv);
  if (ok != 1) return -1;
  if (enc) return 1;
  return is_current && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
}

// The handshake never fails on the client's certificate: the server reads
// the verdict (SSL_get_verify_result) and refuses with a reason.
int accept_any(int, X509_STORE_CTX*) {
  return 1;
}

std::string bio_text(BIO* b) {
  char* p = nullptr;
  const long n = BIO_get_mem_data(b, &p);
  return n > 0 ? std::string(p, static_cast<size_t>(n)) : std::string();
}

std::string name_text(const X509_NAME* n) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  X509_NAME_print_ex(b.get(), n, 0, XN_FLAG_RFC2253);
  return bio_text(b.get());
}

std::string common_name(const X509_NAME* n) {
  const int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
  if (i < 0) return "";
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
  if (len < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::string time_text(const ASN1_TIME* t, const char* format) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "";
  char buf[32];
  return std::string(buf, std::strftime(buf, sizeof buf, format, &tm));
}

std::string asn1_text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

std::vector<std::string> alt_names(X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS) out.push_back("DNS:" + asn1_text(g->d.dNSName));
    if (g->type == GEN_URI) out.push_back("URI:" + asn1_text(g->d.uniformResourceIdentifier));
    if (g->type == GEN_EMAIL) out.push_back("email:" + asn1_text(g->d.rfc822Name));
    if (g->type == GEN_IPADD) {
      char text[64] = "";
      const auto* ip = g->d.iPAddress;
      const int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      if (ASN1_STRING_length(ip) == 4 || ASN1_STRING_length(ip) == 16)
        inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text);
      out.push_back(std::string("IP:") + text);
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

// "ECDSA prime256v1 CN=localhost until 2028-03-05" for the log.
std::string describe(X509* cert) {
  const EVP_PKEY* key = X509_get0_pubkey(cert);
  std::string kind = "key";
  if (key && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    char group[64] = "";
    size_t len = 0;
    EVP_PKEY_get_group_name(key, group, sizeof group, &len);
    kind = std::string("ECDSA ") + group;
  } else if (key && EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    kind = "RSA-" + std::to_string(EVP_PKEY_get_bits(key));
  }
  return kind + " CN=" + common_name(X509_get_subject_name(cert)) + " until " +
         time_text(X509_get0_notAfter(cert), "%Y-%m-%d");
}

// The certificate (the first of its chain file) and its key, each read from
// its file.
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

X509Ptr read_cert(const std::string& path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_file(path.c_str(), "r"), BIO_free);
  X509Ptr x(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
  if (!x) fail(path);
  return x;
}

KeyPtr read_key(const std::string& path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_file(path.c_str(), "r"), BIO_free);
  KeyPtr k(b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr) : nullptr,
           EVP_PKEY_free);
  if (!k) fail(path);
  return k;
}

void load_pair(SSL_CTX* ctx, const std::string& cert, const std::string& key,
               std::vector<std::string>* described) {
  // Checked pair by pair: with two certificates in the context,
  // SSL_CTX_check_private_key would compare a key with the certificate of
  // its own type (an ECDSA key given for the RSA certificate "matches" the
  // ECDSA one), leaving a certificate without its key.
  const X509Ptr x = read_cert(cert);
  const KeyPtr k = read_key(key);
  if (X509_check_private_key(x.get(), k.get()) != 1) fail(key + ": does not match " + cert);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) fail(cert);
  if (SSL_CTX_use_PrivateKey(ctx, k.get()) != 1) fail(key);
  described->push_back(describe(x.get()));
}

void load_client_ca(SSL_CTX* ctx, const Settings& s) {
  if (s.client_auth == ClientAuth::kNone) return;
  if (s.client_ca.empty())
    throw std::runtime_error("tls: client certificates need tls_client_ca (a PEM file of CAs)");
  if (SSL_CTX_load_verify_locations(ctx, s.client_ca.c_str(), nullptr) != 1) fail(s.client_ca);
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.client_ca.c_str());
  if (!names) fail(s.client_ca + ": no CA certificate in it");
  SSL_CTX_set_client_CA_list(ctx, names);
  if (!s.crl.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (!lookup || X509_load_crl_file(lookup, s.crl.c_str(), X509_FILETYPE_PEM) < 1) fail(s.crl);
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
}

}  // namespace

std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += reason ? reason : buf;
  }
  return out;
}

// ---------------------------------------------------------------- TicketKeys

TicketKeys::TicketKeys(std::chrono::seconds rotate) : rotate_(rotate), current_(make()) {}

TicketKeys::Key TicketKeys::make() const {
  Key k{};
  if (RAND_bytes(k.name, sizeof k.name) != 1 || RAND_bytes(k.aes, sizeof k.aes) != 1 ||
      RAND_bytes(k.hmac, sizeof k.hmac) != 1)
    throw std::runtime_error("tls: no random bytes for a ticket key");
  k.made = std::chrono::steady_clock::now();
  return k;
}

TicketKeys::Key TicketKeys::current() {
  std::lock_guard lock(mu_);
  if (std::chrono::steady_clock::now() - current_.made >= rotate_) {
    previous_ = current_;
    has_previous_ = true;
    current_ = make();
    ++rotations_;
  }
  return current_;
}

bool TicketKeys::find(const unsigned char name[16], Key* out, bool* is_current) {
  std::lock_guard lock(mu_);
  if (std::memcmp(name, current_.name, sizeof current_.name) == 0) {
    *out = current_;
    *is_current = true;
    return true;
  }
  // The previous key opens tickets for one more period, no longer.
  if (has_previous_ && std::memcmp(name, previous_.name, sizeof previous_.name) == 0 &&
      std::chrono::steady_clock::now() - previous_.made < 2 * rotate_) {
    *out = previous_;
    *is_current = false;
    return true;
  }
  return false;
}

uint64_t TicketKeys::rotations() const {
  std::lock_guard lock(mu_);
  return rotations_;
}

// ---------------------------------------------------------------- Context

std::shared_ptr<const Context> Context::load(const Settings& s, std::shared_ptr<TicketKeys> keys) {
  ERR_clear_error();
  if (s.certs.empty())
    throw std::runtime_error("tls: an https:// listener needs tls_cert and tls_key");
  if (s.certs.size() != s.keys.size())
    throw std::runtime_error("tls: " + std::to_string(s.certs.size()) + " certificates but " +
                             std::to_string(s.keys.size()) + " keys (they pair up in order)");
  std::shared_ptr<Context> c(new Context);
  c->settings_ = s;
  c->keys_ = std::move(keys);
  c->ctx_ = SSL_CTX_new(TLS_server_method());
  if (!c->ctx_) fail("cannot make a context");
  SSL_CTX* ctx = c->ctx_;
  const int floor = version_of(s.min_version);
  SSL_CTX_set_min_proto_version(ctx, floor);
  // OpenSSL 3 refuses TLS 1.0/1.1's SHA-1 signatures at its default level.
  if (floor < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // An idle keep-alive connection holds no read/write buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (!s.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, s.ciphers.c_str()) != 1)
    fail("tls_ciphers '" + s.ciphers + "'");
  if (!s.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, s.ciphersuites.c_str()) != 1)
    fail("tls_ciphersuites '" + s.ciphersuites + "'");
  for (size_t i = 0; i < s.certs.size(); ++i) load_pair(ctx, s.certs[i], s.keys[i], &c->described_);
  load_client_ca(ctx, s);

  static const unsigned char kSessionContext[] = "luacs";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_timeout(ctx, static_cast<long>(s.session_lifetime.count()));
  if (s.session_cache) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, static_cast<long>(s.session_cache));
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  if (s.session_tickets && c->keys_) {
    SSL_CTX_set_ex_data(ctx, keys_index(), c->keys_.get());
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
    // One TLS 1.3 ticket per handshake, not OpenSSL's two: a CPE holds one
    // session, and a resumption brings it a fresh ticket (ticket_key_cb).
    SSL_CTX_set_num_tickets(ctx, 1);
  } else {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  return c;
}

Context::~Context() {
  SSL_CTX_free(ctx_);
}

// ---------------------------------------------------------------- Holder

Holder::Holder(Settings s, std::shared_ptr<TicketKeys> keys)
    : keys_(std::move(keys)), current_(Context::load(s, keys_)) {}

std::shared_ptr<const Context> Holder::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

std::string Holder::reload(const Settings& s) {
  std::shared_ptr<const Context> next;
  try {
    next = Context::load(s, keys_);
  } catch (const std::exception& e) {
    return e.what();
  }
  std::lock_guard lock(mu_);
  current_ = std::move(next);
  return "";
}

// ---------------------------------------------------------------- peers

PeerCertificate peer_certificate(SSL* ssl) {
  PeerCertificate p;
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl), X509_free);
  if (!cert) return p;
  p.present = true;
  const long verdict = SSL_get_verify_result(ssl);
  p.verified = verdict == X509_V_OK;
  if (!p.verified) p.reason = X509_verify_cert_error_string(verdict);
  p.subject = name_text(X509_get_subject_name(cert.get()));
  p.issuer = name_text(X509_get_issuer_name(cert.get()));
  p.common_name = common_name(X509_get_subject_name(cert.get()));
  p.sans = alt_names(cert.get());
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr)) {
    char* hex = BN_bn2hex(bn);
    p.serial = hex;
    OPENSSL_free(hex);
    BN_free(bn);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &len) == 1) p.sha256 = util::to_hex(md, len);
  p.not_after = time_text(X509_get0_notAfter(cert.get()), "%Y-%m-%dT%H:%M:%SZ");
  return p;
}

}  // namespace luacs::tls
