#include "core/connreq/stun.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <zlib.h>

#include <cstring>
#include <stdexcept>

namespace luacs::connreq::stun {

namespace {

constexpr uint32_t kFingerprintXor = 0x5354554e;

uint16_t get16(const unsigned char* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t get32(const unsigned char* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
void put16(std::string& s, size_t at, uint16_t v) {
  s[at] = static_cast<char>(v >> 8);
  s[at + 1] = static_cast<char>(v & 0xff);
}
void append16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v & 0xff));
}
void append32(std::string& s, uint32_t v) {
  append16(s, static_cast<uint16_t>(v >> 16));
  append16(s, static_cast<uint16_t>(v & 0xffff));
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// The message type: the method's 12 bits interleaved with the class's two
// (RFC 5389 §6, figure 3).
uint16_t message_type(uint16_t method, Class c) {
  const unsigned cls = static_cast<unsigned>(c);
  return static_cast<uint16_t>((method & 0x000f) | (method & 0x0070) << 1 | (method & 0x0f80) << 2 |
                               (cls & 1) << 4 | (cls & 2) << 7);
}

std::array<unsigned char, 20> hmac_sha1(std::string_view key, std::string_view data) {
  std::array<unsigned char, 20> out{};
  unsigned len = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), bytes(data), data.size(), out.data(),
       &len);
  return out;
}

uint32_t fingerprint_of(std::string_view data) {
  return static_cast<uint32_t>(crc32(0L, bytes(data), static_cast<uInt>(data.size()))) ^
         kFingerprintXor;
}

// The (XOR-)MAPPED-ADDRESS value; nullopt when malformed.
std::optional<Address> decode_address(const unsigned char* v, size_t len, bool xored,
                                      const unsigned char* header) {
  if (len < 4) return std::nullopt;
  Address a;
  const unsigned family = v[1];
  const size_t ip_len = family == 1 ? 4 : family == 2 ? 16 : 0;
  if (ip_len == 0 || len != 4 + ip_len) return std::nullopt;
  a.family = family == 1 ? AF_INET : AF_INET6;
  a.port = get16(v + 2);
  std::memcpy(a.ip.data(), v + 4, ip_len);
  if (xored) {
    // The port is xored with the cookie's top half, the address with the
    // cookie and then the transaction id (header bytes 4..19).
    a.port ^= static_cast<uint16_t>(kMagicCookie >> 16);
    for (size_t i = 0; i < ip_len; ++i) a.ip[i] ^= header[4 + i];
  }
  return a;
}

void append_address(std::string& s, uint16_t type, const Address& a, bool xored,
                    const TransactionId& t) {
  const size_t ip_len = a.family == AF_INET ? 4 : 16;
  append16(s, type);
  append16(s, static_cast<uint16_t>(4 + ip_len));
  s.push_back(0);
  s.push_back(a.family == AF_INET ? 1 : 2);
  unsigned char key[16];
  for (int i = 0; i < 4; ++i) key[i] = static_cast<unsigned char>(kMagicCookie >> (24 - 8 * i));
  std::memcpy(key + 4, t.data(), t.size());
  append16(s, xored ? static_cast<uint16_t>(a.port ^ (kMagicCookie >> 16)) : a.port);
  for (size_t i = 0; i < ip_len; ++i)
    s.push_back(static_cast<char>(xored ? a.ip[i] ^ key[i] : a.ip[i]));
}

void append_attribute(std::string& s, uint16_t type, std::string_view value) {
  append16(s, type);
  append16(s, static_cast<uint16_t>(value.size()));
  s.append(value);
  while (s.size() % 4 != 0) s.push_back(0);
}

std::string header(uint16_t type, const TransactionId& t) {
  std::string s;
  s.reserve(128);
  append16(s, type);
  append16(s, 0);  // length, set as attributes are added
  append32(s, kMagicCookie);
  s.append(reinterpret_cast<const char*>(t.data()), t.size());
  return s;
}

void set_length(std::string& s, size_t attributes) {
  put16(s, 2, static_cast<uint16_t>(attributes));
}

