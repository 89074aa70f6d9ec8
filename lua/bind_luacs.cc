// The global `luacs` table policies see (docs/policy-api.md §7), and
// `print`. Runs on the worker thread that owns the Lua state.
#include <string>

#include "core/util/log.h"
#include "lua/binding.h"
#include "lua/json.h"
#include "lua/policy.h"

namespace luacs::lua {
namespace {

int l_log(lua_State* L) {
  std::string line = "policy " + caller_position(L) + ": " + joined_args(L, 1);
  log::info(line);
  return 0;
}

int l_warn(lua_State* L) {
  std::string line = "policy " + caller_position(L) + ": " + joined_args(L, 1);
  log::warn(line);
  return 0;
}

int l_version_compare(lua_State* L) {
  size_t la = 0, lb = 0;
  const char* a = luaL_checklstring(L, 1, &la);
  const char* b = luaL_checklstring(L, 2, &lb);
  lua_pushinteger(L, version_compare({a, la}, {b, lb}));
  return 1;
}

int l_json_encode(lua_State* L) {
  luaL_checkany(L, 1);
  std::string out = to_json(L, 1);
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int l_json_decode(lua_State* L) {
  size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  push_json(L, {s, len});
  return 1;
}

}  // namespace

void open_luacs(lua_State* L, uint64_t generation) {
  // print logs at info level, like luacs.log.
  lua_pushcfunction(L, (safe<"print", l_log>));
  lua_setglobal(L, "print");

  static const luaL_Reg kLuacs[] = {
      {"version_compare", safe<"version_compare", l_version_compare>},
      {"json_encode", safe<"json_encode", l_json_encode>},
      {"json_decode", safe<"json_decode", l_json_decode>},
      {"log", safe<"log", l_log>},
      {"warn", safe<"warn", l_warn>},
      {nullptr, nullptr},
  };
  luaL_newlib(L, kLuacs);
  lua_pushinteger(L, static_cast<lua_Integer>(generation));
  lua_setfield(L, -2, "generation");
  lua_setglobal(L, "luacs");
}

}  // namespace luacs::lua
