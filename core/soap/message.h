// CWMP messages as plain values.
//
// One struct per SOAP body element of CWMP 1.0-1.4, in both directions, so the
// same types serve the server (reads CPE messages, writes ACS messages), the
// tests (round trips) and the load generator (plays the CPE). Strings are kept
// as the CPE sent them (names trimmed, values untouched); numbers that a CPE
// gets wrong (zero-padded, garbage) are parsed leniently by the reader and the
// raw dateTime strings are kept, never rejected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace luacs::soap {

// A name/value pair with its xsd type's local name ("string", "boolean",
// "unsignedInt", "dateTime", ...). The reader defaults a missing xsi:type to
// "string"; the writer emits "xsd:<type>".
struct ParameterValue {
  std::string name;
  std::string value;
  std::string type = "string";
  bool operator==(const ParameterValue&) const = default;
};

struct ParameterInfo {
  std::string name;
  bool writable = false;
  bool operator==(const ParameterInfo&) const = default;
};

struct ParameterAttribute {
  std::string name;
  int notification = 0;
  std::vector<std::string> access_list;
  bool operator==(const ParameterAttribute&) const = default;
};

struct SetParameterAttributesStruct {
  std::string name;
  bool notification_change = false;
  int notification = 0;
  bool access_list_change = false;
  std::vector<std::string> access_list;
  bool operator==(const SetParameterAttributesStruct&) const = default;
};

struct DeviceIdStruct {
  std::string manufacturer;
  std::string oui;
  std::string product_class;
  std::string serial_number;
  bool operator==(const DeviceIdStruct&) const = default;
};

struct EventStruct {
  std::string code;
  std::string command_key;
  bool operator==(const EventStruct&) const = default;
};

struct FaultStruct {
  uint32_t code = 0;
  std::string string;
  bool operator==(const FaultStruct&) const = default;
};

// ---- CPE -> ACS requests -------------------------------------------------

struct Inform {
  DeviceIdStruct device_id;
  std::vector<EventStruct> events;
  uint32_t max_envelopes = 1;
  std::string current_time;
  uint32_t retry_count = 0;
  std::vector<ParameterValue> parameters;
  bool operator==(const Inform&) const = default;
};

struct TransferComplete {
  std::string command_key;
  FaultStruct fault;
  std::string start_time;
  std::string complete_time;
  bool operator==(const TransferComplete&) const = default;
};

struct AutonomousTransferComplete {
  std::string announce_url;
  std::string transfer_url;
  bool is_download = false;
  std::string file_type;
  uint32_t file_size = 0;
  std::string target_file_name;
  FaultStruct fault;
  std::string start_time;
  std::string complete_time;
  bool operator==(const AutonomousTransferComplete&) const = default;
};

// GetRPCMethods is the same empty element in both directions.
struct GetRPCMethods {
  bool operator==(const GetRPCMethods&) const = default;
};

struct RequestDownload {
  std::string file_type;
  std::vector<std::pair<std::string, std::string>> file_type_args;
  bool operator==(const RequestDownload&) const = default;
};

struct Kicked {
  std::string command;
  std::string referer;
  std::string arg;
  std::string next;
  bool operator==(const Kicked&) const = default;
};

struct OpResult {
  std::string uuid;
  std::string deployment_unit_ref;
  std::string version;
  std::string current_state;
  bool resolved = false;
  std::string execution_unit_ref_list;
  std::string start_time;
  std::string complete_time;
  FaultStruct fault;
  std::string operation_performed;  // autonomous variant only
  bool operator==(const OpResult&) const = default;
};

struct DUStateChangeComplete {
  std::vector<OpResult> results;
  std::string command_key;
  bool operator==(const DUStateChangeComplete&) const = default;
};

struct AutonomousDUStateChangeComplete {
  std::vector<OpResult> results;
  bool operator==(const AutonomousDUStateChangeComplete&) const = default;
};

// ---- ACS -> CPE responses to CPE requests --------------------------------

