// Tasks queued through the store (and later the API) become ACS requests;
// their answers become JSON results. The JSON shapes are the API's.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/cwmp/session.h"
#include "core/soap/message.h"

namespace luacs::session {

// The ACS request a task asks for, from its name and JSON args, e.g.
//   GetParameterValues {"names": ["Device.DeviceInfo."]}
//   SetParameterValues {"values": {"Device.X": "1"} or [["Device.X", "1", "boolean"]],
//                       "parameter_key": "k"}
//   AddObject / DeleteObject {"object": "Device.NAT.PortMapping."}
//   Reboot {"command_key": "k"}, FactoryReset {}, ScheduleInform {"delay": 30}
//   Download {"url": ..., "file_type": "1 Firmware Upgrade Image", "command_key": ...,
//             "username", "password", "file_size", "target_file_name", "delay"}
//   Upload {"url", "file_type", "command_key", "username", "password", "delay"}
//   GetParameterNames {"path": "Device.", "next_level": true}
//   GetParameterAttributes {"names": [...]}
//   SetParameterAttributes {"parameters": [{"name", "notification", "access_list"}]}
//   GetRPCMethods {}
// nullopt with *error set when the name is unknown or the args do not fit.
std::optional<soap::Body> task_rpc(std::string_view name, std::string_view args_json,
                                   std::string* error);

// The JSON result of an RPC: the response's values ({"Device.X": ["1",
// "boolean"]} for GetParameterValues, {"instance": 3, "status": 0} for
// AddObject, ...), or {"fault": {"code", "string", "parameters": [...]}}, or
// {"error": "..."}.
std::string outcome_json(const cwmp::RpcOutcome& outcome);

}  // namespace luacs::session
