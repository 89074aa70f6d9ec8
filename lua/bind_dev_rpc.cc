// The methods of `dev` that ask the CPE (docs/policy-api.md §4, RPCs):
// each queues its RPCs on the session and suspends the hook until the
// answers are in, then returns them (or nil and a fault table). On the
// worker thread of the session.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/cwmp/param_batches.h"
#include "lua/bind_dev.h"
#include "lua/binding.h"

namespace luacs::lua {
namespace {

bool truthy(std::string_view v) {
  return v == "1" || v == "true" || v == "TRUE" || v == "True";
}

void push_fault(lua_State* L, const Call& c) {
  const cwmp::ParamAnswers& a = c.answers;
  lua_createtable(L, 0, 4);
  if (a.fault) {
    lua_pushinteger(L, a.fault->code);
    lua_setfield(L, -2, "code");
    const std::string& s = a.fault->string.empty() ? a.fault->faultstring : a.fault->string;
    lua_pushlstring(L, s.data(), s.size());
    lua_setfield(L, -2, "string");
  } else if (!a.error.empty()) {
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "code");
    lua_pushlstring(L, a.error.data(), a.error.size());
    lua_setfield(L, -2, "string");
  } else if (!a.invalid.empty()) {
    lua_pushinteger(L, 9005);
    lua_setfield(L, -2, "code");
    lua_pushliteral(L, "Invalid parameter name");
    lua_setfield(L, -2, "string");
  } else if (!a.set_faults.empty()) {
    lua_pushinteger(L, 9003);
    lua_setfield(L, -2, "code");
    lua_pushliteral(L, "Invalid arguments");
    lua_setfield(L, -2, "string");
  }
  if (!a.invalid.empty()) {
    lua_createtable(L, static_cast<int>(a.invalid.size()), 0);
    lua_Integer i = 1;
    for (const auto& n : a.invalid) {
      lua_pushlstring(L, n.data(), n.size());
      lua_rawseti(L, -2, i++);
    }
    lua_setfield(L, -2, "invalid");
  }
  const auto& sf =
      !a.set_faults.empty() || !a.fault ? a.set_faults : a.fault->set_parameter_values_faults;
  if (!sf.empty()) {
    lua_createtable(L, static_cast<int>(sf.size()), 0);
    lua_Integer i = 1;
    for (const auto& f : sf) {
      lua_createtable(L, 0, 3);
      lua_pushlstring(L, f.name.data(), f.name.size());
      lua_setfield(L, -2, "name");
      lua_pushinteger(L, f.code);
      lua_setfield(L, -2, "code");
      lua_pushlstring(L, f.string.data(), f.string.size());
      lua_setfield(L, -2, "string");
      lua_rawseti(L, -2, i++);
    }
    lua_setfield(L, -2, "parameters");
  }
  if (c.kind == Call::Kind::kSet) {
    lua_pushinteger(L, a.sent);
    lua_setfield(L, -2, "sent");
  }
}

std::shared_ptr<Call> take_call(lua_State* L) {
  Run::Impl* r = self(L);
  std::shared_ptr<Call> c = std::move(r->call);
  if (c) c->run = nullptr;
  return c ? c : std::make_shared<Call>();
}

// ---- continuations ----

int k_get(lua_State* L, int, lua_KContext) {
  auto c = take_call(L);
  const cwmp::ParamAnswers& a = c->answers;
  bool failed = a.fault || !a.error.empty();
  if (a.values.empty() && a.invalid.empty() && failed) {
    lua_pushnil(L);
    push_fault(L, *c);
    return 2;
  }
  // Every good value, and the fault when some did not come.
  lua_createtable(L, 0, static_cast<int>(a.values.size()));
  for (const auto& p : a.values) {
    lua_pushlstring(L, p.name.data(), p.name.size());
    lua_pushlstring(L, p.value.data(), p.value.size());
    lua_rawset(L, -3);
  }
  if (!a.invalid.empty() || failed) {
    push_fault(L, *c);
    return 2;
  }
  return 1;
}

int k_set(lua_State* L, int, lua_KContext) {
  auto c = take_call(L);
  const cwmp::ParamAnswers& a = c->answers;
  if (a.set_faults.empty() && !a.fault && a.error.empty()) {
    lua_pushinteger(L, a.sent);
    return 1;
  }
  lua_pushnil(L);
  push_fault(L, *c);
  return 2;
}

}  // namespace

