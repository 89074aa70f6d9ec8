// The Informs of devices that take connection requests (--cr-listen): the
// usual forced parameters plus what tells the ACS how to reach the device
// (ManagementServer.ConnectionRequestURL, ConnectionRequestUsername and, for
// UDP, NATDetected, UDPConnectionRequestAddress, STUNEnable, STUNUsername).
// Written once per model and event set with placeholders, as
// sim::InformTemplate does for the plain Informs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bench/loadgen/options.h"
#include "core/sim/datamodel.h"
#include "core/soap/message.h"

namespace luacs::loadgen {

// What differs from one device to the next.
struct CrValues {
  std::string_view serial, now;
  std::string_view url;          // http://127.0.0.1:PORT/<index>
  std::string_view udp_address;  // 127.0.0.1:PORT
  std::string_view username;     // the device's ConnectionRequestUsername
};

// Sets the connection-request parameters of `cr` in an Inform of a device
// of model `m` (replacing those the data model already reports).
void add_cr_parameters(soap::Inform& inform, const sim::DataModel& m, const CrOptions& cr,
                       const CrValues& v);

class CrInformTemplate {
 public:
  CrInformTemplate(const sim::DataModel& m, std::vector<soap::EventStruct> events,
                   const CrOptions& cr);
  void render(std::string& out, const CrValues& v) const;

 private:
  enum class Slot : uint8_t { kSerial, kTime, kUrl, kUdpAddress, kUsername };
  std::vector<std::string> literals_;  // literals_.size() == slots_.size() + 1
  std::vector<Slot> slots_;
};

}  // namespace luacs::loadgen
