// SOAP writer: message values (message.h) out as CWMP envelopes.
//
// Writes every body type in both directions (the ACS writes requests and
// responses to CPE requests; the load generator plays the CPE with the same
// code). Output uses the prefixes soap-env, soap-enc, xsd, xsi and cwmp, with
// cwmp bound to Envelope::cwmp_ns so the CPE is answered in its own namespace.
// Arrays carry soap-enc:arrayType with the exact count, values carry
// xsi:type="xsd:<type>", struct booleans are written 1/0, and every argument
// of an RPC is written in schema order. Text is escaped; characters XML 1.0
// cannot carry (control characters, invalid UTF-8) are replaced by '?'.
#pragma once

#include <string>
#include <string_view>

#include "core/soap/message.h"

namespace luacs::soap {

// Appends the SOAP envelope for env to out (out is not cleared). An Empty
// body appends nothing (the empty HTTP body is the message).
void write(std::string& out, const Envelope& env);
std::string write(const Envelope& env);

// Appends `text` to out escaped as the text of an XML element: &, < and >
// as entities, \r as &#13;, and what XML 1.0 cannot carry (control
// characters, invalid UTF-8) as '?'. The one XML escaper of luacs: every XML
// it writes (envelopes, the MikroTik upgrade manifest) goes through it.
void escape_text(std::string& out, std::string_view text);

}  // namespace luacs::soap
