#include "core/connreq/udp_request.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>

#include "core/util/hex.h"

namespace luacs::connreq {

namespace {

constexpr size_t kMaxDatagram = 2048;

bool unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string percent_encode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    if (unreserved(c)) {
      out.push_back(c);
    } else {
      const auto b = static_cast<unsigned char>(c);
      out += {'%', kHex[b >> 4], kHex[b & 15]};
    }
  }
  return out;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = util::hex_value(s[i + 1]), lo = util::hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 20 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool all_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return util::hex_value(c) >= 0; });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

std::string udp_request_signature(std::string_view password, uint64_t ts, std::string_view id,
                                  std::string_view username, std::string_view cnonce) {
  std::string text = std::to_string(ts);
  text.append(id).append(username).append(cnonce);
  unsigned char mac[20];
  unsigned len = 0;
  HMAC(EVP_sha1(), password.data(), static_cast<int>(password.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len);
  return util::to_hex(mac, sizeof mac);
}

std::string format_udp_request(const UdpRequest& r, std::string_view password) {
  const std::string hostport = r.host + ":" + std::to_string(r.port);
  return "GET http://" + hostport + "?ts=" + std::to_string(r.ts) + "&id=" + r.id +
         "&un=" + percent_encode(r.username) + "&cn=" + percent_encode(r.cnonce) +
         "&sig=" + udp_request_signature(password, r.ts, r.id, r.username, r.cnonce) +
         " HTTP/1.1\r\nHost: " + hostport + "\r\n\r\n";
}

std::optional<UdpRequest> parse_udp_request(std::string_view d) {
  if (d.size() > kMaxDatagram) return std::nullopt;
  const auto eol = d.find("\r\n");
  if (eol == std::string_view::npos) return std::nullopt;
  std::string_view line = d.substr(0, eol);
  const std::string_view headers = d.substr(eol + 2);
  constexpr std::string_view kPrefix = "GET http://", kSuffix = " HTTP/1.1";
  if (line.substr(0, kPrefix.size()) != kPrefix || line.size() < kPrefix.size() + kSuffix.size() ||
      line.substr(line.size() - kSuffix.size()) != kSuffix)
    return std::nullopt;
  line = line.substr(kPrefix.size(), line.size() - kPrefix.size() - kSuffix.size());
  const auto q = line.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view hostport = line.substr(0, q);
  if (!hostport.empty() && hostport.back() == '/') hostport.remove_suffix(1);
  const auto colon = hostport.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;

  UdpRequest r;
  r.host = std::string(hostport.substr(0, colon));
  const std::string_view port = hostport.substr(colon + 1);
  unsigned p = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
    return std::nullopt;
  r.port = static_cast<uint16_t>(p);
  if (headers.find("Host:") == std::string_view::npos &&
      headers.find("host:") == std::string_view::npos)
    return std::nullopt;

  bool ts = false, id = false, un = false, cn = false, sig = false;
  std::string_view query = line.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view key = pair.substr(0, eq);
    const auto value = percent_decode(pair.substr(eq + 1));
    if (!value) return std::nullopt;
    auto once = [](bool& seen) {
      if (seen) return false;
      seen = true;
      return true;
    };
    if (key == "ts") {
      if (!once(ts) || !all_digits(*value)) return std::nullopt;
      const auto [e, c] = std::from_chars(value->data(), value->data() + value->size(), r.ts);
      if (c != std::errc()) return std::nullopt;
    } else if (key == "id") {
      if (!once(id) || !all_digits(*value)) return std::nullopt;
      r.id = *value;
    } else if (key == "un") {
      if (!once(un)) return std::nullopt;
      r.username = *value;
    } else if (key == "cn") {
      if (!once(cn)) return std::nullopt;
      r.cnonce = *value;
    } else if (key == "sig") {
      if (!once(sig) || value->size() != 40 || !all_hex(*value)) return std::nullopt;
      r.signature = lower(*value);
    }
    // Other keys: ignored (a later amendment may add some).
  }
  if (!(ts && id && un && cn && sig)) return std::nullopt;
  return r;
}

UdpRequestVerifier::Verdict UdpRequestVerifier::check(std::string_view datagram) {
  auto r = parse_udp_request(datagram);
  if (!r) return Verdict::kMalformed;
  if (r->username != username_) return Verdict::kWrongUser;
  const std::string want = udp_request_signature(password_, r->ts, r->id, r->username, r->cnonce);
  if (CRYPTO_memcmp(want.data(), r->signature.data(), want.size()) != 0)
    return Verdict::kBadSignature;
  if (std::find(ids_.begin(), ids_.end(), r->id) != ids_.end()) return Verdict::kReplayed;
  if (last_ && r->ts < last_->ts) return Verdict::kStale;
  ids_.push_back(r->id);
  if (ids_.size() > kIdsKept) ids_.pop_front();
  last_ = std::move(r);
  return Verdict::kAccepted;
}

std::string_view to_string(UdpRequestVerifier::Verdict v) {
  using V = UdpRequestVerifier::Verdict;
  switch (v) {
    case V::kAccepted:
      return "accepted";
    case V::kMalformed:
      return "malformed";
    case V::kWrongUser:
      return "wrong_user";
    case V::kBadSignature:
      return "bad_signature";
    case V::kStale:
      return "stale";
    case V::kReplayed:
      return "replayed";
  }
  return "?";
}

}  // namespace luacs::connreq
