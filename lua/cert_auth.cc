// authorize(dev, cert): the policy's say on whether the client certificate a
// CPE presented over TLS belongs to the device that informs with it
// (docs/tls.md "Client certificates", docs/policy-api.md).
//
// It is called by the CWMP server on the worker of the Inform, before the
// session starts, with the device as stored (tags, parameters, the
// Inform's identity on top) as a read-only `dev` (lua/device_snapshot.h).
// It fails closed: anything but `true` refuses the device.
#include "lua/device_snapshot.h"
#include "lua/state.h"

namespace luacs::lua {

namespace {

void set_string(lua_State* L, const char* key, const std::string& v) {
  lua_pushlstring(L, v.data(), v.size());
  lua_setfield(L, -2, key);
}

void push_certificate(lua_State* L, const device::ClientCertificate& c, bool bound) {
  lua_createtable(L, 0, 8);
  set_string(L, "subject", c.subject);
  set_string(L, "issuer", c.issuer);
  set_string(L, "common_name", c.common_name);
  set_string(L, "serial", c.serial);
  set_string(L, "sha256", c.sha256);
  set_string(L, "not_after", c.not_after);
  lua_createtable(L, static_cast<int>(c.sans.size()), 0);
  lua_Integer i = 0;
  for (const auto& san : c.sans) {
    lua_pushlstring(L, san.data(), san.size());
    lua_rawseti(L, -2, ++i);
  }
  lua_setfield(L, -2, "sans");
  lua_pushboolean(L, bound);
  lua_setfield(L, -2, "bound");
}

}  // namespace

bool Engine::has_authorize() {
  refresh();
  return current_ && current_->standalone_ref(kAuthorize) != LUA_NOREF;
}

Authorization Engine::authorize(const device::Device& d, const device::ClientCertificate& cert,
                                bool bound) {
  Authorization out;
  if (!has_authorize()) {
    out.reason = "no authorize hook";
    return out;
  }
  lua_State* L = current_->L();
  const int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, current_->standalone_ref(kAuthorize));
  push_device_snapshot(L, d);
  lua_pushvalue(L, -1);
  lua_insert(L, top + 1);  // kept below the call, to be cleared after it
  push_certificate(L, cert, bound);
  manager_.hook_calls.fetch_add(1, std::memory_order_relaxed);
  const int rc = current_->pcall_budgeted(2, 2);
  expire_device_snapshot(L, top + 1);
  if (rc != LUA_OK) {
    out.reason = "authorize failed: " + State::error_of(L, rc);
    manager_.hook_errors.fetch_add(1, std::memory_order_relaxed);
  } else if (lua_type(L, -2) == LUA_TBOOLEAN && lua_toboolean(L, -2)) {
    out.allowed = true;
  } else if (lua_isnil(L, -2) || lua_type(L, -2) == LUA_TBOOLEAN) {
    out.reason = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "refused by authorize";
  } else {
    out.reason = std::string("authorize must return true, or false/nil and a reason, not a ") +
                 luaL_typename(L, -2);
    manager_.hook_errors.fetch_add(1, std::memory_order_relaxed);
  }
  lua_settop(L, top);
  return out;
}

}  // namespace luacs::lua
