#include "core/util/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace luacs::util {

std::string format_peer(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN + 8] = {};
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "?";
}

std::string address_of(std::string_view peer) {
  if (!peer.empty() && peer.front() == '[') return std::string(peer.substr(1, peer.find(']') - 1));
  return std::string(peer.substr(0, peer.rfind(':')));
}

std::optional<Cidr> parse_cidr(std::string_view text) {
  Cidr c;
  const auto slash = text.find('/');
  const std::string host(text.substr(0, slash));
  if (inet_pton(AF_INET, host.c_str(), c.addr) == 1) {
    c.family = AF_INET;
    c.bits = 32;
  } else if (inet_pton(AF_INET6, host.c_str(), c.addr) == 1) {
    c.family = AF_INET6;
    c.bits = 128;
  } else {
    return std::nullopt;
  }
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    unsigned bits = 0;
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    for (const char ch : digits) {
      if (ch < '0' || ch > '9') return std::nullopt;
      bits = bits * 10 + static_cast<unsigned>(ch - '0');
    }
    if (bits > c.bits) return std::nullopt;
    c.bits = bits;
  }
  return c;
}

bool Cidr::contains(const sockaddr* sa) const {
  const unsigned char* a = nullptr;
  if (sa->sa_family == AF_INET && family == AF_INET) {
    a = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr);
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (family == AF_INET6) {
      a = in6->s6_addr;
    } else if (IN6_IS_ADDR_V4MAPPED(in6)) {
      a = in6->s6_addr + 12;
    }
  }
  if (!a) return false;
  const unsigned whole = bits / 8, rest = bits % 8;
  if (std::memcmp(a, addr, whole) != 0) return false;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[whole] & mask) == (addr[whole] & mask);
}

std::vector<std::string_view> split_list(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    auto item = s.substr(0, comma);
    const auto first = item.find_first_not_of(" \t\r\n");
    if (first != std::string_view::npos)
      out.push_back(item.substr(first, item.find_last_not_of(" \t\r\n") - first + 1));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

ListenAddr listen_addr(const std::string& host, uint16_t port) {
  ListenAddr a;
  a.spec = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  a.spec += ":" + std::to_string(port);
  auto* in4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    a.len = sizeof *in4;
  } else if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    a.len = sizeof *in6;
  } else {
    throw std::runtime_error("cannot listen on " + a.spec + ": not a numeric IP address");
  }
  return a;
}

void ensure_not_listening(const ListenAddr& a) {
  const auto port = a.ss.ss_family == AF_INET6
                        ? reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_port
                        : reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_port;
  if (port == 0) return;
  int fd = ::socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("cannot listen on " + a.spec + ": " + std::strerror(errno));
  int one = 1;
  // SO_REUSEADDR (as the listeners have): a connection of an earlier run
  // in TIME_WAIT does not count; a bound or listening socket does.
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a.ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  const int rc = ::bind(fd, a.sa(), a.len);
  const int err = errno;
  ::close(fd);
  if (rc == 0) return;
  if (err == EADDRINUSE)
    throw std::runtime_error("cannot listen on " + a.spec +
                             ": something else already listens there (another luacs?)");
  throw std::runtime_error("cannot listen on " + a.spec + ": " + std::strerror(err));
}

uint16_t bound_port(int fd) {
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) return 0;
  return bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                     : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

}  // namespace luacs::util
