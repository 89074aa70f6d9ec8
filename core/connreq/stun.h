// STUN (RFC 5389) as far as TR-111 Part 2 needs it: the Binding method,
// short-term credentials (USERNAME, MESSAGE-INTEGRITY), FINGERPRINT, the
// TR-111 attributes CONNECTION-REQUEST-BINDING and BINDING-CHANGE, and the
// Binding responses a server sends. Pure: bytes in, bytes out, no I/O.
//
// Every datagram is untrusted. parse() either returns a message whose every
// attribute it understood is well-formed, or the reason it refused it (the
// STUN server counts the reasons).
//
// Not handled: RFC 3489 ("classic STUN") requests without the magic cookie
// (refused as kBadCookie), long-term credentials, methods other than Binding.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace luacs::connreq::stun {

constexpr uint32_t kMagicCookie = 0x2112A442;
constexpr size_t kHeaderSize = 20;
// Largest datagram accepted. RFC 5389 §7.1 sizes messages for a 576-byte
// path MTU (548 bytes of STUN after the IP and UDP headers) unless the path
// is known to take more; what a CPE sends to keep its binding (USERNAME,
// MESSAGE-INTEGRITY, FINGERPRINT, the TR-111 attributes) is well under
// 200 bytes. Anything larger is refused before it is looked at.
constexpr size_t kMaxMessageSize = 548;
// RFC 5389 §15.3: a USERNAME is shorter than 513 bytes.
constexpr size_t kMaxUsernameSize = 512;

constexpr uint16_t kMethodBinding = 0x001;

// Attribute types.
constexpr uint16_t kAttrMappedAddress = 0x0001;
constexpr uint16_t kAttrUsername = 0x0006;
constexpr uint16_t kAttrMessageIntegrity = 0x0008;
constexpr uint16_t kAttrErrorCode = 0x0009;
constexpr uint16_t kAttrXorMappedAddress = 0x0020;
constexpr uint16_t kAttrSoftware = 0x8022;
constexpr uint16_t kAttrFingerprint = 0x8028;
constexpr uint16_t kAttrConnectionRequestBinding = 0xC001;  // TR-111
constexpr uint16_t kAttrBindingChange = 0xC002;             // TR-111
// The value TR-111 gives CONNECTION-REQUEST-BINDING (20 bytes, the trailing
// blank included).
constexpr std::string_view kConnectionRequestBindingValue = "dslforum.org/TR-111 ";

enum class Class { kRequest, kIndication, kSuccess, kError };

using TransactionId = std::array<unsigned char, 12>;

// A transport address as the (XOR-)MAPPED-ADDRESS attributes carry it.
struct Address {
  int family = 0;                      // AF_INET or AF_INET6
  std::array<unsigned char, 16> ip{};  // network order; the first 4 bytes for IPv4
  uint16_t port = 0;
  bool operator==(const Address&) const = default;
};
// From a socket address (IPv4, IPv6; an IPv4-mapped IPv6 address becomes
// IPv4); nullopt for another family.
std::optional<Address> address_of(const sockaddr* sa);
// "192.0.2.1:32853", "[2001:db8::1]:32853".
std::string to_string(const Address& a);

enum class ParseError {
  kTruncated,       // shorter than its header or than its length field says
  kOversized,       // longer than kMaxMessageSize
  kNotStun,         // the first two bits are not zero
  kBadLength,       // length field not a multiple of 4, or shorter than the datagram
  kBadCookie,       // not RFC 5389's magic cookie (RFC 3489 clients included)
  kUnknownMethod,   // not Binding
  kBadAttribute,    // runs past the end, wrong size, bad value, or after FINGERPRINT
  kBadFingerprint,  // FINGERPRINT present and wrong
};
// "truncated", "oversized", ...: metric labels and log text.
std::string_view to_string(ParseError e);

struct Message {
  Class cls = Class::kRequest;
  uint16_t method = kMethodBinding;
  TransactionId transaction{};
  std::optional<std::string> username;
  bool has_integrity = false;
  bool has_fingerprint = false;
  bool connection_request_binding = false;  // TR-111 CONNECTION-REQUEST-BINDING
  bool binding_change = false;              // TR-111 BINDING-CHANGE
  std::optional<Address> xor_mapped;        // in responses
  std::optional<Address> mapped;            // in responses
  std::optional<int> error_code;            // in error responses
  // Comprehension-required attributes (type < 0x8000) not understood here;
  // they are skipped (a Binding server has nothing to do with them).
  std::vector<uint16_t> unknown_required;

  // What MESSAGE-INTEGRITY covers (the header with its length adjusted, and
  // every attribute before it) and the HMAC it carried: filled by parse()
  // when has_integrity.
  std::string integrity_input;
  std::array<unsigned char, 20> integrity{};
};

struct Parsed {
  std::optional<Message> message;             // set on success
  ParseError error = ParseError::kTruncated;  // when message is empty
};
Parsed parse(std::string_view datagram);

// Whether the message's MESSAGE-INTEGRITY is the HMAC-SHA1 of what it
// covers under `key` (short-term credentials: the key is the password).
// False when it has none. Constant time in the HMAC comparison.
bool integrity_ok(const Message& m, std::string_view key);

// ---- building (server responses, and requests for tests and simulated CPEs)

// A Binding Success Response to `request`: XOR-MAPPED-ADDRESS and
// MAPPED-ADDRESS (for clients that predate XOR-MAPPED-ADDRESS) of `mapped`;
// MESSAGE-INTEGRITY under `key` when given; FINGERPRINT.
std::string binding_success(const TransactionId& transaction, const Address& mapped,
                            std::optional<std::string_view> key);
// A Binding Error Response with ERROR-CODE `code` (300..699) and `reason`,
// then FINGERPRINT. No MESSAGE-INTEGRITY: RFC 5389 §10.1.2 sends a 400/401
// without one (the server has no key it can trust the client to share).
std::string binding_error(const TransactionId& transaction, int code, std::string_view reason);

struct RequestOptions {
  Class cls = Class::kRequest;
  std::optional<std::string> username;
  std::optional<std::string> key;  // adds MESSAGE-INTEGRITY under this key
  bool connection_request_binding = false;
  bool binding_change = false;
  bool fingerprint = true;
};
std::string binding_request(const TransactionId& transaction, const RequestOptions& o);

// A random transaction id (OpenSSL's CSPRNG).
TransactionId random_transaction();

}  // namespace luacs::connreq::stun
