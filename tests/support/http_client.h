// A blocking HTTP/1.1 client for tests of the northbound API: one request
// per connection (Connection: close), to 127.0.0.1.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace luacs::test {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpReply {
  int status = 0;  // 0: no answer (connection refused, timeout); see error
  HttpHeaders headers;
  std::string body;  // de-chunked
  std::string error;
  bool chunked = false;
  // Case-insensitive, "" if absent.
  std::string header(std::string_view name) const;
  // The body parsed as JSON (a parse failure is a test failure: null).
  nlohmann::json json() const;
};

// Percent-encodes everything but RFC 3986's unreserved characters: a path
// segment or a query value (a device id's own '%' becomes "%25").
std::string url_escape(const std::string& s);

HttpReply http_request(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body = "", const HttpHeaders& headers = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The same with "Authorization: Bearer <token>" (none when token is "").
HttpReply api_call(uint16_t port, const std::string& token, const std::string& method,
                   const std::string& target, const std::string& body = "",
                   HttpHeaders headers = {});

// An open connection reading an answer as it streams (Server-Sent Events).
class HttpStream {
 public:
  HttpStream(uint16_t port, const std::string& target, const HttpHeaders& headers);
  ~HttpStream();
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;
  // The status once the head arrived (0 before, or on failure).
  int status();
  // Reads until `needle` appears in the (raw, possibly chunk-framed) bytes
  // received so far or the timeout passes; whether it did.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout);
  const std::string& received() const { return data_; }
  // Whether the server closed the connection (read returned 0).
  bool closed() const { return closed_; }
  // Stops reading (the server's buffer fills up).
  int fd() const { return fd_; }

 private:
  void read_some(std::chrono::milliseconds timeout);
  int fd_ = -1;
  std::string data_;
  bool closed_ = false;
};

}  // namespace luacs::test
