#include "core/sim/cpe.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <variant>

#include "core/soap/writer.h"
#include "core/util/time.h"

namespace luacs::sim {
namespace {

constexpr std::string_view kSerialMark = "LGSERIALMARKLG";
constexpr std::string_view kTimeMark = "LGTIMEMARKLG";
constexpr std::string_view kUnknownTime = "0001-01-01T00:00:00Z";

soap::Fault cpe_fault(uint32_t code, std::string text, std::string faultcode = "Client") {
  soap::Fault f;
  f.faultcode = std::move(faultcode);
  f.faultstring = "CWMP fault";
  f.code = code;
  f.string = std::move(text);
  return f;
}

// A partial path's object must exist: "X.Y." needs an object row "X.Y" (the
// root included) or at least one row below it.
bool path_exists(const DataModel& m, std::string_view path) {
  if (path.empty()) return true;
  const Parameter* p = m.find(path);
  if (p) return p->object;
  return !m.under(path).empty();
}

class Answerer {
 public:
  Answerer(const DataModel& m, std::string_view serial, CpeSession& s)
      : m_(m), serial_(serial), s_(s), serial_name_(m.root() + ".DeviceInfo.SerialNumber") {}

  soap::Body operator()(const soap::GetParameterValues& req) {
    soap::GetParameterValuesResponse resp;
    for (const auto& name : req.names) {
      std::string_view n = name;
      const Parameter* exact = (n.empty() || n.back() == '.') ? nullptr : m_.find(n);
      if (exact && !exact->object) {
        resp.parameters.push_back(value_of(*exact));
        continue;
      }
      std::string prefix(n);
      if (exact) prefix += '.';  // an object named without its dot
      if (!path_exists(m_, prefix)) return cpe_fault(9005, "Invalid parameter name");
      for (const auto& p : m_.under(prefix))
        if (!p.object) resp.parameters.push_back(value_of(p));
    }
    return resp;
  }

  soap::Body operator()(const soap::GetParameterNames& req) {
    soap::GetParameterNamesResponse resp;
    std::string_view path = req.path;
    if (!path.empty() && path.back() != '.') {
      const Parameter* p = m_.find(path);
      if (!p) return cpe_fault(9005, "Invalid parameter name");
      if (!p->object) {
        if (req.next_level) return cpe_fault(9003, "Invalid arguments");
        resp.parameters.push_back({p->name, p->writable});
        return resp;
      }
    }
    std::string prefix(path);
    if (!prefix.empty() && prefix.back() != '.') prefix += '.';
    if (!path_exists(m_, prefix)) return cpe_fault(9005, "Invalid parameter name");
    if (prefix.empty() && req.next_level) {
      resp.parameters.push_back({m_.root() + ".", false});
      return resp;
    }
    for (const auto& p : m_.under(prefix)) {
      std::string_view rest = std::string_view(p.name).substr(prefix.size());
      if (rest.empty()) continue;
      if (req.next_level && rest.find('.') != std::string_view::npos) continue;
      resp.parameters.push_back({p.object ? p.name + "." : p.name, p.writable});
    }
    return resp;
  }

  soap::Body operator()(const soap::SetParameterValues& req) {
    soap::Fault fault = cpe_fault(9003, "Invalid arguments");
    for (const auto& pv : req.parameters) {
      const Parameter* p = m_.find(pv.name);
      if (!p || p->object || pv.name.empty() || pv.name.back() == '.')
        fault.set_parameter_values_faults.push_back({pv.name, 9005, "Invalid parameter name"});
      else if (!p->writable)
        fault.set_parameter_values_faults.push_back(
            {pv.name, 9008, "Attempt to set a non-writable parameter"});
    }
    if (!fault.set_parameter_values_faults.empty()) return fault;
    for (const auto& pv : req.parameters) set(pv);
    set({m_.root() + ".ManagementServer.ParameterKey", req.parameter_key, "string"});
    return soap::SetParameterValuesResponse{0};
  }

  soap::Body operator()(const soap::AddObject& req) {
    std::string_view name = req.object_name;
    if (name.empty() || name.back() != '.') return cpe_fault(9005, "Invalid parameter name");
    const Parameter* obj = m_.find(name);
    if (!obj || !obj->object) return cpe_fault(9005, "Invalid parameter name");
    for (auto& [object, next] : s_.next_instance)
      if (object == name) return soap::AddObjectResponse{next++, 0};
    uint32_t max = 0;
    for (const auto& p : m_.under(name)) {
      std::string_view rest = std::string_view(p.name).substr(name.size());
      uint32_t n = 0;
      auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
      if (ec == std::errc() && (end == rest.data() + rest.size() || *end == '.') && n > max)
        max = n;
    }
    s_.next_instance.emplace_back(std::string(name), max + 2);
    return soap::AddObjectResponse{max + 1, 0};
  }

