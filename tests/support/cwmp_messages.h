// CWMP messages the tests' simulated CPEs send.
#pragma once

#include <string>
#include <vector>

#include "core/soap/message.h"

namespace luacs::test {

// A MikroTik-style TR-181 Inform for serial `serial`.
std::string inform_xml(const std::string& serial, const std::string& oui = "E48D8C",
                       const std::string& product_class = "hAP lite",
                       const std::vector<soap::EventStruct>& events = {{"1 BOOT", ""}},
                       const std::vector<soap::ParameterValue>& extra_params = {});
// A CPE message (response, fault or request) with cwmp:ID `id`.
std::string message_xml(soap::Body body, const std::string& id);
// Parses an ACS reply; fails the current test on a parse error.
soap::Envelope parse_ok(const std::string& body);

}  // namespace luacs::test
