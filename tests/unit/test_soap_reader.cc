// The SOAP reader against every SOAP message in ../shared/corpus/cwmp, plus
// streaming, leniency and hostile-input cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/soap/reader.h"

namespace luacs::soap {
namespace {

const std::string kCorpusDir = std::string(LUACS_SHARED_DIR) + "/corpus/cwmp/";

std::string corpus(const std::string& name) {
  std::ifstream in(kCorpusDir + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing corpus file " << name;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Envelope parse_text(std::string_view text, std::string_view encoding = {}) {
  Envelope env;
  std::string err;
  EXPECT_TRUE(parse(text, env, &err, encoding)) << err;
  return env;
}

Envelope parse_file(const std::string& name) {
  Envelope env;
  std::string err;
  std::string body = corpus(name);
  EXPECT_TRUE(parse(body, env, &err)) << name << ": " << err;
  return env;
}

std::string parse_error(std::string_view text, ReaderLimits limits = {}) {
  Reader r(limits);
  Envelope env;
  bool ok = r.feed(text) && r.finish(env);
  EXPECT_FALSE(ok) << "accepted: " << text.substr(0, 200);
  EXPECT_FALSE(r.error().empty());
  return r.error();
}

// A minimal envelope around a body element (and optional header entries).
std::string soap(std::string_view body, std::string_view header = {},
                 std::string_view ns = "urn:dslforum-org:cwmp-1-0") {
  std::string s =
      "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
      "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:cwmp=\"";
  s += ns;
  s += "\">";
  if (!header.empty()) {
    s += "<soap-env:Header>";
    s += header;
    s += "</soap-env:Header>";
  }
  s += "<soap-env:Body>";
  s += body;
  s += "</soap-env:Body></soap-env:Envelope>";
  return s;
}

const ParameterValue* find(const std::vector<ParameterValue>& v, std::string_view name) {
  for (const auto& p : v)
    if (p.name == name) return &p;
  return nullptr;
}

#define GET_BODY(T, var, env)                                                     \
  const T* var##_ptr = std::get_if<T>(&(env).body);                               \
  ASSERT_NE(var##_ptr, nullptr) << "body is '" << method_name((env).body) << "'"; \
  const T& var = *var##_ptr

#define EXPECT_PARAM(list, pname, pvalue, ptype)          \
  do {                                                    \
    const ParameterValue* p_ = find((list), (pname));     \
    ASSERT_NE(p_, nullptr) << "no parameter " << (pname); \
    EXPECT_EQ(p_->value, (pvalue)) << (pname);            \
    EXPECT_EQ(p_->type, (ptype)) << (pname);              \
  } while (0)

void expect_device(const Inform& m, std::string_view manufacturer, std::string_view oui,
                   std::string_view product_class, std::string_view serial) {
  EXPECT_EQ(m.device_id.manufacturer, manufacturer);
  EXPECT_EQ(m.device_id.oui, oui);
  EXPECT_EQ(m.device_id.product_class, product_class);
  EXPECT_EQ(m.device_id.serial_number, serial);
}

std::vector<std::string> event_codes(const Inform& m) {
  std::vector<std::string> r;
  for (const auto& e : m.events) r.push_back(e.code);
  return r;
}

using Strings = std::vector<std::string>;

// Every corpus .xml file has a test below; this list keeps it that way.
const std::set<std::string> kTested = {
    "addobject-google-acs-cwmp12.xml",
    "addobjectresponse-google-cwmp12.xml",
    "addobjectresponse.xml",
    "autonomoustransfercomplete-cwmp14ns.xml",
    "deleteobjectresponse.xml",
    "download-acs-request-all-args.xml",
    "download-mikrotik-firmware-upgrade-xml-handwritten.xml",
    "download-mikrotik-vendorconfig-alter-handwritten.xml",
    "downloadresponse-status1.xml",
    "fault-9005-google-cwmp12.xml",
    "fault-9005-invalid-parameter-name.xml",
    "fault-acs-8005-retry-request-handwritten.xml",
    "fault-spv-9003-per-parameter-handwritten.xml",
    "getparameternames-genieacs-empty-path.xml",
    "getparameternames-google-acs-nextlevel-cwmp12.xml",
    "getparameternamesresponse-tr098-small.xml",
    "getparameternamesresponse-tr098-thomson-st706-large.xml",
    "getparametervalues-google-acs-clark-arraytype-cwmp12.xml",
    "getparametervaluesresponse-tr181-arraytype-count-mismatch.xml",
    "getparametervaluesresponse-tr181-google-uptime-cwmp12.xml",
    "getrpcmethods-acs-request-nomorerequests.xml",
    "getrpcmethods-cpe-request-cwmp14ns.xml",
    "getrpcmethods-cpe-request-zhone.xml",
    "getrpcmethodsresponse-acs-to-cpe-handwritten.xml",
    "inform-tr098-cytco-periodic-badtime.xml",
    "inform-tr098-google-gfhd100-bootstrap-cwmp12.xml",
    "inform-tr098-sercomm-tewa1000g-bootstrap-ctcom-whitespace.xml",
    "inform-tr098-thomson-st780-boot-periodic-valuechange.xml",
    "inform-tr098-zhone-6718-bootstrap-boot.xml",
    "inform-tr098-zyxel-boot-transfercomplete.xml",
    "inform-tr098-zyxel-p2601hn-periodic-nomorerequests.xml",
    "inform-tr098-zyxel-p2601hn-periodic-utf8-bom-derived.xml",
    "inform-tr098-zyxel-p2601hn-periodic.xml",
    "inform-tr098-zyxel-vmg8924-connreq-ipv6.xml",
    "inform-tr106-generic-bootstrap-boot-noheader-badoui.xml",
    "inform-tr106-motorola-vap2404e-periodic-noheader.xml",
    "inform-tr181-commscope-femto-bootstrap-jaxb-prefixes.xml",
    "inform-tr181-handwritten-cwmp14-bootstrap-boot-supportedversions.xml",
    "inform-tr181-mikrotik-haplite-diagnostics-noheader.xml",
    "inform-tr181-mikrotik-rb2011-boot-mreboot-handwritten.xml",
    "inform-tr181-sagemcom-periodic.xml",
    "informresponse-acs-cwmp10.xml",
    "informresponse-google-acs-holdrequests-cwmp12.xml",
    "informresponse-handwritten-usecwmpversion-cwmp14.xml",
    "payload-mikrotik-upgrade-links.xml",
    "reboot-acs-request.xml",
    "requestdownload-webcontent-cwmp14ns.xml",
    "scheduleinform-acs-request.xml",
    "setparametervalues-google-acs-nsprefixed-structs-cwmp12.xml",
    "setparametervaluesresponse-google-cwmp12.xml",
    "setparametervaluesresponse-status0.xml",
    "transfercomplete-fault-9015-unknowntime.xml",
    "transfercomplete-success-jaxb-prefixes.xml",
    "transfercomplete-success.xml",
};

// The .xml files that are not SOAP messages.
const std::set<std::string> kNotSoap = {"payload-mikrotik-upgrade-links.xml"};

std::vector<std::string> corpus_xml_files() {
  std::vector<std::string> r;
  for (const auto& e : std::filesystem::directory_iterator(kCorpusDir))
    if (e.path().extension() == ".xml") r.push_back(e.path().filename().string());
  std::sort(r.begin(), r.end());
  return r;
}

TEST(SoapReaderCorpus, EveryXmlFileHasATest) {
  auto files = corpus_xml_files();
  EXPECT_EQ(files.size(), kTested.size());
  for (const auto& f : files) EXPECT_TRUE(kTested.count(f)) << "untested corpus file " << f;
}

// ---- Informs -----------------------------------------------------------------

TEST(SoapReaderCorpus, InformZyxelP2601Periodic) {
  Envelope env = parse_file("inform-tr098-zyxel-p2601hn-periodic.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs10);
  EXPECT_EQ(env.header.id, "100");
  EXPECT_FALSE(env.header.hold_requests.has_value());
  EXPECT_FALSE(env.header.no_more_requests);
  expect_device(m, "ZyXEL", "EC43F6", "P-2601HN-F1", "EC43F69AF408");
  EXPECT_EQ(event_codes(m), Strings{"2 PERIODIC"});
  EXPECT_EQ(m.events[0].command_key, "");
  EXPECT_EQ(m.max_envelopes, 1u);
  EXPECT_EQ(m.current_time, "2015-01-19T23:08:24");
  EXPECT_EQ(m.retry_count, 0u);
  ASSERT_EQ(m.parameters.size(), 8u);
  EXPECT_EQ(m.parameters[0].name, "InternetGatewayDevice.DeviceSummary");
  EXPECT_EQ(m.parameters[0].value,
            "InternetGatewayDevice:1.4[](Baseline:1, EthernetLAN:1, WiFiLAN:1, EthernetWAN:1, "
            "ADSLWAN:1, IPPing:1, DSLDiagnostics:1, Time:1), VoiceService:1.0[1](Endpoint:1, "
            "SIPEndpoint:1)");
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.DeviceInfo.SoftwareVersion", "V1.00(AACB.3)",
               "string");
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
               "http://2.110.157.83:7676/CWMP/ConnectionRequest", "string");
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.DeviceInfo.ProvisioningCode", "", "string");
  EXPECT_EQ(m.parameters[7].name,
            "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
            "ExternalIPAddress");
  EXPECT_EQ(m.parameters[7].value, "2.110.157.83");
}

TEST(SoapReaderCorpus, InformZyxelP2601NoMoreRequests) {
  Envelope env = parse_file("inform-tr098-zyxel-p2601hn-periodic-nomorerequests.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.header.id, "100");
  EXPECT_TRUE(env.header.no_more_requests);
  expect_device(m, "ZyXEL", "EC43F6", "P-2601HN-F1", "EC43F69AF408");
  EXPECT_EQ(m.parameters.size(), 8u);
  // Same message as the plain capture apart from the header.
  Envelope plain = parse_file("inform-tr098-zyxel-p2601hn-periodic.xml");
  EXPECT_TRUE(plain.body == env.body);
}

TEST(SoapReaderCorpus, InformUtf8BomGivesSameEnvelope) {
  std::string text = corpus("inform-tr098-zyxel-p2601hn-periodic-utf8-bom-derived.xml");
  ASSERT_EQ(text.substr(0, 3), "\xEF\xBB\xBF");
  Envelope env = parse_file("inform-tr098-zyxel-p2601hn-periodic-utf8-bom-derived.xml");
  Envelope plain = parse_file("inform-tr098-zyxel-p2601hn-periodic.xml");
  EXPECT_TRUE(env == plain);
  GET_BODY(Inform, m, env);
  expect_device(m, "ZyXEL", "EC43F6", "P-2601HN-F1", "EC43F69AF408");
  // A BOM also overrides a contradicting charset from the HTTP header.
  Envelope latin = parse_text(text, "ISO-8859-1");
  EXPECT_TRUE(latin == plain);
}

TEST(SoapReaderCorpus, InformZyxelVmg8924ConnectionRequestIpv6) {
  Envelope env = parse_file("inform-tr098-zyxel-vmg8924-connreq-ipv6.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.header.id, "844317904");
  expect_device(m, "ZyXEL", "4C9EFF", "VMG8924-B10A", "S140Y24025829");
  EXPECT_EQ(event_codes(m), Strings{"6 CONNECTION REQUEST"});
  EXPECT_EQ(m.current_time, "2016-01-30T13:20:27+01:00");
  ASSERT_EQ(m.parameters.size(), 8u);  // arrayType says [0008]
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
               "http://[2a02:980:1400::1ff]:30005/78DF621FFD24F339452C341BEFE0E8A8", "string");
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.DeviceInfo.ProvisioningCode", "31755,n",
               "string");
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.ManagementServer.ParameterKey",
               "fd2cc42d07adccccbf39052325a85f11", "string");
  EXPECT_PARAM(m.parameters,
               "InternetGatewayDevice.WANDevice.2.WANConnectionDevice.1.WANIPConnection.2."
               "X_5067F0_ExternalIPv6Address",
               "2a02:980:1400::1ff/64", "string");
}

TEST(SoapReaderCorpus, InformCytcoBadTimeAndHighRetryCount) {
  Envelope env = parse_file("inform-tr098-cytco-periodic-badtime.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.header.id, "31645");
  expect_device(m, "Cytco", "00a859", "BCM Serials", "00100400FV020010000000a859f6a238");
  EXPECT_EQ(event_codes(m), Strings{"2 PERIODIC"});
  EXPECT_EQ(m.current_time, "2019-03-05T11:54::14");  // kept raw
  EXPECT_EQ(m.retry_count, 942u);
  ASSERT_EQ(m.parameters.size(), 8u);
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
               "2.3.1-65-g79fe05b build 4388", "string");
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
               "http://192.168.40.144:8088/", "string");
}

TEST(SoapReaderCorpus, InformSagemcomTr181) {
  Envelope env = parse_file("inform-tr181-sagemcom-periodic.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs10);
  EXPECT_EQ(env.header.id, "0");
  expect_device(m, "Sagemcom", "40F201", "Router", "LK14183DP340340");
  EXPECT_EQ(event_codes(m), Strings{"2 PERIODIC"});
  EXPECT_EQ(m.current_time, "2016-01-31T13:28:09+01:00");
  ASSERT_EQ(m.parameters.size(), 8u);
  EXPECT_PARAM(m.parameters, "Device.DeviceInfo.HardwareVersion", "5DK40-04", "string");
  EXPECT_PARAM(m.parameters, "Device.ManagementServer.ConnectionRequestURL",
               "http://2.110.222.109:7548/jkflHRnJu3gaSEvt", "string");
  EXPECT_PARAM(m.parameters, "Device.IP.Interface.3.IPv4Address.1.IPAddress", "", "string");
  EXPECT_PARAM(m.parameters, "Device.IP.Interface.4.IPv4Address.1.IPAddress", "172.21.135.245",
               "string");
}

TEST(SoapReaderCorpus, InformMotorolaWithoutHeader) {
  Envelope env = parse_file("inform-tr106-motorola-vap2404e-periodic-noheader.xml");
  GET_BODY(Inform, m, env);
  EXPECT_FALSE(env.header.id.has_value());
  EXPECT_EQ(env.header, Header{});
  EXPECT_EQ(env.cwmp_ns, kCwmpNs10);
  expect_device(m, "Motorola Mobility", "001404", "VAP2404E", "M91342SA1JJ0");
  EXPECT_EQ(event_codes(m), Strings{"2 PERIODIC"});
  EXPECT_EQ(m.current_time, "2015-09-22T05:04:58-07:00");
  ASSERT_EQ(m.parameters.size(), 11u);
  EXPECT_PARAM(m.parameters, "Device.DeviceSummary",
               "Device:1.1[](Baseline:1,Time:1,IPPing:1,TraceRoute:1)", "string");
  EXPECT_PARAM(m.parameters, "Device.DeviceInfo.ProvisioningCode", "00000", "string");
  EXPECT_PARAM(m.parameters, "Device.LAN.MACAddress", "30:60:23:06:C6:8E", "string");
}

TEST(SoapReaderCorpus, InformZyxelBootTransferComplete) {
  Envelope env = parse_file("inform-tr098-zyxel-boot-transfercomplete.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.header.id, "1189711373");
  expect_device(m, "ZyXEL", "4C9EFF", "Product1", "SerialNo1");
  EXPECT_EQ(event_codes(m), (Strings{"1 BOOT", "7 TRANSFER COMPLETE"}));
  EXPECT_EQ(m.current_time, "2016-05-18T08:06:03+01:00");
  ASSERT_EQ(m.parameters.size(), 8u);
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
               "http://666.666.666.666:1234/foobar", "string");
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.DeviceInfo.HardwareVersion", "HW_1.0",
               "string");
}

TEST(SoapReaderCorpus, InformGenericNoHeaderBadOui) {
  Envelope env = parse_file("inform-tr106-generic-bootstrap-boot-noheader-badoui.xml");
  GET_BODY(Inform, m, env);
  EXPECT_FALSE(env.header.id.has_value());
  expect_device(m, "Weirdo Manufacturer", "12345", "Crap", "S123456789WEIRD");
  EXPECT_EQ(event_codes(m), (Strings{"1 BOOT", "0 BOOTSTRAP"}));
  EXPECT_EQ(m.current_time, "0001-01-01T00:00:41");
  ASSERT_EQ(m.parameters.size(), 11u);
  EXPECT_PARAM(m.parameters, "Device.GatewayInfo.ManufacturerOUI", "123456", "string");
  EXPECT_PARAM(m.parameters, "Device.ManagementServer.ConnectionRequestURL",
               "http://192.168.1.35:7547/whereever", "string");
  EXPECT_PARAM(m.parameters, "Device.LAN.MACAddress", "AA:BB:CC:DD:EE:FF", "string");
}

TEST(SoapReaderCorpus, InformThomsonSt780) {
  Envelope env = parse_file("inform-tr098-thomson-st780-boot-periodic-valuechange.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.header.id, "0_THOM_TR69_ID");
  expect_device(m, "THOMSON", "00147F", "SpeedTouch 780", "CP0644JTHJ4");
  EXPECT_EQ(event_codes(m), (Strings{"1 BOOT", "2 PERIODIC", "4 VALUE CHANGE"}));
  EXPECT_EQ(m.max_envelopes, 2u);
  EXPECT_EQ(m.current_time, "1970-01-01T00:01:31Z");
  EXPECT_EQ(m.retry_count, 5u);  // sent as "05"
  ASSERT_EQ(m.parameters.size(), 12u);
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.DeviceInfo.VendorConfigFile.1.Date",
               "0000-00-00T00:00:00", "dateTime");
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.DeviceInfo.VendorConfigFile.1.Name",
               "Routed PPPoE on 0/35 and 8/35", "string");
  EXPECT_EQ(m.parameters[11].name, ".ExternalIPAddress");
  EXPECT_EQ(m.parameters[11].value, "192.168.1.254");
}

