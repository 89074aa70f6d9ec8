// Reading the ini file: inih hands every line to the parser, which checks
// sections and duplicates, sets each key through its table entry
// (keys.cc), and checks keys against each other at the end.
#include <ini.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/config/config.h"
#include "core/config/parse.h"

namespace luacs::config {

namespace ini {

constexpr std::string_view kSections[] = {
    "cwmp", "limits", "auth", "auth.devices", "store",   "policy", "files",
    "nbi",  "stun",   "xmpp", "metrics",      "control", "log",    "connection_request"};

bool known_section(std::string_view s) {
  for (const auto k : kSections)
    if (k == s) return true;
  return false;
}

void Parser::on_key(std::string_view section, std::string_view key, std::string_view value) {
  if (section.empty()) {
    fail(line, "key '" + std::string(key) + "' outside of any section");
    return;
  }
  const std::string id = std::string(section) + '\n' + std::string(key);
  if (const auto it = seen.find(id); it != seen.end()) {
    fail(line, "duplicated key '" + std::string(key) + "' in [" + std::string(section) +
                   "] (first set on line " + std::to_string(it->second) + ")");
    return;
  }
  seen.emplace(id, line);

  if (section == "auth.devices") {
    if (!is_device_id(key)) {
      fail(line, "bad device id '" + std::string(key) +
                     "' in [auth.devices] (letters, digits, '_', '-' and %XX escapes, "
                     "as luacs spells device ids)");
      return;
    }
    const auto colon = value.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == value.size()) {
      // The value holds a password: never echo it.
      fail(line, "bad entry for device '" + std::string(key) +
                     "' in [auth.devices]: expected <username>:<password>");
      return;
    }
    device_credentials.push_back({std::string(value.substr(0, colon)),
                                  std::string(value.substr(colon + 1)), std::string(key)});
    return;
  }

