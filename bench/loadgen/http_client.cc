#include "bench/loadgen/http_client.h"

#include <charconv>
#include <cstdio>

#include "core/auth/digest.h"
#include "core/util/text.h"

namespace luacs::loadgen {
namespace {}  // namespace

bool parse_response_head(std::string_view head, ResponseHead& out) {
  out = ResponseHead{};
  size_t eol = head.find('\n');
  if (eol == std::string_view::npos) return false;
  std::string_view line = text::trim(head.substr(0, eol), " \t\r");
  head.remove_prefix(eol + 1);
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return false;
  out.minor_version = line[7] - '0';
  if (out.minor_version != 0 && out.minor_version != 1) return false;
  int status = 0;
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
  if (ec != std::errc() || p != line.data() + 12 || status < 100) return false;
  out.status = status;
  bool keep_alive = false, close = false;
  while (!head.empty()) {
    eol = head.find('\n');
    line = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view name = line.substr(0, colon),
                     value = text::trim(line.substr(colon + 1), " \t\r");
    if (text::iequals(name, "Content-Length")) {
      uint64_t n = 0;
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (e != std::errc() || q != value.data() + value.size()) return false;
      if (out.content_length && *out.content_length != n) return false;
      out.content_length = n;
    } else if (text::iequals(name, "Transfer-Encoding")) {
      if (text::has_token(value, "chunked")) out.chunked = true;
    } else if (text::iequals(name, "Connection")) {
      if (text::has_token(value, "close")) close = true;
      if (text::has_token(value, "keep-alive")) keep_alive = true;
    } else if (text::iequals(name, "Set-Cookie")) {
      if (out.set_cookie.empty()) out.set_cookie = value;
    } else if (text::iequals(name, "WWW-Authenticate")) {
      auto is_digest = [](std::string_view v) {
        return v.size() >= 6 && text::iequals(v.substr(0, 6), "Digest");
      };
      if (out.www_authenticate.empty() || (is_digest(value) && !is_digest(out.www_authenticate)))
        out.www_authenticate = value;
    } else if (text::iequals(name, "Retry-After")) {
      out.retry_after = value;
    }
  }
  out.close = close || (out.minor_version == 0 && !keep_alive);
  return true;
}

bool has_framed_body(const ResponseHead& h) {
  if (h.status < 200 || h.status == 204 || h.status == 304) return false;
  return h.chunked || h.content_length.has_value();
}

bool body_until_eof(const ResponseHead& h) {
  if (h.status < 200 || h.status == 204 || h.status == 304) return false;
  return !h.chunked && !h.content_length.has_value();
}

Dechunk dechunk(std::string_view data, std::string& out, size_t* consumed) {
  size_t pos = 0;
  for (;;) {
    size_t eol = data.find('\n', pos);
    if (eol == std::string_view::npos)
      return data.size() - pos > 1024 ? Dechunk::kError : Dechunk::kIncomplete;
    std::string_view line = data.substr(pos, eol - pos);
    if (size_t semi = line.find(';'); semi != std::string_view::npos) line = line.substr(0, semi);
    line = text::trim(line, " \t\r");
    uint64_t size = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
    if (ec != std::errc() || p != line.data() + line.size() || size > (uint64_t{1} << 31))
      return Dechunk::kError;
    pos = eol + 1;
    if (size == 0) {
      // Trailers up to the blank line.
      for (;;) {
        eol = data.find('\n', pos);
        if (eol == std::string_view::npos) return Dechunk::kIncomplete;
        std::string_view t = text::trim(data.substr(pos, eol - pos), " \t\r");
        pos = eol + 1;
        if (t.empty()) {
          *consumed = pos;
          return Dechunk::kDone;
        }
      }
    }
    if (data.size() - pos < size + 1) return Dechunk::kIncomplete;
    out.append(data.substr(pos, size));
    pos += size;
    if (data[pos] == '\r') ++pos;
    if (pos >= data.size()) return Dechunk::kIncomplete;
    if (data[pos] != '\n') return Dechunk::kError;
    ++pos;
  }
}

std::string_view cookie_pair(std::string_view set_cookie) {
  return text::trim(set_cookie.substr(0, set_cookie.find(';')));
}

DigestClient::DigestClient(std::string username, std::string password)
    : username_(std::move(username)), password_(std::move(password)) {}

bool DigestClient::take_challenge(std::string_view www_authenticate, std::string_view cnonce) {
  active_ = false;
  auto params = auth::parse_digest(www_authenticate);
  if (!params || params->nonce.empty()) return false;
  if (!params->algorithm.empty() && !text::iequals(params->algorithm, "MD5")) return false;
  qop_auth_ = false;
  if (!params->qop.empty()) {
    if (!text::has_token(params->qop, "auth")) return false;
    qop_auth_ = true;
  }
  if (params->realm != realm_ || ha1_.empty()) {
    realm_ = params->realm;
    ha1_ = auth::md5_hex(username_ + ":" + realm_ + ":" + password_);
  }
  nonce_ = params->nonce;
  opaque_ = params->opaque;
  cnonce_ = std::string(cnonce);
  nc_ = 0;
  active_ = true;
  return true;
}

std::string DigestClient::authorization(std::string_view method, std::string_view uri) {
  ++nc_;
  char nc[9];
  std::snprintf(nc, sizeof nc, "%08x", nc_);
  std::string ha2_in;
  ha2_in.reserve(method.size() + uri.size() + 1);
  ha2_in.append(method).append(":").append(uri);
  std::string ha2 = auth::md5_hex(ha2_in);
  std::string resp_in = ha1_ + ":" + nonce_ + ":";
  if (qop_auth_) resp_in += std::string(nc) + ":" + cnonce_ + ":auth:";
  resp_in += ha2;
  std::string response = auth::md5_hex(resp_in);

  std::string h = "Digest username=\"" + username_ + "\", realm=\"" + realm_ + "\", nonce=\"" +
                  nonce_ + "\", uri=\"" + std::string(uri) + "\", algorithm=MD5";
  if (qop_auth_) h += ", qop=auth, nc=" + std::string(nc) + ", cnonce=\"" + cnonce_ + "\"";
  h += ", response=\"" + response + "\"";
  if (!opaque_.empty()) h += ", opaque=\"" + opaque_ + "\"";
  return h;
}

}  // namespace luacs::loadgen
