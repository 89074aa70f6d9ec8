#include "core/connreq/stun.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace luacs::connreq::stun {
namespace {

std::string from_hex(std::string_view h) {
  std::string out;
  int hi = -1;
  for (char c : h) {
    int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (v < 0) continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<char>(hi << 4 | v));
      hi = -1;
    }
  }
  return out;
}

// RFC 5769 §2.1: a request with SOFTWARE, PRIORITY, ICE-CONTROLLED,
// USERNAME (padded with blanks), MESSAGE-INTEGRITY and FINGERPRINT.
const std::string kRfc5769Request = from_hex(
    "00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74"
    "00 24 00 04 6e 00 01 ff"
    "80 29 00 08 93 2f f9 b1 51 26 3b 36"
    "00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20"
    "00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2"
    "80 28 00 04 e5 7a 3b cf");
// RFC 5769 §2.2: the IPv4 response, 192.0.2.1:32853.
const std::string kRfc5769ResponseV4 = from_hex(
    "01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
    "00 20 00 08 00 01 a1 47 e1 12 a6 43"
    "00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7"
    "80 28 00 04 c0 7d 4c 96");
// RFC 5769 §2.3: the IPv6 response, [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const std::string kRfc5769ResponseV6 = from_hex(
    "01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
    "00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9"
    "00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41"
    "80 28 00 04 c8 fb 0b 4c");
const std::string kRfc5769Password = "VOkJxbRl1RmTxUk/WvJxBt";

Address v4(const char* ip, uint16_t port) {
  Address a;
  a.family = AF_INET;
  inet_pton(AF_INET, ip, a.ip.data());
  a.port = port;
  return a;
}
Address v6(const char* ip, uint16_t port) {
  Address a;
  a.family = AF_INET6;
  inet_pton(AF_INET6, ip, a.ip.data());
  a.port = port;
  return a;
}

Message parsed(const std::string& d) {
  auto p = parse(d);
  if (!p.message) ADD_FAILURE() << "refused: " << to_string(p.error);
  return p.message.value_or(Message{});
}

ParseError refused(const std::string& d) {
  auto p = parse(d);
  EXPECT_FALSE(p.message);
  return p.error;
}

const TransactionId kTid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

TEST(Stun, Rfc5769SampleRequest) {
  const Message m = parsed(kRfc5769Request);
  EXPECT_EQ(m.cls, Class::kRequest);
  EXPECT_EQ(m.method, kMethodBinding);
  EXPECT_EQ(m.username, "evtj:h6vY");
  EXPECT_TRUE(m.has_integrity);
  EXPECT_TRUE(m.has_fingerprint);
  EXPECT_EQ(m.unknown_required, std::vector<uint16_t>{0x0024});  // PRIORITY (ICE)
  EXPECT_TRUE(integrity_ok(m, kRfc5769Password));
  EXPECT_FALSE(integrity_ok(m, "VOkJxbRl1RmTxUk/WvJxBT"));
  EXPECT_FALSE(integrity_ok(m, ""));
}

