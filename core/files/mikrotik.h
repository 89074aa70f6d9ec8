// The files luacs generates for MikroTik RouterOS devices to download: a
// RouterOS script as a `.alter` file (RouterOS runs a downloaded file whose
// name ends in .alter against the live configuration), and the firmware
// upgrade manifest that lists the packages to install.
//
// Pure: it builds names and bytes; publishing them on the file server is the
// caller's (core/main.cc wires both into the policy API's FileServices).
// Any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace luacs::files::mikrotik {

// A generated file, ready for FileServer::publish.
struct Generated {
  std::string name;  // files::valid_name()
  std::string content_type;
  std::string bytes;
  std::string device_id;  // "" = not bound to a device
  std::string sha256;     // lower-case hex of bytes
};

// `script` as a .alter file for `device_id`, named `name` (".alter" appended
// when missing) or, without a name, "<device id>-<first 8 hex digits
// of the script's sha256>.alter" with every character of the device id
// outside [A-Za-z0-9._-] as '_'. Throws std::invalid_argument
// ("'<name>' is not a file name ([A-Za-z0-9._-])") for a name the file
// server cannot serve.
Generated alter_script(std::string_view device_id, std::string script,
                       const std::optional<std::string>& name);

// MikroTik's upgrade manifest listing `urls` (each escaped as XML text),
// named "upgrade-<first 16 hex digits of its sha256>.xml".
Generated upgrade_manifest(const std::vector<std::string>& urls);

}  // namespace luacs::files::mikrotik
