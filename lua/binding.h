// Internal to lua/: how C++ is exposed to Lua. The entry points of the
// bind_*.cc files (one per Lua-visible type: dev, inform and tc, luacs) and
// the helpers they share. Everything here runs on the worker thread that
// owns the Lua state.
#pragma once

#include <lua.hpp>

#include <cstddef>
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

// ---- the one error convention ----
//
// Every C function Lua can call (functions, methods, metamethods, the
// continuations of the methods that wait for the CPE) is registered as
// safe<name, f> (or safe_k<name, k>): a C++ exception thrown in it becomes a
// Lua error "file:line: name: what", with the policy's file:line, and never
// crosses a Lua frame. Lua's own errors (luaL_error, a failed luaL_check*)
// pass through untouched: Lua, linked as C++, unwinds with an exception
// that is not a std::exception.

// The name of a C function as the policy calls it ("dev:get"), as a
// template argument.
template <size_t N>
struct ApiName {
  constexpr ApiName(const char (&s)[N]) {  // NOLINT: implicit, for safe<"dev:get", ...>
    for (size_t i = 0; i < N; ++i) text[i] = s[i];
  }
  char text[N];
};

// Raises "file:line: api: what" (file:line of the Lua code calling the C
// function). Does not return.
int raise_exception(lua_State* L, const char* api, const std::string& what);

template <ApiName api, typename Body>
int protect(lua_State* L, Body&& body) {
  std::string what;
  try {
    return body();
  } catch (const std::exception& e) {
    what = e.what();
  }
  // Raised out here, once the exception is gone: the Lua error unwinds with
  // an exception of its own.
  return raise_exception(L, api.text, what);
}

template <ApiName api, lua_CFunction F>
int safe(lua_State* L) {
  return protect<api>(L, [L] { return F(L); });
}

template <ApiName api, lua_KFunction K>
int safe_k(lua_State* L, int status, lua_KContext ctx) {
  return protect<api>(L, [=] { return K(L, status, ctx); });
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
