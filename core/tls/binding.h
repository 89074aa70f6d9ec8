// Which device a client certificate belongs to (issue 14, docs/tls.md
// "Client certificates"): the rule an operator picks with [cwmp]
// tls_cert_binding / tls_cert_binding_in.
//
// A certificate names a device by its serial number or by its device id
// (OUI-ProductClass-Serial), in the subject's CN or in a subjectAltName. A
// SAN names it when its value, after the type ("DNS:", "URI:", ...), is the
// identifier itself or ends in ":" and the identifier -- the URN form
// `urn:luacs:device:SERIAL` scripts/dev-ca issues, or a vendor's own
// `urn:dev:ops:...:SERIAL`. Comparison is exact (serials are case-sensitive
// on the wire, and a CA that issues them knows their case).
//
// Pure: no OpenSSL object, any thread.
#pragma once

#include <string_view>

#include "core/tls/context.h"

namespace luacs::tls {

enum class BindTo { kNone, kSerial, kDeviceId };
enum class BindIn { kCommonName, kSan, kAny };

struct Binding {
  BindTo to = BindTo::kSerial;
  BindIn in = BindIn::kAny;
};

// Whether `cert` names the device (kNone: every certificate does).
bool binds(const PeerCertificate& cert, Binding rule, std::string_view serial,
           std::string_view device_id);

}  // namespace luacs::tls
