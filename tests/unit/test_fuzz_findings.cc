// What the libFuzzer targets (fuzz/, docs/reliability.md "Fuzzing") found,
// one test per finding, named after the target that found it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/session/task_rpc.h"
#include "core/soap/reader.h"
#include "core/soap/writer.h"

using namespace luacs;

namespace {

// What the ACS reads it writes back, and reads back the same.
void expect_round_trip(const soap::Envelope& env) {
  const std::string xml = soap::write(env);
  soap::Envelope back;
  std::string err;
  ASSERT_TRUE(soap::parse(xml, back, &err)) << err << "\n" << xml;
  EXPECT_EQ(back, env) << xml;
}

}  // namespace

// fuzz_task_body: a GenieACS parameterValues type that is no XML name went
// out as xsi:type="xsd:i=}=nt", which names no type (luacs itself read it
// back as "=nt"). Such a type is refused; one that is a name reads back as
// given.
TEST(FuzzFindings, TaskTypeThatIsNoXmlNameIsRefused) {
  std::string err;
  for (const char* type :
       {"xsd:i========}================nt", "xsd:", "", "x y", "1int", "a:b:c"}) {
    const nlohmann::json args = {{"values", {{"Device.X", "0", type}}}};
    EXPECT_FALSE(session::task_rpc("SetParameterValues", args.dump(), &err)) << type;
    EXPECT_NE(err.find("bad xsd type"), std::string::npos) << err;
  }
  for (const char* type : {"xsd:int", "boolean", "cwmp:x_vendor-type.1", "_t"}) {
    const nlohmann::json args = {{"values", {{"Device.X", "0", type}}}};
    const auto rpc = session::task_rpc("SetParameterValues", args.dump(), &err);
    ASSERT_TRUE(rpc) << type << ": " << err;
    soap::Envelope env;
    env.header.id = "luacs-1";
    env.body = *rpc;
    expect_round_trip(env);
  }
}

// fuzz_soap: the reader trimmed a faultcode before stripping its prefix,
// so "SOAP-ENV:\r\r Client" became "\n\n Client" (expat turns CR into LF),
// which it then read back from its own envelope as "Client". The same for
// xsi:type="xsd: int". Both are trimmed after the prefix now.
TEST(FuzzFindings, FaultcodeAndValueTypeTrimmedAfterTheirPrefix) {
  const std::string xml =
      "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
      "xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><SOAP-ENV:Header>"
      "<cwmp:ID SOAP-ENV:mustUnderstand=\"1\">50</cwmp:ID></SOAP-ENV:Header><SOAP-ENV:Body>"
      "<SOAP-ENV:Fault><faultcode>SOAP-ENV:\r\r\r\r\rClient</faultcode>"
      "<faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>9005</FaultCode>"
      "<FaultString></FaultString></cwmp:Fault></detail></SOAP-ENV:Fault></SOAP-ENV:Body>"
      "</SOAP-ENV:Envelope>";
  soap::Envelope env;
  std::string err;
  ASSERT_TRUE(soap::parse(xml, env, &err)) << err;
  EXPECT_EQ(std::get<soap::Fault>(env.body).faultcode, "Client");
  expect_round_trip(env);

  const std::string gpvr =
      "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
      "xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap:Body><cwmp:GetParameterValuesResponse>"
      "<ParameterList><ParameterValueStruct><Name>Device.X</Name>"
      "<Value xsi:type=\"xsd: int \">5</Value></ParameterValueStruct></ParameterList>"
      "</cwmp:GetParameterValuesResponse></soap:Body></soap:Envelope>";
  ASSERT_TRUE(soap::parse(gpvr, env, &err)) << err;
  EXPECT_EQ(std::get<soap::GetParameterValuesResponse>(env.body).parameters.at(0).type, "int");
  expect_round_trip(env);
}
