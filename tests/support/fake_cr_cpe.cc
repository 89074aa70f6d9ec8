#include "tests/support/fake_cr_cpe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

#include "core/auth/digest.h"
#include "core/connreq/digest_client.h"
#include "core/util/text.h"

namespace luacs::test {

namespace {

// Waits up to 50 ms for `fd` to be readable.
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 50) > 0;
}

std::string header_value(const std::string& head, std::string_view name) {
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos + 2 < head.size()) {
    const size_t start = pos + 2;
    const size_t end = head.find("\r\n", start);
    const std::string_view line(head.data() + start,
                                (end == std::string::npos ? head.size() : end) - start);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos && text::iequals(line.substr(0, colon), name))
      return std::string(text::trim(line.substr(colon + 1)));
    pos = end;
  }
  return "";
}

}  // namespace

FakeCrCpe::FakeCrCpe(Script script) : script_(std::move(script)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 16) != 0)
    throw std::runtime_error("FakeCrCpe: cannot listen");
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { run(); });
}

FakeCrCpe::~FakeCrCpe() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::vector<FakeCrCpe::Request> FakeCrCpe::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

bool FakeCrCpe::wait_requests(size_t n, std::chrono::milliseconds limit) const {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (requests().size() >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return requests().size() >= n;
}

void FakeCrCpe::run() {
  while (!stop_) {
    if (!readable(listen_fd_)) continue;
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    ++connections_;
    serve(fd);
    ::close(fd);
  }
}

void FakeCrCpe::serve(int fd) {
  const int conn = connections_.load();
  std::string buf;
  while (!stop_) {
    const auto end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      Request r;
      r.connection = conn;
      r.head = buf.substr(0, end + 4);
      buf.erase(0, end + 4);
      const auto sp1 = r.head.find(' ');
      const auto sp2 = r.head.find(' ', sp1 + 1);
      r.target = r.head.substr(sp1 + 1, sp2 - sp1 - 1);
      r.authorization = header_value(r.head, "Authorization");
      int n = 0;
      {
        std::lock_guard lock(mu_);
        requests_.push_back(r);
        n = static_cast<int>(requests_.size());
      }
      const Reply reply = script_(r, n);
      if (!reply.hang) {
        if (!reply.bytes.empty())
          (void)!::send(fd, reply.bytes.data(), reply.bytes.size(), MSG_NOSIGNAL);
        if (reply.close) return;
      }
      continue;
    }
    if (!readable(fd)) continue;
    char chunk[4096];
    const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) return;
    buf.append(chunk, static_cast<size_t>(got));
    if (buf.size() > 64 << 10) return;
  }
}

FakeCrCpe::Reply FakeCrCpe::status(int code, const std::string& extra_headers, bool close) {
  return {
      "HTTP/1.1 " + std::to_string(code) + " X\r\n" + extra_headers + "Content-Length: 0\r\n\r\n",
      close};
}

FakeCrCpe::Reply FakeCrCpe::challenge(const std::string& www_authenticate, bool close) {
  return status(401, "WWW-Authenticate: " + www_authenticate + "\r\n", close);
}

bool FakeCrCpe::digest_ok(const std::string& authorization, const std::string& user,
                          const std::string& password, const std::string& realm,
                          const std::string& nonce, const std::string& uri) {
  const auto p = auth::parse_digest(authorization);
  if (!p || p->username != user || p->realm != realm || p->nonce != nonce || p->uri != uri)
    return false;
  using connreq::md5_hex;
  const std::string ha1 = md5_hex(user + ":" + realm + ":" + password);
  const std::string ha2 = md5_hex("GET:" + uri);
  std::string expected;
  if (p->qop == "auth")
    expected = md5_hex(ha1 + ":" + nonce + ":" + p->nc + ":" + p->cnonce + ":auth:" + ha2);
  else if (p->qop.empty())
    expected = md5_hex(ha1 + ":" + nonce + ":" + ha2);
  else
    return false;
  return p->response == expected;
}

}  // namespace luacs::test
