#include "core/soap/writer.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <string_view>
#include <variant>

namespace luacs::soap {
namespace {

// How each byte is escaped: 0 copied, 1 special in text and attributes,
// 2 special in attributes only, 3 start of a multi-byte UTF-8 sequence.
constexpr std::array<uint8_t, 256> kByteClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 1;  // forbidden controls, and \r
  t['\t'] = 2;
  t['\n'] = 2;
  t['"'] = 2;
  t['&'] = 1;
  t['<'] = 1;
  t['>'] = 1;
  for (int c = 0x80; c < 0x100; ++c) t[c] = 3;
  return t;
}();

bool cont(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Length of the well-formed UTF-8 sequence of a character XML allows that
// starts at s[i], or 0.
size_t utf8_char_len(std::string_view s, size_t i) {
  auto at = [&](size_t k) -> unsigned char { return i + k < s.size() ? s[i + k] : 0; };
  unsigned char c = at(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(at(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    unsigned char c1 = at(1);
    if (c == 0xE0 && (c1 < 0xA0 || c1 > 0xBF)) return 0;  // overlong
    if (c == 0xED && (c1 < 0x80 || c1 > 0x9F)) return 0;  // surrogates
    if (!cont(c1) || !cont(at(2))) return 0;
    if (c == 0xEF && c1 == 0xBF && (at(2) == 0xBE || at(2) == 0xBF)) return 0;  // U+FFFE/F
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    unsigned char c1 = at(1);
    if (c == 0xF0 && (c1 < 0x90 || c1 > 0xBF)) return 0;
    if (c == 0xF4 && (c1 < 0x80 || c1 > 0x8F)) return 0;
    if (!cont(c1) || !cont(at(2)) || !cont(at(3))) return 0;
    return 4;
  }
  return 0;
}

void escape(std::string& out, std::string_view s, bool attr) {
  const char* d = s.data();
  size_t run = 0, i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(d[i]);
    uint8_t k = kByteClass[c];
    if (k == 0 || (k == 2 && !attr)) {
      ++i;
      continue;
    }
    if (k == 3) {
      size_t len = utf8_char_len(s, i);
      if (len != 0) {
        i += len;
        continue;
      }
    }
    out.append(d + run, i - run);
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\r':
        out += "&#13;";
        break;
      case '\n':
        out += "&#10;";
        break;  // attributes only
      case '\t':
        out += "&#9;";
        break;  // attributes only
      default:
        out += '?';
        break;  // control or invalid UTF-8 byte
    }
    run = ++i;
  }
  out.append(d + run, n - run);
}

// No XML declaration: TR-069 does not ask for one, UTF-8 is XML's default
// (and the Content-Type says so), and CPE agents that wrap the body they
// receive in an element of their own before parsing it cannot parse a
// declaration in the middle of their document (docs/interop.md).
constexpr std::string_view kEnvelopeOpen =
    "<soap-env:Envelope"
    " xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\""
    " xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\""
    " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\""
    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
    " xmlns:cwmp=\"";

// Appends to a string; all element helpers write unqualified argument
// elements (the CWMP schemas are elementFormDefault="unqualified").
class Out {
 public:
  explicit Out(std::string& s) : s_(s) {}

  void raw(std::string_view v) { s_ += v; }
  void text(std::string_view v) { escape(s_, v, false); }
  void attr(std::string_view v) { escape(s_, v, true); }
  void num(uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    s_.append(buf, r.ptr);
  }
  void num(int v) {
    char buf[16];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    s_.append(buf, r.ptr);
  }

  void open(std::string_view tag) {
    s_ += '<';
    s_ += tag;
    s_ += '>';
  }
  void close(std::string_view tag) {
    s_ += "</";
    s_ += tag;
    s_ += '>';
  }
  void str(std::string_view tag, std::string_view v) {
    open(tag);
    text(v);
    close(tag);
  }
  void u32(std::string_view tag, uint32_t v) {
    open(tag);
    num(uint64_t{v});
    close(tag);
  }
  void i32(std::string_view tag, int v) {
    open(tag);
    num(v);
    close(tag);
  }
  void boolean(std::string_view tag, bool v) {
    open(tag);
    s_ += v ? '1' : '0';
    close(tag);
  }

  // <tag soap-enc:arrayType="type[N]">items</tag>
  template <class V, class F>
  void array(std::string_view tag, std::string_view type, const V& items, F&& item) {
    s_ += '<';
    s_ += tag;
    s_ += " soap-enc:arrayType=\"";
    s_ += type;
    s_ += '[';
    num(uint64_t{items.size()});
    s_ += "]\">";
    for (const auto& x : items) item(x);
    close(tag);
  }

  void strings(std::string_view tag, const std::vector<std::string>& v) {
    array(tag, "xsd:string", v, [&](const std::string& x) { str("string", x); });
  }

  void value(const ParameterValue& p) {
    s_ += "<Value xsi:type=\"xsd:";
    attr(p.type.empty() ? std::string_view("string") : std::string_view(p.type));
    s_ += "\">";
    text(p.value);
    s_ += "</Value>";
  }

  void parameter_values(const std::vector<ParameterValue>& v) {
    array("ParameterList", "cwmp:ParameterValueStruct", v, [&](const ParameterValue& p) {
      s_ += "<ParameterValueStruct>";
      str("Name", p.name);
      value(p);
      s_ += "</ParameterValueStruct>";
    });
  }

  void fault_struct(std::string_view tag, const FaultStruct& f) {
    open(tag);
    u32("FaultCode", f.code);
    str("FaultString", f.string);
    close(tag);
  }

  void op_results(const std::vector<OpResult>& v, bool autonomous) {
    array("Results", "cwmp:OpResultStruct", v, [&](const OpResult& r) {
      s_ += "<OpResultStruct>";
      str("UUID", r.uuid);
      str("DeploymentUnitRef", r.deployment_unit_ref);
      str("Version", r.version);
      str("CurrentState", r.current_state);
      boolean("Resolved", r.resolved);
      str("ExecutionUnitRefList", r.execution_unit_ref_list);
      str("StartTime", r.start_time);
      str("CompleteTime", r.complete_time);
      fault_struct("Fault", r.fault);
      if (autonomous) str("OperationPerformed", r.operation_performed);
      s_ += "</OpResultStruct>";
    });
  }

  // <cwmp:Name> ... </cwmp:Name>
  void rpc_open(std::string_view name) {
    s_ += "<cwmp:";
    s_ += name;
    s_ += '>';
  }
  void rpc_close(std::string_view name) {
    s_ += "</cwmp:";
    s_ += name;
    s_ += '>';
  }

  std::string& s_;
};

// Writes the children of each RPC element, in schema order.
struct Args {
  Out& o;

  void operator()(const Empty&) const {}
  void operator()(const Unknown&) const {}
  void operator()(const Fault&) const {}  // written by write_fault

  void operator()(const Inform& m) const {
    o.open("DeviceId");
    o.str("Manufacturer", m.device_id.manufacturer);
    o.str("OUI", m.device_id.oui);
    o.str("ProductClass", m.device_id.product_class);
    o.str("SerialNumber", m.device_id.serial_number);
    o.close("DeviceId");
    o.array("Event", "cwmp:EventStruct", m.events, [&](const EventStruct& e) {
      o.raw("<EventStruct>");
      o.str("EventCode", e.code);
      o.str("CommandKey", e.command_key);
      o.raw("</EventStruct>");
    });
    o.u32("MaxEnvelopes", m.max_envelopes);
    o.str("CurrentTime", m.current_time);
    o.u32("RetryCount", m.retry_count);
    o.parameter_values(m.parameters);
  }
  void operator()(const TransferComplete& m) const {
    o.str("CommandKey", m.command_key);
    o.fault_struct("FaultStruct", m.fault);
    o.str("StartTime", m.start_time);
    o.str("CompleteTime", m.complete_time);
  }
  void operator()(const AutonomousTransferComplete& m) const {
    o.str("AnnounceURL", m.announce_url);
    o.str("TransferURL", m.transfer_url);
    o.boolean("IsDownload", m.is_download);
    o.str("FileType", m.file_type);
    o.u32("FileSize", m.file_size);
    o.str("TargetFileName", m.target_file_name);
    o.fault_struct("FaultStruct", m.fault);
    o.str("StartTime", m.start_time);
    o.str("CompleteTime", m.complete_time);
  }
  void operator()(const GetRPCMethods&) const {}
  void operator()(const RequestDownload& m) const {
    o.str("FileType", m.file_type);
    o.array("FileTypeArg", "cwmp:ArgStruct", m.file_type_args,
            [&](const std::pair<std::string, std::string>& a) {
              o.raw("<ArgStruct>");
              o.str("Name", a.first);
              o.str("Value", a.second);
              o.raw("</ArgStruct>");
            });
  }
  void operator()(const Kicked& m) const {
    o.str("Command", m.command);
    o.str("Referer", m.referer);
    o.str("Arg", m.arg);
    o.str("Next", m.next);
  }
  void operator()(const DUStateChangeComplete& m) const {
    o.op_results(m.results, false);
    o.str("CommandKey", m.command_key);
  }
  void operator()(const AutonomousDUStateChangeComplete& m) const { o.op_results(m.results, true); }

  void operator()(const InformResponse& m) const { o.u32("MaxEnvelopes", m.max_envelopes); }
  void operator()(const TransferCompleteResponse&) const {}
  void operator()(const AutonomousTransferCompleteResponse&) const {}
  void operator()(const GetRPCMethodsResponse& m) const { o.strings("MethodList", m.methods); }
  void operator()(const RequestDownloadResponse&) const {}
  void operator()(const KickedResponse& m) const { o.str("NextURL", m.next_url); }
  void operator()(const DUStateChangeCompleteResponse&) const {}
  void operator()(const AutonomousDUStateChangeCompleteResponse&) const {}

  void operator()(const GetParameterNames& m) const {
    o.str("ParameterPath", m.path);
    o.boolean("NextLevel", m.next_level);
  }
  void operator()(const GetParameterValues& m) const { o.strings("ParameterNames", m.names); }
  void operator()(const SetParameterValues& m) const {
    o.parameter_values(m.parameters);
    o.str("ParameterKey", m.parameter_key);
  }
  void operator()(const GetParameterAttributes& m) const { o.strings("ParameterNames", m.names); }
  void operator()(const SetParameterAttributes& m) const {
    o.array("ParameterList", "cwmp:SetParameterAttributesStruct", m.parameters,
            [&](const SetParameterAttributesStruct& p) {
              o.raw("<SetParameterAttributesStruct>");
              o.str("Name", p.name);
              o.boolean("NotificationChange", p.notification_change);
              o.i32("Notification", p.notification);
              o.boolean("AccessListChange", p.access_list_change);
              o.strings("AccessList", p.access_list);
              o.raw("</SetParameterAttributesStruct>");
            });
  }
  void operator()(const AddObject& m) const {
    o.str("ObjectName", m.object_name);
    o.str("ParameterKey", m.parameter_key);
  }
  void operator()(const DeleteObject& m) const {
    o.str("ObjectName", m.object_name);
    o.str("ParameterKey", m.parameter_key);
  }
  void operator()(const Reboot& m) const { o.str("CommandKey", m.command_key); }
  void operator()(const FactoryReset&) const {}
  void operator()(const Download& m) const {
    o.str("CommandKey", m.command_key);
    o.str("FileType", m.file_type);
    o.str("URL", m.url);
    o.str("Username", m.username);
    o.str("Password", m.password);
    o.u32("FileSize", m.file_size);
    o.str("TargetFileName", m.target_file_name);
    o.u32("DelaySeconds", m.delay_seconds);
    o.str("SuccessURL", m.success_url);
    o.str("FailureURL", m.failure_url);
  }
  void operator()(const Upload& m) const {
    o.str("CommandKey", m.command_key);
    o.str("FileType", m.file_type);
    o.str("URL", m.url);
    o.str("Username", m.username);
    o.str("Password", m.password);
    o.u32("DelaySeconds", m.delay_seconds);
  }
  void operator()(const ScheduleInform& m) const {
    o.u32("DelaySeconds", m.delay_seconds);
    o.str("CommandKey", m.command_key);
  }

  void operator()(const GetParameterNamesResponse& m) const {
    o.array("ParameterList", "cwmp:ParameterInfoStruct", m.parameters, [&](const ParameterInfo& p) {
      o.raw("<ParameterInfoStruct>");
      o.str("Name", p.name);
      o.boolean("Writable", p.writable);
      o.raw("</ParameterInfoStruct>");
    });
  }
  void operator()(const GetParameterValuesResponse& m) const { o.parameter_values(m.parameters); }
  void operator()(const SetParameterValuesResponse& m) const { o.i32("Status", m.status); }
  void operator()(const GetParameterAttributesResponse& m) const {
    o.array("ParameterList", "cwmp:ParameterAttributeStruct", m.parameters,
            [&](const ParameterAttribute& p) {
              o.raw("<ParameterAttributeStruct>");
              o.str("Name", p.name);
              o.i32("Notification", p.notification);
              o.strings("AccessList", p.access_list);
              o.raw("</ParameterAttributeStruct>");
            });
  }
  void operator()(const SetParameterAttributesResponse&) const {}
  void operator()(const AddObjectResponse& m) const {
    o.u32("InstanceNumber", m.instance_number);
    o.i32("Status", m.status);
  }
  void operator()(const DeleteObjectResponse& m) const { o.i32("Status", m.status); }
  void operator()(const RebootResponse&) const {}
  void operator()(const FactoryResetResponse&) const {}
  void operator()(const DownloadResponse& m) const {
    o.i32("Status", m.status);
    o.str("StartTime", m.start_time);
    o.str("CompleteTime", m.complete_time);
  }
  void operator()(const UploadResponse& m) const {
    o.i32("Status", m.status);
    o.str("StartTime", m.start_time);
    o.str("CompleteTime", m.complete_time);
  }
  void operator()(const ScheduleInformResponse&) const {}
};

void write_header(Out& o, const Header& h) {
  if (!h.id && !h.hold_requests && !h.no_more_requests && !h.session_timeout &&
      h.supported_cwmp_versions.empty() && h.use_cwmp_version.empty())
    return;
  o.raw("<soap-env:Header>");
  if (h.id) {
    o.raw("<cwmp:ID soap-env:mustUnderstand=\"1\">");
    o.text(*h.id);
    o.raw("</cwmp:ID>");
  }
  if (h.hold_requests) {
    o.raw(*h.hold_requests
              ? "<cwmp:HoldRequests soap-env:mustUnderstand=\"1\">1</cwmp:HoldRequests>"
              : "<cwmp:HoldRequests soap-env:mustUnderstand=\"1\">0</cwmp:HoldRequests>");
  }
  // Deprecated; only an old CPE (the load generator playing one) sends it.
  if (h.no_more_requests) o.raw("<cwmp:NoMoreRequests>1</cwmp:NoMoreRequests>");
  if (h.session_timeout) {
    o.raw("<cwmp:SessionTimeout soap-env:mustUnderstand=\"0\">");
    o.num(uint64_t{*h.session_timeout});
    o.raw("</cwmp:SessionTimeout>");
  }
  if (!h.supported_cwmp_versions.empty()) {
    o.raw("<cwmp:SupportedCWMPVersions soap-env:mustUnderstand=\"0\">");
    o.text(h.supported_cwmp_versions);
    o.raw("</cwmp:SupportedCWMPVersions>");
  }
  if (!h.use_cwmp_version.empty()) {
    o.raw("<cwmp:UseCWMPVersion soap-env:mustUnderstand=\"1\">");
    o.text(h.use_cwmp_version);
    o.raw("</cwmp:UseCWMPVersion>");
  }
  o.raw("</soap-env:Header>");
}

void write_fault(Out& o, const Fault& f) {
  o.raw("<soap-env:Fault>");
  o.str("faultcode", f.faultcode);
  o.str("faultstring", f.faultstring);
  o.raw("<detail><cwmp:Fault>");
  o.u32("FaultCode", f.code);
  o.str("FaultString", f.string);
  for (const SetParameterValuesFault& p : f.set_parameter_values_faults) {
    o.raw("<SetParameterValuesFault>");
    o.str("ParameterName", p.name);
    o.u32("FaultCode", p.code);
    o.str("FaultString", p.string);
    o.raw("</SetParameterValuesFault>");
  }
  o.raw("</cwmp:Fault></detail></soap-env:Fault>");
}

// An Unknown body's name is echoed as an element name: keep it a valid one.
std::string element_name(std::string_view name) {
  std::string r;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (ok) r += c;
  }
  if (r.empty() || !((r[0] >= 'A' && r[0] <= 'Z') || (r[0] >= 'a' && r[0] <= 'z') || r[0] == '_'))
    r.insert(0, "X");
  return r;
}

}  // namespace

void escape_text(std::string& out, std::string_view text) {
  escape(out, text, false);
}

void write(std::string& out, const Envelope& env) {
  if (std::holds_alternative<Empty>(env.body)) return;
  out.reserve(out.size() + 1024);
  Out o(out);
  o.raw(kEnvelopeOpen);
  o.attr(env.cwmp_ns.empty() ? kCwmpNs10 : std::string_view(env.cwmp_ns));
  o.raw("\">");
  write_header(o, env.header);
  o.raw("<soap-env:Body>");
  if (const auto* f = std::get_if<Fault>(&env.body)) {
    write_fault(o, *f);
  } else {
    std::string unknown;
    std::string_view name = method_name(env.body);
    if (std::holds_alternative<Unknown>(env.body)) {
      unknown = element_name(name);
      name = unknown;
    }
    o.rpc_open(name);
    std::visit(Args{o}, env.body);
    o.rpc_close(name);
  }
  o.raw("</soap-env:Body></soap-env:Envelope>");
}

std::string write(const Envelope& env) {
  std::string out;
  write(out, env);
  return out;
}

}  // namespace luacs::soap
