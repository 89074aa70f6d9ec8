// Internal to the bind_dev*.cc files: what the methods of `dev` share. The
// methods are in three files: bind_dev.cc (the handle, its fields, what is
// known without asking the CPE, tags, logging), bind_dev_rpc.cc (the RPCs)
// and bind_dev_files.cc (transfers, and the files luacs serves for them).
// On the worker thread of the session.
#pragma once

#include <lua.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "lua/binding.h"
#include "lua/run.h"

namespace luacs::lua {

constexpr size_t kMaxNames = 4096;  // names in one dev:get / dev:set call

// The run of the `dev` at argument 1; a Lua error when that session ended
// or is not the one running.
Run::Impl* self(lua_State* L);

// A Lua error unless the calling coroutine may wait for the CPE.
void need_yield(lua_State* L, const char* what);

// A list of names at `idx`: one string or a sequence of strings.
std::vector<std::string> names_arg(lua_State* L, int idx, const char* what);

// The options table of a method at `idx` (anything but a table: none)
// holds only keys of `known`; else a Lua error naming the first other key:
// "dev:download: unknown option 'commandkey' (known: url, ...)". A typo in
// an option must not silently become the default.
void check_options(lua_State* L, int idx, const std::string& what,
                   std::initializer_list<const char*> known);

// Options of a method, from the table at `idx` (anything else: none).
std::optional<std::string> opt_string(lua_State* L, int idx, const char* key);
std::string opt_field(lua_State* L, int idx, const char* key, const std::string& dflt = {});
uint32_t opt_uint(lua_State* L, int idx, const char* key);

// Suspends the hook until the CPE has answered every RPC of the run's call,
// then K (through the trampoline, as `api`) turns the answers into Lua
// values.
template <ApiName api, lua_KFunction K>
int wait(lua_State* L, Run::Impl* r) {
  if (!r->call || r->call->outstanding == 0) return K(L, LUA_OK, 0);
  return lua_yieldk(L, 0, 0, safe_k<api, K>);
}
// The answer of a call of one RPC (Call::Kind::kSingle).
int k_single(lua_State* L, int status, lua_KContext ctx);
// Sends `body` as a call of its own and waits for its answer.
int send_single(lua_State* L, Run::Impl* r, soap::Body body, const char* what);

extern const luaL_Reg kDevRpcMethods[];   // bind_dev_rpc.cc
extern const luaL_Reg kDevFileMethods[];  // bind_dev_files.cc

}  // namespace luacs::lua