TEST(SoapReaderCorpus, InformZhone6718) {
  Envelope env = parse_file("inform-tr098-zhone-6718-bootstrap-boot.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.header.id, "946498461");
  expect_device(m, "Zhone", "00255e", "6718", "00255e71f7ac");
  EXPECT_EQ(event_codes(m), (Strings{"0 BOOTSTRAP", "1 BOOT"}));
  EXPECT_EQ(m.current_time, "1970-01-01T00:05:09+00:00");
  EXPECT_EQ(m.retry_count, 5u);
  ASSERT_EQ(m.parameters.size(), 8u);
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.DeviceInfo.HardwareVersion", "REV.1.01",
               "string");
  EXPECT_PARAM(m.parameters,
               "InternetGatewayDevice.WANDevice.3.WANConnectionDevice.1.WANIPConnection.2."
               "ExternalIPAddress",
               "216.113.193.87", "string");
}

TEST(SoapReaderCorpus, InformGoogleCwmp12) {
  Envelope env = parse_file("inform-tr098-google-gfhd100-bootstrap-cwmp12.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(env.header.id, "catawampus.1370208445.785391");
  expect_device(m, "Google Fiber", "F88FCA", "GFHD100", "G00223301811");
  EXPECT_EQ(event_codes(m), (Strings{"0 BOOTSTRAP", "M TRANSFERCOMPLETE"}));
  EXPECT_EQ(m.events[0].command_key, "");  // <CommandKey />
  EXPECT_EQ(m.events[1].command_key, "");
  EXPECT_EQ(m.current_time, "2013-06-02T21:27:26.080821Z");
  ASSERT_EQ(m.parameters.size(), 5u);
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
               "http://[2605:a601:fe00:fff7:fa8f:caff:fe00:a28c]:7547/ping/"
               "21b19cbcfd821008be9c1938219a1b",
               "string");
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
               "gfibertv-32-pre0-14-g8ed95de-dg", "string");
}

