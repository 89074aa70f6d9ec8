// The SOAP writer: exact output for the hot messages, escaping, and round
// trips through the reader for every body type and every corpus message.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "core/soap/reader.h"
#include "core/soap/writer.h"

namespace luacs::soap {
namespace {

const std::string kCorpusDir = std::string(LUACS_SHARED_DIR) + "/corpus/cwmp/";

Envelope read_back(const std::string& xml) {
  Envelope env;
  std::string err;
  EXPECT_TRUE(parse(xml, env, &err)) << err << "\n" << xml;
  return env;
}

void expect_round_trip(const Envelope& env) {
  std::string xml = write(env);
  ASSERT_FALSE(xml.empty());
  Envelope back = read_back(xml);
  EXPECT_TRUE(back == env) << "method " << method_name(env.body) << "\n" << xml;
}

size_t count(std::string_view hay, std::string_view needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

OpResult op_result(int i) {
  OpResult r;
  r.uuid = "6f1f8a2c-0000-4000-8000-00000000000" + std::to_string(i);
  r.deployment_unit_ref = "Device.SoftwareModules.DeploymentUnit." + std::to_string(i) + ".";
  r.version = "1." + std::to_string(i);
  r.current_state = "Installed";
  r.resolved = i % 2 == 0;
  r.execution_unit_ref_list = "Device.SoftwareModules.ExecutionUnit.1.";
  r.start_time = "2024-05-01T10:00:00Z";
  r.complete_time = "2024-05-01T10:00:05Z";
  r.fault = {i == 1 ? 9026u : 0u, i == 1 ? "Install failed" : ""};
  return r;
}

// One populated value of every body type but Empty.
std::vector<Body> all_bodies() {
  std::vector<Body> v;
  {
    Inform m;
    m.device_id = {"ACME & Sons", "00D09E", "HGW<1000>", "SN\"001'"};
    m.events = {{"0 BOOTSTRAP", ""}, {"1 BOOT", ""}, {"M Reboot", "key-1"}};
    m.max_envelopes = 1;
    m.current_time = "2024-05-01T10:00:00+02:00";
    m.retry_count = 3;
    m.parameters = {{"Device.DeviceInfo.SoftwareVersion", "1.2.3", "string"},
                    {"Device.ManagementServer.ConnectionRequestURL",
                     "http://192.0.2.1:7547/cr?a=1&b=2", "string"},
                    {"Device.ManagementServer.PeriodicInformEnable", "true", "boolean"},
                    {"Device.DeviceInfo.UpTime", "42", "unsignedInt"}};
    v.push_back(m);
  }
  v.push_back(TransferComplete{
      "dl-1", {9010, "Download failed"}, "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"});
  v.push_back(AutonomousTransferComplete{"http://a.example/announce",
                                         "http://a.example/file",
                                         true,
                                         "1 Firmware Upgrade Image",
                                         154321,
                                         "image.bin",
                                         {0, ""},
                                         "2015-01-19T23:08:24Z",
                                         "2015-01-19T23:18:24Z"});
  v.push_back(GetRPCMethods{});
  v.push_back(RequestDownload{"2 Web Content", {{"Version", "v2.0"}, {"Lang", " en & fr "}}});
  v.push_back(Kicked{"login", "http://portal.example/", "a=1&b=2", "http://portal.example/n"});
  v.push_back(DUStateChangeComplete{{op_result(1), op_result(2)}, "du-key"});
  {
    AutonomousDUStateChangeComplete m;
    m.results = {op_result(3)};
    m.results[0].operation_performed = "Install";
    v.push_back(m);
  }
  v.push_back(InformResponse{1});
  v.push_back(TransferCompleteResponse{});
  v.push_back(AutonomousTransferCompleteResponse{});
  v.push_back(GetRPCMethodsResponse{{"Inform", "GetRPCMethods", "TransferComplete"}});
  v.push_back(RequestDownloadResponse{});
  v.push_back(KickedResponse{"http://portal.example/next?x=<1>"});
  v.push_back(DUStateChangeCompleteResponse{});
  v.push_back(AutonomousDUStateChangeCompleteResponse{});
  v.push_back(GetParameterNames{"Device.IP.", true});
  v.push_back(GetParameterValues{{"Device.DeviceInfo.", "Device.IP.Interface.1.Enable"}});
  v.push_back(
      SetParameterValues{{{"Device.ManagementServer.PeriodicInformInterval", "300", "unsignedInt"},
                          {"Device.X_ACME.Banner", "  <b>hi</b> & \"bye\"\n", "string"}},
                         "spv-7"});
  v.push_back(GetParameterAttributes{{"Device.DeviceInfo.SoftwareVersion"}});
  v.push_back(
      SetParameterAttributes{{{"Device.DeviceInfo.SoftwareVersion", true, 2, true, {"Subscriber"}},
                              {"Device.IP.", false, 0, false, {}}}});
  v.push_back(AddObject{"Device.IP.Interface.", "ao-1"});
  v.push_back(DeleteObject{"Device.IP.Interface.3.", "do-1"});
  v.push_back(Reboot{"reboot-1"});
  v.push_back(FactoryReset{});
  v.push_back(Download{"fw-1", "1 Firmware Upgrade Image", "https://files.example/fw.bin?a&b",
                       "user", " p&ss<word> ", 1048576, "fw.bin", 30, "http://ok.example",
                       "http://ko.example"});
  v.push_back(Upload{"up-1", "2 Vendor Log File", "https://files.example/up", "u", "p", 5});
  v.push_back(ScheduleInform{60, "si-1"});
  v.push_back(GetParameterNamesResponse{
      {{"Device.", false}, {"Device.DeviceInfo.", false}, {"Device.ManagementServer.URL", true}}});
  v.push_back(GetParameterValuesResponse{{{"Device.DeviceInfo.UpTime", "516925", "unsignedInt"},
                                          {"Device.DeviceInfo.Description", "", "string"}}});
  v.push_back(SetParameterValuesResponse{1});
  v.push_back(GetParameterAttributesResponse{
      {{"Device.DeviceInfo.SoftwareVersion", 2, {"Subscriber", "Other"}},
       {"Device.DeviceInfo.UpTime", 0, {}}}});
  v.push_back(SetParameterAttributesResponse{});
  v.push_back(AddObjectResponse{7, 1});
  v.push_back(DeleteObjectResponse{1});
  v.push_back(RebootResponse{});
  v.push_back(FactoryResetResponse{});
  v.push_back(DownloadResponse{1, "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"});
  v.push_back(UploadResponse{0, "2024-05-01T10:00:00Z", "2024-05-01T10:00:09Z"});
  v.push_back(ScheduleInformResponse{});
  {
    Fault f;
    f.faultcode = "Client";
    f.faultstring = "CWMP fault";
    f.code = 9003;
    f.string = "Invalid arguments";
    f.set_parameter_values_faults = {{"Device.Time.NTPServer1", 9007, "Invalid IP Address"},
                                     {"Device.Time.LocalTimeZoneName", 9007, "Too <long>"}};
    v.push_back(f);
  }
  v.push_back(Unknown{"X_ACME_Frobnicate"});
  return v;
}

TEST(SoapWriter, EveryBodyTypeIsCovered) {
  std::set<size_t> seen;
  for (const Body& b : all_bodies()) seen.insert(b.index());
  EXPECT_EQ(seen.size(), std::variant_size_v<Body> - 1);  // all but Empty
  EXPECT_FALSE(seen.count(Body(Empty{}).index()));
}

TEST(SoapWriter, EveryBodyTypeRoundTrips) {
  for (const Body& b : all_bodies()) {
    SCOPED_TRACE(std::string(method_name(b)));
    Envelope env;
    env.header.id = "id-" + std::string(method_name(b));
    env.body = b;
    expect_round_trip(env);
    // Also without a header and in another namespace.
    env.header = Header{};
    env.cwmp_ns = std::string(kCwmpNs12);
    expect_round_trip(env);
    std::string xml = write(env);
    EXPECT_EQ(xml.find("Header"), std::string::npos);
  }
}

TEST(SoapWriter, EmptyBodyWritesNothing) {
  std::string out = "keep";
  Envelope env;
  env.header.id = "1";
  write(out, env);
  EXPECT_EQ(out, "keep");
  EXPECT_EQ(write(Envelope{}), "");
}

TEST(SoapWriter, AppendsWithoutClearing) {
  Envelope env;
  env.body = Reboot{"k"};
  std::string out = "HTTP/1.1 200 OK\r\n\r\n";
  write(out, env);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n\r\n<soap-env:Envelope", 0), 0u);
  EXPECT_EQ(out.substr(19), write(env));
}

TEST(SoapWriter, InformResponseExactText) {
  Envelope env;
  env.header.id = "1189711373";
  env.body = InformResponse{};
  std::string xml = write(env);
  EXPECT_NE(xml.find("<MaxEnvelopes>1</MaxEnvelopes>"), std::string::npos);
  EXPECT_EQ(xml,
            "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" "
            "xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\" "
            "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" "
            "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
            "xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\">"
            "<soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">1189711373</cwmp:ID>"
            "</soap-env:Header>"
            "<soap-env:Body><cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes>"
            "</cwmp:InformResponse></soap-env:Body></soap-env:Envelope>");
}

TEST(SoapWriter, FaultExactText) {
  Envelope env;
  env.header.id = "7";
  Fault f;
  f.faultcode = "Server";
  f.code = 8000;
  f.string = "Method not supported";
  env.body = f;
  std::string xml = write(env);
  EXPECT_NE(xml.find("<soap-env:Body><soap-env:Fault><faultcode>Server</faultcode>"
                     "<faultstring>CWMP fault</faultstring><detail><cwmp:Fault>"
                     "<FaultCode>8000</FaultCode><FaultString>Method not supported</FaultString>"
                     "</cwmp:Fault></detail></soap-env:Fault></soap-env:Body>"),
            std::string::npos)
      << xml;
  f.faultcode = "Client";
  f.code = 9003;
  f.set_parameter_values_faults = {{"A.b", 9007, "bad"}};
  env.body = f;
  xml = write(env);
  EXPECT_NE(xml.find("<FaultString>Method not supported</FaultString><SetParameterValuesFault>"
                     "<ParameterName>A.b</ParameterName><FaultCode>9007</FaultCode>"
                     "<FaultString>bad</FaultString></SetParameterValuesFault></cwmp:Fault>"),
            std::string::npos)
      << xml;
  expect_round_trip(env);
}

TEST(SoapWriter, HeaderFields) {
  Envelope env;
  env.body = InformResponse{};
  env.header.id = "";
  std::string xml = write(env);
  EXPECT_NE(xml.find("<soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\"></cwmp:ID>"
                     "</soap-env:Header>"),
            std::string::npos)
      << xml;
  expect_round_trip(env);

  env.header.id = "a<b>&c";
  env.header.hold_requests = true;
  xml = write(env);
  EXPECT_NE(xml.find("<cwmp:ID soap-env:mustUnderstand=\"1\">a&lt;b&gt;&amp;c</cwmp:ID>"
                     "<cwmp:HoldRequests soap-env:mustUnderstand=\"1\">1</cwmp:HoldRequests>"),
            std::string::npos)
      << xml;
  expect_round_trip(env);
  env.header.hold_requests = false;
  xml = write(env);
  EXPECT_NE(xml.find("<cwmp:HoldRequests soap-env:mustUnderstand=\"1\">0</cwmp:HoldRequests>"),
            std::string::npos);
  expect_round_trip(env);

  env.header = Header{};
  env.header.hold_requests = true;  // a header without an ID
  xml = write(env);
  EXPECT_EQ(xml.find("cwmp:ID"), std::string::npos);
  expect_round_trip(env);

  env.header = Header{};
  env.header.use_cwmp_version = "1.4";
  env.header.id = "x";
  xml = write(env);
  EXPECT_NE(xml.find("<cwmp:UseCWMPVersion soap-env:mustUnderstand=\"1\">1.4"
                     "</cwmp:UseCWMPVersion>"),
            std::string::npos);
  expect_round_trip(env);

  // The CPE side (load generator): 1.4 Inform headers, and an old CPE's NoMoreRequests.
  env.body = Inform{};
  env.header = Header{};
  env.header.id = "cpe-1";
  env.header.session_timeout = 60;
  env.header.supported_cwmp_versions = "1.0,1.1,1.2,1.3,1.4";
  env.header.no_more_requests = true;
  xml = write(env);
  EXPECT_NE(xml.find("<cwmp:SessionTimeout soap-env:mustUnderstand=\"0\">60"
                     "</cwmp:SessionTimeout>"),
            std::string::npos);
  EXPECT_NE(xml.find("<cwmp:SupportedCWMPVersions soap-env:mustUnderstand=\"0\">"
                     "1.0,1.1,1.2,1.3,1.4</cwmp:SupportedCWMPVersions>"),
            std::string::npos);
  expect_round_trip(env);
}

TEST(SoapWriter, NamespaceIsPreserved) {
  for (std::string_view ns : {kCwmpNs10, std::string_view("urn:dslforum-org:cwmp-1-1"), kCwmpNs12,
                              std::string_view("urn:dslforum-org:cwmp-1-4")}) {
    Envelope env;
    env.cwmp_ns = std::string(ns);
    env.header.id = "1";
    env.body = InformResponse{};
    std::string xml = write(env);
    EXPECT_NE(xml.find("xmlns:cwmp=\"" + std::string(ns) + "\""), std::string::npos) << xml;
    expect_round_trip(env);
  }
  // Answering the non-standard 1-4 namespace a CPE used.
  Envelope in;
  std::string err;
  std::ifstream f(kCorpusDir + "getrpcmethods-cpe-request-cwmp14ns.xml", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(parse(text, in, &err)) << err;
  Envelope out;
  out.cwmp_ns = in.cwmp_ns;
  out.header.id = in.header.id;
  out.body = GetRPCMethodsResponse{{"Inform", "GetRPCMethods", "TransferComplete"}};
  std::string xml = write(out);
  EXPECT_NE(xml.find("xmlns:cwmp=\"urn:dslforum-org:cwmp-1-4\""), std::string::npos);
  EXPECT_NE(xml.find("<cwmp:ID soap-env:mustUnderstand=\"1\">"
                     "API_69412286f02e475b44783c61972f0a91</cwmp:ID>"),
            std::string::npos);
  expect_round_trip(out);
}

TEST(SoapWriter, ArrayTypeCounts) {
  Envelope env;
  Inform inform;
  inform.events = {{"1 BOOT", ""}, {"2 PERIODIC", ""}, {"M Reboot", "k"}};
  inform.parameters = {{"A", "1", "string"}, {"B", "2", "int"}};
  env.body = inform;
  std::string xml = write(env);
  EXPECT_NE(xml.find("<Event soap-enc:arrayType=\"cwmp:EventStruct[3]\">"), std::string::npos);
  EXPECT_NE(xml.find("<ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[2]\">"),
            std::string::npos);
  EXPECT_EQ(count(xml, "<EventStruct>"), 3u);
  EXPECT_NE(xml.find("<Value xsi:type=\"xsd:int\">2</Value>"), std::string::npos);

  inform.events.clear();
  inform.parameters.clear();
  env.body = inform;
  xml = write(env);
  EXPECT_NE(xml.find("<Event soap-enc:arrayType=\"cwmp:EventStruct[0]\"></Event>"),
            std::string::npos);
  EXPECT_NE(xml.find("cwmp:ParameterValueStruct[0]"), std::string::npos);
  expect_round_trip(env);

  env.body = GetParameterValues{{"A.", "B.", "C.", "D."}};
  xml = write(env);
  EXPECT_NE(xml.find("<ParameterNames soap-enc:arrayType=\"xsd:string[4]\"><string>A.</string>"),
            std::string::npos);

  env.body = GetParameterAttributes{{"A."}};
  EXPECT_NE(write(env).find("<ParameterNames soap-enc:arrayType=\"xsd:string[1]\">"),
            std::string::npos);

  env.body = GetRPCMethodsResponse{{"Inform", "GetRPCMethods"}};
  EXPECT_NE(write(env).find("<MethodList soap-enc:arrayType=\"xsd:string[2]\">"),
            std::string::npos);

  env.body = SetParameterAttributes{{{"A.b", true, 1, true, {"Subscriber", "X"}}}};
  xml = write(env);
  EXPECT_NE(xml.find("<ParameterList soap-enc:arrayType="
                     "\"cwmp:SetParameterAttributesStruct[1]\"><SetParameterAttributesStruct>"
                     "<Name>A.b</Name><NotificationChange>1</NotificationChange>"
                     "<Notification>1</Notification><AccessListChange>1</AccessListChange>"
                     "<AccessList soap-enc:arrayType=\"xsd:string[2]\"><string>Subscriber"
                     "</string><string>X</string></AccessList></SetParameterAttributesStruct>"),
            std::string::npos)
      << xml;

  env.body = GetParameterAttributesResponse{{{"A", 0, {}}, {"B", 2, {"Subscriber"}}}};
  xml = write(env);
  EXPECT_NE(xml.find("cwmp:ParameterAttributeStruct[2]"), std::string::npos);
  EXPECT_NE(xml.find("<AccessList soap-enc:arrayType=\"xsd:string[0]\"></AccessList>"),
            std::string::npos);

  env.body = GetParameterNamesResponse{{{"A.", false}, {"A.b", true}}};
  xml = write(env);
  EXPECT_NE(xml.find("<ParameterList soap-enc:arrayType=\"cwmp:ParameterInfoStruct[2]\">"
                     "<ParameterInfoStruct><Name>A.</Name><Writable>0</Writable>"),
            std::string::npos);
  EXPECT_NE(xml.find("<Writable>1</Writable>"), std::string::npos);

  env.body = RequestDownload{"2 Web Content", {{"Version", "1"}}};
  EXPECT_NE(write(env).find("<FileTypeArg soap-enc:arrayType=\"cwmp:ArgStruct[1]\">"),
            std::string::npos);

  env.body = DUStateChangeComplete{{op_result(1), op_result(2), op_result(3)}, "k"};
  EXPECT_NE(write(env).find("<Results soap-enc:arrayType=\"cwmp:OpResultStruct[3]\">"),
            std::string::npos);

  env.body = GetParameterValuesResponse{{{"A", "1", "unsignedInt"}}};
  EXPECT_NE(write(env).find("cwmp:ParameterValueStruct[1]"), std::string::npos);
  env.body = SetParameterValues{{{"A", "1", "boolean"}, {"B", "", "string"}}, "k"};
  xml = write(env);
  EXPECT_NE(xml.find("cwmp:ParameterValueStruct[2]"), std::string::npos);
  EXPECT_NE(xml.find("<Value xsi:type=\"xsd:boolean\">1</Value>"), std::string::npos);
}

TEST(SoapWriter, StructBooleansAreOneAndZero) {
  Envelope env;
  env.body = GetParameterNames{"Device.", true};
  EXPECT_NE(write(env).find("<NextLevel>1</NextLevel>"), std::string::npos);
  env.body = GetParameterNames{"Device.", false};
  EXPECT_NE(write(env).find("<ParameterPath>Device.</ParameterPath><NextLevel>0</NextLevel>"),
            std::string::npos);
  AutonomousTransferComplete atc;
  atc.is_download = true;
  env.body = atc;
  EXPECT_NE(write(env).find("<IsDownload>1</IsDownload>"), std::string::npos);
}

TEST(SoapWriter, SchemaOrder) {
  Envelope env;
  env.body = Download{"k", "1 Firmware Upgrade Image", "http://u", "", "", 0, "", 0, "", ""};
  std::string xml = write(env);
  size_t last = 0;
  for (std::string_view tag :
       {"<CommandKey>", "<FileType>", "<URL>", "<Username>", "<Password>", "<FileSize>",
        "<TargetFileName>", "<DelaySeconds>", "<SuccessURL>", "<FailureURL>"}) {
    size_t p = xml.find(tag);
    ASSERT_NE(p, std::string::npos) << tag;
    EXPECT_GT(p, last) << tag;
    last = p;
  }
  // Empty strings and zeros are written, not omitted (GenieACS does the same).
  EXPECT_NE(xml.find("<Username></Username><Password></Password><FileSize>0</FileSize>"),
            std::string::npos);

  env.body = Inform{};
  xml = write(env);
  last = 0;
  for (std::string_view tag :
       {"<DeviceId>", "<Manufacturer>", "<OUI>", "<ProductClass>", "<SerialNumber>", "<Event ",
        "<MaxEnvelopes>", "<CurrentTime>", "<RetryCount>", "<ParameterList "}) {
    size_t p = xml.find(tag);
    ASSERT_NE(p, std::string::npos) << tag;
    EXPECT_GT(p, last) << tag;
    last = p;
  }
}

TEST(SoapWriter, Escaping) {
  Envelope env;
  env.header.id = "\"id\" & <'x'>";
  env.body = SetParameterValues{{{"A.b", "a & b < c > d \" e ' f", "string"},
                                 {"A.c", "line1\nline2\r\nline3\ttab", "string"},
                                 {"A.d", "&amp; is not decoded twice; ]]> neither", "string"},
                                 {"A.e", "  leading and trailing  ", "string"},
                                 {"A.f", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "string"}},
                                "k&<>"};
  std::string xml = write(env);
  EXPECT_NE(xml.find("a &amp; b &lt; c &gt; d \" e ' f"), std::string::npos) << xml;
  EXPECT_NE(xml.find("line1\nline2&#13;\nline3\ttab"), std::string::npos) << xml;
  EXPECT_NE(xml.find("&amp;amp; is not decoded twice; ]]&gt; neither"), std::string::npos);
  EXPECT_EQ(xml.find("<'x'>"), std::string::npos);
  expect_round_trip(env);

  // Attribute escaping: the namespace and the value type.
  env = Envelope{};
  env.cwmp_ns = "urn:dslforum-org:cwmp-1-0\"><evil a=\"";
  env.body = GetParameterValuesResponse{{{"A", "1", "x\"y\n<z>&"}}};
  xml = write(env);
  EXPECT_NE(xml.find("xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0&quot;&gt;&lt;evil a=&quot;\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("xsi:type=\"xsd:x&quot;y&#10;&lt;z&gt;&amp;\""), std::string::npos) << xml;
  expect_round_trip(env);
}

TEST(SoapWriter, CharactersXmlCannotCarryAreReplaced) {
  Envelope env;
  env.body = GetParameterValuesResponse{{
      {"A.ctl",
       std::string("a\x01"
                   "b\x1F"
                   "c\x7F"
                   "d\0e",
                   9),
       "string"},
      {"A.utf8", "bad \xFF \xC3 end \xC3\xA9 \xED\xA0\x80 \xEF\xBF\xBE \xF4\x90\x80\x80", "string"},
      {"A.ok", "tab\tnl\ncr\r", "string"},
  }};
  std::string xml = write(env);
  Envelope back = read_back(xml);  // well-formed
  const auto& p = std::get<GetParameterValuesResponse>(back.body).parameters;
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].value,
            "a?b?c\x7F"
            "d?e");
  EXPECT_EQ(p[1].value, "bad ? ? end \xC3\xA9 ??? ??? ????");
  EXPECT_EQ(p[2].value, "tab\tnl\ncr\r");
}

TEST(SoapWriter, UnknownNameIsAlwaysAnElementName) {
  Envelope env;
  env.body = Unknown{"X_ACME_Frobnicate"};
  EXPECT_NE(write(env).find("<cwmp:X_ACME_Frobnicate></cwmp:X_ACME_Frobnicate>"),
            std::string::npos);
  env.body = Unknown{"1 bad<name>"};
  Envelope back = read_back(write(env));
  EXPECT_EQ(std::get<Unknown>(back.body).name, "X1badname");
}

TEST(SoapWriter, EscapeTextIsTheEscaperOfElementText) {
  std::string out = "<url>";
  escape_text(out, "https://fw.example.net/x?a=1&b=<2>\"'\r\x01\xff \xc3\xa9");
  EXPECT_EQ(out, "<url>https://fw.example.net/x?a=1&amp;b=&lt;2&gt;\"'&#13;?? \xc3\xa9");
}

// Whatever the reader makes of a corpus message, the writer writes back.
TEST(SoapWriter, CorpusRoundTrips) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(kCorpusDir)) {
    if (e.path().extension() != ".xml") continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    Envelope env;
    if (!parse(text, env)) continue;  // the non-SOAP payload
    SCOPED_TRACE(e.path().filename().string());
    expect_round_trip(env);
    ++n;
  }
  EXPECT_EQ(n, 53u);
}

}  // namespace
}  // namespace luacs::soap
