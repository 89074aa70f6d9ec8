// What the bind_*.cc files share (lua/binding.h). Worker thread.
#include "lua/binding.h"

namespace luacs::lua {

int raise_exception(lua_State* L, const char* api, const std::string& what) {
  return luaL_error(L, "%s: %s", api, what.c_str());
}

std::string joined_args(lua_State* L, int from) {
  std::string out;
  int n = lua_gettop(L);
  for (int i = from; i <= n; ++i) {
    if (i > from) out += ' ';
    size_t len = 0;
    const char* s = luaL_tolstring(L, i, &len);
    out.append(s, len);
    lua_pop(L, 1);
  }
  return out;
}

std::string caller_position(lua_State* L) {
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
    std::string src = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
    return src + ":" + std::to_string(ar.currentline);
  }
  return "?";
}

}  // namespace luacs::lua
