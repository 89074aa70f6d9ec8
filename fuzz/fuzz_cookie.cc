// The Cookie header parser (core/http/cookie.h).
//
// Input: one byte n, n bytes of cookie name, then the header value.
// Properties: the value found is a piece of the header (a view into it),
// holds no pair separator, and is found only for a name the header holds;
// RFC 2965 attributes ($Version, ...) are never found; and what
// set_cookie_value() writes, find_cookie() reads back, for the session ids
// luacs hands out.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/http/cookie.h"
#include "fuzz/common.h"

using namespace luacs;
using fuzz::Bytes;

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

// A name or value set_cookie_value() can carry and find_cookie() read back.
bool clean(std::string_view s) {
  if (s.empty() || is_space(s.front()) || is_space(s.back())) return false;
  return s.find_first_of(";,=\"") == std::string_view::npos;
}

void seeds(fuzz::SeedWriter& w);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(&seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const std::string name(in.take(in.byte()));
  const std::string header(in.rest());

  const std::string_view v = http::find_cookie(header, name);
  if (!v.empty()) {
    FUZZ_CHECK(v.data() >= header.data() && v.data() + v.size() <= header.data() + header.size(),
               "the value is not a piece of the header");
    FUZZ_CHECK(v.find_first_of(";,") == std::string_view::npos, "separator in the value");
    FUZZ_CHECK(header.find(name) != std::string::npos, "found a name the header lacks");
  }
  if (!name.empty() && name.front() == '$') FUZZ_CHECK(v.empty(), "an attribute found as a cookie");

  // What luacs sets, it reads back, also behind what the CPE added.
  if (clean(name) && name.front() != '$') {
    const std::string value = clean(v) ? std::string(v) : "0123456789abcdef";
    const std::string set = http::set_cookie_value(name, value);
    FUZZ_CHECK(http::find_cookie(set, name) == value, set);
    const std::string sent = "$Version=\"0\"; " + set;
    FUZZ_CHECK(http::find_cookie(sent, name) == value, sent);
  }
  return 0;
}

namespace {

void seeds(fuzz::SeedWriter& w) {
  auto add = [&](std::string_view name, std::string_view header) {
    w.add(std::string(1, static_cast<char>(name.size())) + std::string(name) + std::string(header));
  };
  for (const auto& [file, text] : fuzz::corpus_files("cwmp", ".http")) {
    for (size_t at = text.find("Cookie: "); at != std::string::npos;
         at = text.find("Cookie: ", at + 1)) {
      const size_t end = text.find_first_of("\r\n", at);
      add("ID", text.substr(at + 8, end - at - 8));
    }
  }
  add("session", "session=\"6b0f4c2e9a7d1e35\"; $Path=/");
  add("session", "a=1, session = 6b0f4c2e9a7d1e35 ;b");
}

}  // namespace