// MESSAGE-INTEGRITY: the HMAC covers the message with its length field
// already counting the MESSAGE-INTEGRITY attribute (RFC 5389 §15.4).
void append_integrity(std::string& s, std::string_view key) {
  set_length(s, s.size() - kHeaderSize + 24);
  const auto mac = hmac_sha1(key, s);
  append_attribute(s, kAttrMessageIntegrity,
                   std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

void append_fingerprint(std::string& s) {
  set_length(s, s.size() - kHeaderSize + 8);
  const uint32_t fp = fingerprint_of(s);
  append16(s, kAttrFingerprint);
  append16(s, 4);
  append32(s, fp);
}

// Checks and records one attribute; false when it is malformed.
bool take_attribute(Message& m, uint16_t type, const unsigned char* v, size_t len,
                    const unsigned char* header) {
  switch (type) {
    case kAttrUsername:
      if (len == 0 || len > kMaxUsernameSize) return false;
      if (!m.username) m.username.emplace(reinterpret_cast<const char*>(v), len);
      return true;
    case kAttrConnectionRequestBinding:
      // TR-111 fixes the value; a CPE that sends another one still means
      // the same thing, so only the size is held against it.
      if (len > 64) return false;
      m.connection_request_binding = true;
      return true;
    case kAttrBindingChange:
      if (len != 0) return false;
      m.binding_change = true;
      return true;
    case kAttrXorMappedAddress:
    case kAttrMappedAddress: {
      auto a = decode_address(v, len, type == kAttrXorMappedAddress, header);
      if (!a) return false;
      (type == kAttrXorMappedAddress ? m.xor_mapped : m.mapped) = a;
      return true;
    }
    case kAttrErrorCode:
      if (len < 4) return false;
      if ((v[2] & 7) < 3 || (v[2] & 7) > 6 || v[3] > 99) return false;
      m.error_code = (v[2] & 7) * 100 + v[3];
      return true;
    default:
      if (type < 0x8000) m.unknown_required.push_back(type);
      return true;
  }
}

}  // namespace

std::optional<Address> address_of(const sockaddr* sa) {
  Address a;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    a.family = AF_INET;
    std::memcpy(a.ip.data(), &in->sin_addr, 4);
    a.port = ntohs(in->sin_port);
    return a;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    a.port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      a.family = AF_INET;
      std::memcpy(a.ip.data(), in6->sin6_addr.s6_addr + 12, 4);
    } else {
      a.family = AF_INET6;
      std::memcpy(a.ip.data(), in6->sin6_addr.s6_addr, 16);
    }
    return a;
  }
  return std::nullopt;
}

std::string to_string(const Address& a) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(a.family, a.ip.data(), text, sizeof text);
  const std::string port = std::to_string(a.port);
  return a.family == AF_INET6 ? "[" + std::string(text) + "]:" + port
                              : std::string(text) + ":" + port;
}

std::string_view to_string(ParseError e) {
  switch (e) {
    case ParseError::kTruncated:
      return "truncated";
    case ParseError::kOversized:
      return "oversized";
    case ParseError::kNotStun:
      return "not_stun";
    case ParseError::kBadLength:
      return "bad_length";
    case ParseError::kBadCookie:
      return "bad_cookie";
    case ParseError::kUnknownMethod:
      return "unknown_method";
    case ParseError::kBadAttribute:
      return "bad_attribute";
    case ParseError::kBadFingerprint:
      return "bad_fingerprint";
  }
  return "?";
}

