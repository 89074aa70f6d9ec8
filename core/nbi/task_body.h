// The body of POST /devices/{id}/tasks, in luacs's shape or GenieACS's,
// turned into the task row the session engine runs (core/session/task_rpc.h).
//
// luacs's shape: {"name": "SetParameterValues", "args": {"values": {...}},
// "expires": ..., "unique_key": ...}, where name is an ACS RPC, tag/untag, or
// a policy task ("tasks.<fn>", or the bare "<fn>"). GenieACS's shape:
// {"name": "setParameterValues", "parameterValues": [[name, value, type]]}
// and the other task bodies of GenieACS's NBI, mapped to the luacs RPC task
// that does the same (docs/nbi.md has the table). A GenieACS name wins
// over a policy task of the same bare name; "tasks.<fn>" always names the
// policy's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace luacs::nbi {

struct TaskSpec {
  std::string name;  // as stored: "SetParameterValues", "tag", "tasks.adopt"
  nlohmann::json args = nlohmann::json::object();
  std::optional<int64_t> expires_ms;  // epoch milliseconds
  std::optional<std::string> unique_key;
  bool genieacs = false;  // a GenieACS body: its answer carries "_id" too
  // Neither an RPC nor tag/untag: a policy task to be looked up in the
  // running policy's list (resolve_policy_task).
  bool policy = false;
};

struct BodyError {
  std::string error, detail;  // answered with 400
};

// The task a body asks for; nullopt with *err set when it is not one.
// `now_ms` is what "expires" in seconds counts from.
std::optional<TaskSpec> parse_task_body(const nlohmann::json& body, int64_t now_ms, BodyError* err);

// For a spec with `policy` set: the stored name "tasks.<fn>" when <fn> is
// one of `policy_tasks` (the running policy's), else nullopt.
std::optional<std::string> resolve_policy_task(const TaskSpec& spec,
                                               const std::vector<std::string>& policy_tasks);

// Every name POST /devices/{id}/tasks takes, for the 400 of an unknown one.
std::string known_task_names(const std::vector<std::string>& policy_tasks);

// "expires": an RFC 3339 time, or a number of seconds from now_ms; epoch
// milliseconds, or nullopt with *detail set (bad shape, in the past, more
// than ten years ahead).
std::optional<int64_t> parse_expires(const nlohmann::json& v, int64_t now_ms, std::string* detail);

// "2026-12-03T12:00:00Z", "2026-12-03T13:00:00.25+01:00" (a 't' or ' ' for
// the 'T', 'z' for the 'Z'): epoch milliseconds, or nullopt for anything
// else, a date that does not exist included.
std::optional<int64_t> parse_rfc3339(std::string_view s);

}  // namespace luacs::nbi
