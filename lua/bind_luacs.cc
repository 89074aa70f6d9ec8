// The global `luacs` table policies see (docs/policy-api.md §7), and
// `print`. Runs on the worker thread that owns the Lua state.
#include <string>

#include "core/util/hex.h"
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
  std::string out = to_json(L, 1, true);
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int l_json_decode(lua_State* L) {
  size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  push_json(L, {s, len});
  return 1;
}

// For credentials a policy derives per device (docs/policy-api.md §7):
// luacs.hmac_sha256(secret, dev.serial).
int l_hmac_sha256(lua_State* L) {
  size_t lk = 0, ld = 0;
  const char* k = luaL_checklstring(L, 1, &lk);
  const char* d = luaL_checklstring(L, 2, &ld);
  const std::string mac = util::hmac_sha256_hex({k, lk}, {d, ld});
  lua_pushlstring(L, mac.data(), mac.size());
  return 1;
}

// n (1..64) random bytes from OpenSSL's generator, as 2n hex digits: a
// password nobody can guess (math.random is not for secrets).
int l_random_hex(lua_State* L) {
  const lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 64, 1, "1..64 bytes");
  const std::string hex = util::random_hex(static_cast<size_t>(n));
  lua_pushlstring(L, hex.data(), hex.size());
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
      {"hmac_sha256", safe<"hmac_sha256", l_hmac_sha256>},
      {"random_hex", safe<"random_hex", l_random_hex>},
      {nullptr, nullptr},
  };
  luaL_newlib(L, kLuacs);
  lua_pushinteger(L, static_cast<lua_Integer>(generation));
  lua_setfield(L, -2, "generation");
  lua_setglobal(L, "luacs");
}

}  // namespace luacs::lua
