// connection_request_auth(dev): the policy's answer to "which username and
// password does this device want on its connection-request URL?"
// (docs/policy-api.md §3, docs/connection-requests.md).
//
// It is called outside any session, by the connection-request service on
// its own thread and Engine, with the device as stored, as a read-only
// `dev` (lua/device_snapshot.h).
#include "lua/device_snapshot.h"
#include "lua/state.h"

namespace luacs::lua {

namespace {

bool is_string(lua_State* L, int idx) {
  return lua_type(L, idx) == LUA_TSTRING;
}

}  // namespace

bool Engine::has_connection_request_auth() {
  refresh();
  return current_ && current_->standalone_ref(kCrAuth) != LUA_NOREF;
}

std::optional<ConnectionRequestAuth> Engine::connection_request_auth(const device::Device& d,
                                                                     std::string* error) {
  error->clear();
  if (!has_connection_request_auth()) return std::nullopt;
  lua_State* L = current_->L();
  const int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, current_->standalone_ref(kCrAuth));
  push_device_snapshot(L, d);
  const int snapshot = lua_absindex(L, -1);
  lua_pushvalue(L, snapshot);
  lua_insert(L, top + 1);  // kept below the call, to be cleared after it
  manager_.hook_calls.fetch_add(1, std::memory_order_relaxed);
  const int rc = current_->pcall_budgeted(1, 2);
  expire_device_snapshot(L, top + 1);  // a kept dev goes stale
  std::optional<ConnectionRequestAuth> out;
  if (rc != LUA_OK) {
    *error = State::error_of(L, rc);
  } else if (lua_isnil(L, -2)) {
    // nil: the next source of credentials applies.
  } else if (!is_string(L, -2) || !is_string(L, -1)) {
    *error = std::string(kCrAuthHook) + " must return username, password (two strings) or nil";
  } else {
    out = ConnectionRequestAuth{lua_tostring(L, -2), lua_tostring(L, -1)};
  }
  if (!error->empty()) manager_.hook_errors.fetch_add(1, std::memory_order_relaxed);
  lua_settop(L, top);
  return out;
}

}  // namespace luacs::lua