  soap::Body operator()(const soap::DeleteObject&) { return soap::DeleteObjectResponse{0}; }

  soap::Body operator()(const soap::Download& req) {
    s_.download = true;
    s_.download_key = req.command_key;
    // Status 1: the transfer happens after the session; TransferComplete follows.
    return soap::DownloadResponse{1, std::string(kUnknownTime), std::string(kUnknownTime)};
  }

  soap::Body operator()(const soap::Reboot& req) {
    s_.reboot = true;
    s_.reboot_key = req.command_key;
    return soap::RebootResponse{};
  }

  soap::Body operator()(const soap::GetRPCMethods&) {
    return soap::GetRPCMethodsResponse{{"GetRPCMethods", "GetParameterNames", "GetParameterValues",
                                        "SetParameterValues", "AddObject", "DeleteObject",
                                        "Download", "Reboot"}};
  }

  template <class T>
  soap::Body operator()(const T&) {
    return cpe_fault(9000, "Method not supported", "Server");
  }

 private:
  soap::ParameterValue value_of(const Parameter& p) const {
    for (const auto& o : s_.overlay)
      if (o.name == p.name) return o;
    if (p.name == serial_name_) return {p.name, std::string(serial_), p.type};
    return {p.name, p.value, p.type};
  }

  void set(soap::ParameterValue pv) {
    if (const Parameter* p = m_.find(pv.name)) pv.type = p->type;
    for (auto& o : s_.overlay)
      if (o.name == pv.name) {
        o = std::move(pv);
        return;
      }
    s_.overlay.push_back(std::move(pv));
  }

  const DataModel& m_;
  std::string_view serial_;
  CpeSession& s_;
  std::string serial_name_;
};

}  // namespace

void assign_serial(std::string& out, const DataModel& m, uint64_t index) {
  out.assign(std::string_view(m.device_id().serial_number).substr(0, 6));
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, index);
  size_t n = static_cast<size_t>(end - digits);
  if (n < 10) out.append(10 - n, '0');
  out.append(digits, n);
}

std::string serial_for(const DataModel& m, uint64_t index) {
  std::string s;
  assign_serial(s, m, index);
  return s;
}

std::string format_time(int64_t unix_seconds) {
  return util::utc_rfc3339(unix_seconds);
}

void CpeSession::clear() {
  overlay.clear();
  next_instance.clear();
  reboot = false;
  reboot_key.clear();
  download = false;
  download_key.clear();
}

bool is_acs_request(const soap::Body& body) {
  return soap::role_of(body) == soap::Role::kAcsRequest ||
         std::holds_alternative<soap::GetRPCMethods>(body);
}

soap::Body answer_acs_request(const DataModel& m, std::string_view serial, const soap::Body& req,
                              CpeSession& session) {
  if (!is_acs_request(req)) return cpe_fault(9000, "Method not supported", "Server");
  return std::visit(Answerer(m, serial, session), req);
}

soap::Envelope make_inform(const DataModel& m, std::string_view serial,
                           std::vector<soap::EventStruct> events, std::string_view now) {
  soap::Envelope env;
  env.header.id = "1";
  soap::Inform in;
  in.device_id = m.device_id();
  in.device_id.serial_number = std::string(serial);
  in.events = std::move(events);
  in.max_envelopes = 1;
  in.current_time = std::string(now);
  in.retry_count = 0;
  in.parameters = m.inform_parameters();
  env.body = std::move(in);
  return env;
}

InformTemplate::InformTemplate(const DataModel& m, std::vector<soap::EventStruct> events) {
  std::string text = soap::write(make_inform(m, kSerialMark, std::move(events), kTimeMark));
  size_t pos = 0;
  for (;;) {
    size_t s = text.find(kSerialMark, pos), t = text.find(kTimeMark, pos);
    size_t at = std::min(s, t);
    literals_.push_back(text.substr(pos, at == std::string::npos ? std::string::npos : at - pos));
    if (at == std::string::npos) break;
    slots_.push_back(at == s ? Slot::kSerial : Slot::kTime);
    pos = at + (at == s ? kSerialMark.size() : kTimeMark.size());
  }
}

void InformTemplate::render(std::string& out, std::string_view serial, std::string_view now) const {
  out += literals_[0];
  for (size_t i = 0; i < slots_.size(); ++i) {
    out += slots_[i] == Slot::kSerial ? serial : now;
    out += literals_[i + 1];
  }
}

}  // namespace luacs::sim
