// The task body of POST /devices/{id}/tasks (core/nbi/task_body.h): JSON
// from the API client, turned into the RPC the session engine sends.
//
// Input: JSON text. Properties: parse_task_body() throws nothing (a body is
// a task or a 400); a task it accepts is one the session engine can turn
// into an ACS request (session::task_rpc), and that request, written as the
// CPE will get it, reads back as the same request when its strings are ones
// XML carries unchanged. The two RFC 3339 parsers of the API (the task's
// "expires", the device filter's informed_before/after) agree on every
// string of the body.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/nbi/filter.h"
#include "core/nbi/task_body.h"
#include "core/session/task_rpc.h"
#include "core/soap/reader.h"
#include "core/soap/writer.h"
#include "core/util/json.h"
#include "fuzz/common.h"

using namespace luacs;
using nlohmann::json;

namespace {

constexpr int64_t kNow = 1'780'000'000'000;  // 2026-05-28

// Whether the writer passes s through unchanged and the reader gives it
// back: no control characters but tab/LF/CR, no U+FFFE or U+FFFF (what XML
// cannot carry the writer replaces by '?', by design), and no blanks at
// either end (the reader trims names).
bool xml_clean(std::string_view s) {
  if (!s.empty() &&
      (s.front() == ' ' || s.back() == ' ' || s.front() == '\t' || s.back() == '\t' ||
       s.front() == '\n' || s.back() == '\n' || s.front() == '\r' || s.back() == '\r'))
    return false;
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return false;
  return s.find("\xEF\xBF\xBE") == std::string_view::npos &&
         s.find("\xEF\xBF\xBF") == std::string_view::npos;
}

// Every string of j (keys too) through f; false as soon as f says so.
template <typename F>
bool all_strings(const json& j, F&& f) {
  if (j.is_string()) return f(j.get_ref<const std::string&>());
  if (j.is_object()) {
    for (const auto& item : j.items())
      if (!f(item.key()) || !all_strings(item.value(), f)) return false;
  } else if (j.is_array()) {
    for (const auto& e : j)
      if (!all_strings(e, f)) return false;
  }
  return true;
}

void seeds(fuzz::SeedWriter& w);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(&seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const json body = json::parse(data, data + size, nullptr, false);
  if (body.is_discarded()) return 0;

  all_strings(body, [](const std::string& s) {
    const bool strict = nbi::is_rfc3339(s);
    const bool lenient = nbi::parse_rfc3339(s).has_value();
    FUZZ_CHECK(strict == lenient, "RFC 3339 parsers disagree on '" + s + "'");
    return true;
  });

  nbi::BodyError err;
  const auto spec = nbi::parse_task_body(body, kNow, &err);
  if (!spec) {
    FUZZ_CHECK(!err.error.empty() && !err.detail.empty(), "refused without saying why");
    return 0;
  }
  FUZZ_CHECK(!spec->name.empty(), "a task without a name");
  FUZZ_CHECK(spec->args.is_object(), "args not an object");
  if (spec->expires_ms) FUZZ_CHECK(*spec->expires_ms > kNow, "expires in the past");
  if (spec->policy) {
    const auto r = nbi::resolve_policy_task(*spec, {"adopt", "x"});
    if (r) FUZZ_CHECK(r->starts_with("tasks."), *r);
    return 0;
  }
  if (spec->name == "tag" || spec->name == "untag") return 0;

  std::string why;
  const auto rpc = session::task_rpc(spec->name, util::json_text(spec->args), &why);
  FUZZ_CHECK(rpc.has_value(), "an accepted task the engine cannot send: " + why);
  // GetRPCMethods is the one request of both directions.
  FUZZ_CHECK(soap::role_of(*rpc) == soap::Role::kAcsRequest ||
                 std::holds_alternative<soap::GetRPCMethods>(*rpc),
             "not an ACS request");

  soap::Envelope env;
  env.header.id = "luacs-1";
  env.body = *rpc;
  const std::string xml = soap::write(env);
  soap::Envelope back;
  FUZZ_CHECK(soap::parse(xml, back, &why), "the request does not read: " + why + "\n" + xml);
  FUZZ_CHECK(soap::method_name(back.body) == soap::method_name(env.body), xml);
  if (all_strings(spec->args, xml_clean)) FUZZ_CHECK(back == env, "read back differs:\n" + xml);
  return 0;
}

namespace {

void seeds(fuzz::SeedWriter& w) {
  for (
      const char* s : {
          R"({"name": "GetParameterValues", "args": {"names": ["Device.DeviceInfo."]}})",
          R"({"name": "SetParameterValues", "args": {"values": {"Device.X": "1"}, "parameter_key": "k"}, "expires": 3600})",
          R"({"name": "SetParameterValues", "args": {"values": [["Device.X", "true", "boolean"]]}, "unique_key": "u"})",
          R"({"name": "AddObject", "args": {"object": "Device.NAT.PortMapping."}, "expires": "2027-01-01T00:00:00Z"})",
          R"({"name": "DeleteObject", "args": {"object": "Device.NAT.PortMapping.3."}})",
          R"({"name": "Reboot", "args": {"command_key": "r"}})",
          R"({"name": "FactoryReset"})",
          R"({"name": "ScheduleInform", "args": {"delay": 30}})",
          R"({"name": "Download", "args": {"url": "http://fw.example.net/a.bin", "file_type": "1 Firmware Upgrade Image", "file_size": 10, "delay": 0, "username": "u", "password": "p", "target_file_name": "a.bin", "command_key": "c"}})",
          R"({"name": "Upload", "args": {"url": "http://u.example.net/", "file_type": "3 Vendor Log File"}})",
          R"({"name": "GetParameterNames", "args": {"path": "Device.", "next_level": true}})",
          R"({"name": "GetParameterAttributes", "args": {"names": ["Device."]}})",
          R"({"name": "SetParameterAttributes", "args": {"parameters": [{"name": "Device.X", "notification": 2, "access_list": ["Subscriber"]}]}})",
          R"({"name": "GetRPCMethods"})",
          R"({"name": "tag", "args": {"tag": "lab"}})",
          R"({"name": "tasks.adopt", "args": {"x": 1}})",
          R"({"name": "getParameterValues", "parameterNames": ["Device."], "expiry": 60, "uniqueKey": "g"})",
          R"({"name": "setParameterValues", "parameterValues": [["Device.X", 1, "xsd:int"]]})",
          R"({"name": "refreshObject", "objectName": "Device.WiFi"})",
          R"({"name": "addObject", "objectName": "Device.NAT.PortMapping", "parameterValues": [["Enable", true]]})",
          R"({"name": "download", "fileType": "1 Firmware Upgrade Image", "fileName": "fw.bin"})",
          R"({"name": "reboot", "expires": "2026-12-03T13:00:00.25+01:00"})",
      })
    w.add(s);
}

}  // namespace