Parsed parse(std::string_view d) {
  auto fail = [](ParseError e) { return Parsed{std::nullopt, e}; };
  if (d.size() > kMaxMessageSize) return fail(ParseError::kOversized);
  if (d.size() < kHeaderSize) return fail(ParseError::kTruncated);
  const unsigned char* p = bytes(d);
  if (p[0] & 0xc0) return fail(ParseError::kNotStun);
  const size_t length = get16(p + 2);
  if (length % 4 != 0) return fail(ParseError::kBadLength);
  if (kHeaderSize + length > d.size()) return fail(ParseError::kTruncated);
  if (kHeaderSize + length < d.size()) return fail(ParseError::kBadLength);
  if (get32(p + 4) != kMagicCookie) return fail(ParseError::kBadCookie);

  const uint16_t type = get16(p);
  Message m;
  m.method = static_cast<uint16_t>((type & 0x000f) | (type & 0x00e0) >> 1 | (type & 0x3e00) >> 2);
  m.cls = static_cast<Class>((type >> 4 & 1) | (type >> 7 & 2));
  if (m.method != kMethodBinding) return fail(ParseError::kUnknownMethod);
  std::memcpy(m.transaction.data(), p + 8, m.transaction.size());

  size_t at = kHeaderSize;
  while (at < d.size()) {
    if (d.size() - at < 4) return fail(ParseError::kBadAttribute);
    const uint16_t attr = get16(p + at);
    const size_t len = get16(p + at + 2);
    const size_t padded = (len + 3) & ~size_t{3};
    if (padded > d.size() - at - 4) return fail(ParseError::kBadAttribute);
    const unsigned char* v = p + at + 4;
    if (attr == kAttrFingerprint) {
      // FINGERPRINT is the last attribute (RFC 5389 §15.5).
      if (len != 4 || at + 8 != d.size()) return fail(ParseError::kBadAttribute);
      if (get32(v) != fingerprint_of(d.substr(0, at))) return fail(ParseError::kBadFingerprint);
      m.has_fingerprint = true;
    } else if (m.has_integrity) {
      // RFC 5389 §15.4: what follows MESSAGE-INTEGRITY (but FINGERPRINT)
      // is ignored.
    } else if (attr == kAttrMessageIntegrity) {
      if (len != 20) return fail(ParseError::kBadAttribute);
      m.has_integrity = true;
      std::memcpy(m.integrity.data(), v, 20);
      m.integrity_input.assign(d.substr(0, at));
      put16(m.integrity_input, 2, static_cast<uint16_t>(at - kHeaderSize + 24));
    } else if (!take_attribute(m, attr, v, len, p)) {
      return fail(ParseError::kBadAttribute);
    }
    at += 4 + padded;
  }
  return Parsed{std::move(m), ParseError::kTruncated};
}

bool integrity_ok(const Message& m, std::string_view key) {
  if (!m.has_integrity) return false;
  const auto mac = hmac_sha1(key, m.integrity_input);
  return CRYPTO_memcmp(mac.data(), m.integrity.data(), mac.size()) == 0;
}

std::string binding_success(const TransactionId& transaction, const Address& mapped,
                            std::optional<std::string_view> key) {
  std::string s = header(message_type(kMethodBinding, Class::kSuccess), transaction);
  append_address(s, kAttrXorMappedAddress, mapped, true, transaction);
  append_address(s, kAttrMappedAddress, mapped, false, transaction);
  set_length(s, s.size() - kHeaderSize);
  if (key) append_integrity(s, *key);
  append_fingerprint(s);
  return s;
}

std::string binding_error(const TransactionId& transaction, int code, std::string_view reason) {
  if (code < 300 || code > 699) throw std::invalid_argument("STUN error code out of range");
  std::string s = header(message_type(kMethodBinding, Class::kError), transaction);
  std::string value;
  append16(value, 0);
  value.push_back(static_cast<char>(code / 100));
  value.push_back(static_cast<char>(code % 100));
  value.append(reason.substr(0, 127));
  append_attribute(s, kAttrErrorCode, value);
  set_length(s, s.size() - kHeaderSize);
  append_fingerprint(s);
  return s;
}

std::string binding_request(const TransactionId& transaction, const RequestOptions& o) {
  std::string s = header(message_type(kMethodBinding, o.cls), transaction);
  if (o.username) append_attribute(s, kAttrUsername, *o.username);
  if (o.connection_request_binding)
    append_attribute(s, kAttrConnectionRequestBinding, kConnectionRequestBindingValue);
  if (o.binding_change) append_attribute(s, kAttrBindingChange, {});
  set_length(s, s.size() - kHeaderSize);
  if (o.key) append_integrity(s, *o.key);
  if (o.fingerprint) append_fingerprint(s);
  return s;
}

TransactionId random_transaction() {
  TransactionId t{};
  if (RAND_bytes(t.data(), static_cast<int>(t.size())) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return t;
}

}  // namespace luacs::connreq::stun
