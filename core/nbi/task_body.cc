#include "core/nbi/task_body.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>

#include "core/session/task_rpc.h"
#include "core/util/json.h"

namespace luacs::nbi {

namespace {

using nlohmann::json;
using Names = std::vector<std::string_view>;

// The RPC tasks the session engine sends (core/session/task_rpc.h), with
// the args each takes; an arg not listed is refused rather than ignored, so
// a typo ("name" for "names") is a 400 instead of a task that does nothing.
struct RpcArgs {
  std::string_view name;
  Names known, required;
};
const RpcArgs kRpcs[] = {
    {"GetParameterValues", {"names"}, {"names"}},
    {"SetParameterValues", {"values", "parameter_key"}, {"values"}},
    {"GetParameterNames", {"path", "next_level"}, {}},
    {"GetParameterAttributes", {"names"}, {"names"}},
    {"SetParameterAttributes", {"parameters"}, {"parameters"}},
    {"AddObject", {"object", "parameter_key"}, {"object"}},
    {"DeleteObject", {"object", "parameter_key"}, {"object"}},
    {"Reboot", {"command_key"}, {}},
    {"FactoryReset", {}, {}},
    {"ScheduleInform", {"delay", "command_key"}, {"delay"}},
    {"Download",
     {"url", "file_type", "command_key", "username", "password", "file_size", "target_file_name",
      "delay"},
     {"url"}},
    {"Upload", {"url", "file_type", "command_key", "username", "password", "delay"}, {"url"}},
    {"GetRPCMethods", {}, {}},
};

// GenieACS's task names and the fields of each (besides name, expiry,
// uniqueKey).
struct GenieTask {
  std::string_view name;
  Names fields;
};
const GenieTask kGenie[] = {
    {"getParameterValues", {"parameterNames"}},
    {"setParameterValues", {"parameterValues"}},
    {"refreshObject", {"objectName"}},
    {"addObject", {"objectName", "parameterValues"}},
    {"deleteObject", {"objectName"}},
    {"reboot", {}},
    {"factoryReset", {}},
    {"download", {"fileType", "fileName", "url", "targetFileName"}},
};

constexpr int64_t kMaxExpirySeconds = int64_t{10} * 366 * 86400;

std::string join(const Names& names) {
  std::string out;
  for (auto n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

bool contains(const Names& names, std::string_view n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

const RpcArgs* rpc_of(std::string_view name) {
  for (const auto& r : kRpcs)
    if (r.name == name) return &r;
  return nullptr;
}

const GenieTask* genie_of(std::string_view name) {
  for (const auto& g : kGenie)
    if (g.name == name) return &g;
  return nullptr;
}

bool fail(BodyError* err, std::string error, std::string detail) {
  *err = {std::move(error), std::move(detail)};
  return false;
}

// Refuses a field of `obj` not in `known` (`what` names the object).
bool only_known(const json& obj, const Names& known, const std::string& what, BodyError* err) {
  for (const auto& [k, v] : obj.items())
    if (!contains(known, k))
      return fail(
          err, "unknown field",
          "'" + k + "' in " + what + " (known: " + (known.empty() ? "none" : join(known)) + ")");
  return true;
}

// A GenieACS object path as the RPC wants it: "X.Y" -> "X.Y.".
std::string object_path(std::string path) {
  if (!path.empty() && path.back() != '.') path += '.';
  return path;
}

bool non_empty_string(const json& body, const char* key, std::string* out, BodyError* err) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_string() || it->get<std::string>().empty())
    return fail(err, "bad field", std::string("'") + key + "' must be a non-empty string");
  *out = it->get<std::string>();
  return true;
}

bool is_url(std::string_view s) {
  const auto colon = s.find("://");
  return colon != std::string_view::npos && colon > 0 &&
         std::all_of(s.begin(), s.begin() + colon,
                     [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; });
}

// GenieACS's task body -> the luacs RPC task that does the same.
bool map_genie(const GenieTask& g, const json& body, TaskSpec* t, BodyError* err) {
  const std::string_view n = g.name;
  std::string s;
  if (n == "getParameterValues") {
    auto it = body.find("parameterNames");
    if (it == body.end() || !it->is_array() || it->empty())
      return fail(err, "bad field", "'parameterNames' must be a non-empty array of strings");
    t->name = "GetParameterValues";
    t->args = {{"names", *it}};
  } else if (n == "setParameterValues") {
    auto it = body.find("parameterValues");
    if (it == body.end() || !it->is_array() || it->empty())
      return fail(err, "bad field",
                  "'parameterValues' must be a non-empty array of [name, value, type?]");
    for (const auto& e : *it)
      if (!e.is_array() || e.size() < 2 || e.size() > 3 || !e[0].is_string() ||
          !(e[1].is_string() || e[1].is_number() || e[1].is_boolean()) ||
          (e.size() == 3 && !e[2].is_string()))
        return fail(err, "bad field",
                    "'parameterValues' entries are [name, value, type?]: " + util::json_text(e));
    t->name = "SetParameterValues";
    t->args = {{"values", *it}};
  } else if (n == "refreshObject") {
    // GetParameterValues of a partial path reads the whole subtree; "" is
    // the whole data model.
    auto it = body.find("objectName");
    if (it == body.end() || !it->is_string())
      return fail(err, "bad field", "'objectName' must be a string");
    t->name = "GetParameterValues";
    t->args = {{"names", json::array({object_path(it->get<std::string>())})}};
  } else if (n == "addObject") {
    if (!non_empty_string(body, "objectName", &s, err)) return false;
    auto pv = body.find("parameterValues");
    if (pv != body.end() && !(pv->is_array() && pv->empty()))
      return fail(err, "not supported",
                  "addObject with parameterValues: luacs's AddObject task cannot set the new "
                  "instance's values (its number is known only from the CPE's answer); queue "
                  "addObject, read the instance from GET /tasks/{id}, then queue "
                  "setParameterValues, or do both in a policy task");
    t->name = "AddObject";
    t->args = {{"object", object_path(s)}};
  } else if (n == "deleteObject") {
    if (!non_empty_string(body, "objectName", &s, err)) return false;
    t->name = "DeleteObject";
    t->args = {{"object", object_path(s)}};
  } else if (n == "reboot") {
    t->name = "Reboot";
  } else if (n == "factoryReset") {
    t->name = "FactoryReset";
  } else if (n == "download") {
    // GenieACS serves fileName from its own file store; luacs needs the
    // URL the CPE fetches (a file of luacs's file server included).
    std::string url;
    if (body.contains("url")) {
      if (!non_empty_string(body, "url", &url, err)) return false;
    } else if (body.contains("fileName") && body["fileName"].is_string() &&
               is_url(body["fileName"].get<std::string>())) {
      url = body["fileName"].get<std::string>();
    } else {
      return fail(err, "bad field",
                  "download needs 'url' (or a 'fileName' that is a URL): luacs does not resolve "
                  "a file name to its file server's URL in a task");
    }
    t->name = "Download";
    t->args = {{"url", url}};
    if (body.contains("fileType")) {
      if (!non_empty_string(body, "fileType", &s, err)) return false;
      t->args["file_type"] = s;
    }
    if (body.contains("targetFileName")) {
      if (!non_empty_string(body, "targetFileName", &s, err)) return false;
      t->args["target_file_name"] = s;
    }
  }
  return true;
}

// A task's args against what its name takes; tasks the engine runs itself
// (tag, untag) and RPCs. False with *err when they do not fit.
bool check_args(const std::string& name, const json& args, BodyError* err) {
  if (name == "tag" || name == "untag") {
    if (!only_known(args, {"tag"}, name + "'s args", err)) return false;
    auto it = args.find("tag");
    if (it == args.end() || !it->is_string() || it->get<std::string>().empty())
      return fail(err, "bad args", name + " needs {\"tag\": \"<non-empty string>\"}");
    return true;
  }
  const RpcArgs* rpc = rpc_of(name);
  if (!only_known(args, rpc->known, name + "'s args", err)) return false;
  for (auto key : rpc->required)
    if (!args.contains(key))
      return fail(err, "bad args", name + " needs '" + std::string(key) + "'");
  std::string why;
  if (!session::task_rpc(name, util::json_text(args), &why))
    return fail(err, "bad args", name + ": " + why);
  return true;
}

}  // namespace

std::optional<int64_t> parse_rfc3339(std::string_view s) {
  size_t i = 0;
  auto digits = [&](size_t n, int* out) {
    if (i + n > s.size()) return false;
    int v = 0;
    for (size_t k = 0; k < n; ++k) {
      const char c = s[i + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *out = v;
    i += n;
    return true;
  };
  auto expect = [&](std::string_view any_of) {
    if (i >= s.size() || any_of.find(s[i]) == std::string_view::npos) return false;
    ++i;
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(4, &y) || !expect("-") || !digits(2, &mo) || !expect("-") || !digits(2, &d) ||
      !expect("Tt ") || !digits(2, &h) || !expect(":") || !digits(2, &mi) || !expect(":") ||
      !digits(2, &sec))
    return std::nullopt;
  int64_t ms = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t start = i;
    int64_t scale = 100;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ms += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  int64_t offset_min = 0;
  if (expect("Zz")) {
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int sign = s[i] == '-' ? -1 : 1;
    ++i;
    int oh = 0, om = 0;
    if (!digits(2, &oh) || !expect(":") || !digits(2, &om) || oh > 23 || om > 59)
      return std::nullopt;
    offset_min = sign * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (i != s.size() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  using namespace std::chrono;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  const int64_t days = sys_days(ymd).time_since_epoch().count();
  return ((days * 24 + h) * 60 + mi - offset_min) * 60'000 + int64_t{sec} * 1000 + ms;
}

std::optional<int64_t> parse_expires(const json& v, int64_t now_ms, std::string* detail) {
  std::optional<int64_t> at;
  if (v.is_number()) {
    const double secs = v.get<double>();
    if (!std::isfinite(secs) || secs <= 0 || secs > kMaxExpirySeconds) {
      *detail = "'expires' in seconds must be > 0 and at most ten years";
      return std::nullopt;
    }
    at = now_ms + static_cast<int64_t>(secs * 1000);
  } else if (v.is_string()) {
    at = parse_rfc3339(v.get<std::string>());
    if (!at) {
      *detail = "'expires' must be an RFC 3339 time (2026-12-31T23:00:00Z) or seconds from now";
      return std::nullopt;
    }
    if (*at <= now_ms || *at - now_ms > kMaxExpirySeconds * 1000) {
      *detail = "'expires' must be in the future, at most ten years ahead";
      return std::nullopt;
    }
  } else {
    *detail = "'expires' must be an RFC 3339 time or a number of seconds from now";
    return std::nullopt;
  }
  return at;
}

std::optional<TaskSpec> parse_task_body(const json& body, int64_t now_ms, BodyError* err) {
  auto no = [err](std::string error, std::string detail) {
    *err = {std::move(error), std::move(detail)};
    return std::nullopt;
  };
  if (!body.is_object()) return no("bad body", "expected a JSON object");
  auto name_it = body.find("name");
  if (name_it == body.end() || !name_it->is_string() || name_it->get<std::string>().empty())
    return no("bad field", "'name' must be a non-empty string");
  const std::string name = name_it->get<std::string>();

  TaskSpec t;
  const GenieTask* genie = genie_of(name);
  Names known = {"name", "expires", "unique_key"};
  if (genie) {
    known.insert(known.end(), {"expiry", "uniqueKey"});
    known.insert(known.end(), genie->fields.begin(), genie->fields.end());
  } else {
    known.push_back("args");
  }
  if (!only_known(body, known, "the task", err)) return std::nullopt;

  // expires / expiry, unique_key / uniqueKey: either spelling, not both.
  auto one_of = [&](const char* a, const char* b) -> const json* {
    const json* v = nullptr;
    for (const char* k : {a, b})
      if (auto it = body.find(k); it != body.end() && !it->is_null()) v = &*it;
    return v;
  };
  if (body.contains("expires") && body.contains("expiry"))
    return no("bad field", "give 'expires' or 'expiry', not both");
  if (body.contains("unique_key") && body.contains("uniqueKey"))
    return no("bad field", "give 'unique_key' or 'uniqueKey', not both");
  if (const json* e = one_of("expires", "expiry")) {
    std::string why;
    t.expires_ms = parse_expires(*e, now_ms, &why);
    if (!t.expires_ms) return no("bad field", why);
  }
  if (const json* k = one_of("unique_key", "uniqueKey")) {
    if (!k->is_string() || k->get<std::string>().empty())
      return no("bad field", "'unique_key' must be a non-empty string");
    t.unique_key = k->get<std::string>();
  }

  if (genie) {
    t.genieacs = true;
    if (!map_genie(*genie, body, &t, err)) return std::nullopt;
  } else {
    t.name = name;
    if (auto a = body.find("args"); a != body.end() && !a->is_null()) {
      if (!a->is_object()) return no("bad field", "'args' must be an object");
      t.args = *a;
    }
    t.policy = name != "tag" && name != "untag" && !rpc_of(name);
    if (t.policy) return t;
  }
  if (!check_args(t.name, t.args, err)) return std::nullopt;
  return t;
}

std::optional<std::string> resolve_policy_task(const TaskSpec& spec,
                                               const std::vector<std::string>& policy_tasks) {
  std::string_view fn = spec.name;
  if (fn.rfind("tasks.", 0) == 0) fn.remove_prefix(6);
  if (fn.empty() || std::find(policy_tasks.begin(), policy_tasks.end(), fn) == policy_tasks.end())
    return std::nullopt;
  return "tasks." + std::string(fn);
}

std::string known_task_names(const std::vector<std::string>& policy_tasks) {
  Names names;
  for (const auto& r : kRpcs) names.push_back(r.name);
  names.insert(names.end(), {"tag", "untag"});
  for (const auto& g : kGenie) names.push_back(g.name);
  std::string out = "RPCs and engine tasks: " + join(names) + "; policy tasks: ";
  if (policy_tasks.empty()) return out + "none";
  for (size_t i = 0; i < policy_tasks.size(); ++i)
    out += (i ? ", tasks." : "tasks.") + policy_tasks[i];
  return out;
}

}  // namespace luacs::nbi
