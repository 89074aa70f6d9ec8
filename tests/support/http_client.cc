#include "support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstring>

namespace luacs::test {

namespace {

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

int connect_to(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string dechunk(std::string_view in) {
  std::string out;
  while (!in.empty()) {
    const auto eol = in.find("\r\n");
    if (eol == std::string_view::npos) break;
    const size_t n = std::stoul(std::string(in.substr(0, eol)), nullptr, 16);
    in.remove_prefix(eol + 2);
    if (n == 0) break;
    out.append(in.substr(0, n));
    in.remove_prefix(std::min(in.size(), n + 2));
  }
  return out;
}

}  // namespace

std::string url_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string HttpReply::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequal(k, name)) return v;
  return "";
}

nlohmann::json HttpReply::json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

HttpReply http_request(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body, const HttpHeaders& headers,
                       std::chrono::milliseconds timeout) {
  HttpReply r;
  const int fd = connect_to(port);
  if (fd < 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    return r;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  bool has_length = false;
  for (const auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
    if (iequal(k, "Content-Length") || iequal(k, "Transfer-Encoding")) has_length = true;
  }
  if (!has_length && (!body.empty() || method == "POST" || method == "PUT"))
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  send_all(fd, req);
  send_all(fd, body);  // the server may have answered and closed already

  std::string raw;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.error = "timeout";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  // Skip interim 1xx answers.
  while (raw.rfind("HTTP/1.1 1", 0) == 0) {
    const auto end = raw.find("\r\n\r\n");
    if (end == std::string::npos) break;
    raw.erase(0, end + 4);
  }
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (r.error.empty()) r.error = "no complete answer";
    return r;
  }
  std::string_view head(raw.data(), head_end);
  r.status = std::stoi(std::string(head.substr(9, 3)));
  head.remove_prefix(std::min(head.size(), head.find("\r\n") + 2));
  while (!head.empty()) {
    auto eol = head.find("\r\n");
    auto line = head.substr(0, eol);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      auto v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(v));
    }
    if (eol == std::string_view::npos) break;
    head.remove_prefix(eol + 2);
  }
  std::string_view rest(raw.data() + head_end + 4, raw.size() - head_end - 4);
  r.chunked = iequal(r.header("Transfer-Encoding"), "chunked");
  r.body = r.chunked ? dechunk(rest) : std::string(rest);
  return r;
}

HttpReply api_call(uint16_t port, const std::string& token, const std::string& method,
                   const std::string& target, const std::string& body, HttpHeaders headers) {
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
  return http_request(port, method, target, body, headers);
}

HttpStream::HttpStream(uint16_t port, const std::string& target, const HttpHeaders& headers) {
  fd_ = connect_to(port);
  if (fd_ < 0) return;
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  send_all(fd_, req);
}

HttpStream::~HttpStream() {
  if (fd_ >= 0) close(fd_);
}

void HttpStream::read_some(std::chrono::milliseconds timeout) {
  if (fd_ < 0 || closed_) return;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return;
  char buf[65536];
  const ssize_t n = recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    closed_ = true;
    return;
  }
  data_.append(buf, static_cast<size_t>(n));
}

int HttpStream::status() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (data_.find("\r\n") == std::string::npos && !closed_ &&
         std::chrono::steady_clock::now() < deadline)
    read_some(std::chrono::milliseconds(100));
  if (data_.size() < 12) return 0;
  return std::stoi(data_.substr(9, 3));
}

bool HttpStream::wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (data_.find(needle) == std::string::npos) {
    if (closed_ || std::chrono::steady_clock::now() >= deadline) return false;
    read_some(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace luacs::test