TEST(SoapReaderCorpus, InformSercommWhitespaceInNames) {
  Envelope env = parse_file("inform-tr098-sercomm-tewa1000g-bootstrap-ctcom-whitespace.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.header.id, "19665046");
  expect_device(m, "SCTY", "40F420", "TEWA-1000G", "4685040F420F87E30");
  EXPECT_EQ(event_codes(m), (Strings{"0 BOOTSTRAP", "1 BOOT", "X CT-COM BIND"}));
  EXPECT_EQ(m.current_time, "2025-04-28T20:30:20+08:00");
  EXPECT_EQ(m.retry_count, 5u);
  ASSERT_EQ(m.parameters.size(), 11u);  // arrayType says [0010]
  // The name has a newline and spaces in front of it: trimmed.
  EXPECT_EQ(m.parameters[7].name,
            "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
            "ExternalIPAddress");
  EXPECT_EQ(m.parameters[7].value, "10.99.0.2");
  // The value's newlines and indentation are kept.
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.DeviceSummary",
               "InternetGatewayDevice:1.5[](Baseline:1,\n                        EthernetLAN:1, "
               "USBLAN:1, Time:1, IPPing:1, DeviceAssociation:1, QoS:1,\n                        "
               "WiFiLAN:1) , VoiceService:1.0[1](Endpoint:1, SIPEndpoint:1)",
               "string");
  EXPECT_PARAM(m.parameters, "InternetGatewayDevice.X_CT-COM_UserInfo.UserName", "LG2078428108",
               "string");
  EXPECT_EQ(m.parameters[10].name, "InternetGatewayDevice.X_CT-COM_UserInfo.UserId");
}

