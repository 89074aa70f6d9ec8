#include "core/session/task_rpc.h"

#include "core/util/json.h"

#include <nlohmann/json.hpp>

namespace luacs::session {
namespace {

using nlohmann::json;

std::string str(const json& j, const char* key, std::string fallback = {}) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

uint32_t num(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return 0;
  return it->get<uint32_t>();
}

std::vector<std::string> names(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end()) return out;
  if (it->is_string()) return {it->get<std::string>()};
  for (const auto& n : *it) out.push_back(n.get<std::string>());
  return out;
}

// The xsd type a JSON value travels as when none is given.
std::string type_of(const json& v) {
  if (v.is_boolean()) return "boolean";
  if (v.is_number_unsigned()) return "unsignedInt";
  if (v.is_number_integer()) return "int";
  return "string";
}

// A type goes out as xsi:type="xsd:<type>": it must be an XML name
// (letters, digits, '_', '-', '.'; not starting with a digit, '-' or '.'),
// or the CPE gets an attribute that names no type ("xsd:a}b" reads as "b").
bool is_type_name(std::string_view t) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (t.empty() || !letter(t.front())) return false;
  for (char c : t)
    if (!letter(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.') return false;
  return true;
}

std::string text_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

soap::Body build(std::string_view name, const json& a) {
  if (name == "GetParameterValues") return soap::GetParameterValues{names(a, "names")};
  if (name == "GetParameterNames")
    return soap::GetParameterNames{str(a, "path"), a.value("next_level", false)};
  if (name == "GetParameterAttributes") return soap::GetParameterAttributes{names(a, "names")};
  if (name == "SetParameterValues") {
    soap::SetParameterValues spv;
    spv.parameter_key = str(a, "parameter_key");
    const json& v = a.at("values");
    if (v.is_object()) {
      for (const auto& [k, val] : v.items())
        spv.parameters.push_back({k, text_of(val), type_of(val)});
    } else {
      for (const auto& e : v) {
        std::string type = e.size() > 2 ? e.at(2).get<std::string>() : type_of(e.at(1));
        if (auto colon = type.find(':'); colon != std::string::npos) type.erase(0, colon + 1);
        if (!is_type_name(type)) throw std::invalid_argument("bad xsd type '" + type + "'");
        spv.parameters.push_back({e.at(0).get<std::string>(), text_of(e.at(1)), type});
      }
    }
    if (spv.parameters.empty()) throw std::invalid_argument("no values to set");
    return spv;
  }
  if (name == "SetParameterAttributes") {
    soap::SetParameterAttributes spa;
    for (const auto& p : a.at("parameters")) {
      soap::SetParameterAttributesStruct s;
      s.name = p.at("name").get<std::string>();
      if (p.contains("notification")) {
        s.notification_change = true;
        s.notification = p.at("notification").get<int>();
      }
      if (p.contains("access_list")) {
        s.access_list_change = true;
        s.access_list = p.at("access_list").get<std::vector<std::string>>();
      }
      spa.parameters.push_back(std::move(s));
    }
    return spa;
  }
  if (name == "AddObject")
    return soap::AddObject{a.at("object").get<std::string>(), str(a, "parameter_key")};
  if (name == "DeleteObject")
    return soap::DeleteObject{a.at("object").get<std::string>(), str(a, "parameter_key")};
  if (name == "Reboot") return soap::Reboot{str(a, "command_key")};
  if (name == "FactoryReset") return soap::FactoryReset{};
  if (name == "GetRPCMethods") return soap::GetRPCMethods{};
  if (name == "ScheduleInform") {
    uint32_t delay = num(a, "delay");
    if (delay == 0) throw std::invalid_argument("ScheduleInform needs a delay > 0");
    return soap::ScheduleInform{delay, str(a, "command_key")};
  }
  if (name == "Download") {
    soap::Download d;
    d.url = a.at("url").get<std::string>();
    d.file_type = str(a, "file_type", "1 Firmware Upgrade Image");
    d.command_key = str(a, "command_key");
    d.username = str(a, "username");
    d.password = str(a, "password");
    d.file_size = num(a, "file_size");
    d.target_file_name = str(a, "target_file_name");
    d.delay_seconds = num(a, "delay");
    return d;
  }
  if (name == "Upload") {
    soap::Upload u;
    u.url = a.at("url").get<std::string>();
    u.file_type = str(a, "file_type", "1 Vendor Configuration File");
    u.command_key = str(a, "command_key");
    u.username = str(a, "username");
    u.password = str(a, "password");
    u.delay_seconds = num(a, "delay");
    return u;
  }
  throw std::invalid_argument("unknown task '" + std::string(name) + "'");
}

}  // namespace

std::optional<soap::Body> task_rpc(std::string_view name, std::string_view args_json,
                                   std::string* error) {
  try {
    json a = args_json.empty() ? json::object() : json::parse(args_json);
    if (!a.is_object()) throw std::invalid_argument("args must be a JSON object");
    return build(name, a);
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return std::nullopt;
  }
}

std::string outcome_json(const cwmp::RpcOutcome& o) {
  json j = json::object();
  switch (o.kind) {
    case cwmp::RpcOutcome::Kind::kError:
      j["error"] = o.error();
      break;
    case cwmp::RpcOutcome::Kind::kCpeFault: {
      json f = {{"code", o.fault.code}, {"string", o.fault.string}};
      if (!o.fault.set_parameter_values_faults.empty()) {
        json ps = json::array();
        for (const auto& p : o.fault.set_parameter_values_faults)
          ps.push_back({{"name", p.name}, {"code", p.code}, {"string", p.string}});
        f["parameters"] = ps;
      }
      j["fault"] = f;
      break;
    }
    case cwmp::RpcOutcome::Kind::kResponse:
      std::visit(
          [&j](const auto& r) {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<T, soap::GetParameterValuesResponse>) {
              for (const auto& p : r.parameters) j[p.name] = {p.value, p.type};
            } else if constexpr (std::is_same_v<T, soap::GetParameterNamesResponse>) {
              for (const auto& p : r.parameters) j[p.name] = p.writable;
            } else if constexpr (std::is_same_v<T, soap::GetParameterAttributesResponse>) {
              for (const auto& p : r.parameters)
                j[p.name] = {{"notification", p.notification}, {"access_list", p.access_list}};
            } else if constexpr (std::is_same_v<T, soap::AddObjectResponse>) {
              j["instance"] = r.instance_number;
              j["status"] = r.status;
            } else if constexpr (std::is_same_v<T, soap::SetParameterValuesResponse> ||
                                 std::is_same_v<T, soap::DeleteObjectResponse>) {
              j["status"] = r.status;
            } else if constexpr (std::is_same_v<T, soap::DownloadResponse> ||
                                 std::is_same_v<T, soap::UploadResponse>) {
              j["status"] = r.status;
              j["start_time"] = r.start_time;
              j["complete_time"] = r.complete_time;
            } else if constexpr (std::is_same_v<T, soap::GetRPCMethodsResponse>) {
              j["methods"] = r.methods;
            }
          },
          o.response);
      break;
  }
  return util::json_text(j);
}

}  // namespace luacs::session
