// The .alter scripts and upgrade manifests of MikroTik devices
// (core/files/mikrotik.h).
#include "core/files/mikrotik.h"

#include <stdexcept>

#include "core/soap/writer.h"
#include "core/util/hex.h"
#include "core/util/text.h"

namespace luacs::files::mikrotik {
namespace {

// A device id made safe for a file name: "E48D8C-hAP%20lite-7DC" -> "E48D8C-hAP_20lite-7DC".
std::string file_safe(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    out += ok ? c : '_';
  }
  return out.substr(0, 120);
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

Generated alter_script(std::string_view device_id, std::string script,
                       const std::optional<std::string>& name) {
  Generated f;
  f.sha256 = util::sha256_hex(script);
  f.name = name ? *name : file_safe(device_id) + "-" + f.sha256.substr(0, 8);
  // Only a name ending in .alter is run against the live configuration; any
  // other would replace the whole configuration.
  if (!ends_with(f.name, ".alter")) f.name += ".alter";
  if (!text::safe_file_name(f.name))
    throw std::invalid_argument("'" + f.name + "' is not a file name ([A-Za-z0-9._-])");
  f.content_type = "text/plain; charset=utf-8";
  f.bytes = std::move(script);
  f.device_id = device_id;
  return f;
}

Generated upgrade_manifest(const std::vector<std::string>& urls) {
  Generated f;
  f.bytes = "<upgrade version=\"1\" type=\"links\">\n   <config/>\n   <links>\n";
  for (const auto& url : urls) {
    f.bytes += "       <link><url>";
    soap::escape_text(f.bytes, url);
    f.bytes += "</url></link>\n";
  }
  f.bytes += "   </links>\n</upgrade>\n";
  f.sha256 = util::sha256_hex(f.bytes);
  f.name = "upgrade-" + f.sha256.substr(0, 16) + ".xml";
  f.content_type = "application/xml";
  return f;
}

}  // namespace luacs::files::mikrotik
