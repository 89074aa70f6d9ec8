// The value types of a device and of what one session changes: what the
// session driver (core/session) and the policy engine (lua/) read and
// write, and what the store (core/store) translates to and from rows. No
// I/O and no threads here: plain values, copied or shared as immutable
// snapshots (shared_ptr<const Device>).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/soap/message.h"

namespace luacs::device {

using Time = std::chrono::system_clock::time_point;

struct StoredParameter {
  std::string value;
  std::string type;  // xsd local name: "string", "boolean", ...
  Time read_at{};
  bool operator==(const StoredParameter&) const = default;
};

// A task queued for a device (by the API, or in the tests by SQL): an ACS RPC
// ("GetParameterValues", "SetParameterValues", "AddObject", "DeleteObject",
// "Reboot", "FactoryReset", "Download", "Upload", "ScheduleInform",
// "GetParameterNames", "GetParameterAttributes", "SetParameterAttributes"),
// a tag change ("tag" / "untag" with args {"tag": "..."}), or a policy
// function ("tasks.<name>", its JSON args handed to it). args is JSON text.
struct Task {
  int64_t id = 0;
  std::string device_id;
  std::string name;
  std::string args = "{}";
  Time created{};
  std::optional<Time> expires;
  std::string unique_key;  // "" = none
  bool operator==(const Task&) const = default;
};

struct TaskResult {
  int64_t id = 0;
  bool ok = false;
  std::string result;  // JSON text: the response, or the fault {code, string, detail}
};

struct Fault {
  std::string device_id;
  std::string source;  // "cwmp.9005", "task", "session", "policy" ...
  int64_t code = 0;
  std::string message;
  std::string detail;  // JSON text
};

struct Transfer {
  std::string device_id;
  std::string command_key;
  bool is_download = true;
  std::string file_type;
  std::string url;
  // Filled by TransferComplete / AutonomousTransferComplete:
  uint32_t fault_code = 0;
  std::string fault_string;
  std::string start_time;  // as the CPE sent them
  std::string complete_time;
  bool autonomous = false;
};

// Secrets a SetParameterValues the CPE accepted set under ManagementServer.
// (either data model root); nullopt: not that one. A CPE reads them back
// empty, so luacs remembers what it wrote (core/connreq).
struct ConnectionRequestSecrets {
  std::optional<std::string> username;       // ConnectionRequestUsername
  std::optional<std::string> password;       // ConnectionRequestPassword
  std::optional<std::string> stun_username;  // STUNUsername
  std::optional<std::string> stun_password;  // STUNPassword
  bool any() const { return username || password || stun_username || stun_password; }
};

// A client certificate a CPE presented over TLS (issue 14): what the policy
// hook `authorize` sees and, once the device is admitted with it, what is
// stored with the device (the API shows it).
struct ClientCertificate {
  std::string subject, issuer;  // one-line RFC 2253 form
  std::string common_name;
  std::vector<std::string> sans;  // "DNS:...", "URI:...", ...
  std::string serial;             // hex
  std::string sha256;             // fingerprint, lower-case hex
  std::string not_after;          // "2027-03-01T12:00:00Z"
};

// What the store knows of a device, as loaded on the Inform path.
struct Device {
  std::string id;
  std::string oui, product_class, serial_number, manufacturer;
  std::string data_model_root;  // "InternetGatewayDevice" or "Device"
  Time first_seen{}, last_inform{};
  std::optional<Time> last_boot, last_bootstrap;
  std::string remote_address;
  std::vector<std::string> last_events;
  std::set<std::string> tags;
  std::map<std::string, StoredParameter> parameters;
  std::vector<Task> pending_tasks;  // due, not expired, oldest first
};

// Everything a finished session changed. Written behind; the parts that must
// never be lost (tags, faults, task results, transfers) make the write
// durable: `done` is then called after commit.
struct SessionResult {
  std::string device_id;
  soap::DeviceIdStruct identity;
  std::string data_model_root;
  std::string remote_address;
  Time inform_time{};
  std::vector<soap::EventStruct> events;
  // Inform parameters and values read in the session, with when they were read.
  std::vector<std::pair<soap::ParameterValue, Time>> parameters;
  std::vector<std::string> tags_added, tags_removed;
  std::vector<Fault> faults;
  std::vector<TaskResult> task_results;
  // The client certificate the session's TLS connection presented, when
  // [cwmp] tls_client_ca asks for one (kept with the device).
  std::optional<ClientCertificate> client_certificate;
  // The session log line's fields.
  std::string summary;  // JSON text: rpcs, result, duration, cpe requests
  // The summary was written as JSON by construction (the session driver):
  // the store does not parse it again to check.
  bool summary_is_json = false;
};

// The device after `r`: `base` (nullptr for a device never stored) with the
// session's identity, inform, events, parameters and tags applied and the
// tasks it finished removed from pending_tasks.
std::shared_ptr<const Device> apply_session(const Device* base, const SessionResult& r);
// The same, in place when nobody else holds `snapshot` (the caller makes
// sure nobody can take it meanwhile: the device cache calls it under its
// shard lock), else into a new snapshot.
void apply_session(std::shared_ptr<const Device>& snapshot, const SessionResult& r);
void apply_session(Device& d, const SessionResult& r);

}  // namespace luacs::device
