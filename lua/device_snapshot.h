// Internal to lua/: the read-only `dev` of a hook called outside a session
// (connection_request_auth, authorize): the stored device's fields,
// dev:param, dev:params, dev:has_tag and dev:tags -- the reading half of a
// session's `dev`. It cannot send an RPC or change a tag: there is no
// session to carry them.
#pragma once

#include <lua.hpp>

#include "core/device/device.h"

namespace luacs::lua {

// Pushes a `dev` reading `d`, which must outlive the call it is given to.
void push_device_snapshot(lua_State* L, const device::Device& d);
// After the call: a `dev` the policy kept (in a global, an upvalue) then
// raises "dev is gone" instead of reading freed memory.
void expire_device_snapshot(lua_State* L, int idx);

}  // namespace luacs::lua