struct InformResponse {
  uint32_t max_envelopes = 1;
  bool operator==(const InformResponse&) const = default;
};
struct TransferCompleteResponse {
  bool operator==(const TransferCompleteResponse&) const = default;
};
struct AutonomousTransferCompleteResponse {
  bool operator==(const AutonomousTransferCompleteResponse&) const = default;
};
// Also the CPE's answer to an ACS GetRPCMethods.
struct GetRPCMethodsResponse {
  std::vector<std::string> methods;
  bool operator==(const GetRPCMethodsResponse&) const = default;
};
struct RequestDownloadResponse {
  bool operator==(const RequestDownloadResponse&) const = default;
};
struct KickedResponse {
  std::string next_url;
  bool operator==(const KickedResponse&) const = default;
};
struct DUStateChangeCompleteResponse {
  bool operator==(const DUStateChangeCompleteResponse&) const = default;
};
struct AutonomousDUStateChangeCompleteResponse {
  bool operator==(const AutonomousDUStateChangeCompleteResponse&) const = default;
};

// ---- ACS -> CPE requests -------------------------------------------------

struct GetParameterNames {
  std::string path;
  bool next_level = false;
  bool operator==(const GetParameterNames&) const = default;
};
struct GetParameterValues {
  std::vector<std::string> names;
  bool operator==(const GetParameterValues&) const = default;
};
struct SetParameterValues {
  std::vector<ParameterValue> parameters;
  std::string parameter_key;
  bool operator==(const SetParameterValues&) const = default;
};
struct GetParameterAttributes {
  std::vector<std::string> names;
  bool operator==(const GetParameterAttributes&) const = default;
};
struct SetParameterAttributes {
  std::vector<SetParameterAttributesStruct> parameters;
  bool operator==(const SetParameterAttributes&) const = default;
};
struct AddObject {
  std::string object_name;
  std::string parameter_key;
  bool operator==(const AddObject&) const = default;
};
struct DeleteObject {
  std::string object_name;
  std::string parameter_key;
  bool operator==(const DeleteObject&) const = default;
};
struct Reboot {
  std::string command_key;
  bool operator==(const Reboot&) const = default;
};
struct FactoryReset {
  bool operator==(const FactoryReset&) const = default;
};
struct Download {
  std::string command_key;
  std::string file_type;
  std::string url;
  std::string username;
  std::string password;
  uint32_t file_size = 0;
  std::string target_file_name;
  uint32_t delay_seconds = 0;
  std::string success_url;
  std::string failure_url;
  bool operator==(const Download&) const = default;
};
struct Upload {
  std::string command_key;
  std::string file_type;
  std::string url;
  std::string username;
  std::string password;
  uint32_t delay_seconds = 0;
  bool operator==(const Upload&) const = default;
};
struct ScheduleInform {
  uint32_t delay_seconds = 0;
  std::string command_key;
  bool operator==(const ScheduleInform&) const = default;
};

// ---- CPE -> ACS responses to ACS requests --------------------------------

struct GetParameterNamesResponse {
  std::vector<ParameterInfo> parameters;
  bool operator==(const GetParameterNamesResponse&) const = default;
};
struct GetParameterValuesResponse {
  std::vector<ParameterValue> parameters;
  bool operator==(const GetParameterValuesResponse&) const = default;
};
struct SetParameterValuesResponse {
  int status = 0;
  bool operator==(const SetParameterValuesResponse&) const = default;
};
struct GetParameterAttributesResponse {
  std::vector<ParameterAttribute> parameters;
  bool operator==(const GetParameterAttributesResponse&) const = default;
};
struct SetParameterAttributesResponse {
  bool operator==(const SetParameterAttributesResponse&) const = default;
};
struct AddObjectResponse {
  uint32_t instance_number = 0;
  int status = 0;
  bool operator==(const AddObjectResponse&) const = default;
};
struct DeleteObjectResponse {
  int status = 0;
  bool operator==(const DeleteObjectResponse&) const = default;
};
struct RebootResponse {
  bool operator==(const RebootResponse&) const = default;
};
struct FactoryResetResponse {
  bool operator==(const FactoryResetResponse&) const = default;
};
struct DownloadResponse {
  int status = 0;
  std::string start_time;
  std::string complete_time;
  bool operator==(const DownloadResponse&) const = default;
};
struct UploadResponse {
  int status = 0;
  std::string start_time;
  std::string complete_time;
  bool operator==(const UploadResponse&) const = default;
};
struct ScheduleInformResponse {
  bool operator==(const ScheduleInformResponse&) const = default;
};

