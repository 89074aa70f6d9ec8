#include "support/cwmp_messages.h"

#include <gtest/gtest.h>

#include "core/soap/reader.h"
#include "core/soap/writer.h"

namespace luacs::test {

std::string inform_xml(const std::string& serial, const std::string& oui,
                       const std::string& product_class,
                       const std::vector<soap::EventStruct>& events,
                       const std::vector<soap::ParameterValue>& extra_params) {
  soap::Envelope env;
  env.header.id = "inf-" + serial;
  soap::Inform in;
  in.device_id = {"MikroTik", oui, product_class, serial};
  in.events = events;
  in.current_time = "2026-11-21T10:00:00Z";
  in.parameters = {{"Device.DeviceInfo.SoftwareVersion", "7.16", "string"},
                   {"Device.ManagementServer.ParameterKey", "", "string"}};
  in.parameters.insert(in.parameters.end(), extra_params.begin(), extra_params.end());
  env.body = in;
  return soap::write(env);
}

std::string message_xml(soap::Body body, const std::string& id) {
  soap::Envelope env;
  env.header.id = id;
  env.body = std::move(body);
  return soap::write(env);
}

soap::Envelope parse_ok(const std::string& body) {
  soap::Envelope env;
  std::string err;
  EXPECT_TRUE(soap::parse(body, env, &err)) << err << "\n" << body;
  return env;
}

}  // namespace luacs::test
