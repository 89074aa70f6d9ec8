// core/tls/context: server contexts from the files scripts/dev-ca makes,
// exercised by real handshakes between two OpenSSL ends over a BIO pair (no
// sockets): ECDSA and RSA side by side, the protocol floor, resumption by
// ticket across a reload, a bad reload keeping the old context, and what a
// client certificate says (valid, expired, revoked, unknown).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/tls/context.h"

using namespace luacs;

namespace {

namespace fs = std::filesystem;

// One throw-away CA for the whole file, with a few device certificates.
class Ca : public ::testing::Environment {
 public:
  static fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("luacs-tls-" + std::to_string(getpid()));
    const std::string ca = std::string(LUACS_SOURCE_DIR) + "/scripts/dev-ca " + dir.string();
    ASSERT_EQ(std::system((ca + " >/dev/null").c_str()), 0);
    for (const char* extra : {" device SN1", " device OLD --expired", " device BAD --revoked"})
      ASSERT_EQ(std::system((ca + extra + " >/dev/null").c_str()), 0) << extra;
  }
  void TearDown() override { fs::remove_all(dir); }
};
fs::path Ca::dir;
const auto* const kCa = ::testing::AddGlobalTestEnvironment(new Ca);

std::string file(const std::string& name) {
  return (Ca::dir / name).string();
}

tls::Settings both_certs() {
  tls::Settings s;
  s.certs = {file("server-ecdsa.crt"), file("server-rsa.crt")};
  s.keys = {file("server-ecdsa.key"), file("server-rsa.key")};
  return s;
}

using SslPtr = std::unique_ptr<SSL, decltype(&SSL_free)>;
using CtxPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

struct ClientOptions {
  std::string sigalgs;  // "" = OpenSSL's default
  int max_version = 0;  // 0 = any
  std::string cert;     // device certificate ("" = none)
  SSL_SESSION* resume = nullptr;
};

ClientOptions sigalgs(std::string v) {
  ClientOptions o;
  o.sigalgs = std::move(v);
  return o;
}
ClientOptions max_version(int v) {
  ClientOptions o;
  o.max_version = v;
  return o;
}
ClientOptions cert(std::string v) {
  ClientOptions o;
  o.cert = std::move(v);
  return o;
}
ClientOptions resume(SSL_SESSION* v) {
  ClientOptions o;
  o.resume = v;
  return o;
}