// Single RPCs: the answer, per kind of response.
int k_single(lua_State* L, int, lua_KContext) {
  auto c = take_call(L);
  if (c->answers.fault || !c->answers.error.empty()) {
    lua_pushnil(L);
    push_fault(L, *c);
    return 2;
  }
  const soap::Body& b = c->response;
  if (auto* names = std::get_if<soap::GetParameterNamesResponse>(&b)) {
    lua_createtable(L, static_cast<int>(names->parameters.size()), 0);
    lua_Integer i = 1;
    for (const auto& p : names->parameters) {
      lua_createtable(L, 0, 2);
      lua_pushlstring(L, p.name.data(), p.name.size());
      lua_setfield(L, -2, "name");
      lua_pushboolean(L, p.writable);
      lua_setfield(L, -2, "writable");
      lua_rawseti(L, -2, i++);
    }
    return 1;
  }
  if (auto* attrs = std::get_if<soap::GetParameterAttributesResponse>(&b)) {
    lua_createtable(L, 0, static_cast<int>(attrs->parameters.size()));
    for (const auto& p : attrs->parameters) {
      lua_createtable(L, 0, 2);
      lua_pushinteger(L, p.notification);
      lua_setfield(L, -2, "notification");
      lua_createtable(L, static_cast<int>(p.access_list.size()), 0);
      lua_Integer i = 1;
      for (const auto& a : p.access_list) {
        lua_pushlstring(L, a.data(), a.size());
        lua_rawseti(L, -2, i++);
      }
      lua_setfield(L, -2, "access");
      lua_setfield(L, -2, p.name.c_str());
    }
    return 1;
  }
  if (auto* add = std::get_if<soap::AddObjectResponse>(&b)) {
    lua_pushinteger(L, add->instance_number);
    return 1;
  }
  int status = -1;
  if (auto* d = std::get_if<soap::DownloadResponse>(&b)) status = d->status;
  if (auto* u = std::get_if<soap::UploadResponse>(&b)) status = u->status;
  if (c->returns_key) {
    lua_pushlstring(L, c->command_key.data(), c->command_key.size());
    lua_pushinteger(L, status < 0 ? 0 : status);
    return 2;
  }
  if (status >= 0) {
    lua_pushinteger(L, status);
    return 1;
  }
  lua_pushboolean(L, 1);
  return 1;
}

namespace {

int k_attributes(lua_State* L, int, lua_KContext) {
  auto c = take_call(L);
  if (c->answers.fault || !c->answers.error.empty()) {
    lua_pushnil(L);
    push_fault(L, *c);
    return 2;
  }
  c->response = soap::GetParameterAttributesResponse{c->answers.attributes};
  // Reuse the single-RPC conversion.
  Run::Impl* r = self(L);
  r->call = c;
  c->run = r;
  return k_single(L, LUA_OK, 0);
}

// The RPCs of one dev:get: every batch, and the halves of a batch the CPE
// refused with a 9005 until the unknown names stand alone.
void get_batch(Run::Impl* r, const std::shared_ptr<Call>& c, soap::GetParameterValues rpc) {
  r->send(c, rpc, [rpc](const std::shared_ptr<Call>& c, const cwmp::RpcOutcome& o) {
    Run::Impl* r = c->run;
    auto& a = c->answers;
    size_t values = a.values.size(), invalid = a.invalid.size();
    auto next = cwmp::merge(a, rpc, o);
    for (size_t i = values; i < a.values.size(); ++i) r->view.learn(a.values[i]);
    // The next device of this model is not asked for these again.
    for (size_t i = invalid; i < a.invalid.size(); ++i)
      r->st->invalid_names.add(r->view.model_key(), a.invalid[i]);
    for (auto& n : next) get_batch(r, c, std::move(n));
  });
}

// The RPCs of one dev:set, and the retries a fault calls for.
void set_batch(Run::Impl* r, const std::shared_ptr<Call>& c, cwmp::SetBatch batch) {
  r->send(c, batch.rpc, [batch](const std::shared_ptr<Call>& c, const cwmp::RpcOutcome& o) {
    Run::Impl* r = c->run;
    if (o.ok())
      for (const auto& p : batch.rpc.parameters) r->view.learn(p);
    for (auto& n : cwmp::merge(c->answers, batch, o)) set_batch(r, c, std::move(n));
  });
}

int dev_get(lua_State* L) {
  Run::Impl* r = self(L);
  need_yield(L, "get");
  auto names = names_arg(L, 2, "get");
  auto c = r->new_call(Call::Kind::kGet);
  // Names this model is known to refuse are answered as refused at once.
  const auto& invalid = r->st->invalid_names;
  if (!invalid.by_model.empty()) {
    const std::string& model = r->view.model_key();
    std::erase_if(names, [&](const std::string& n) {
      if (!invalid.has(model, n)) return false;
      c->answers.invalid.push_back(n);
      return true;
    });
  }
  for (auto& rpc : cwmp::get_values_batches(names, r->st->limits().batch_size))
    get_batch(r, c, std::move(rpc));
  return wait<"dev:get", k_get>(L, r);
}

// The text CWMP gets for a Lua value, and the type it is sent with.
void value_of(lua_State* L, int idx, const std::string& name, Run::Impl* r,
              soap::ParameterValue* out) {
  idx = lua_absindex(L, idx);
  int vidx = idx;
  std::string type;
  if (lua_istable(L, idx)) {
    lua_rawgeti(L, idx, 1);
    lua_rawgeti(L, idx, 2);
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "dev:set: type of %s must be a string", name.c_str());
      type = lua_tostring(L, -1);
      if (type.rfind("xsd:", 0) == 0) type = type.substr(4);
    }
    lua_pop(L, 1);
    vidx = lua_absindex(L, -1);
  }
  const device::StoredParameter* k = r->view.known(name);
  switch (lua_type(L, vidx)) {
    case LUA_TBOOLEAN: {
      bool b = lua_toboolean(L, vidx);
      // Answer in the style the device uses ("1"/"0" or "true"/"false").
      bool numeric = k && (k->value == "0" || k->value == "1");
      out->value = numeric ? (b ? "1" : "0") : (b ? "true" : "false");
      if (type.empty()) type = "boolean";
      break;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, vidx)) {
        out->value = std::to_string(lua_tointeger(L, vidx));
        if (type.empty() && !(k && !k->type.empty())) type = "int";
      } else {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.14g", lua_tonumber(L, vidx));
        out->value = buf;
      }
      break;
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, vidx, &len);
      out->value.assign(s, len);
      break;
    }
    default:
      luaL_error(L, "dev:set: value of %s is a %s", name.c_str(), luaL_typename(L, vidx));
  }
  if (type.empty()) type = k && !k->type.empty() ? k->type : "string";
  out->type = type;
  out->name = name;
  if (vidx != idx) lua_pop(L, 1);
}

