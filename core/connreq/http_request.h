// One HTTP connection request (TR-069 3.2.2) on a libevent loop: resolve the
// host (evdns, never blocking), check the address against the rules, connect,
// `GET <path> HTTP/1.1` with Host and nothing else, read the answer, answer a
// 401 once (Digest, or Basic when allowed), and report what happened.
//
// The CPE is untrusted: the response head is capped at 8 KiB, a body is
// never buffered beyond a small cap (the connection is dropped instead), and
// one timer bounds the whole attempt (resolution, connects, both requests).
// A redirect is not followed.
#pragma once

#include <event2/dns.h>
#include <event2/event.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/connreq/digest_client.h"
#include "core/connreq/target.h"
#include "core/loop/loop.h"

namespace luacs::connreq {

enum class Outcome {
  kAnswered,    // 200 or 204: the CPE will start a session
  kAuthFailed,  // 401 to our answer, or a challenge luacs cannot answer
  kOffline,     // connection refused or reset, no route, 503
  kTimedOut,    // the attempt's timeout passed
  kDenied,      // the address or port is outside [connection_request] rules
  kNoUrl,       // the device has no (usable) ConnectionRequestURL
  kError,       // garbage, a redirect, another status, DNS failure
};
// "answered", "auth_failed", "offline", "timed_out", "denied", "no_url", "error".
const char* outcome_name(Outcome o);

struct Result {
  Outcome outcome = Outcome::kError;
  int http_status = 0;  // the last status the CPE sent, 0 if none
  std::string detail;   // for people: "connection refused", "HTTP 302 (redirects are not followed)"
};

struct RequestSpec {
  std::string url;  // the device's ConnectionRequestURL
  Credentials credentials;
  bool allow_basic = false;
  std::chrono::milliseconds timeout{2000};
};

class HttpRequest {
 public:
  using Done = std::function<void(Result)>;
  // Starts at once; `done` runs exactly once on the loop's thread (never from
  // inside start()), and may destroy this object. Destroying it earlier
  // aborts the attempt without calling `done`. `dns` may be null (then only
  // numeric hosts are contacted).
  HttpRequest(event_base* base, evdns_base* dns, const Rules& rules, RequestSpec spec, Done done);
  ~HttpRequest();
  HttpRequest(const HttpRequest&) = delete;
  HttpRequest& operator=(const HttpRequest&) = delete;

  // Test seam: the client nonce used with qop=auth ("" = random).
  static void set_fixed_cnonce(std::string cnonce);

 public:
  struct Head;  // a parsed response head (internal)

 private:
  static void on_resolved(int err, evutil_addrinfo* res, void* self);
  static void on_read(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);
  static void on_timeout(evutil_socket_t, short, void* self);
  static void on_start(evutil_socket_t, short, void* self);

  void begin();
  void after_resolve();
  void use_address(const sockaddr* sa, socklen_t len);
  void connect();
  void send(const std::string& authorization);
  void read();
  void handle_head(const Head& h);
  void answer_challenge(const Head& h);
  void finish(Outcome o, std::string detail);

  event_base* base_;
  evdns_base* dns_;
  const Rules& rules_;
  RequestSpec spec_;
  Done done_;
  Url url_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  loop::BufferEvent bev_;
  loop::Event timer_;
  loop::Event start_;
  evdns_getaddrinfo_request* dns_req_ = nullptr;
  std::string authorization_;  // sent with the second request ("" on the first)
  bool second_ = false;        // the answer to a 401 went out
  bool reconnected_ = false;   // ... on a new connection
  size_t body_left_ = 0;       // 401 body still to drain before reusing the connection
  bool draining_ = false;
  bool got_bytes_ = false;  // on the current request
  int status_ = 0;
  bool resolved_ = false;  // the DNS answer is in (resolve_error_ or addr_)
  bool denied_ = false;    // ... and every address it gave is outside the rules
  std::string resolve_error_;
};

}  // namespace luacs::connreq