CtxPtr client_ctx(const ClientOptions& o) {
  CtxPtr c(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  SSL_CTX_load_verify_locations(c.get(), file("ca.crt").c_str(), nullptr);
  SSL_CTX_set_verify(c.get(), SSL_VERIFY_PEER, nullptr);
  if (!o.sigalgs.empty()) SSL_CTX_set1_sigalgs_list(c.get(), o.sigalgs.c_str());
  if (o.max_version) {
    SSL_CTX_set_min_proto_version(c.get(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(c.get(), o.max_version);
    SSL_CTX_set_security_level(c.get(), 0);
  }
  if (!o.cert.empty()) {
    SSL_CTX_use_certificate_file(c.get(), file(o.cert + ".crt").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(c.get(), file(o.cert + ".key").c_str(), SSL_FILETYPE_PEM);
  }
  return c;
}

// A handshake and one byte each way (so TLS 1.3 tickets arrive).
struct Handshake {
  bool ok = false;
  SslPtr client{nullptr, SSL_free};
  SslPtr server{nullptr, SSL_free};
};

Handshake handshake(const tls::Context& ctx, const ClientOptions& o = {}) {
  Handshake h;
  auto cctx = client_ctx(o);
  h.client.reset(SSL_new(cctx.get()));
  h.server.reset(SSL_new(ctx.get()));
  BIO *cb = nullptr, *sb = nullptr;
  BIO_new_bio_pair(&cb, 0, &sb, 0);
  SSL_set_bio(h.client.get(), cb, cb);
  SSL_set_bio(h.server.get(), sb, sb);
  SSL_set_tlsext_host_name(h.client.get(), "localhost");
  if (o.resume) SSL_set_session(h.client.get(), o.resume);
  SSL_set_connect_state(h.client.get());
  SSL_set_accept_state(h.server.get());
  int c = 0, s = 0;
  for (int i = 0; i < 20 && (c != 1 || s != 1); ++i) {
    if (c != 1) c = SSL_do_handshake(h.client.get());
    if (s != 1) s = SSL_do_handshake(h.server.get());
  }
  if (c != 1 || s != 1) {
    tls::openssl_errors();
    return h;
  }
  char byte = 'x';
  SSL_write(h.client.get(), &byte, 1);
  SSL_read(h.server.get(), &byte, 1);
  SSL_write(h.server.get(), &byte, 1);
  SSL_read(h.client.get(), &byte, 1);
  h.ok = true;
  return h;
}

std::string key_type(SSL* server) {
  X509* cert = SSL_get_certificate(server);
  return cert && EVP_PKEY_get_base_id(X509_get0_pubkey(cert)) == EVP_PKEY_EC ? "ecdsa" : "rsa";
}

TEST(TlsContext, EcdsaAndRsaSideBySideAndTheFloorIsTls12) {
  auto ctx = tls::Context::load(both_certs(), std::make_shared<tls::TicketKeys>());
  ASSERT_EQ(ctx->describe().size(), 2u);
  EXPECT_EQ(ctx->describe()[0].rfind("ECDSA prime256v1 CN=localhost until ", 0), 0u)
      << ctx->describe()[0];
  EXPECT_EQ(ctx->describe()[1].rfind("RSA-2048 CN=localhost until ", 0), 0u) << ctx->describe()[1];

  auto h = handshake(*ctx);
  ASSERT_TRUE(h.ok);
  EXPECT_EQ(key_type(h.server.get()), "ecdsa");
  EXPECT_EQ(SSL_version(h.server.get()), TLS1_3_VERSION);
  // A client that signs only with RSA gets the RSA certificate.
  h = handshake(*ctx, sigalgs("RSA-PSS+SHA256:RSA+SHA256"));
  ASSERT_TRUE(h.ok);
  EXPECT_EQ(key_type(h.server.get()), "rsa");
  // TLS 1.1 is refused by default, and taken when min_version allows it.
  EXPECT_FALSE(handshake(*ctx, max_version(TLS1_1_VERSION)).ok);
  auto old = both_certs();
  old.min_version = "1.0";
  auto lax = tls::Context::load(old, nullptr);
  h = handshake(*lax, max_version(TLS1_1_VERSION));
  ASSERT_TRUE(h.ok);
  EXPECT_EQ(SSL_version(h.server.get()), TLS1_1_VERSION);
}

TEST(TlsContext, BadFilesAreRefusedWithTheFileAndTheReason) {
  auto keys = std::make_shared<tls::TicketKeys>();
  auto expect_error = [&](tls::Settings s, const std::string& part) {
    try {
      tls::Context::load(s, keys);
      ADD_FAILURE() << "loaded; expected an error with '" << part << "'";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  auto s = both_certs();
  s.keys = {file("server-rsa.key"), file("server-ecdsa.key")};  // swapped
  expect_error(s, "server-rsa.key");
  s = both_certs();
  s.certs[0] = file("missing.crt");
  expect_error(s, "missing.crt");
  s = both_certs();
  s.keys.pop_back();
  expect_error(s, "2 certificates but 1 keys");
  s = both_certs();
  s.min_version = "1.4";
  expect_error(s, "min_version '1.4'");
  s = both_certs();
  s.ciphers = "NO-SUCH-CIPHER";
  expect_error(s, "tls_ciphers 'NO-SUCH-CIPHER'");
  s = both_certs();
  s.client_auth = tls::ClientAuth::kRequired;
  expect_error(s, "tls_client_ca");
  expect_error(tls::Settings{}, "needs tls_cert and tls_key");
  s = both_certs();
  std::swap(s.keys[0], s.keys[1]);  // each key is of the other certificate's type
  expect_error(s, "server-rsa.key: does not match");
  s = both_certs();
  s.keys[1] = s.keys[0];  // an ECDSA key for the RSA certificate
  expect_error(s, "server-ecdsa.key: does not match " + file("server-rsa.crt"));
}

TEST(TlsContext, TicketsResumeAcrossAReloadAndABadReloadKeepsTheOld) {
  tls::Holder holder(both_certs(), std::make_shared<tls::TicketKeys>());
  auto first = handshake(*holder.current());
  ASSERT_TRUE(first.ok);
  SSL_SESSION* session = SSL_get1_session(first.client.get());
  ASSERT_NE(session, nullptr);
  EXPECT_FALSE(SSL_session_reused(first.server.get()));

  const auto before = holder.current();
  EXPECT_EQ(holder.reload(), "");
  EXPECT_NE(holder.current(), before);  // a new context...
  auto again = handshake(*holder.current(), resume(session));
  ASSERT_TRUE(again.ok);
  EXPECT_TRUE(SSL_session_reused(again.server.get()));  // ...that opens the old tickets
  SSL_SESSION_free(session);

  auto broken = both_certs();
  broken.keys[1] = file("missing.key");
  const auto serving = holder.current();
  const std::string error = holder.reload(broken);
  EXPECT_NE(error.find("missing.key"), std::string::npos) << error;
  EXPECT_EQ(holder.current(), serving);

  // Without tickets a fresh context does not resume what another issued.
  auto off = both_certs();
  off.session_tickets = false;
  auto a = tls::Context::load(off, nullptr);
  auto h = handshake(*a);
  ASSERT_TRUE(h.ok);
  SSL_SESSION* s2 = SSL_get1_session(h.client.get());
  auto b = tls::Context::load(off, nullptr);
  auto h2 = handshake(*b, resume(s2));
  ASSERT_TRUE(h2.ok);
  EXPECT_FALSE(SSL_session_reused(h2.server.get()));
  SSL_SESSION_free(s2);
}

TEST(TlsContext, TicketKeysRotateAndOnlyKnownKeysOpen) {
  tls::TicketKeys keys(std::chrono::seconds(0));  // every ticket gets a fresh key
  const auto k1 = keys.current();
  const auto k2 = keys.current();
  EXPECT_NE(std::memcmp(k1.name, k2.name, sizeof k1.name), 0);
  EXPECT_EQ(keys.rotations(), 2u);
  tls::TicketKeys::Key found{};
  bool is_current = true;
  tls::TicketKeys slow(std::chrono::hours(1));
  const auto k = slow.current();
  ASSERT_TRUE(slow.find(k.name, &found, &is_current));
  EXPECT_TRUE(is_current);
  unsigned char other[16] = {};
  EXPECT_FALSE(slow.find(other, &found, &is_current));
}

TEST(TlsContext, ClientCertificatesAreReadAndJudged) {
  auto s = both_certs();
  s.client_auth = tls::ClientAuth::kOptional;
  s.client_ca = file("ca.crt");
  s.crl = file("crl.pem");
  auto ctx = tls::Context::load(s, nullptr);

  auto h = handshake(*ctx, cert("device-SN1"));
  ASSERT_TRUE(h.ok);
  auto p = tls::peer_certificate(h.server.get());
  EXPECT_TRUE(p.present);
  EXPECT_TRUE(p.verified) << p.reason;
  EXPECT_EQ(p.common_name, "SN1");
  EXPECT_EQ(p.subject, "CN=SN1");  // dev-ca keeps only the CN
  EXPECT_EQ(p.sans, std::vector<std::string>{"URI:urn:luacs:device:SN1"});
  EXPECT_EQ(p.sha256.size(), 64u);
  EXPECT_FALSE(p.serial.empty());
  EXPECT_EQ(p.not_after.size(), 20u) << p.not_after;

  // The handshake completes; the verdict is the server's to act on.
  h = handshake(*ctx, cert("device-OLD"));
  ASSERT_TRUE(h.ok);
  p = tls::peer_certificate(h.server.get());
  EXPECT_FALSE(p.verified);
  EXPECT_EQ(p.reason, "certificate has expired");
  h = handshake(*ctx, cert("device-BAD"));
  ASSERT_TRUE(h.ok);
  p = tls::peer_certificate(h.server.get());
  EXPECT_FALSE(p.verified);
  EXPECT_EQ(p.reason, "certificate revoked");
  // No certificate: nothing present (required or not is the server's call).
  h = handshake(*ctx);
  ASSERT_TRUE(h.ok);
  EXPECT_FALSE(tls::peer_certificate(h.server.get()).present);
  // A certificate for servers (its extended key usage) is no client's.
  h = handshake(*ctx, cert("server-ecdsa"));
  ASSERT_TRUE(h.ok);
  p = tls::peer_certificate(h.server.get());
  EXPECT_FALSE(p.verified);
  EXPECT_FALSE(p.reason.empty());
}

}  // namespace