// ---- Faults, either direction ---------------------------------------------

struct SetParameterValuesFault {
  std::string name;
  uint32_t code = 0;
  std::string string;
  bool operator==(const SetParameterValuesFault&) const = default;
};

struct Fault {
  std::string faultcode = "Client";  // SOAP faultcode, prefix stripped: Client | Server
  std::string faultstring = "CWMP fault";
  uint32_t code = 0;   // detail/Fault/FaultCode
  std::string string;  // detail/Fault/FaultString
  std::vector<SetParameterValuesFault> set_parameter_values_faults;
  bool operator==(const Fault&) const = default;
};

// The empty POST (or empty HTTP response): no envelope at all.
struct Empty {
  bool operator==(const Empty&) const = default;
};

// A body element we do not know. The session engine answers 8000.
struct Unknown {
  std::string name;
  bool operator==(const Unknown&) const = default;
};

using Body =
    std::variant<Empty, Unknown, Fault,
                 // CPE requests
                 Inform, TransferComplete, AutonomousTransferComplete, GetRPCMethods,
                 RequestDownload, Kicked, DUStateChangeComplete, AutonomousDUStateChangeComplete,
                 // ACS responses to them
                 InformResponse, TransferCompleteResponse, AutonomousTransferCompleteResponse,
                 GetRPCMethodsResponse, RequestDownloadResponse, KickedResponse,
                 DUStateChangeCompleteResponse, AutonomousDUStateChangeCompleteResponse,
                 // ACS requests
                 GetParameterNames, GetParameterValues, SetParameterValues, GetParameterAttributes,
                 SetParameterAttributes, AddObject, DeleteObject, Reboot, FactoryReset, Download,
                 Upload, ScheduleInform,
                 // CPE responses to them
                 GetParameterNamesResponse, GetParameterValuesResponse, SetParameterValuesResponse,
                 GetParameterAttributesResponse, SetParameterAttributesResponse, AddObjectResponse,
                 DeleteObjectResponse, RebootResponse, FactoryResetResponse, DownloadResponse,
                 UploadResponse, ScheduleInformResponse>;

struct Header {
  std::optional<std::string> id;  // cwmp:ID; absent on MikroTik/Motorola Informs
  std::optional<bool> hold_requests;
  bool no_more_requests = false;  // deprecated; read and ignored
  std::optional<uint32_t> session_timeout;
  std::string supported_cwmp_versions;  // "1.0,1.1,..." (CWMP 1.4, CPE -> ACS)
  std::string use_cwmp_version;         // (CWMP 1.4, ACS -> CPE)
  bool operator==(const Header&) const = default;
};

inline constexpr std::string_view kCwmpNs10 = "urn:dslforum-org:cwmp-1-0";
inline constexpr std::string_view kCwmpNs12 = "urn:dslforum-org:cwmp-1-2";

struct Envelope {
  std::string cwmp_ns = std::string(kCwmpNs10);  // the namespace the CPE used
  Header header;
  Body body;
  bool operator==(const Envelope&) const = default;
};

// The SOAP element name of a body ("Inform", "GetParameterValuesResponse",
// "Fault", "" for Empty, the element's own name for Unknown).
std::string_view method_name(const Body& body);

// Which way a body travels and what it is.
enum class Role {
  kEmpty,
  kUnknown,
  kFault,
  kCpeRequest,
  kAcsResponse,
  kAcsRequest,
  kCpeResponse,
};
Role role_of(const Body& body);

// For an ACS request, the name its response must carry ("GetParameterValues"
// -> "GetParameterValuesResponse").
std::string response_name(std::string_view request_name);

}  // namespace luacs::soap
