// The STUN parser of the TR-111 server (core/connreq/stun.h): every
// datagram is untrusted.
//
// Input: a datagram. Properties: parse() returns a message or a reason,
// never throws; what it accepts is within the size limits, and the
// messages luacs builds from it (the request a CPE would send with the
// same attributes, the server's success and error responses) parse back
// with the same transaction, attributes and a MESSAGE-INTEGRITY that
// verifies under the key, and not under another.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/connreq/stun.h"
#include "fuzz/common.h"

using namespace luacs::connreq;

namespace {

constexpr std::string_view kKey = "cr-password";

void seeds(luacs::fuzz::SeedWriter& w);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  luacs::fuzz::write_seeds_if_asked(&seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view d(reinterpret_cast<const char*>(data), size);
  const stun::Parsed p = stun::parse(d);
  if (!p.message) {
    FUZZ_CHECK(!stun::to_string(p.error).empty() && stun::to_string(p.error) != "?", "reason");
    return 0;
  }
  const stun::Message& m = *p.message;
  FUZZ_CHECK(size >= stun::kHeaderSize && size <= stun::kMaxMessageSize && size % 4 == 0, "size");
  FUZZ_CHECK(m.method == stun::kMethodBinding, "method");
  if (m.username) FUZZ_CHECK(m.username->size() <= stun::kMaxUsernameSize, "username size");
  if (m.has_integrity) (void)stun::integrity_ok(m, kKey);
  if (m.error_code) FUZZ_CHECK(*m.error_code >= 300 && *m.error_code <= 699, "error code");
  for (const auto* a : {&m.xor_mapped, &m.mapped})
    if (*a) FUZZ_CHECK(!stun::to_string(**a).empty(), "address text");

  // The same request as luacs would build it.
  if (m.cls == stun::Class::kRequest || m.cls == stun::Class::kIndication) {
    stun::RequestOptions o;
    o.cls = m.cls;
    o.username = m.username;
    o.key = std::string(kKey);
    o.connection_request_binding = m.connection_request_binding;
    o.binding_change = m.binding_change;
    o.fingerprint = m.has_fingerprint;
    const std::string built = stun::binding_request(m.transaction, o);
    if (built.size() <= stun::kMaxMessageSize) {
      const stun::Parsed b = stun::parse(built);
      FUZZ_CHECK(b.message,
                 "luacs's own request refused: " + std::string(stun::to_string(b.error)));
      FUZZ_CHECK(b.message->cls == m.cls && b.message->transaction == m.transaction &&
                     b.message->username == m.username &&
                     b.message->connection_request_binding == m.connection_request_binding &&
                     b.message->binding_change == m.binding_change &&
                     b.message->has_fingerprint == m.has_fingerprint && b.message->has_integrity,
                 "request read back differs");
      FUZZ_CHECK(stun::integrity_ok(*b.message, kKey), "integrity under the key");
      FUZZ_CHECK(!stun::integrity_ok(*b.message, "other"), "integrity under another key");
    }
  }

  // The server's answers to it.
  stun::Address mapped;
  if (m.xor_mapped) {
    mapped = *m.xor_mapped;
  } else {
    mapped.family = AF_INET;
    mapped.ip = {198, 51, 100, 7};
    mapped.port = 30005;
  }
  const stun::Parsed ok = stun::parse(stun::binding_success(m.transaction, mapped, kKey));
  FUZZ_CHECK(ok.message && ok.message->cls == stun::Class::kSuccess &&
                 ok.message->transaction == m.transaction && ok.message->xor_mapped == mapped &&
                 ok.message->mapped == mapped && ok.message->has_fingerprint,
             "success response read back");
  FUZZ_CHECK(stun::integrity_ok(*ok.message, kKey), "success response integrity");
  const int code = m.error_code.value_or(401);
  const stun::Parsed err =
      stun::parse(stun::binding_error(m.transaction, code, m.username.value_or("Unauthorized")));
  FUZZ_CHECK(err.message && err.message->cls == stun::Class::kError &&
                 err.message->error_code == code && err.message->transaction == m.transaction,
             "error response read back");
  return 0;
}

namespace {

void seeds(luacs::fuzz::SeedWriter& w) {
  stun::TransactionId t{};
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<unsigned char>(0xa0 + i);
  stun::RequestOptions o;
  w.add(stun::binding_request(t, o));
  o.username = "00D09E-HG-SN1";
  o.connection_request_binding = true;
  w.add(stun::binding_request(t, o));
  o.key = "secret";
  o.binding_change = true;
  w.add(stun::binding_request(t, o));
  o.fingerprint = false;
  o.cls = stun::Class::kIndication;
  w.add(stun::binding_request(t, o));
  stun::Address a;
  a.family = AF_INET6;
  a.ip = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  a.port = 32853;
  w.add(stun::binding_success(t, a, std::nullopt));
  w.add(stun::binding_success(t, a, "k"));
  w.add(stun::binding_error(t, 400, "Bad Request"));
}

}  // namespace
