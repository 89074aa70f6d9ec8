#include "support/cpe_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/auth/digest.h"

namespace luacs::test {

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

bool HttpResponse::closes() const {
  std::string c = header("connection");
  std::transform(c.begin(), c.end(), c.begin(), ::tolower);
  return c == "close";
}

int connect_loopback(uint16_t port, const std::string& source) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (!source.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

CpeClient::CpeClient(uint16_t port, std::chrono::milliseconds timeout)
    : CpeClient(port, std::string(), timeout) {}

CpeClient::CpeClient(uint16_t port, const std::string& source, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  fd_ = connect_loopback(port, source);
  if (fd_ < 0) return;
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void CpeClient::reset() {
  if (fd_ < 0) return;
  linger l{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd_);
  fd_ = -1;
}

CpeClient::~CpeClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool CpeClient::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool CpeClient::fill() {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout_.count())) <= 0) return false;
  char tmp[16384];
  ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

HttpResponse CpeClient::read_response(bool no_body) {
  HttpResponse r;
  for (;;) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return r;
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    std::istringstream lines(head);
    std::string line;
    std::getline(lines, line);
    int status = 0;
    if (line.size() >= 12) status = std::atoi(line.c_str() + 9);
    r.headers.clear();
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers.emplace(name, value);
    }
    if (status >= 100 && status < 200) continue;  // 100 Continue
    r.status = status;
    break;
  }
  const bool bodiless = no_body || r.status == 204 || r.status == 304;
  size_t len = bodiless ? 0 : static_cast<size_t>(std::atoll(r.header("content-length").c_str()));
  while (buf_.size() < len)
    if (!fill()) {
      r.status = 0;
      return r;
    }
  r.body = buf_.substr(0, len);
  buf_.erase(0, len);
  std::string set = r.header("set-cookie");
  if (!set.empty()) cookie = set.substr(0, set.find(';'));
  return r;
}

HttpResponse CpeClient::post(std::string_view body, const std::vector<std::string>& extra) {
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: acs.test\r\n";
  if (!body.empty()) req += "Content-Type: text/xml; charset=\"utf-8\"\r\nSOAPAction: \r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (echo_cookie && !cookie.empty()) req += "Cookie: " + cookie + "\r\n";
  for (const auto& h : extra) req += h + "\r\n";
  req += "\r\n";
  req.append(body);
  if (!send_raw(req)) return {};
  return read_response();
}

bool CpeClient::closed_by_peer(std::chrono::milliseconds wait, bool data_allowed) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  char tmp[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n == 0) return true;
    if (!data_allowed) return false;
    if (n < 0) return errno == ECONNRESET;
    // Data first (a 408 or 401, say): keep reading until the close.
  }
}

std::string corpus_file(const std::string& name) {
  std::ifstream f(std::string(LUACS_SHARED_DIR) + "/corpus/cwmp/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> corpus_files(const std::string& prefix, const std::string& suffix) {
  std::vector<std::string> out;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(LUACS_SHARED_DIR) + "/corpus/cwmp")) {
    std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) == 0 && n.size() >= suffix.size() &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

HttpResponse post_with_digest(CpeClient& c, const std::string& body, const std::string& user,
                              const std::string& password) {
  HttpResponse r = c.post(body);
  if (r.status != 401) return r;
  const std::string ch = r.header("www-authenticate");
  auto field = [&](const std::string& name) {
    const size_t at = ch.find(name + "=\"") + name.size() + 2;
    return ch.substr(at, ch.find('"', at) - at);
  };
  const std::string nonce = field("nonce"), realm = field("realm");
  const std::string ha1 = auth::md5_hex(user + ":" + realm + ":" + password);
  const std::string resp =
      auth::md5_hex(ha1 + ":" + nonce + ":00000001:abc:auth:" + auth::md5_hex("POST:/"));
  return c.post(
      body,
      {"Authorization: Digest username=\"" + user + "\", realm=\"" + realm + "\", nonce=\"" +
       nonce + "\", uri=\"/\", qop=auth, nc=00000001, cnonce=\"abc\", response=\"" + resp + "\""});
}

}  // namespace luacs::test
