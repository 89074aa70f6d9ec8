#include "bench/loadgen/cr_inform.h"

#include <array>

#include "core/sim/cpe.h"
#include "core/soap/writer.h"

namespace luacs::loadgen {
namespace {

// Placeholders no data model holds; the serial's and the time's are
// replaced before the others can be mistaken for them.
constexpr std::array<std::string_view, 5> kMarks = {"LGCRSERIALLG", "LGCRTIMELG", "LGCRURLLG",
                                                    "LGCRUDPLG", "LGCRUSERLG"};

void put(std::vector<soap::ParameterValue>& params, std::string name, std::string_view value,
         const char* type) {
  for (auto& p : params) {
    if (p.name == name) {
      p.value = value;
      p.type = type;
      return;
    }
  }
  params.push_back({std::move(name), std::string(value), type});
}

}  // namespace

void add_cr_parameters(soap::Inform& inform, const sim::DataModel& m, const CrOptions& cr,
                       const CrValues& v) {
  const std::string ms = m.root() + ".ManagementServer.";
  auto& params = inform.parameters;
  if (cr.http()) put(params, ms + "ConnectionRequestURL", v.url, "string");
  put(params, ms + "ConnectionRequestUsername", v.username, "string");
  if (cr.udp()) {
    put(params, ms + "NATDetected", "1", "boolean");
    put(params, ms + "UDPConnectionRequestAddress", v.udp_address, "string");
  }
  if (!cr.stun.empty()) {
    put(params, ms + "STUNEnable", "1", "boolean");
    put(params, ms + "STUNUsername", v.username, "string");
  }
}

CrInformTemplate::CrInformTemplate(const sim::DataModel& m, std::vector<soap::EventStruct> events,
                                   const CrOptions& cr) {
  CrValues marks{kMarks[0], kMarks[1], kMarks[2], kMarks[3], kMarks[4]};
  soap::Envelope env = sim::make_inform(m, marks.serial, std::move(events), marks.now);
  add_cr_parameters(std::get<soap::Inform>(env.body), m, cr, marks);
  std::string text = soap::write(env);
  size_t pos = 0;
  for (;;) {
    size_t at = std::string::npos;
    size_t which = 0;
    for (size_t k = 0; k < kMarks.size(); ++k) {
      size_t f = text.find(kMarks[k], pos);
      if (f < at) {
        at = f;
        which = k;
      }
    }
    literals_.push_back(text.substr(pos, at == std::string::npos ? std::string::npos : at - pos));
    if (at == std::string::npos) break;
    slots_.push_back(static_cast<Slot>(which));
    pos = at + kMarks[which].size();
  }
}

void CrInformTemplate::render(std::string& out, const CrValues& v) const {
  out += literals_[0];
  for (size_t i = 0; i < slots_.size(); ++i) {
    switch (slots_[i]) {
      case Slot::kSerial:
        out += v.serial;
        break;
      case Slot::kTime:
        out += v.now;
        break;
      case Slot::kUrl:
        out += v.url;
        break;
      case Slot::kUdpAddress:
        out += v.udp_address;
        break;
      case Slot::kUsername:
        out += v.username;
        break;
    }
    out += literals_[i + 1];
  }
}

}  // namespace luacs::loadgen
