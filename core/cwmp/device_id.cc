#include "core/cwmp/device_id.h"

namespace luacs::cwmp {

// GenieACS (genieacs/genieacs lib/common.ts, generateDeviceId; the same in
// lib/common.coffee before the TypeScript port):
//
//   str.replace(/[^A-Za-z0-9_]/g, (chr) => {
//     const buf = Buffer.from(chr, "utf8");
//     let rep = "";
//     for (const b of buf) rep += "%" + b.toString(16).toUpperCase();
//     return rep;
//   });
//
// Consequences reproduced here:
//  - b.toString(16) does not pad: bytes below 0x10 get one hex digit ("%9").
//  - The regex has no /u flag, so it walks UTF-16 code units: a character
//    outside the BMP (4-byte UTF-8) is two lone surrogates, and Node encodes
//    each lone surrogate as U+FFFD, i.e. "%EF%BF%BD%EF%BF%BD". Lossy, but it
//    is what GenieACS stored.
//  - Other non-ASCII characters come out as their UTF-8 bytes.
// Bytes that are not valid UTF-8 cannot reach us through the XML parser;
// should one appear it is escaped on its own (lossless, and no GenieACS id
// to agree with).
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

void escape_byte(std::string& out, unsigned char b) {
  out += '%';
  if (b >= 0x10) out += kHex[b >> 4];
  out += kHex[b & 0xf];
}

bool is_cont(unsigned char b) {
  return (b & 0xC0) == 0x80;
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
size_t utf8_length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  auto at = [&](size_t k) -> unsigned char {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) return is_cont(at(1)) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned char b1 = at(1);
    if (!is_cont(b1) || !is_cont(at(2))) return 0;
    if (b0 == 0xE0 && b1 < 0xA0) return 0;   // overlong
    if (b0 == 0xED && b1 >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned char b1 = at(1);
    if (!is_cont(b1) || !is_cont(at(2)) || !is_cont(at(3))) return 0;
    if (b0 == 0xF0 && b1 < 0x90) return 0;   // overlong
    if (b0 == 0xF4 && b1 >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

bool is_plain(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

std::string escape_id_part(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (is_plain(c)) {
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x80) {
      escape_byte(out, c);
      ++i;
    } else if (const size_t n = utf8_length(s, i); n == 4) {
      out += "%EF%BF%BD%EF%BF%BD";  // two lone surrogates, see above
      i += 4;
    } else if (n > 0) {
      for (size_t k = 0; k < n; ++k) escape_byte(out, static_cast<unsigned char>(s[i + k]));
      i += n;
    } else {
      escape_byte(out, c);
      ++i;
    }
  }
  return out;
}

std::string device_id(const soap::DeviceIdStruct& id) {
  std::string out = escape_id_part(id.oui);
  out += '-';
  if (!id.product_class.empty()) {
    out += escape_id_part(id.product_class);
    out += '-';
  }
  out += escape_id_part(id.serial_number);
  return out;
}

std::string data_model_root(const soap::Inform& in) {
  for (const auto& p : in.parameters) {
    auto dot = p.name.find('.');
    if (dot != std::string::npos && dot > 0) return p.name.substr(0, dot);
  }
  return {};
}

}  // namespace luacs::cwmp
