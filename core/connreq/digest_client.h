// The client side of HTTP authentication for connection requests: read the
// CPE's `WWW-Authenticate` challenge and build the `Authorization` answer.
//
//  - Digest, algorithm MD5 (or absent): with qop=auth when the CPE offers it
//    (cnonce, nc=00000001: luacs answers each nonce once), else the RFC 2069
//    form (response = MD5(HA1:nonce:HA2)) that old CPE stacks still use.
//    MD5-sess, SHA-256 and a qop list without "auth" are not answered.
//  - Basic only when the caller allows it ([connection_request] allow_basic):
//    it sends the password in clear.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace luacs::connreq {

struct Challenge {
  enum class Scheme { kDigest, kBasic };
  Scheme scheme = Scheme::kDigest;
  std::string realm, nonce, opaque, algorithm;
  bool qop_offered = false;  // a qop parameter was present
  bool qop_auth = false;     // ... and lists "auth"
};

// One challenge: `Digest realm="..", nonce="..", qop="auth,auth-int"` or
// `Basic realm=".."` (scheme case-insensitive, quoted-string escapes). nullopt
// for another scheme, broken syntax, or a Digest challenge without a nonce.
std::optional<Challenge> parse_challenge(std::string_view header);

struct Credentials {
  std::string username, password;
};

// The `Authorization` header value answering `c` for `GET uri`, or nullopt
// when luacs cannot or may not answer it (see above). `cnonce` is the client
// nonce to use with qop=auth (random in production, fixed in tests).
std::optional<std::string> authorization(const Challenge& c, const Credentials& cred,
                                         std::string_view method, std::string_view uri,
                                         std::string_view cnonce, bool allow_basic);

// 16 random hex digits.
std::string random_cnonce();

// Lower-case hex MD5 of `data`.
std::string md5_hex(std::string_view data);

}  // namespace luacs::connreq
