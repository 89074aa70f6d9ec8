#include "core/util/hex.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

namespace luacs::util {

std::string to_hex(const unsigned char* p, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[p[i] >> 4];
    s[2 * i + 1] = kHex[p[i] & 15];
  }
  return s;
}

std::string random_hex(size_t bytes) {
  // RAND_bytes costs a few microseconds a call (locks, a fork check), which
  // showed in profiles of the Inform path: each thread takes 4 KiB at a time
  // from the CSPRNG and hands it out. Every byte is still used once only.
  constexpr size_t kChunk = 4096;
  thread_local unsigned char pool[kChunk];
  thread_local size_t left = 0;
  std::string out;
  out.reserve(2 * bytes);
  while (bytes > 0) {
    if (left == 0) {
      if (RAND_bytes(pool, static_cast<int>(kChunk)) != 1)
        throw std::runtime_error("RAND_bytes failed");
      left = kChunk;
    }
    const size_t n = std::min(bytes, left);
    out += to_hex(pool + kChunk - left, n);
    OPENSSL_cleanse(pool + kChunk - left, n);  // handed out: not kept in memory
    left -= n;
    bytes -= n;
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("sha256: EVP_Digest failed");
  return to_hex(md, len);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len))
    throw std::runtime_error("hmac_sha256: HMAC failed");
  return to_hex(md, len);
}

}  // namespace luacs::util