  const Key* known = nullptr;
  for (const Key& k : keys())
    if (k.section == section && k.name == key) known = &k;
  if (!known) {
    fail(line, "unknown key '" + std::string(key) + "' in [" + std::string(section) + "]");
    return;
  }
  try {
    known->set(*this, value);
  } catch (const ValueError& e) {
    const bool secret =
        (section == "auth" && key == "password") || (section == "store" && key == "dsn") ||
        (section == "files" && key == "secret") || (section == "xmpp" && key == "password") ||
        (section == "connection_request" && key == "password");
    std::string msg = "bad value ";
    if (!secret) msg += "'" + std::string(value) + "' ";
    msg += "for '" + std::string(key) + "' in [" + std::string(section) + "]: " + e.reason;
    fail(line, std::move(msg));
  }
}

// Checks that span keys, once the whole file has been read.
void Parser::finish() {
  if (username && !password) fail(username_line, "[auth] username is set without a password");
  if (password && !username) fail(password_line, "[auth] password is set without a username");
  if (username && password) cfg.credentials.push_back({*username, *password, ""});
  for (auto& c : device_credentials) cfg.credentials.push_back(std::move(c));

  if (cfg.auth_mode == AuthMode::kDigest && cfg.credentials.empty())
    fail(mode_line,
         "mode = digest needs credentials: set username and password in [auth], or add "
         "[auth.devices] entries");
  if (!cfg.xmpp_jid.empty() && cfg.xmpp_password.empty())
    fail(xmpp_jid_line, "[xmpp] jid is set without a password");
  for (const auto& l : cfg.listen) {
    if (l.tls && (cfg.tls_cert.empty() || cfg.tls_key.empty())) {
      fail(listen_line, "an https:// listener needs tls_cert and tls_key in [cwmp]");
      break;
    }
  }
  // The API and file ports serve the CWMP port's certificates.
  const bool certs = !cfg.tls_cert.empty() && !cfg.tls_key.empty();
  if (cfg.nbi_listen.tls && !certs)
    fail(nbi_listen_line, "an https:// [nbi] listen needs tls_cert and tls_key in [cwmp]");
  if (cfg.files_listen.tls && !certs)
    fail(files_listen_line, "an https:// [files] listen needs tls_cert and tls_key in [cwmp]");
  if (cfg.files_listen.tls && cfg.files_url.rfind("http://", 0) == 0)
    fail(files_url_line,
         "[files] url is http:// but [files] listen is https://: CPEs would send plain HTTP "
         "to a TLS port");
  if (cfg.tls_cert.size() != cfg.tls_key.size())
    fail(tls_cert_line, std::to_string(cfg.tls_cert.size()) + " tls_cert files but " +
                            std::to_string(cfg.tls_key.size()) +
                            " tls_key files (they pair up in order)");
  if (cfg.tls_client_auth != "none" && cfg.tls_client_ca.empty())
    fail(tls_client_auth_line,
         "tls_client_auth = " + cfg.tls_client_auth + " needs tls_client_ca (a PEM file of CAs)");
  // Without a binding any certificate of the CA would log in as any device.
  if (cfg.certificate_alone &&
      (cfg.tls_client_ca.empty() || cfg.tls_cert_binding == CertBinding::kNone))
    fail(certificate_alone_line,
         "certificate_alone needs [cwmp] tls_client_ca and a tls_cert_binding other than none");
}

// inih's reader (fgets-like). It hands inih one line per call, which is what
// lets the handler know its line number (inih is not built with
// INI_HANDLER_LINENO). It also
//  - strips leading blanks, so inih never joins an indented line to the
//    previous value (its multi-line mode would make that a duplicated key);
//  - checks [section] names here, so an unknown section is reported at its
//    header even when it is empty;
//  - reports lines longer than inih's buffer instead of letting inih split
//    them (which would silently shift every later line number).
char* read_line(char* str, int num, void* stream) {
  auto* p = static_cast<Parser*>(stream);
  if (p->pos >= p->text.size() || num < 3) return nullptr;
  try {
    const auto nl = p->text.find('\n', p->pos);
    const size_t end = nl == std::string_view::npos ? p->text.size() : nl;
    std::string_view line = p->text.substr(p->pos, end - p->pos);
    p->pos = nl == std::string_view::npos ? p->text.size() : nl + 1;
    ++p->line;

    if (p->line == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);

    if (line.find('\0') != std::string_view::npos) {
      p->fail(p->line, "NUL byte in line");
      line = {};
    }
    const size_t room = static_cast<size_t>(num) - 2;  // '\n' and '\0'
    if (line.size() > room) {
      p->fail(p->line, "line too long (more than " + std::to_string(room) + " characters)");
      line = {};
    }
    if (!line.empty() && line.front() == '[') {
      const auto close = line.find(']');
      if (close != std::string_view::npos) {
        const auto section = line.substr(1, close - 1);
        if (!known_section(section))
          p->fail(p->line, "unknown section [" + std::string(section) + "]");
      }
    }
    if (!line.empty()) std::memcpy(str, line.data(), line.size());
    str[line.size()] = '\n';
    str[line.size() + 1] = '\0';
    return str;
  } catch (...) {  // never unwind through C
    p->fail(p->line, "out of memory");
    return nullptr;
  }
}

int on_ini_key(void* user, const char* section, const char* name, const char* value) {
  auto* p = static_cast<Parser*>(user);
  try {
    p->on_key(section ? section : "", name ? name : "", value ? value : "");
  } catch (...) {  // never unwind through C
    p->fail(p->line, "out of memory");
  }
  return 1;
}

}  // namespace ini

Config parse(std::string_view text, const std::string& name) {
  ini::Parser p(text, name);
  const int rc = ini_parse_stream(&ini::read_line, &p, &ini::on_ini_key, &p);
  if (rc < 0) throw ConfigError(name + ": cannot parse (out of memory)");
  if (!p.error) p.finish();
  // inih reports only syntax errors here (the handler always returns 1);
  // report whichever error comes first in the file.
  if (p.error && (rc == 0 || p.error->line <= rc))
    throw ConfigError(name + ":" + std::to_string(p.error->line) + ": " + p.error->message);
  if (rc > 0)
    throw ConfigError(name + ":" + std::to_string(rc) +
                      ": syntax error (expected 'key = value', '[section]' or a comment)");
  return std::move(p.cfg);
}

Config load(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) throw ConfigError(path + ": cannot open: " + std::strerror(err));
  return parse(text, path);
}

}  // namespace luacs::config
