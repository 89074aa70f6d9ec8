// Socket addresses: as text, and the addresses servers listen on.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace luacs::util {

// "192.0.2.1:4711", "[2001:db8::1]:4711", or "?" for another family.
std::string format_peer(const sockaddr* sa);

// The address part of format_peer()'s text: "192.0.2.1:4711" -> "192.0.2.1",
// "[2001:db8::1]:4711" -> "2001:db8::1".
std::string address_of(std::string_view peer);

// A numeric host and a port to listen on.
struct ListenAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  std::string spec;  // "127.0.0.1:7547", "[::1]:7547": for messages
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};
// Throws std::runtime_error("cannot listen on SPEC: not a numeric IP
// address") when `host` is neither IPv4 nor IPv6 text.
ListenAddr listen_addr(const std::string& host, uint16_t port);

// Throws std::runtime_error("cannot listen on SPEC: something else already
// listens there ...") when a socket is bound to `a` (port 0 is never in use). Listeners that share
// their address with SO_REUSEPORT would otherwise bind beside a second server without an error, and
// the kernel would split the clients between the two. The check binds a probe socket without
// SO_REUSEPORT, which the kernel refuses while any socket holds the address.
void ensure_not_listening(const ListenAddr& a);

// An address block: "127.0.0.0/8", "::1/128", "192.0.2.7" (a single host).
struct Cidr {
  int family = 0;  // AF_INET or AF_INET6
  unsigned char addr[16] = {};
  unsigned bits = 0;
  // Whether `sa` is inside the block (an IPv4-mapped IPv6 peer matches IPv4
  // blocks).
  bool contains(const sockaddr* sa) const;
};
std::optional<Cidr> parse_cidr(std::string_view text);

// A comma-separated list, each entry trimmed; empty entries dropped.
std::vector<std::string_view> split_list(std::string_view s);

// The port a bound socket has.
uint16_t bound_port(int fd);

}  // namespace luacs::util