bool same_value(const device::StoredParameter& k, const soap::ParameterValue& v) {
  if (v.type == "boolean" || k.type == "boolean") return truthy(k.value) == truthy(v.value);
  return k.value == v.value;
}

int dev_set(lua_State* L) {
  Run::Impl* r = self(L);
  need_yield(L, "set");
  luaL_checktype(L, 2, LUA_TTABLE);
  check_options(L, 3, "dev:set", {"force", "key"});
  bool force = false;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "force");
    force = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  std::string key = opt_field(L, 3, "key");
  std::vector<soap::ParameterValue> params;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "dev:set: keys must be parameter names");
    std::string name = lua_tostring(L, -2);
    if (name.empty() || name.size() > 256 || name.back() == '.')
      luaL_error(L, "dev:set: '%s' is not a parameter name", name.c_str());
    soap::ParameterValue v;
    value_of(L, -1, name, r, &v);
    lua_pop(L, 1);
    const device::StoredParameter* k = r->view.known(name);
    if (!force && k && same_value(*k, v)) continue;
    params.push_back(std::move(v));
    if (params.size() > kMaxNames)
      luaL_error(L, "dev:set: at most %d values", static_cast<int>(kMaxNames));
  }
  std::sort(params.begin(), params.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  if (params.empty()) {
    lua_pushinteger(L, 0);
    return 1;
  }
  auto c = r->new_call(Call::Kind::kSet);
  for (auto& batch : cwmp::set_values_batches(params, key, r->st->limits().batch_size))
    set_batch(r, c, std::move(batch));
  return wait<"dev:set", k_set>(L, r);
}

}  // namespace

int send_single(lua_State* L, Run::Impl* r, soap::Body body, const char* what) {
  need_yield(L, what);
  auto c = r->new_call(Call::Kind::kSingle);
  r->single(c, std::move(body));
  return wait<"dev", k_single>(L, r);
}

