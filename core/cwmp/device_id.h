// The device key: how luacs (and GenieACS before it) names a device.
//
//   "OUI-ProductClass-SerialNumber", or "OUI-SerialNumber" when ProductClass
//   is empty, each part escaped by escape_id_part().
//
// It is spelt exactly as GenieACS spells it, so device ids (and everything
// keyed on them: tags, provisioning data, credentials) carry over from a
// GenieACS installation. The OUI is kept as sent: lower-case OUIs exist in
// the wild (docs/cwmp-protocol.md §10 row 11) and GenieACS does not fold them.
#pragma once

#include <string>
#include <string_view>

#include "core/soap/message.h"

namespace luacs::cwmp {

// Keeps [A-Za-z0-9_]; every other character becomes %XX per UTF-8 byte,
// upper-case hex, *without* zero padding for bytes below 0x10 (GenieACS's
// quirk: a tab is "%9", not "%09"). `s` is UTF-8 (as the SOAP reader hands
// it over).
std::string escape_id_part(std::string_view s);

std::string device_id(const soap::DeviceIdStruct& id);

// The data-model root of an Inform: "InternetGatewayDevice" or "Device" (the
// first segment of its first dotted parameter name), "" when none.
std::string data_model_root(const soap::Inform& in);

}  // namespace luacs::cwmp
