// Internal to lua/: how C++ is exposed to Lua. The entry points of the
// bind_*.cc files (one per Lua-visible type: dev, inform and tc, luacs) and
// the helpers they share. Everything here runs on the worker thread that
// owns the Lua state.
#pragma once

#include <lua.hpp>

#include <cstdint>
#include <exception>
#include <string>

#include "lua/policy.h"

namespace luacs::lua {

// "file:line" of the Lua code that called the running C function ("?" if
// none), and the arguments from `from` on joined by " " (tostring), for
// policy log lines.
std::string caller_position(lua_State* L);
std::string joined_args(lua_State* L, int from);

// Every method body runs inside this: a C++ exception becomes a Lua error
// (never crossing a Lua frame).
template <typename F>
int guarded(lua_State* L, F&& f) {
  std::string err;
  try {
    return f();
  } catch (const std::exception& e) {
    err = e.what();
  }
  return luaL_error(L, "%s", err.c_str());
}

// bind_dev.cc, bind_inform.cc: the metatables of `dev` and of
// `inform.params`, into a freshly loaded state.
void open_dev(lua_State* L);
void open_inform(lua_State* L);

// The values a hook is called with, pushed on `L` (a coroutine of the run's
// state). `dev` and `inform` are made once per session (bind_dev.cc,
// bind_inform.cc).
void push_dev(lua_State* L, Run::Impl& r);
void push_inform(lua_State* L, Run::Impl& r);
void push_transfer(lua_State* L, const TransferInfo& t);

// bind_luacs.cc: the global `luacs` table (version_compare, json_encode,
// json_decode, log, warn, generation) and `print`, into a new state.
void open_luacs(lua_State* L, uint64_t generation);

}  // namespace luacs::lua
