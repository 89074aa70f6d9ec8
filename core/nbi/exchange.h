// One northbound API request and its answer.
//
// A connection (core/nbi/connection.cc) parses a request, finds its route,
// checks its token and reads its body, then hands the route's handler an
// Exchange. Handlers usually answer later, from a PostgreSQL completion, so
// they hold the Exchange by shared_ptr; once the client has gone, answers
// are dropped and alive() turns false.
//
// An answer is either whole (reply, json, error) or streamed with chunked
// transfer coding (begin_stream, write, end_stream) for CSV exports and
// Server-Sent Events. A streaming handler keeps memory bounded by writing
// while buffered() is below its budget and waiting for on_drained() before
// producing more.
//
// Loop thread only (the API's own thread).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/http/request_parser.h"

namespace luacs::nbi {

class Connection;
class Api;
struct Route;

enum class Role { kNone = 0, kRead = 1, kOperate = 2, kAdmin = 3 };
std::string_view role_name(Role r);
std::optional<Role> parse_role(std::string_view s);

// Who sent the request: the token that authenticated it.
struct Principal {
  int64_t token_id = 0;  // 0: none (an open route, or /metrics from an allowed address)
  std::string name;
  Role role = Role::kNone;
  std::string scope_tag;  // "": the whole fleet
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(Api& api, Connection* conn);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // ---- the request
  Api& api() const { return api_; }
  const http::Request& head() const { return head_; }
  const std::string& method() const { return head_.method; }
  const std::string& path() const { return path_; }  // percent-decoded
  // Decoded query parameters in order; a name may repeat.
  const std::vector<std::pair<std::string, std::string>>& query() const { return query_; }
  // The first value of a query parameter.
  std::optional<std::string> q(std::string_view name) const;
  bool has_q(std::string_view name) const { return q(name).has_value(); }
  // Path parameters, in the order the route's pattern names them.
  const std::vector<std::string>& params() const { return params_; }
  const std::string& param(size_t i) const { return params_.at(i); }
  const std::string& body() const { return body_; }
  const std::string& peer() const { return peer_; }  // "192.0.2.1:4711"
  const sockaddr* peer_addr() const { return reinterpret_cast<const sockaddr*>(&peer_sa_); }
  const Principal& who() const { return who_; }
  const Route& route() const { return *route_; }
  // The body as JSON: on a parse error, answers 400 (with the position)
  // itself and returns nullopt. An empty body is an empty object.
  std::optional<nlohmann::json> json_body();

  // ---- the answer
  // False once the client has gone (or the API is stopping).
  bool alive() const { return conn_ != nullptr; }
  bool answered() const { return answered_; }
  void reply(int status, std::string_view content_type, std::string body, Headers extra = {});
  void json(int status, const nlohmann::json& j, Headers extra = {});
  // {"error": error, "detail": detail} with that status.
  void error(int status, std::string_view error, std::string_view detail = "", Headers extra = {});

  // Chunked answer. write() returns false when the client has gone.
  void begin_stream(int status, std::string_view content_type, Headers extra = {});
  bool write(std::string_view chunk);
  void end_stream();
  size_t buffered() const;  // bytes of output not yet taken by the kernel
  // Runs fn once when the output has drained below the connection's low
  // watermark (at once, from the loop, when it already is).
  void on_drained(std::function<void()> fn);
  // Runs fn when the client goes away before the answer ended.
  void on_gone(std::function<void()> fn) { on_gone_ = std::move(fn); }

 private:
  friend class Connection;
  void detach();  // the connection is closing
  void drained();

  Api& api_;
  Connection* conn_;
  http::Request head_;
  std::string path_;
  std::vector<std::pair<std::string, std::string>> query_;
  std::vector<std::string> params_;
  std::string body_;
  std::string peer_;
  sockaddr_storage peer_sa_{};
  Principal who_;
  const Route* route_ = nullptr;
  bool answered_ = false;
  bool streaming_ = false;
  std::function<void()> on_drained_, on_gone_;
};

using ExchangePtr = std::shared_ptr<Exchange>;

// A route that takes its body as a stream (PUT /files/{name}) gets one of
// these once the request is authenticated; the body then goes to it in
// pieces instead of into Exchange::body(). finish() runs when the body is
// complete: the sink answers the exchange then (or later).
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // False aborts the request: the sink has answered (413, 500, ...).
  virtual bool write(const char* data, size_t len) = 0;
  virtual void finish() = 0;
  // The client went away or the request failed before the end.
  virtual void abort() {}
};

// Percent-decoding of a path segment or a query component ('+' is a space
// only in the query). nullopt for a bad escape or a decoded NUL.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

}  // namespace luacs::nbi
