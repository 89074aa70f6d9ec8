// Socket addresses as text.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace luacs::util {

// "192.0.2.1:4711", "[2001:db8::1]:4711", or "?" for another family.
std::string format_peer(const sockaddr* sa);

// The address part of format_peer()'s text: "192.0.2.1:4711" -> "192.0.2.1",
// "[2001:db8::1]:4711" -> "2001:db8::1".
std::string address_of(std::string_view peer);

}  // namespace luacs::util
