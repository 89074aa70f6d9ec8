#include "core/tls/binding.h"

namespace luacs::tls {

namespace {

bool san_names(std::string_view san, std::string_view id) {
  const auto colon = san.find(':');  // the type: "URI:", "DNS:", ...
  if (colon == std::string_view::npos) return false;
  const std::string_view value = san.substr(colon + 1);
  if (value == id) return true;
  return value.size() > id.size() && value.substr(value.size() - id.size()) == id &&
         value[value.size() - id.size() - 1] == ':';
}

}  // namespace

bool binds(const PeerCertificate& cert, Binding rule, std::string_view serial,
           std::string_view device_id) {
  if (rule.to == BindTo::kNone) return true;
  const std::string_view id = rule.to == BindTo::kSerial ? serial : device_id;
  if (id.empty()) return false;
  if (rule.in != BindIn::kSan && cert.common_name == id) return true;
  if (rule.in == BindIn::kCommonName) return false;
  for (const auto& san : cert.sans)
    if (san_names(san, id)) return true;
  return false;
}

}  // namespace luacs::tls
