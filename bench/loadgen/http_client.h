// The CPE's HTTP client pieces, without I/O: the response head parser (just
// what a CWMP client needs), chunked de-framing, and the Digest answer to a
// 401 challenge.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace luacs::loadgen {

struct ResponseHead {
  int status = 0;
  int minor_version = 1;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool close = false;                 // Connection: close, or HTTP/1.0 without keep-alive
  std::string_view set_cookie;        // first Set-Cookie value
  std::string_view www_authenticate;  // the Digest challenge, else the first one
  std::string_view retry_after;
};

// `head` runs from the status line to the blank line included. The views
// point into it. False on a malformed head.
bool parse_response_head(std::string_view head, ResponseHead& out);

// Whether a response with this head has a body framed by Content-Length or
// chunks (false: no body, or a body up to EOF).
bool has_framed_body(const ResponseHead& h);
bool body_until_eof(const ResponseHead& h);

enum class Dechunk { kIncomplete, kDone, kError };
// De-chunks a complete chunked body from `data` into `out` (appended);
// *consumed is the framing's total length when kDone.
Dechunk dechunk(std::string_view data, std::string& out, size_t* consumed);

// "name=value" of a Set-Cookie value (attributes dropped).
std::string_view cookie_pair(std::string_view set_cookie);

// A Digest client (RFC 7616, MD5, qop=auth) for one TCP connection: it takes
// the challenge of a 401 and then authorises every later request of the
// connection with the same nonce and an increasing nonce-count.
class DigestClient {
 public:
  DigestClient(std::string username, std::string password);

  // False if the challenge is not Digest or asks for something we cannot do
  // (another algorithm, qop without "auth").
  bool take_challenge(std::string_view www_authenticate, std::string_view cnonce);
  bool active() const { return active_; }
  void reset() { active_ = false; }
  // The Authorization header value for the next request.
  std::string authorization(std::string_view method, std::string_view uri);
  uint32_t nonce_count() const { return nc_; }

 private:
  std::string username_, password_;
  bool active_ = false;
  std::string realm_, nonce_, opaque_, cnonce_, ha1_;
  bool qop_auth_ = false;
  uint32_t nc_ = 0;
};

}  // namespace luacs::loadgen