TEST(SoapReaderCorpus, InformCommscopeJaxbPrefixes) {
  Envelope env = parse_file("inform-tr181-commscope-femto-bootstrap-jaxb-prefixes.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs10);
  EXPECT_EQ(env.header.id, "1");
  // <ns4:DeviceId> is namespace-qualified; matched by local name anyway.
  expect_device(m, "", "0005B9", "LTE_Enterprise_C-RANSC_Cntrl", "0005B9423910");
  EXPECT_EQ(event_codes(m), Strings{"0 BOOTSTRAP"});
  EXPECT_EQ(m.current_time, "2020-06-10T11:27:26.054Z");
  ASSERT_EQ(m.parameters.size(), 7u);
  for (const auto& p : m.parameters) EXPECT_EQ(p.type, "string") << p.name;  // no xsi:type
  EXPECT_PARAM(m.parameters, "Device.ManagementServer.ConnectionRequestURL",
               "http://172.20.0.9:30150/ConnectionRequest?command=cr&sn=0005B9423910", "string");
  EXPECT_PARAM(m.parameters, "Device.ManagementServer.ParameterKey", "zzzz", "string");
  EXPECT_PARAM(m.parameters, "Device.Services.FAPService.1.FAPControl.LTE.AdminState", "0",
               "string");
}

TEST(SoapReaderCorpus, InformMikrotikHapLiteNoHeader) {
  Envelope env = parse_file("inform-tr181-mikrotik-haplite-diagnostics-noheader.xml");
  GET_BODY(Inform, m, env);
  EXPECT_FALSE(env.header.id.has_value());
  EXPECT_EQ(env.cwmp_ns, kCwmpNs10);
  expect_device(m, "MikroTik", "E48D8C", "hAP lite", "XXXXXXXXXXXX");
  EXPECT_EQ(event_codes(m), Strings{"8 DIAGNOSTICS COMPLETE"});
  EXPECT_EQ(m.current_time, "2018-04-01T19:45:02-04:00");
  ASSERT_EQ(m.parameters.size(), 7u);
  EXPECT_PARAM(m.parameters, "Device.RootDataModelVersion", "2.11", "string");
  EXPECT_PARAM(m.parameters, "Device.DeviceInfo.SoftwareVersion", "6.42rc49", "string");
  EXPECT_PARAM(m.parameters, "Device.ManagementServer.ParameterKey", "cdrouter", "string");
  EXPECT_PARAM(m.parameters, "Device.ManagementServer.AliasBasedAddressing", "0", "boolean");
}

TEST(SoapReaderCorpus, InformMikrotikRb2011MReboot) {
  Envelope env = parse_file("inform-tr181-mikrotik-rb2011-boot-mreboot-handwritten.xml");
  GET_BODY(Inform, m, env);
  EXPECT_FALSE(env.header.id.has_value());
  expect_device(m, "MikroTik", "E48D8C", "RB2011iL", "7DCF08DC745D");
  ASSERT_EQ(m.events.size(), 2u);
  EXPECT_EQ(m.events[0], (EventStruct{"1 BOOT", ""}));
  EXPECT_EQ(m.events[1], (EventStruct{"M Reboot", "reboot-0001"}));
  EXPECT_EQ(m.current_time, "2019-02-21T11:40:05-05:00");
  ASSERT_EQ(m.parameters.size(), 7u);
  EXPECT_PARAM(m.parameters, "Device.DeviceInfo.SoftwareVersion", "6.41.3", "string");
  EXPECT_PARAM(m.parameters, "Device.ManagementServer.ConnectionRequestURL",
               "http://192.0.2.20:7547/0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b", "string");
}

TEST(SoapReaderCorpus, InformCwmp14SupportedVersions) {
  Envelope env = parse_file("inform-tr181-handwritten-cwmp14-bootstrap-boot-supportedversions.xml");
  GET_BODY(Inform, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(env.header.id, "cpe-0001");
  EXPECT_EQ(env.header.session_timeout, 60u);
  EXPECT_EQ(env.header.supported_cwmp_versions, "1.0,1.1,1.2,1.3,1.4");
  EXPECT_EQ(env.header.use_cwmp_version, "");
  expect_device(m, "ExampleVendor", "00D09E", "HGW-1000", "EX00D09E000001");
  EXPECT_EQ(event_codes(m), (Strings{"0 BOOTSTRAP", "1 BOOT"}));
  ASSERT_EQ(m.parameters.size(), 7u);
  EXPECT_PARAM(m.parameters, "Device.RootDataModelVersion", "2.12", "string");
  EXPECT_PARAM(m.parameters, "Device.ManagementServer.AliasBasedAddressing", "false", "boolean");
}

// ---- other CPE requests and the ACS responses to them ----------------------

TEST(SoapReaderCorpus, TransferCompleteSuccess) {
  Envelope env = parse_file("transfercomplete-success.xml");
  GET_BODY(TransferComplete, m, env);
  EXPECT_EQ(env.header.id, "1");
  EXPECT_EQ(m.command_key, "AutoconfFirmwareUpgrade");
  EXPECT_EQ(m.fault, (FaultStruct{0, ""}));
  EXPECT_EQ(m.start_time, "2016-04-07T08:43:49Z");
  EXPECT_EQ(m.complete_time, "2016-04-07T08:45:06Z");
}

TEST(SoapReaderCorpus, TransferCompleteJaxbPrefixes) {
  Envelope env = parse_file("transfercomplete-success-jaxb-prefixes.xml");
  GET_BODY(TransferComplete, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs10);
  EXPECT_EQ(env.header.id, "0");
  EXPECT_EQ(m.command_key, "0005B9AAAA22");
  EXPECT_EQ(m.fault.code, 0u);
  EXPECT_EQ(m.start_time, "2019-07-08T18:15:43.032Z");
  EXPECT_EQ(m.complete_time, "2019-07-08T18:15:43.032Z");
}

TEST(SoapReaderCorpus, TransferCompleteFault9015) {
  Envelope env = parse_file("transfercomplete-fault-9015-unknowntime.xml");
  GET_BODY(TransferComplete, m, env);
  EXPECT_EQ(env.header.id, "XXXXXXXYYYYZZZ");
  EXPECT_EQ(m.command_key, "");
  EXPECT_EQ(m.fault.code, 9015u);
  EXPECT_EQ(m.fault.string, "File transfer failure: unable to contact file server");
  EXPECT_EQ(m.start_time, "0001-01-01T00:00:00Z");
  EXPECT_EQ(m.complete_time, "0001-01-01T00:00:00Z");
}

TEST(SoapReaderCorpus, AutonomousTransferCompleteCwmp14Namespace) {
  Envelope env = parse_file("autonomoustransfercomplete-cwmp14ns.xml");
  GET_BODY(AutonomousTransferComplete, m, env);
  EXPECT_EQ(env.cwmp_ns, "urn:dslforum-org:cwmp-1-4");
  EXPECT_EQ(env.header.id, "API_69412286f02e475b44783c61972f0a91");
  AutonomousTransferComplete want;
  want.announce_url = "http://example.com/announce";
  want.transfer_url = "http://example.com/transfer";
  want.is_download = true;
  want.file_type = "1 Firmware Upgrade Image";
  want.file_size = 154321;
  want.target_file_name = "image";
  want.fault = {0, ""};
  want.start_time = "2015-01-19T23:08:24+00:00";
  want.complete_time = "2015-01-19T23:18:24+00:00";
  EXPECT_EQ(m, want);
}

TEST(SoapReaderCorpus, RequestDownloadWebContent) {
  Envelope env = parse_file("requestdownload-webcontent-cwmp14ns.xml");
  GET_BODY(RequestDownload, m, env);
  EXPECT_EQ(env.cwmp_ns, "urn:dslforum-org:cwmp-1-4");
  EXPECT_EQ(m.file_type, "2 Web Content");
  ASSERT_EQ(m.file_type_args.size(), 1u);
  EXPECT_EQ(m.file_type_args[0].first, "Version");
  EXPECT_EQ(m.file_type_args[0].second, "v2.0");
}

TEST(SoapReaderCorpus, GetRPCMethodsZhoneWhitespaceContent) {
  Envelope env = parse_file("getrpcmethods-cpe-request-zhone.xml");
  GET_BODY(GetRPCMethods, m, env);
  (void)m;
  EXPECT_EQ(env.header.id, "946498462");
  EXPECT_EQ(env.cwmp_ns, kCwmpNs10);
}

TEST(SoapReaderCorpus, GetRPCMethodsSelfClosingCwmp14Namespace) {
  Envelope env = parse_file("getrpcmethods-cpe-request-cwmp14ns.xml");
  GET_BODY(GetRPCMethods, m, env);
  (void)m;
  EXPECT_EQ(env.header.id, "API_69412286f02e475b44783c61972f0a91");
  EXPECT_EQ(env.cwmp_ns, "urn:dslforum-org:cwmp-1-4");
}

TEST(SoapReaderCorpus, GetRPCMethodsAcsRequestNoMoreRequests) {
  Envelope env = parse_file("getrpcmethods-acs-request-nomorerequests.xml");
  GET_BODY(GetRPCMethods, m, env);
  (void)m;
  EXPECT_EQ(env.header.id, "42");
  EXPECT_FALSE(env.header.no_more_requests);  // sent as 0
  EXPECT_EQ(env.cwmp_ns, kCwmpNs10);
}

TEST(SoapReaderCorpus, GetRPCMethodsResponseFromAcs) {
  Envelope env = parse_file("getrpcmethodsresponse-acs-to-cpe-handwritten.xml");
  GET_BODY(GetRPCMethodsResponse, m, env);
  EXPECT_EQ(env.header.id, "946498462");
  EXPECT_EQ(m.methods, (Strings{"Inform", "GetRPCMethods", "TransferComplete"}));
}

TEST(SoapReaderCorpus, InformResponseCwmp10) {
  Envelope env = parse_file("informresponse-acs-cwmp10.xml");
  GET_BODY(InformResponse, m, env);
  EXPECT_EQ(env.header.id, "1189711373");
  EXPECT_EQ(m.max_envelopes, 1u);
  EXPECT_FALSE(env.header.hold_requests.has_value());
}

TEST(SoapReaderCorpus, InformResponseHoldRequests) {
  Envelope env = parse_file("informresponse-google-acs-holdrequests-cwmp12.xml");
  GET_BODY(InformResponse, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(env.header.id, "catawampus.1370208445.785391");
  EXPECT_EQ(env.header.hold_requests, true);
  EXPECT_EQ(m.max_envelopes, 1u);
}

TEST(SoapReaderCorpus, InformResponseUseCwmpVersion) {
  Envelope env = parse_file("informresponse-handwritten-usecwmpversion-cwmp14.xml");
  GET_BODY(InformResponse, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(env.header.id, "cpe-0001");
  EXPECT_EQ(env.header.use_cwmp_version, "1.4");
  EXPECT_EQ(m.max_envelopes, 1u);
}

// ---- faults ------------------------------------------------------------------

TEST(SoapReaderCorpus, FaultAcs8005) {
  Envelope env = parse_file("fault-acs-8005-retry-request-handwritten.xml");
  GET_BODY(Fault, f, env);
  EXPECT_EQ(env.header.id, "cpe-0002");
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(f.faultcode, "Server");
  EXPECT_EQ(f.faultstring, "CWMP fault");
  EXPECT_EQ(f.code, 8005u);
  EXPECT_EQ(f.string, "Retry request");
  EXPECT_TRUE(f.set_parameter_values_faults.empty());
}

TEST(SoapReaderCorpus, Fault9005Google) {
  Envelope env = parse_file("fault-9005-google-cwmp12.xml");
  GET_BODY(Fault, f, env);
  EXPECT_EQ(env.header.id, "google.acs.1370221731262.21249673");
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(f.faultcode, "Client");
  EXPECT_EQ(f.code, 9005u);
  EXPECT_EQ(f.string, "No such parameter: Info");
}

TEST(SoapReaderCorpus, Fault9005PrefixedFaultcode) {
  Envelope env = parse_file("fault-9005-invalid-parameter-name.xml");
  GET_BODY(Fault, f, env);
  EXPECT_EQ(env.header.id, "50");
  EXPECT_EQ(f.faultcode, "Client");  // sent as SOAP-ENV:Client
  EXPECT_EQ(f.faultstring, "CWMP fault");
  EXPECT_EQ(f.code, 9005u);
  EXPECT_EQ(f.string, "Invalid parameter name");
}

TEST(SoapReaderCorpus, FaultSetParameterValuesPerParameter) {
  Envelope env = parse_file("fault-spv-9003-per-parameter-handwritten.xml");
  GET_BODY(Fault, f, env);
  EXPECT_EQ(env.header.id, "1234");
  EXPECT_EQ(env.cwmp_ns, kCwmpNs10);
  EXPECT_EQ(f.faultcode, "Client");
  EXPECT_EQ(f.code, 9003u);
  EXPECT_EQ(f.string, "Invalid arguments");
  ASSERT_EQ(f.set_parameter_values_faults.size(), 2u);
  EXPECT_EQ(f.set_parameter_values_faults[0],
            (SetParameterValuesFault{"Device.Time.NTPServer1", 9007, "Invalid IP Address"}));
  EXPECT_EQ(f.set_parameter_values_faults[1],
            (SetParameterValuesFault{"Device.Time.LocalTimeZoneName", 9007, "String too long"}));
}

// ---- CPE responses to ACS requests -----------------------------------------------

TEST(SoapReaderCorpus, GetParameterValuesResponseUptime) {
  Envelope env = parse_file("getparametervaluesresponse-tr181-google-uptime-cwmp12.xml");
  GET_BODY(GetParameterValuesResponse, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(env.header.id, "google.acs.1370224916205.16224788");
  ASSERT_EQ(m.parameters.size(), 1u);
  EXPECT_EQ(m.parameters[0], (ParameterValue{"Device.DeviceInfo.UpTime", "516925", "unsignedInt"}));
}

TEST(SoapReaderCorpus, GetParameterValuesResponseArrayTypeMismatch) {
  Envelope env = parse_file("getparametervaluesresponse-tr181-arraytype-count-mismatch.xml");
  GET_BODY(GetParameterValuesResponse, m, env);
  EXPECT_EQ(env.header.id, "50");
  ASSERT_EQ(m.parameters.size(), 2u);  // arrayType says [64]
  EXPECT_EQ(m.parameters[0], (ParameterValue{"Device.IP.Interface.3.IPv4AddressNumberOfEntries",
                                             "1", "unsignedInt"}));
  EXPECT_EQ(m.parameters[1], (ParameterValue{"Device.IP.Interface.3.IPv6AddressNumberOfEntries",
                                             "1", "unsignedInt"}));
}

TEST(SoapReaderCorpus, GetParameterNamesResponseSmall) {
  Envelope env = parse_file("getparameternamesresponse-tr098-small.xml");
  GET_BODY(GetParameterNamesResponse, m, env);
  EXPECT_EQ(env.header.id, "API_28edd28d788a784422413db3914c34b0");
  ASSERT_EQ(m.parameters.size(), 2u);
  EXPECT_EQ(m.parameters[0], (ParameterInfo{"InternetGatewayDevice.DeviceInfo.", false}));
  EXPECT_EQ(m.parameters[1],
            (ParameterInfo{"InternetGatewayDevice.DeviceInfo.Manufacturer", true}));
}

TEST(SoapReaderCorpus, GetParameterNamesResponseLarge) {
  Envelope env = parse_file("getparameternamesresponse-tr098-thomson-st706-large.xml");
  GET_BODY(GetParameterNamesResponse, m, env);
  EXPECT_EQ(env.header.id, "22_THOM_TR69_ID");
  ASSERT_EQ(m.parameters.size(), 3263u);
  EXPECT_EQ(m.parameters.front(), (ParameterInfo{"InternetGatewayDevice.DeviceSummary", false}));
  EXPECT_EQ(m.parameters[1],
            (ParameterInfo{"InternetGatewayDevice.LANDeviceNumberOfEntries", false}));
  EXPECT_EQ(
      m.parameters.back(),
      (ParameterInfo{"InternetGatewayDevice.Services.VoiceService.1.PhyInterface.2.Description",
                     false}));
  size_t writable = std::count_if(m.parameters.begin(), m.parameters.end(),
                                  [](const ParameterInfo& p) { return p.writable; });
  EXPECT_EQ(writable, 2836u);
  for (const auto& p : m.parameters) {
    ASSERT_FALSE(p.name.empty());
    ASSERT_EQ(p.name.rfind("InternetGatewayDevice.", 0), 0u) << p.name;
  }
}

TEST(SoapReaderCorpus, SetParameterValuesResponseGoogle) {
  Envelope env = parse_file("setparametervaluesresponse-google-cwmp12.xml");
  GET_BODY(SetParameterValuesResponse, m, env);
  EXPECT_EQ(env.header.id, "google.acs.1370212049608.571675");
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(m.status, 0);
}

TEST(SoapReaderCorpus, SetParameterValuesResponseStatus0) {
  Envelope env = parse_file("setparametervaluesresponse-status0.xml");
  GET_BODY(SetParameterValuesResponse, m, env);
  EXPECT_EQ(env.header.id, "50");
  EXPECT_EQ(m.status, 0);
}

TEST(SoapReaderCorpus, AddObjectResponseGoogle) {
  Envelope env = parse_file("addobjectresponse-google-cwmp12.xml");
  GET_BODY(AddObjectResponse, m, env);
  EXPECT_EQ(env.header.id, "google.acs.1370215543274.32355095");
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(m.instance_number, 2u);
  EXPECT_EQ(m.status, 0);
}

TEST(SoapReaderCorpus, AddObjectResponse) {
  Envelope env = parse_file("addobjectresponse.xml");
  GET_BODY(AddObjectResponse, m, env);
  EXPECT_EQ(env.header.id, "aa0642e34b23820801e7642ad7cb536c");
  EXPECT_EQ(m.instance_number, 1u);
  EXPECT_EQ(m.status, 0);
}

TEST(SoapReaderCorpus, DeleteObjectResponse) {
  Envelope env = parse_file("deleteobjectresponse.xml");
  GET_BODY(DeleteObjectResponse, m, env);
  EXPECT_EQ(env.header.id, "API_aa0642e34b23820801e7642ad7cb536c");
  EXPECT_EQ(m.status, 0);
}

TEST(SoapReaderCorpus, DownloadResponseStatus1) {
  Envelope env = parse_file("downloadresponse-status1.xml");
  GET_BODY(DownloadResponse, m, env);
  EXPECT_EQ(env.header.id, "API_aa0642e34b23820801e7642ad7cb536c");
  EXPECT_EQ(m.status, 1);
  EXPECT_EQ(m.start_time, "2015-01-19T23:08:24");
  EXPECT_EQ(m.complete_time, "2015-01-19T23:09:24");
}

// ---- ACS requests ----------------------------------------------------------------

TEST(SoapReaderCorpus, SetParameterValuesPrefixedStructs) {
  Envelope env = parse_file("setparametervalues-google-acs-nsprefixed-structs-cwmp12.xml");
  GET_BODY(SetParameterValues, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(env.header.id, "google.acs.1370212049608.571675");
  EXPECT_EQ(env.header.hold_requests, true);
  EXPECT_EQ(m.parameter_key, "GoogleInitConfig");
  ASSERT_EQ(m.parameters.size(), 2u);
  EXPECT_EQ(m.parameters[0],
            (ParameterValue{"InternetGatewayDevice.ManagementServer.PeriodicInformEnable", "true",
                            "boolean"}));  // xsi:type="xs:boolean"
  EXPECT_EQ(m.parameters[1],
            (ParameterValue{"InternetGatewayDevice.ManagementServer.PeriodicInformInterval", "60",
                            "unsignedInt"}));  // xsi:type="ns1:unsignedInt"
}

TEST(SoapReaderCorpus, GetParameterValuesClarkArrayType) {
  Envelope env = parse_file("getparametervalues-google-acs-clark-arraytype-cwmp12.xml");
  GET_BODY(GetParameterValues, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(env.header.id, "google.acs.1370224916205.16224788");
  EXPECT_EQ(env.header.hold_requests, false);
  EXPECT_EQ(m.names, Strings{"Device.DeviceInfo.UpTime"});
}

TEST(SoapReaderCorpus, GetParameterNamesNextLevelTrue) {
  Envelope env = parse_file("getparameternames-google-acs-nextlevel-cwmp12.xml");
  GET_BODY(GetParameterNames, m, env);
  EXPECT_EQ(env.header.id, "google.acs.1370215481597.9359765");
  EXPECT_EQ(env.header.hold_requests, false);
  EXPECT_EQ(m.path, "Device.PeriodicStatistics.SampleSet.");
  EXPECT_TRUE(m.next_level);
}

TEST(SoapReaderCorpus, GetParameterNamesEmptyPath) {
  Envelope env = parse_file("getparameternames-genieacs-empty-path.xml");
  GET_BODY(GetParameterNames, m, env);
  EXPECT_EQ(env.header.id, "54ee387f298c11d31080c7bc");
  EXPECT_EQ(m.path, "");
  EXPECT_FALSE(m.next_level);
}

TEST(SoapReaderCorpus, AddObjectGoogle) {
  Envelope env = parse_file("addobject-google-acs-cwmp12.xml");
  GET_BODY(AddObject, m, env);
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_EQ(env.header.id, "google.acs.1370215543274.32355095");
  EXPECT_EQ(env.header.hold_requests, true);
  EXPECT_EQ(m.object_name, "Device.PeriodicStatistics.SampleSet.1.Parameter.");
  EXPECT_EQ(m.parameter_key, "GoogleInitConfig");
}

TEST(SoapReaderCorpus, Reboot) {
  Envelope env = parse_file("reboot-acs-request.xml");
  GET_BODY(Reboot, m, env);
  EXPECT_EQ(env.header.id, "API_953323a9b674bb42b7cad250b2cf0607");
  EXPECT_EQ(m.command_key, "cmdkey");
}

TEST(SoapReaderCorpus, ScheduleInform) {
  Envelope env = parse_file("scheduleinform-acs-request.xml");
  GET_BODY(ScheduleInform, m, env);
  EXPECT_EQ(env.header.id, "API_28edd28d788a784422413db3914c34b0");
  EXPECT_EQ(m.delay_seconds, 5u);
  EXPECT_EQ(m.command_key, "cmdkey");
}

TEST(SoapReaderCorpus, DownloadAllArgs) {
  Envelope env = parse_file("download-acs-request-all-args.xml");
  GET_BODY(Download, m, env);
  EXPECT_EQ(env.header.id, "API_aa0642e34b23820801e7642ad7cb536c");
  Download want;
  want.command_key = "cmdkey";
  want.file_type = "1 Firmware Upgrade Image";
  want.url = "http://example.com/url";
  want.username = "user";
  want.password = "pass";
  want.file_size = 123456;
  want.target_file_name = "image";
  want.delay_seconds = 5;
  want.success_url = "http://example.com/success";
  want.failure_url = "http://example.com/failure";
  EXPECT_EQ(m, want);
}

TEST(SoapReaderCorpus, DownloadMikrotikFirmwareManifest) {
  Envelope env = parse_file("download-mikrotik-firmware-upgrade-xml-handwritten.xml");
  GET_BODY(Download, m, env);
  EXPECT_EQ(env.header.id, "fw-7.15.3-0001");
  Download want;
  want.command_key = "fw-7.15.3";
  want.file_type = "1 Firmware Upgrade Image";
  want.url = "https://files.example.com/mikrotik/7.15.3/arm/upgrade.xml";
  EXPECT_EQ(m, want);
}

TEST(SoapReaderCorpus, DownloadMikrotikVendorConfigAlter) {
  Envelope env = parse_file("download-mikrotik-vendorconfig-alter-handwritten.xml");
  GET_BODY(Download, m, env);
  EXPECT_EQ(env.header.id, "cfg-0001");
  Download want;
  want.command_key = "cfg-2024-05-01";
  want.file_type = "3 Vendor Configuration File";
  want.url = "https://files.example.com/mikrotik/cfg/site-042.alter";
  EXPECT_EQ(m, want);
}

TEST(SoapReaderCorpus, NonSoapPayloadRejected) {
  std::string err = parse_error(corpus("payload-mikrotik-upgrade-links.xml"));
  EXPECT_NE(err.find("SOAP"), std::string::npos) << err;
}

// ---- streaming -----------------------------------------------------------------

bool feed_in_pieces(Reader& r, std::string_view text, const std::vector<size_t>& sizes,
                    Envelope& out) {
  r.reset();
  size_t pos = 0, i = 0;
  while (pos < text.size()) {
    size_t n = std::min(sizes[i++ % sizes.size()], text.size() - pos);
    if (!r.feed(text.data() + pos, n)) return false;
    pos += n;
  }
  return r.finish(out);
}

TEST(SoapReaderStreaming, AnySplitGivesTheSameEnvelope) {
  std::mt19937 rng(20240501);
  std::uniform_int_distribution<size_t> small(1, 64);
  std::vector<size_t> random_sizes(997);
  for (auto& s : random_sizes) s = small(rng);
  Reader reader;  // one Reader for everything: also checks reuse
  for (const std::string& file : corpus_xml_files()) {
    SCOPED_TRACE(file);
    std::string text = corpus(file);
    Envelope whole;
    std::string err;
    bool ok = parse(text, whole, &err);
    EXPECT_EQ(ok, !kNotSoap.count(file)) << err;
    for (const auto& sizes : {std::vector<size_t>{1}, random_sizes, std::vector<size_t>{7, 3}}) {
      Envelope pieces;
      bool ok2 = feed_in_pieces(reader, text, sizes, pieces);
      ASSERT_EQ(ok2, ok) << reader.error();
      if (ok) {
        EXPECT_TRUE(pieces == whole) << "piece size " << sizes[0];
      }
    }
  }
}

TEST(SoapReaderStreaming, SplitInsideMultiByteCharacters) {
  std::string text = soap(
      "<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct>"
      "<Name>Device.X_Name</Name><Value>caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80</Value>"
      "</ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>");
  Reader r;
  Envelope env;
  ASSERT_TRUE(feed_in_pieces(r, text, {1}, env)) << r.error();
  GET_BODY(GetParameterValuesResponse, m, env);
  ASSERT_EQ(m.parameters.size(), 1u);
  EXPECT_EQ(m.parameters[0].value, "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
}

// ---- empty POST, whitespace, BOM -------------------------------------------------

TEST(SoapReaderBody, EmptyAndWhitespaceBodiesAreTheEmptyPost) {
  for (std::string_view text : {"", " ", "\r\n", " \t\r\n \n", "\xEF\xBB\xBF", "\xEF\xBB\xBF \n"}) {
    Envelope env;
    env.body = Inform{};  // must be overwritten
    env.cwmp_ns = "x";
    std::string err;
    ASSERT_TRUE(parse(text, env, &err)) << err;
    EXPECT_TRUE(std::holds_alternative<Empty>(env.body));
    EXPECT_EQ(env, Envelope{});
  }
  // Fed piecewise, and with no feed() at all.
  Reader r;
  Envelope env;
  ASSERT_TRUE(r.feed("  ", 2) && r.feed("\r\n", 2) && r.finish(env));
  EXPECT_TRUE(std::holds_alternative<Empty>(env.body));
  r.reset();
  env.body = Reboot{};
  ASSERT_TRUE(r.finish(env));
  EXPECT_TRUE(std::holds_alternative<Empty>(env.body));
}

// A connection's reader goes through its session's documents in turn; expat
// is reset only for the ones with markup (reader.cc, ready_expat), so what
// one document leaves in it must never reach the next.
TEST(SoapReaderBody, OneReaderThroughASessionsDocuments) {
  Reader r;
  Envelope env;
  auto next = [&](std::string_view text) {
    r.reset();
    env = Envelope{};
    return r.feed(text.data(), text.size()) && r.finish(env);
  };
  const std::string inform = corpus("inform-tr098-cytco-periodic-badtime.xml");
  const std::string reboot = soap("<cwmp:Reboot><CommandKey>k</CommandKey></cwmp:Reboot>");
  ASSERT_TRUE(next(inform)) << r.error();
  EXPECT_TRUE(std::holds_alternative<Inform>(env.body));
  ASSERT_TRUE(next(""));  // the empty POST: expat untouched
  EXPECT_TRUE(std::holds_alternative<Empty>(env.body));
  ASSERT_TRUE(next(" \r\n"));
  EXPECT_TRUE(std::holds_alternative<Empty>(env.body));
  ASSERT_TRUE(next(reboot)) << r.error();
  GET_BODY(Reboot, m, env);
  EXPECT_EQ(m.command_key, "k");
  // A document cut short, then an empty one, then a whole one.
  r.reset();
  ASSERT_TRUE(r.feed(inform.data(), inform.size() / 2));
  r.reset();
  env = Envelope{};
  ASSERT_TRUE(r.finish(env));
  EXPECT_TRUE(std::holds_alternative<Empty>(env.body));
  ASSERT_TRUE(next(inform)) << r.error();
  EXPECT_EQ(std::get<Inform>(env.body).device_id,
            std::get<Inform>(parse_text(inform).body).device_id);
  // A failed document, then a good one: no error carried over.
  EXPECT_FALSE(next("<not-soap/>"));
  ASSERT_TRUE(next(reboot)) << r.error();
  EXPECT_TRUE(r.error().empty());
  // A partial BOM alone still fails (expat is readied for it in finish()).
  r.reset();
  env = Envelope{};
  EXPECT_TRUE(r.feed("\xEF\xBB", 2));
  EXPECT_FALSE(r.finish(env));
  ASSERT_TRUE(next(reboot)) << r.error();
}

TEST(SoapReaderBody, EnvelopeWithEmptyBodyIsEmpty) {
  Envelope env = parse_text(soap("", "<cwmp:ID>5</cwmp:ID>"));
  EXPECT_TRUE(std::holds_alternative<Empty>(env.body));
  EXPECT_EQ(env.header.id, "5");
}

TEST(SoapReaderBody, LeadingWhitespaceBeforeXmlDeclaration) {
  std::string text = "\r\n  \n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
                     soap("<cwmp:Reboot><CommandKey>k</CommandKey></cwmp:Reboot>");
  Envelope env = parse_text(text);
  GET_BODY(Reboot, m, env);
  EXPECT_EQ(m.command_key, "k");
  // Also after a BOM.
  env = parse_text("\xEF\xBB\xBF\n " + text);
  EXPECT_TRUE(std::holds_alternative<Reboot>(env.body));
}

TEST(SoapReaderBody, PartialBomIsAnError) {
  parse_error("\xEF\xBB" + soap("<cwmp:FactoryReset/>"));
  parse_error("\xEF");
}

// ---- encodings -------------------------------------------------------------------

TEST(SoapReaderEncoding, HttpCharsetOverridesDeclaration) {
  // A Latin-1 byte (0xE9 = é) in a document that claims UTF-8.
  std::string text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" +
                     soap("<cwmp:Reboot><CommandKey>caf\xE9</CommandKey></cwmp:Reboot>");
  Envelope env = parse_text(text, "iso-8859-1");
  GET_BODY(Reboot, m, env);
  EXPECT_EQ(m.command_key, "caf\xC3\xA9");
  Envelope env2 = parse_text(text, "\"ISO-8859-1\"");
  EXPECT_TRUE(env2 == env);
  // Without the override the byte is not UTF-8: rejected.
  std::string err = parse_error(text);
  EXPECT_NE(err.find("line 1"), std::string::npos) << err;
}

TEST(SoapReaderEncoding, DeclarationUsedWithoutOverride) {
  std::string text = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" +
                     soap("<cwmp:Reboot><CommandKey>\xE9t\xE9</CommandKey></cwmp:Reboot>");
  Envelope env = parse_text(text);
  GET_BODY(Reboot, m, env);
  EXPECT_EQ(m.command_key, "\xC3\xA9t\xC3\xA9");
  // An unsupported charset name is ignored (the declaration still applies).
  Envelope env2 = parse_text(text, "x-unknown");
  EXPECT_TRUE(env2 == env);
}

TEST(SoapReaderEncoding, Utf16) {
  std::string utf8 = soap("<cwmp:Reboot><CommandKey>k\xC3\xA9</CommandKey></cwmp:Reboot>");
  std::string utf16 = "\xFF\xFE";  // little-endian BOM
  for (size_t i = 0; i < utf8.size(); ++i) {
    unsigned char c = utf8[i];
    if (c == 0xC3) {  // é = U+00E9
      utf16 += '\xE9';
      utf16 += '\0';
      ++i;
      continue;
    }
    utf16 += static_cast<char>(c);
    utf16 += '\0';
  }
  for (std::string_view enc : {"", "utf-16"}) {
    Envelope env = parse_text(utf16, enc);
    GET_BODY(Reboot, m, env);
    EXPECT_EQ(m.command_key, "k\xC3\xA9");
  }
}

// ---- leniency ----------------------------------------------------------------------

TEST(SoapReaderLenient, NumbersAndBooleans) {
  std::string text = soap(
      "<cwmp:Inform><MaxEnvelopes> 0001 </MaxEnvelopes><RetryCount>abc</RetryCount>"
      "</cwmp:Inform>");
  Envelope env = parse_text(text);
  GET_BODY(Inform, m, env);
  EXPECT_EQ(m.max_envelopes, 1u);
  EXPECT_EQ(m.retry_count, 0u);

  struct Case {
    std::string_view text;
    uint32_t u32;
    int i;
  };
  for (const Case& c :
       {Case{"00", 0, 0}, Case{"05", 5, 5}, Case{"\n 42\t", 42, 42}, Case{"-1", 0, -1},
        Case{"4294967295", 4294967295u, 0}, Case{"4294967296", 0, 0}, Case{"12abc", 0, 0},
        Case{"", 0, 0}, Case{"+7", 7, 7}, Case{"1.5", 0, 0}}) {
    std::string t = soap("<cwmp:AddObjectResponse><InstanceNumber>" + std::string(c.text) +
                         "</InstanceNumber><Status>" + std::string(c.text) +
                         "</Status></cwmp:AddObjectResponse>");
    Envelope e = parse_text(t);
    GET_BODY(AddObjectResponse, r, e);
    EXPECT_EQ(r.instance_number, c.u32) << c.text;
    EXPECT_EQ(r.status, c.i) << c.text;
  }

  for (auto [t, want] : std::vector<std::pair<std::string, bool>>{{"1", true},
                                                                  {"true", true},
                                                                  {"TRUE", true},
                                                                  {" True\n", true},
                                                                  {"0", false},
                                                                  {"false", false},
                                                                  {"yes", false},
                                                                  {"", false}}) {
    Envelope e =
        parse_text(soap("<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath>"
                        "<NextLevel>" +
                        t + "</NextLevel></cwmp:GetParameterNames>"));
    GET_BODY(GetParameterNames, g, e);
    EXPECT_EQ(g.next_level, want) << t;
  }
}

TEST(SoapReaderLenient, ValueTypesAndExactValues) {
  std::string text = soap(
      "<cwmp:SetParameterValues><ParameterList>"
      "<ParameterValueStruct><Name>\n  A.b \n</Name><Value xsi:type=\"xsd:boolean\">1</Value>"
      "</ParameterValueStruct>"
      "<ParameterValueStruct><Name>A.c</Name><Value>  spaced\n value  </Value>"
      "</ParameterValueStruct>"
      "<ParameterValueStruct><Name>A.d</Name><Value type=\"xsd:int\">-5</Value>"
      "</ParameterValueStruct>"
      "<ParameterValueStruct><Name>A.e</Name><Value xmlns:foo=\"urn:foo\" foo:type=\"int\" "
      "xsi:type=\"xsd:unsignedLong\">7</Value></ParameterValueStruct>"
      "<ParameterValueStruct><Name>A.f</Name><Value xsi:type=\"dateTime\">"
      "<![CDATA[<not>&markup]]></Value></ParameterValueStruct>"
      "<ParameterValueStruct><Name>A.g</Name><Value xsi:type=\"xsd:string\"/>"
      "</ParameterValueStruct>"
      "</ParameterList><ParameterKey> key </ParameterKey></cwmp:SetParameterValues>");
  Envelope env = parse_text(text);
  GET_BODY(SetParameterValues, m, env);
  EXPECT_EQ(m.parameter_key, "key");
  ASSERT_EQ(m.parameters.size(), 6u);
  EXPECT_EQ(m.parameters[0], (ParameterValue{"A.b", "1", "boolean"}));
  EXPECT_EQ(m.parameters[1], (ParameterValue{"A.c", "  spaced\n value  ", "string"}));
  EXPECT_EQ(m.parameters[2], (ParameterValue{"A.d", "-5", "int"}));
  EXPECT_EQ(m.parameters[3], (ParameterValue{"A.e", "7", "unsignedLong"}));  // xsi wins
  EXPECT_EQ(m.parameters[4], (ParameterValue{"A.f", "<not>&markup", "dateTime"}));
  EXPECT_EQ(m.parameters[5], (ParameterValue{"A.g", "", "string"}));
}

TEST(SoapReaderLenient, UnqualifiedRpcAndNamespaceChoice) {
  // RPC namespace wins over the ID's.
  Envelope env = parse_text(
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "xmlns:a=\"urn:dslforum-org:cwmp-1-0\" xmlns:b=\"urn:dslforum-org:cwmp-1-2\">"
      "<s:Header><a:ID>7</a:ID></s:Header><s:Body><b:Reboot/></s:Body></s:Envelope>");
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  EXPECT_TRUE(std::holds_alternative<Reboot>(env.body));
  // Unqualified RPC: the ID's namespace.
  env = parse_text(
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "xmlns:a=\"urn:dslforum-org:cwmp-1-1\">"
      "<s:Header><a:ID>7</a:ID></s:Header><s:Body><Reboot/></s:Body></s:Envelope>");
  EXPECT_EQ(env.cwmp_ns, "urn:dslforum-org:cwmp-1-1");
  EXPECT_EQ(env.header.id, "7");
  // Neither: any cwmp declaration in the document.
  env = parse_text(
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
      "<s:Body><Reboot xmlns:x=\"urn:dslforum-org:cwmp-1-3\"/></s:Body></s:Envelope>");
  EXPECT_EQ(env.cwmp_ns, "urn:dslforum-org:cwmp-1-3");
  EXPECT_FALSE(env.header.id.has_value());
  // A (broken) namespace URI with a space in it is still accepted.
  env = parse_text(
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "xmlns:c=\"urn:dslforum-org:cwmp-1-0 x\"><s:Body><c:Reboot/></s:Body></s:Envelope>");
  EXPECT_EQ(env.cwmp_ns, "urn:dslforum-org:cwmp-1-0 x");
  // Nothing at all: CWMP 1.0.
  env = parse_text(
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
      "<s:Body><Reboot xmlns=\"urn:other\"/></s:Body></s:Envelope>");
  EXPECT_EQ(env.cwmp_ns, kCwmpNs10);
  EXPECT_TRUE(std::holds_alternative<Reboot>(env.body));
}

// expat runs without namespace processing; the reader resolves prefixes
// itself, with XML's scoping rules and expat's errors.
TEST(SoapReaderNamespaces, PrefixesResolveInScope) {
  // The envelope's namespace through the default namespace, the RPC's
  // through a prefix declared on the RPC element itself.
  Envelope env = parse_text(
      "<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body>"
      "<c:Reboot xmlns:c=\"urn:dslforum-org:cwmp-1-2\"><CommandKey>k</CommandKey></c:Reboot>"
      "</Body></Envelope>");
  ASSERT_TRUE(std::holds_alternative<Reboot>(env.body));
  EXPECT_EQ(std::get<Reboot>(env.body).command_key, "k");
  EXPECT_EQ(env.cwmp_ns, kCwmpNs12);
  // An inner declaration hides an outer one of the same prefix: "s" on the
  // Body is no longer the SOAP namespace, so <s:Fault> is an unknown RPC.
  env = parse_text(
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
      "<s:Body><s:Fault xmlns:s=\"urn:other\"/></s:Body></s:Envelope>");
  ASSERT_TRUE(std::holds_alternative<Unknown>(env.body));
  EXPECT_EQ(std::get<Unknown>(env.body).name, "Fault");
  // A Header element in another namespace is not the SOAP Header.
  env = parse_text(
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "xmlns:c=\"urn:dslforum-org:cwmp-1-0\"><c:Header><c:ID>7</c:ID></c:Header>"
      "<s:Body><c:Reboot/></s:Body></s:Envelope>");
  EXPECT_FALSE(env.header.id.has_value());
  // Undeclaring the default namespace: the unprefixed Envelope is no SOAP one.
  EXPECT_NE(parse_error("<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                        "<Body xmlns=\"\"/></Envelope>")
                .find("not a SOAP"),
            std::string::npos);
  EXPECT_NE(parse_error("<s:Envelope xmlns:s=\"urn:not-soap\"><s:Body/></s:Envelope>")
                .find("root element is not a SOAP 1.1 Envelope"),
            std::string::npos);
}

TEST(SoapReaderNamespaces, AScopeEndsWithItsElement) {
  // "c" is declared on the first Body child's subtree only: the ID after
  // the Header that declared it has no binding.
  const std::string err = parse_error(
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
      "<s:Header><c:ID xmlns:c=\"urn:dslforum-org:cwmp-1-0\">1</c:ID>"
      "<c:HoldRequests>1</c:HoldRequests></s:Header><s:Body/></s:Envelope>");
  EXPECT_NE(err.find("XML error at "), std::string::npos) << err;
  EXPECT_NE(err.find(": unbound prefix"), std::string::npos) << err;
}

TEST(SoapReaderNamespaces, ExpatsNamespaceErrorsStay) {
  const std::string env = "xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"";
  const std::pair<std::string, std::string> refused[] = {
      {"<s:Envelope><s:Body/></s:Envelope>", "unbound prefix"},
      {"<s:Envelope " + env + "><s:Body x:y=\"1\"/></s:Envelope>", "unbound prefix"},
      {"<s:Envelope " + env + " xmlns:c=\"\"><s:Body/></s:Envelope>", "must not undeclare prefix"},
      {"<s:Envelope " + env + " xmlns:xmlns=\"urn:x\"><s:Body/></s:Envelope>",
       "reserved prefix (xmlns)"},
      {"<s:Envelope " + env + " xmlns:xml=\"urn:x\"><s:Body/></s:Envelope>",
       "reserved prefix (xml)"},
  };
  for (const auto& [text, why] : refused) {
    const std::string err = parse_error(text);
    EXPECT_NE(err.find("XML error at "), std::string::npos) << err;
    EXPECT_NE(err.find(why), std::string::npos) << text << ": " << err;
  }
  // xml: needs no declaration; "xmlnsfoo" is an ordinary attribute.
  Envelope ok = parse_text("<s:Envelope " + env +
                           " xml:lang=\"en\" xmlnsfoo=\"1\"><s:Body><Reboot/></s:Body>"
                           "</s:Envelope>");
  EXPECT_TRUE(std::holds_alternative<Reboot>(ok.body));
}

TEST(SoapReaderNamespaces, ValueTypeThroughAnyXsiPrefix) {
  // The XMLSchema-instance "type" wins whatever its prefix, also declared on
  // the Value itself; another namespace's "type" only when there is none.
  Envelope env = parse_text(
      soap("<cwmp:GetParameterValuesResponse><ParameterList>"
           "<ParameterValueStruct><Name>A.a</Name><Value o:type=\"xsd:string\" "
           "i:type=\"xsd:int\" xmlns:o=\"urn:other\" "
           "xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\">1</Value></ParameterValueStruct>"
           "<ParameterValueStruct><Name>A.b</Name><Value o:type=\"xsd:boolean\" "
           "xmlns:o=\"urn:other\">true</Value></ParameterValueStruct>"
           "<ParameterValueStruct><Name>A.c</Name><Value xmlns:type=\"urn:t\">x</Value>"
           "</ParameterValueStruct>"
           "</ParameterList></cwmp:GetParameterValuesResponse>"));
  const auto& m = std::get<GetParameterValuesResponse>(env.body);
  ASSERT_EQ(m.parameters.size(), 3u);
  EXPECT_EQ(m.parameters[0].type, "int");
  EXPECT_EQ(m.parameters[1].type, "boolean");
  EXPECT_EQ(m.parameters[2].type, ParameterValue{}.type);  // a declaration is no type
}

TEST(SoapReaderLenient, HeaderFields) {
  Envelope env =
      parse_text(soap("<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes>"
                      "</cwmp:InformResponse>",
                      "<cwmp:ID soap-env:mustUnderstand=\"1\">\n id-1 \n</cwmp:ID>"
                      "<cwmp:HoldRequests>true</cwmp:HoldRequests>"
                      "<cwmp:NoMoreRequests>1</cwmp:NoMoreRequests>"
                      "<cwmp:SessionTimeout>030</cwmp:SessionTimeout>"
                      "<cwmp:UseCWMPVersion>1.4</cwmp:UseCWMPVersion>"
                      "<cwmp:X_Vendor><a>b</a></cwmp:X_Vendor>"));
  EXPECT_EQ(env.header.id, "id-1");
  EXPECT_EQ(env.header.hold_requests, true);
  EXPECT_TRUE(env.header.no_more_requests);
  EXPECT_EQ(env.header.session_timeout, 30u);
  EXPECT_EQ(env.header.use_cwmp_version, "1.4");
  // An empty ID is still an ID.
  env = parse_text(soap("<cwmp:FactoryReset/>", "<cwmp:ID></cwmp:ID>"));
  EXPECT_EQ(env.header.id, "");
}

TEST(SoapReaderLenient, UnknownRpcIsNotAnError) {
  Envelope env = parse_text(
      soap("<cwmp:X_ACME_Frobnicate><Deep><Deeper>1</Deeper></Deep></cwmp:X_ACME_Frobnicate>"));
  GET_BODY(Unknown, u, env);
  EXPECT_EQ(u.name, "X_ACME_Frobnicate");
  // A 1.2 RPC this library has no type for.
  env =
      parse_text(soap("<cwmp:ScheduleDownload><CommandKey>x</CommandKey></cwmp:ScheduleDownload>"));
  EXPECT_EQ(std::get<Unknown>(env.body).name, "ScheduleDownload");
}

TEST(SoapReaderLenient, FaultDefaults) {
  Envelope env =
      parse_text(soap("<soap-env:Fault><detail><cwmp:Fault><FaultCode>9002</FaultCode>"
                      "</cwmp:Fault></detail></soap-env:Fault>"));
  GET_BODY(Fault, f, env);
  EXPECT_EQ(f.faultcode, "Client");
  EXPECT_EQ(f.faultstring, "CWMP fault");
  EXPECT_EQ(f.code, 9002u);
  EXPECT_EQ(f.string, "");
  env =
      parse_text(soap("<soap-env:Fault><faultcode>soap:Server</faultcode>"
                      "<faultstring> oops </faultstring></soap-env:Fault>"));
  GET_BODY(Fault, g, env);
  EXPECT_EQ(g.faultcode, "Server");
  EXPECT_EQ(g.faultstring, "oops");
  EXPECT_EQ(g.code, 0u);
}

TEST(SoapReaderLenient, AttributesAndStructs) {
  Envelope env = parse_text(
      soap("<cwmp:GetParameterAttributesResponse><ParameterList>"
           "<ParameterAttributeStruct><Name>A.b</Name><Notification>2</Notification>"
           "<AccessList><string> Subscriber </string><x:string xmlns:x=\"urn:x\">Other</x:string>"
           "</AccessList></ParameterAttributeStruct>"
           "</ParameterList></cwmp:GetParameterAttributesResponse>"));
  GET_BODY(GetParameterAttributesResponse, m, env);
  ASSERT_EQ(m.parameters.size(), 1u);
  EXPECT_EQ(m.parameters[0], (ParameterAttribute{"A.b", 2, {"Subscriber", "Other"}}));
}

// ---- hostile and broken input --------------------------------------------------------

TEST(SoapReaderReject, Doctype) {
  std::string err = parse_error(
      "<?xml version=\"1.0\"?><!DOCTYPE e [<!ENTITY a \"aaaaaaaaaa\">"
      "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
      "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>"
      "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\">"
      "<soap-env:Body><Reboot><CommandKey>&d;</CommandKey></Reboot></soap-env:Body>"
      "</soap-env:Envelope>");
  EXPECT_NE(err.find("DTD not allowed"), std::string::npos) << err;
  EXPECT_NE(err.find("line 1"), std::string::npos) << err;
  err = parse_error("<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><x>&xxe;</x>");
  EXPECT_NE(err.find("DTD not allowed"), std::string::npos) << err;
  // Undeclared entity references are plain XML errors.
  err = parse_error(soap("<cwmp:Reboot><CommandKey>&xxe;</CommandKey></cwmp:Reboot>"));
  EXPECT_NE(err.find("line 1:"), std::string::npos) << err;
}

TEST(SoapReaderReject, DepthBomb) {
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "<a>";
  std::string err = parse_error(soap("<cwmp:Inform>" + deep));
  EXPECT_NE(err.find("nested too deeply"), std::string::npos) << err;
  // The limit is configurable and exact.
  std::string ok_depth = soap("<cwmp:Inform><a><b></b></a></cwmp:Inform>");  // 5 levels
  ReaderLimits five{.max_depth = 5};
  Reader r(five);
  Envelope env;
  EXPECT_TRUE(r.feed(ok_depth) && r.finish(env)) << r.error();
  parse_error(soap("<cwmp:Inform><a><b><c/></b></a></cwmp:Inform>"), five);
}

TEST(SoapReaderReject, ElementAndTextLimits) {
  std::string many;
  for (int i = 0; i < 100; ++i) many += "<string>x</string>";
  std::string text = soap("<cwmp:GetParameterValues><ParameterNames>" + many +
                          "</ParameterNames></cwmp:GetParameterValues>");
  std::string err = parse_error(text, ReaderLimits{.max_elements = 50});
  EXPECT_NE(err.find("too many elements"), std::string::npos) << err;
  EXPECT_TRUE(std::holds_alternative<GetParameterValues>(parse_text(text).body));

  std::string big(300, 'v');
  std::string value = soap(
      "<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct>"
      "<Name>A</Name><Value>" +
      big +
      "</Value></ParameterValueStruct>"
      "</ParameterList></cwmp:GetParameterValuesResponse>");
  err = parse_error(value, ReaderLimits{.max_text_bytes = 256});
  EXPECT_NE(err.find("text too long"), std::string::npos) << err;
  // Text in ignored elements counts too.
  err = parse_error(soap("<cwmp:X_Unknown><junk>" + big + "</junk></cwmp:X_Unknown>"),
                    ReaderLimits{.max_text_bytes = 256});
  EXPECT_NE(err.find("text too long"), std::string::npos) << err;
  Envelope env = parse_text(value);
  EXPECT_EQ(std::get<GetParameterValuesResponse>(env.body).parameters[0].value, big);
}

TEST(SoapReaderReject, TruncatedDocument) {
  std::string text = corpus("inform-tr098-zyxel-p2601hn-periodic.xml");
  std::string err = parse_error(text.substr(0, text.size() / 2));
  EXPECT_NE(err.find("line "), std::string::npos) << err;
  // Garbage is an XML error with a position too.
  err = parse_error("\n\n<soap-env:Envelope <<<");
  EXPECT_NE(err.find("line 3:"), std::string::npos) << err;
}

TEST(SoapReaderReject, NotSoap) {
  parse_error("<Envelope><Body><Reboot/></Body></Envelope>");
  // SOAP 1.2 is not CWMP.
  parse_error(
      "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body><Reboot/>"
      "</e:Body></e:Envelope>");
  parse_error("not xml at all");
  // An Envelope without a Body.
  std::string err = parse_error(
      "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Header/>"
      "</e:Envelope>");
  EXPECT_NE(err.find("Body"), std::string::npos) << err;
}

TEST(SoapReaderReject, BodyWithTwoElements) {
  std::string err = parse_error(soap("<cwmp:Reboot/><cwmp:FactoryReset/>"));
  EXPECT_NE(err.find("more than one"), std::string::npos) << err;
  parse_error(soap("<cwmp:GetRPCMethods/><soap-env:Fault/>"));
}

TEST(SoapReaderReject, ReaderIsReusableAfterError) {
  Reader r;
  Envelope env;
  std::string good = corpus("inform-tr181-sagemcom-periodic.xml");
  for (int round = 0; round < 3; ++round) {
    r.reset();
    EXPECT_FALSE(r.feed(std::string_view("<!DOCTYPE x []><x/>")) && r.finish(env));
    EXPECT_FALSE(r.error().empty());
    EXPECT_FALSE(r.feed(good));  // still failed until reset()
    r.reset();
    EXPECT_TRUE(r.error().empty());
    ASSERT_TRUE(r.feed(good) && r.finish(env)) << r.error();
    EXPECT_TRUE(std::holds_alternative<Inform>(env.body));
    // Truncated, then good again.
    r.reset();
    EXPECT_FALSE(r.feed(good.data(), 100) && r.finish(env));
    r.reset();
    ASSERT_TRUE(r.feed(good) && r.finish(env)) << r.error();
  }
  // finish() twice without reset() is refused.
  EXPECT_FALSE(r.finish(env));
  EXPECT_FALSE(r.error().empty());
}

TEST(SoapReaderReject, ConvenienceParseReportsError) {
  Envelope env;
  std::string err;
  EXPECT_FALSE(parse("<x/>", env, &err));
  EXPECT_NE(err.find("SOAP"), std::string::npos) << err;
  EXPECT_FALSE(parse("<x/>", env));  // error pointer optional
  EXPECT_TRUE(parse(soap("<cwmp:Reboot/>"), env, &err));
}

}  // namespace
}  // namespace luacs::soap
