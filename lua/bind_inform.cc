// The `inform` a hook gets (events, command keys, a read-only view of the
// Inform's ParameterList as `inform.params`) and the `tc` table of
// on_transfer_complete (docs/policy-api.md §5). On the worker thread of the
// session.
#include <cctype>
#include <string>
#include <string_view>

#include "lua/binding.h"
#include "lua/run.h"

namespace luacs::lua {
namespace {

constexpr const char* kParamsMeta = "luacs.inform_params";

const std::vector<soap::ParameterValue>& inform_params(lua_State* L) {
  auto* h = static_cast<Handle*>(luaL_checkudata(L, 1, kParamsMeta));
  if (!h->run) luaL_error(L, "inform used after its session ended");
  return h->run->ctx.session->inform().parameters;
}

int params_index(lua_State* L) {
  const auto& params = inform_params(L);
  size_t len = 0;
  const char* key = lua_tolstring(L, 2, &len);
  if (key) {
    std::string_view k(key, len);
    for (const auto& p : params) {
      if (p.name == k) {
        lua_pushlstring(L, p.value.data(), p.value.size());
        return 1;
      }
    }
  }
  lua_pushnil(L);
  return 1;
}

// The iterator of pairs(inform.params): the control value is the index.
int params_next(lua_State* L) {
  const auto& params = inform_params(L);
  lua_Integer i = lua_isnil(L, 2) ? 0 : lua_tointeger(L, lua_upvalueindex(1));
  if (i < 0 || static_cast<size_t>(i) >= params.size()) return 0;
  const auto& p = params[static_cast<size_t>(i)];
  lua_pushinteger(L, i + 1);
  lua_replace(L, lua_upvalueindex(1));
  lua_pushlstring(L, p.name.data(), p.name.size());
  lua_pushlstring(L, p.value.data(), p.value.size());
  return 2;
}

int params_pairs(lua_State* L) {
  inform_params(L);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, safe<"inform.params", params_next>, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

int params_newindex(lua_State* L) {
  return luaL_error(L, "inform.params is read-only");
}

int params_len(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(inform_params(L).size()));
  return 1;
}

// inform:has_event(code): the Inform carries the event `code`, compared
// without regard to letter case ("1 Boot" is "1 BOOT").
int inform_has_event(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t len = 0;
  const char* code = luaL_checklstring(L, 2, &len);
  auto same = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (std::toupper(static_cast<unsigned char>(a[i])) !=
          std::toupper(static_cast<unsigned char>(b[i])))
        return false;
    return true;
  };
  bool found = false;
  if (lua_getfield(L, 1, "events") == LUA_TTABLE) {
    for (lua_Integer i = 1; !found && lua_rawgeti(L, -1, i) == LUA_TSTRING; ++i) {
      size_t elen = 0;
      const char* e = lua_tolstring(L, -1, &elen);
      found = same({e, elen}, {code, len});
      lua_pop(L, 1);
    }
  }
  lua_pushboolean(L, found);
  return 1;
}

const luaL_Reg kParamsMethods[] = {
    {"__index", safe<"inform.params", params_index>},
    {"__pairs", safe<"inform.params", params_pairs>},
    {"__len", safe<"inform.params", params_len>},
    {"__newindex", safe<"inform.params", params_newindex>},
    {nullptr, nullptr},
};

}  // namespace

void open_inform(lua_State* L) {
  if (!luaL_newmetatable(L, kParamsMeta)) {
    lua_pop(L, 1);
    return;
  }
  luaL_setfuncs(L, kParamsMethods, 0);
  lua_pushliteral(L, "inform.params");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

void push_inform(lua_State* L, Run::Impl& r) {
  if (r.inform_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, r.inform_ref);
    return;
  }
  const soap::Inform& in = r.ctx.session->inform();
  lua_createtable(L, 0, 5);
  lua_createtable(L, static_cast<int>(in.events.size()), 0);
  lua_Integer i = 1;
  for (const auto& e : in.events) {
    lua_pushlstring(L, e.code.data(), e.code.size());
    lua_rawseti(L, -2, i++);
  }
  lua_setfield(L, -2, "events");
  lua_createtable(L, 0, 0);
  for (const auto& e : in.events) {
    if (e.command_key.empty()) continue;
    lua_pushlstring(L, e.command_key.data(), e.command_key.size());
    lua_setfield(L, -2, e.code.c_str());
  }
  lua_setfield(L, -2, "command_keys");
  // inform.params reads the Inform in place: most hooks look at a few
  // values, if any, so no table of every parameter is built.
  r.params = static_cast<Handle*>(lua_newuserdatauv(L, sizeof(Handle), 0));
  r.params->run = &r;
  luaL_setmetatable(L, kParamsMeta);
  lua_setfield(L, -2, "params");
  lua_pushinteger(L, in.retry_count);
  lua_setfield(L, -2, "retry_count");
  lua_pushlstring(L, in.current_time.data(), in.current_time.size());
  lua_setfield(L, -2, "current_time");
  lua_pushcfunction(L, (safe<"inform:has_event", inform_has_event>));
  lua_setfield(L, -2, "has_event");
  lua_pushvalue(L, -1);
  r.inform_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void push_transfer(lua_State* L, const TransferInfo& t) {
  lua_createtable(L, 0, 12);
  auto str = [&](const char* k, const std::string& v) {
    lua_pushlstring(L, v.data(), v.size());
    lua_setfield(L, -2, k);
  };
  str("command_key", t.command_key);
  lua_pushboolean(L, t.fault_code == 0);
  lua_setfield(L, -2, "ok");
  lua_pushinteger(L, t.fault_code);
  lua_setfield(L, -2, "fault_code");
  str("fault_string", t.fault_string);
  str("start_time", t.start_time);
  str("complete_time", t.complete_time);
  lua_pushboolean(L, t.autonomous);
  lua_setfield(L, -2, "autonomous");
  if (t.autonomous) {
    lua_pushboolean(L, t.is_download);
    lua_setfield(L, -2, "is_download");
    str("file_type", t.file_type);
    str("transfer_url", t.transfer_url);
    str("target_file_name", t.target_file_name);
    lua_pushinteger(L, static_cast<lua_Integer>(t.file_size));
    lua_setfield(L, -2, "file_size");
  }
}

}  // namespace luacs::lua
