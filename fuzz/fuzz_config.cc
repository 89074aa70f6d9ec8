// The configuration parser (core/config/config.h), from text.
//
// Input: the text of an ini file. It parses, or fails with ConfigError
// "name:line: message" (any other exception is a finding). Secrets never
// show in a message: the value of every password, dsn and secret line is
// swapped for a marker before parsing, and the marker must not appear in
// the error.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/config/config.h"
#include "fuzz/common.h"

using namespace luacs;

namespace {

constexpr std::string_view kMarker = "Zq7\x01secret";

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

// The text with the value of each `password|dsn|secret = ...` line (in any
// section: where they are not secrets they are unknown keys, whose values
// are not echoed either) replaced by kMarker.
std::string hide_secrets(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    size_t i = 0;
    while (i < line.size() && is_blank(line[i])) ++i;
    const size_t sep = line.find_first_of("=:", i);
    std::string_view key =
        sep == std::string_view::npos ? std::string_view() : line.substr(i, sep - i);
    while (!key.empty() && is_blank(key.back())) key.remove_suffix(1);
    if (key == "password" || key == "dsn" || key == "secret") {
      out.append(line.substr(0, sep + 1)).append(" ").append(kMarker);
    } else {
      out.append(line);
    }
    if (nl != std::string_view::npos) out += '\n';
  }
  return out;
}

void seeds(fuzz::SeedWriter& w);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(&seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.find(kMarker) != std::string_view::npos) return 0;
  const std::string text = hide_secrets(input);
  try {
    const config::Config cfg = config::parse(text, "fuzz.ini");
    FUZZ_CHECK(cfg.path == "fuzz.ini", "path");
    FUZZ_CHECK(!cfg.listen.empty(), "no [cwmp] listener");
    FUZZ_CHECK(cfg.tls_cert.size() == cfg.tls_key.size(), "unpaired tls_cert/tls_key");
    if (cfg.auth_mode == config::AuthMode::kDigest)
      FUZZ_CHECK(!cfg.credentials.empty(), "digest without credentials");
  } catch (const config::ConfigError& e) {
    const std::string what = e.what();
    FUZZ_CHECK(what.starts_with("fuzz.ini:"), "message without the file: " + what);
    FUZZ_CHECK(what.find(kMarker) == std::string::npos, "a secret in the message: " + what);
  }
  return 0;
}

namespace {

void seeds(fuzz::SeedWriter& w) {
  const std::string ini = fuzz::read_file(LUACS_SOURCE_DIR "/etc/luacs.ini");
  w.add(ini);
  // Every section on its own, and a few lines that set things.
  for (size_t at = ini.find("\n["); at != std::string::npos; at = ini.find("\n[", at + 1))
    w.add(ini.substr(at + 1, ini.find("\n[", at + 1) - at - 1));
  w.add(
      "[auth]\nmode = digest\nusername = cpe\npassword = x\nallow_basic = tls\n"
      "[auth.devices]\n00D09E-HG-SN1 = dev:pw:x\n"
      "[cwmp]\nlisten = 0.0.0.0:7547, https://[::]:7548\ntls_cert = a.pem, b.pem\n"
      "tls_key = a.key, b.key\n[limits]\nmax_body_bytes = 16M\nsession_timeout = 5m\n"
      "[store]\ndsn = host=/tmp dbname=luacs\n[files]\nsecret = 00ff\n"
      "[connection_request]\nports = 80, 1024-65535\nallow = 10.0.0.0/8, ::/0\n");
}

}  // namespace
