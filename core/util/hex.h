// Hex text of bytes, and random hex tokens (cookies, file URL tokens).
#pragma once

#include <cstddef>
#include <string>

namespace luacs::util {

// Lower-case hex, two characters per byte.
std::string to_hex(const unsigned char* p, size_t n);

// `bytes` random bytes from OpenSSL's CSPRNG, as hex (2 * bytes characters).
// Throws std::runtime_error when the generator fails.
std::string random_hex(size_t bytes);

}  // namespace luacs::util
