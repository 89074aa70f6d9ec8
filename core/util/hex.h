// Hex text of bytes, random hex tokens (cookies, file URL tokens), and
// hex digests.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace luacs::util {

// The value of a hex digit (either case), or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Lower-case hex, two characters per byte.
std::string to_hex(const unsigned char* p, size_t n);

// `bytes` random bytes from OpenSSL's CSPRNG, as hex (2 * bytes characters).
// Throws std::runtime_error when the generator fails.
std::string random_hex(size_t bytes);

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// Lower-case hex HMAC-SHA256 of `data` under `key`.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

}  // namespace luacs::util