TEST(Stun, Rfc5769SampleResponses) {
  const Message r4 = parsed(kRfc5769ResponseV4);
  EXPECT_EQ(r4.cls, Class::kSuccess);
  ASSERT_TRUE(r4.xor_mapped);
  EXPECT_EQ(*r4.xor_mapped, v4("192.0.2.1", 32853));
  EXPECT_TRUE(integrity_ok(r4, kRfc5769Password));

  const Message r6 = parsed(kRfc5769ResponseV6);
  ASSERT_TRUE(r6.xor_mapped);
  EXPECT_EQ(*r6.xor_mapped, v6("2001:db8:1234:5678:11:2233:4455:6677", 32853));
  EXPECT_EQ(to_string(*r6.xor_mapped), "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
  EXPECT_TRUE(integrity_ok(r6, kRfc5769Password));
}

// Our builder xors the same way RFC 5769's response does: same
// transaction, same address -> the same XOR-MAPPED-ADDRESS bytes.
TEST(Stun, SuccessMatchesRfc5769XorMappedAddress) {
  TransactionId t{};
  std::memcpy(t.data(), kRfc5769ResponseV4.data() + 8, 12);
  const std::string ours = binding_success(t, v4("192.0.2.1", 32853), std::nullopt);
  EXPECT_EQ(ours.substr(20, 12), kRfc5769ResponseV4.substr(36, 12));
  const std::string ours6 =
      binding_success(t, v6("2001:db8:1234:5678:11:2233:4455:6677", 32853), std::nullopt);
  EXPECT_EQ(ours6.substr(20, 24), kRfc5769ResponseV6.substr(36, 24));
}

TEST(Stun, SuccessRoundTripWithIntegrity) {
  for (const Address& a : {v4("198.51.100.7", 30005), v6("2001:db8::7", 1)}) {
    const std::string r = binding_success(kTid, a, std::string_view("pw"));
    const Message m = parsed(r);
    EXPECT_EQ(m.cls, Class::kSuccess);
    EXPECT_EQ(m.transaction, kTid);
    EXPECT_EQ(m.xor_mapped, a);
    EXPECT_EQ(m.mapped, a);
    EXPECT_TRUE(m.has_fingerprint);
    EXPECT_TRUE(integrity_ok(m, "pw"));
    EXPECT_FALSE(integrity_ok(m, "pW"));
  }
  const Message plain = parsed(binding_success(kTid, v4("192.0.2.1", 1), std::nullopt));
  EXPECT_FALSE(plain.has_integrity);
  EXPECT_FALSE(integrity_ok(plain, ""));
}

TEST(Stun, ErrorRoundTrip) {
  const Message m = parsed(binding_error(kTid, 401, "Unauthorized"));
  EXPECT_EQ(m.cls, Class::kError);
  EXPECT_EQ(m.error_code, 401);
  EXPECT_FALSE(m.has_integrity);
  EXPECT_THROW(binding_error(kTid, 200, "x"), std::invalid_argument);
}

TEST(Stun, RequestWithTr111Attributes) {
  RequestOptions o;
  o.username = "cpe-stun-1";
  o.key = "stun-secret";
  o.connection_request_binding = true;
  o.binding_change = true;
  const std::string r = binding_request(kTid, o);
  EXPECT_NE(r.find("dslforum.org/TR-111 "), std::string::npos);
  const Message m = parsed(r);
  EXPECT_EQ(m.cls, Class::kRequest);
  EXPECT_EQ(m.username, "cpe-stun-1");
  EXPECT_TRUE(m.connection_request_binding);
  EXPECT_TRUE(m.binding_change);
  EXPECT_TRUE(integrity_ok(m, "stun-secret"));
  EXPECT_FALSE(integrity_ok(m, "wrong"));

  const Message bare = parsed(binding_request(kTid, {}));
  EXPECT_FALSE(bare.username);
  EXPECT_FALSE(bare.connection_request_binding);
  EXPECT_FALSE(bare.binding_change);
  EXPECT_FALSE(bare.has_integrity);

  RequestOptions ind;
  ind.cls = Class::kIndication;
  ind.fingerprint = false;
  const Message i = parsed(binding_request(kTid, ind));
  EXPECT_EQ(i.cls, Class::kIndication);
  EXPECT_FALSE(i.has_fingerprint);
}

// Changing any byte the HMAC covers breaks the integrity (the fingerprint
// is left out so that it does not refuse the message first).
TEST(Stun, TamperedMessageFailsIntegrity) {
  RequestOptions o;
  o.username = "cpe-a";
  o.key = "k";
  o.fingerprint = false;
  std::string r = binding_request(kTid, o);
  ASSERT_TRUE(integrity_ok(parsed(r), "k"));
  r[28] = 'b';  // inside the USERNAME
  const Message m = parsed(r);
  EXPECT_EQ(m.username, "cpe-b");
  EXPECT_FALSE(integrity_ok(m, "k"));
}

TEST(Stun, BadPacketsRefusedWithTheirReason) {
  RequestOptions o;
  o.username = "u";
  const std::string good = binding_request(kTid, o);
  ASSERT_TRUE(parse(good).message);

  EXPECT_EQ(refused(""), ParseError::kTruncated);
  EXPECT_EQ(refused(good.substr(0, 19)), ParseError::kTruncated);
  EXPECT_EQ(refused(good.substr(0, good.size() - 4)), ParseError::kTruncated);
  EXPECT_EQ(refused(std::string(549, '\0')), ParseError::kOversized);
  EXPECT_EQ(refused("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ParseError::kNotStun);

  std::string longer = good + std::string(4, '\0');  // datagram longer than its length field
  EXPECT_EQ(refused(longer), ParseError::kBadLength);
  std::string odd = good;
  odd[3] = static_cast<char>(odd[3] + 1);  // length not a multiple of 4
  EXPECT_EQ(refused(odd), ParseError::kBadLength);

  std::string cookie = good;
  cookie[4] = 0x21 ^ 1;
  EXPECT_EQ(refused(cookie), ParseError::kBadCookie);

  std::string method = good;
  method[1] = 0x03;  // Allocate (TURN)
  EXPECT_EQ(refused(method), ParseError::kUnknownMethod);

  std::string fp = good;
  fp[fp.size() - 1] ^= 1;
  EXPECT_EQ(refused(fp), ParseError::kBadFingerprint);
  std::string covered = good;
  covered[24] ^= 1;  // the USERNAME's value, covered by the fingerprint
  EXPECT_EQ(refused(covered), ParseError::kBadFingerprint);
}

// Hand-made attribute lists, without a fingerprint.
std::string with_attributes(const std::string& attrs) {
  RequestOptions o;
  o.fingerprint = false;
  std::string h = binding_request(kTid, o);
  h += attrs;
  h[2] = static_cast<char>(attrs.size() >> 8);
  h[3] = static_cast<char>(attrs.size() & 0xff);
  return h;
}

TEST(Stun, MalformedAttributesRefused) {
  using std::string;
  // A value running past the end of the message.
  EXPECT_EQ(refused(with_attributes(from_hex("00 06 00 08 61 62 63 64"))),
            ParseError::kBadAttribute);
  // An empty USERNAME; one longer than 512 bytes is over the size cap anyway.
  EXPECT_EQ(refused(with_attributes(from_hex("00 06 00 00"))), ParseError::kBadAttribute);
  // MESSAGE-INTEGRITY of the wrong size.
  EXPECT_EQ(refused(with_attributes(from_hex("00 08 00 04 00 00 00 00"))),
            ParseError::kBadAttribute);
  // BINDING-CHANGE with a value.
  EXPECT_EQ(refused(with_attributes(from_hex("c0 02 00 04 00 00 00 00"))),
            ParseError::kBadAttribute);
  // XOR-MAPPED-ADDRESS of an unknown family.
  EXPECT_EQ(refused(with_attributes(from_hex("00 20 00 08 00 03 00 00 00 00 00 00"))),
            ParseError::kBadAttribute);
  // FINGERPRINT of the wrong size, and an attribute after FINGERPRINT.
  EXPECT_EQ(refused(with_attributes(from_hex("80 28 00 08 00 00 00 00 00 00 00 00"))),
            ParseError::kBadAttribute);
  std::string fp = binding_request(kTid, RequestOptions{});
  const std::string extra = from_hex("80 22 00 04 61 62 63 64");
  fp += extra;
  fp[3] = static_cast<char>(fp[3] + extra.size());
  EXPECT_EQ(refused(fp), ParseError::kBadAttribute);
}

TEST(Stun, PaddingAndUnknownAttributes) {
  // SOFTWARE (comprehension-optional) with 3 bytes and non-zero padding,
  // then an unknown comprehension-required attribute, then USERNAME.
  const Message m = parsed(with_attributes(
      from_hex("80 22 00 03 61 62 63 ff  7f 00 00 00  00 06 00 05 61 6c 69 63 65 00 00 00")));
  EXPECT_EQ(m.username, "alice");
  EXPECT_EQ(m.unknown_required, std::vector<uint16_t>{0x7f00});
}

TEST(Stun, AttributesAfterIntegrityIgnored) {
  RequestOptions o;
  o.username = "u";
  o.key = "k";
  o.fingerprint = false;
  std::string r = binding_request(kTid, o);
  const std::string bc = from_hex("c0 02 00 00");  // BINDING-CHANGE after MESSAGE-INTEGRITY
  r += bc;
  r[3] = static_cast<char>(r[3] + bc.size());
  const Message m = parsed(r);
  EXPECT_FALSE(m.binding_change);
  EXPECT_TRUE(integrity_ok(m, "k"));
}

TEST(Stun, AddressOfSockaddr) {
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(4711);
  inet_pton(AF_INET6, "::ffff:192.0.2.9", &in6.sin6_addr);
  EXPECT_EQ(address_of(reinterpret_cast<sockaddr*>(&in6)), v4("192.0.2.9", 4711));
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(3478);
  inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
  EXPECT_EQ(to_string(*address_of(reinterpret_cast<sockaddr*>(&in))), "127.0.0.1:3478");
}

}  // namespace
}  // namespace luacs::connreq::stun
