// Socket addresses as text.
#pragma once

#include <sys/socket.h>

#include <string>

namespace luacs::util {

// "192.0.2.1:4711", "[2001:db8::1]:4711", or "?" for another family.
std::string format_peer(const sockaddr* sa);

}  // namespace luacs::util
