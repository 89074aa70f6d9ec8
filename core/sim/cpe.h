// The simulated CPE's side of a session, without any I/O: the Inform it
// sends and the answers it gives to ACS requests, from its data model.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/sim/datamodel.h"
#include "core/soap/message.h"

namespace luacs::sim {

// The serial number of simulated device `index` of a model: the first six
// characters of the model's own serial and the index in ten digits, so every
// device of a model has a distinct serial of the same length.
std::string serial_for(const DataModel& m, uint64_t index);
// The same into `out`, whose buffer is reused (the load generator's
// sessions: no allocation per session).
void assign_serial(std::string& out, const DataModel& m, uint64_t index);

// "2026-11-21T12:34:56Z" for a Unix time.
std::string format_time(int64_t unix_seconds);

// What one session changed on the device. SetParameterValues goes to a
// per-session overlay (the next session sees the CSV values again); Reboot and
// Download are reported by the device's next session.
struct CpeSession {
  std::vector<soap::ParameterValue> overlay;
  std::vector<std::pair<std::string, uint32_t>> next_instance;  // AddObject, per object
  bool reboot = false;
  std::string reboot_key;
  bool download = false;
  std::string download_key;

  void clear();
};

// Whether the ACS may send this body as a request: the kAcsRequest role, and
// GetRPCMethods (one element for both directions, filed as a CPE request).
bool is_acs_request(const soap::Body& body);

// The answer to one ACS request (is_acs_request(); anything else gets Fault
// 9000). `serial` is the device's serial, reported for
// DeviceInfo.SerialNumber.
soap::Body answer_acs_request(const DataModel& m, std::string_view serial, const soap::Body& req,
                              CpeSession& session);

// The complete Inform of a device (slow path: any events and command keys).
soap::Envelope make_inform(const DataModel& m, std::string_view serial,
                           std::vector<soap::EventStruct> events, std::string_view now);

// The Inform bytes of one model and one event set, written once with
// placeholders; render() splices in a device's serial and the current time.
// This keeps the generator's cost per session at a few memcpys.
class InformTemplate {
 public:
  InformTemplate(const DataModel& m, std::vector<soap::EventStruct> events);
  void render(std::string& out, std::string_view serial, std::string_view now) const;

 private:
  enum class Slot : uint8_t { kSerial, kTime };
  std::vector<std::string> literals_;  // literals_.size() == slots_.size() + 1
  std::vector<Slot> slots_;
};

}  // namespace luacs::sim