namespace {

int dev_names(lua_State* L) {
  Run::Impl* r = self(L);
  soap::GetParameterNames g;
  g.path = luaL_checkstring(L, 2);
  g.next_level = lua_toboolean(L, 3);
  return send_single(L, r, std::move(g), "names");
}

int dev_attributes(lua_State* L) {
  Run::Impl* r = self(L);
  need_yield(L, "attributes");
  auto names = names_arg(L, 2, "attributes");
  auto c = r->new_call(Call::Kind::kAttributes);
  for (auto& rpc : cwmp::get_attributes_batches(names, r->st->limits().batch_size)) {
    r->send(c, rpc, [rpc](const std::shared_ptr<Call>& c, const cwmp::RpcOutcome& o) {
      cwmp::merge(c->answers, rpc, o);
    });
  }
  return wait<"dev:attributes", k_attributes>(L, r);
}

int dev_set_attributes(lua_State* L) {
  Run::Impl* r = self(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  soap::SetParameterAttributes s;
  lua_Integer n = luaL_len(L, 2);
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, 2, i);
    if (!lua_istable(L, -1))
      luaL_error(L, "dev:set_attributes: entry %d is not a table", static_cast<int>(i));
    check_options(L, -1, "dev:set_attributes: entry " + std::to_string(i),
                  {"name", "notification", "access"});
    soap::SetParameterAttributesStruct a;
    lua_getfield(L, -1, "name");
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "dev:set_attributes: entry %d has no name", static_cast<int>(i));
    a.name = lua_tostring(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "notification");
    if (!lua_isnil(L, -1)) {
      lua_Integer v = lua_tointeger(L, -1);
      if (v < 0 || v > 6) luaL_error(L, "dev:set_attributes: notification must be 0..6");
      a.notification_change = true;
      a.notification = static_cast<int>(v);
    }
    lua_pop(L, 1);
    lua_getfield(L, -1, "access");
    if (lua_istable(L, -1)) {
      a.access_list_change = true;
      a.access_list = names_arg(L, lua_gettop(L), "set_attributes");
    }
    lua_pop(L, 2);
    s.parameters.push_back(std::move(a));
  }
  return send_single(L, r, std::move(s), "set_attributes");
}

int dev_add(lua_State* L) {
  Run::Impl* r = self(L);
  soap::AddObject a;
  a.object_name = luaL_checkstring(L, 2);
  a.parameter_key = luaL_optstring(L, 3, "");
  if (a.object_name.empty() || a.object_name.back() != '.')
    return luaL_error(L, "dev:add: '%s' is not an object path (it must end with '.')",
                      a.object_name.c_str());
  return send_single(L, r, std::move(a), "add");
}

int dev_delete(lua_State* L) {
  Run::Impl* r = self(L);
  soap::DeleteObject d;
  d.object_name = luaL_checkstring(L, 2);
  d.parameter_key = luaL_optstring(L, 3, "");
  if (d.object_name.empty() || d.object_name.back() != '.')
    return luaL_error(L, "dev:delete: '%s' is not an object instance path (it must end with '.')",
                      d.object_name.c_str());
  return send_single(L, r, std::move(d), "delete");
}

int dev_reboot(lua_State* L) {
  Run::Impl* r = self(L);
  return send_single(L, r, soap::Reboot{luaL_optstring(L, 2, "")}, "reboot");
}

int dev_factory_reset(lua_State* L) {
  Run::Impl* r = self(L);
  return send_single(L, r, soap::FactoryReset{}, "factory_reset");
}

int dev_schedule_inform(lua_State* L) {
  Run::Impl* r = self(L);
  lua_Integer delay = luaL_checkinteger(L, 2);
  if (delay < 1 || delay > 0xffffffffLL)
    return luaL_error(L, "dev:schedule_inform: delay must be >= 1 second");
  soap::ScheduleInform s;
  s.delay_seconds = static_cast<uint32_t>(delay);
  s.command_key = luaL_optstring(L, 3, "");
  return send_single(L, r, std::move(s), "schedule_inform");
}

}  // namespace

const luaL_Reg kDevRpcMethods[] = {
    {"get", safe<"dev:get", dev_get>},
    {"set", safe<"dev:set", dev_set>},
    {"names", safe<"dev:names", dev_names>},
    {"attributes", safe<"dev:attributes", dev_attributes>},
    {"set_attributes", safe<"dev:set_attributes", dev_set_attributes>},
    {"add", safe<"dev:add", dev_add>},
    {"delete", safe<"dev:delete", dev_delete>},
    {"reboot", safe<"dev:reboot", dev_reboot>},
    {"factory_reset", safe<"dev:factory_reset", dev_factory_reset>},
    {"schedule_inform", safe<"dev:schedule_inform", dev_schedule_inform>},
    {nullptr, nullptr},
};

}  // namespace luacs::lua
