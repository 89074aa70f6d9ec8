#include "core/connreq/digest_client.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "core/util/text.h"

namespace luacs::connreq {

namespace {

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Reads `k=v` / `k="v"` pairs separated by commas into `c`; false on broken
// syntax.
bool read_params(std::string_view s, Challenge& c) {
  size_t i = 0;
  const auto skip = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) ++i;
  };
  skip();
  while (i < s.size()) {
    const size_t k0 = i;
    while (i < s.size() && is_tchar(s[i])) ++i;
    const std::string_view key = s.substr(k0, i - k0);
    while (i < s.size() && s[i] == ' ') ++i;
    if (key.empty() || i >= s.size() || s[i] != '=') return false;
    ++i;
    while (i < s.size() && s[i] == ' ') ++i;
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value += s[i++];
      }
      if (i >= s.size()) return false;
      ++i;
    } else {
      const size_t v0 = i;
      while (i < s.size() && is_tchar(s[i])) ++i;
      value = std::string(s.substr(v0, i - v0));
    }
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i < s.size() && s[i] != ',') return false;
    if (text::iequals(key, "realm")) {
      c.realm = value;
    } else if (text::iequals(key, "nonce")) {
      c.nonce = value;
    } else if (text::iequals(key, "opaque")) {
      c.opaque = value;
    } else if (text::iequals(key, "algorithm")) {
      c.algorithm = value;
    } else if (text::iequals(key, "qop")) {
      c.qop_offered = true;
      c.qop_auth = text::has_token(value, "auth");
    }
    skip();
  }
  return true;
}

// A quoted-string for a header parameter.
std::string quoted(std::string_view v) {
  std::string out = "\"";
  for (const char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

std::string md5_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: MD5 failed");
  return hex(md, len);
}

std::string random_cnonce() {
  unsigned char b[8];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("OpenSSL: RAND_bytes failed");
  return hex(b, sizeof b);
}

std::optional<Challenge> parse_challenge(std::string_view header) {
  header = text::trim(header);
  const auto sp = header.find_first_of(" \t");
  const std::string_view scheme = header.substr(0, sp);
  Challenge c;
  if (text::iequals(scheme, "Digest"))
    c.scheme = Challenge::Scheme::kDigest;
  else if (text::iequals(scheme, "Basic"))
    c.scheme = Challenge::Scheme::kBasic;
  else
    return std::nullopt;
  if (sp != std::string_view::npos && !read_params(header.substr(sp), c)) return std::nullopt;
  if (c.scheme == Challenge::Scheme::kDigest && c.nonce.empty()) return std::nullopt;
  return c;
}

std::optional<std::string> authorization(const Challenge& c, const Credentials& cred,
                                         std::string_view method, std::string_view uri,
                                         std::string_view cnonce, bool allow_basic) {
  if (c.scheme == Challenge::Scheme::kBasic) {
    if (!allow_basic) return std::nullopt;
    return "Basic " + base64(cred.username + ":" + cred.password);
  }
  if (!c.algorithm.empty() && !text::iequals(c.algorithm, "MD5")) return std::nullopt;
  if (c.qop_offered && !c.qop_auth) return std::nullopt;
  const std::string ha1 = md5_hex(cred.username + ":" + c.realm + ":" + cred.password);
  const std::string ha2 = md5_hex(std::string(method) + ":" + std::string(uri));
  static constexpr std::string_view kNc = "00000001";
  std::string h = "Digest username=" + quoted(cred.username) + ", realm=" + quoted(c.realm) +
                  ", nonce=" + quoted(c.nonce) + ", uri=" + quoted(uri) + ", algorithm=MD5";
  if (c.qop_auth) {
    const std::string response = md5_hex(ha1 + ":" + c.nonce + ":" + std::string(kNc) + ":" +
                                         std::string(cnonce) + ":auth:" + ha2);
    h += ", qop=auth, nc=" + std::string(kNc) + ", cnonce=" + quoted(cnonce) +
         ", response=" + quoted(response);
  } else {
    h += ", response=" + quoted(md5_hex(ha1 + ":" + c.nonce + ":" + ha2));
  }
  if (!c.opaque.empty()) h += ", opaque=" + quoted(c.opaque);
  return h;
}

}  // namespace luacs::connreq
