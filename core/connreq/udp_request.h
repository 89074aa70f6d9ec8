// The TR-111 Part 2 (TR-069 Annex G) UDP connection request: one datagram
//
//   GET http://<host>:<port>?ts=<unix seconds>&id=<message id>&un=<username>&cn=<cnonce>
//       &sig=<hex> HTTP/1.1\r\nHost: <host>:<port>\r\n\r\n
//
// with sig = HMAC-SHA1(key = ConnectionRequestPassword, text = ts ‖ id ‖ un ‖ cn)
// in lower-case hex. There is no reply; the ACS sends it a few times with
// the same id. Pure: text in, text out.
//
// UdpRequestVerifier is what a CPE does with it (the simulated CPEs of the
// tests and of the load generator use it).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace luacs::connreq {

struct UdpRequest {
  std::string host;  // the CPE's public address as the request line names it ("[v6]" bracketed)
  uint16_t port = 0;
  uint64_t ts = 0;        // seconds since the epoch
  std::string id;         // message id (decimal digits), the same for every retransmission
  std::string username;   // ConnectionRequestUsername
  std::string cnonce;     // random
  std::string signature;  // lower-case hex HMAC-SHA1 (parse_udp_request fills it)
};

// hex(HMAC-SHA1(password, ts ‖ id ‖ un ‖ cn)).
std::string udp_request_signature(std::string_view password, uint64_t ts, std::string_view id,
                                  std::string_view username, std::string_view cnonce);

// The datagram, signed with `password`. un and cn are percent-encoded when
// they hold anything but RFC 3986 unreserved characters (the signature is
// over the raw values).
std::string format_udp_request(const UdpRequest& r, std::string_view password);

// A datagram as format_udp_request writes it; nullopt when it is not one
// (other method, missing or repeated ts/id/un/cn/sig, ts or id not decimal,
// sig not 40 hex digits, missing Host line, larger than 2048 bytes).
std::optional<UdpRequest> parse_udp_request(std::string_view datagram);

// The CPE's side (TR-069 Annex G.2.2): a request is accepted when it
// parses, un is the CPE's ConnectionRequestUsername, sig verifies under its
// ConnectionRequestPassword (compared case-insensitively), ts is not older
// than the last accepted one, and its id has not been accepted before (so
// the retransmissions of one request wake the CPE once).
class UdpRequestVerifier {
 public:
  enum class Verdict { kAccepted, kMalformed, kWrongUser, kBadSignature, kStale, kReplayed };

  UdpRequestVerifier(std::string username, std::string password)
      : username_(std::move(username)), password_(std::move(password)) {}

  Verdict check(std::string_view datagram);
  // The last accepted request (after kAccepted).
  const std::optional<UdpRequest>& last() const { return last_; }

 private:
  static constexpr size_t kIdsKept = 64;
  std::string username_, password_;
  std::optional<UdpRequest> last_;
  std::deque<std::string> ids_;  // the last kIdsKept accepted ids
};

std::string_view to_string(UdpRequestVerifier::Verdict v);

}  // namespace luacs::connreq
