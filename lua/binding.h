// Internal to lua/: how C++ is exposed to Lua. The entry points of the
// bind_*.cc files (one per Lua-visible type: dev, inform and tc, luacs) and
// the helpers they share. Everything here runs on the worker thread that
// owns the Lua state.
#pragma once

#include <lua.hpp>

#include <cstdint>
#include <string>

#include "lua/policy.h"

namespace luacs::lua {

// "file:line" of the Lua code that called the running C function ("?" if
// none), and the arguments from `from` on joined by " " (tostring), for
// policy log lines.
std::string caller_position(lua_State* L);
std::string joined_args(lua_State* L, int from);

// bind_luacs.cc: the global `luacs` table (version_compare, json_encode,
// json_decode, log, warn, generation) and `print`, into a new state.
void open_luacs(lua_State* L, uint64_t generation);

}  // namespace luacs::lua
