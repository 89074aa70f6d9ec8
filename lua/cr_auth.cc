// connection_request_auth(dev): the policy's answer to "which username and
// password does this device want on its connection-request URL?"
// (docs/policy-api.md §3, docs/connection-requests.md).
//
// It is called outside any session, by the connection-request service on
// its own thread and Engine, with the device as stored. Its `dev` is a
// read-only snapshot with the reading half of a session's `dev`: the same
// fields, dev:param, dev:params, dev:has_tag and dev:tags. It cannot send
// an RPC or change a tag: there is no session to carry them.
#include <cctype>

#include "core/util/log.h"
#include "lua/binding.h"
#include "lua/state.h"

namespace luacs::lua {

namespace {

constexpr const char* kMeta = "luacs.crdev";

struct Snapshot {
  const device::Device* d;  // lives for the call (connection_request_auth)
};

const device::Device& self(lua_State* L) {
  auto* s = static_cast<Snapshot*>(luaL_checkudata(L, 1, kMeta));
  if (!s->d) luaL_error(L, "dev is gone: it lives for one connection_request_auth call");
  return *s->d;
}

int64_t epoch(device::Time t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

int push_str(lua_State* L, const std::string& s) {
  lua_pushlstring(L, s.data(), s.size());
  return 1;
}

int crdev_param(lua_State* L) {
  const auto& d = self(L);
  const auto it = d.parameters.find(luaL_checkstring(L, 2));
  if (it == d.parameters.end()) {
    lua_pushnil(L);
    return 1;
  }
  push_str(L, it->second.value);
  push_str(L, it->second.type);
  lua_pushinteger(L, epoch(it->second.read_at));
  return 3;
}

int crdev_params(lua_State* L) {
  const auto& d = self(L);
  const std::string prefix = luaL_optstring(L, 2, "");
  lua_newtable(L);
  for (auto it = d.parameters.lower_bound(prefix);
       it != d.parameters.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    push_str(L, it->second.value);
    lua_setfield(L, -2, it->first.c_str());
  }
  return 1;
}

int crdev_has_tag(lua_State* L) {
  lua_pushboolean(L, self(L).tags.count(luaL_checkstring(L, 2)) > 0);
  return 1;
}

int crdev_tags(lua_State* L) {
  const auto& d = self(L);
  lua_createtable(L, static_cast<int>(d.tags.size()), 0);
  lua_Integer i = 0;
  for (const auto& t : d.tags) {
    push_str(L, t);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

const luaL_Reg kMethods[] = {
    {"param", safe<"dev:param", crdev_param>},
    {"params", safe<"dev:params", crdev_params>},
    {"has_tag", safe<"dev:has_tag", crdev_has_tag>},
    {"tags", safe<"dev:tags", crdev_tags>},
    {nullptr, nullptr},
};

// Methods first (upvalue 1), then the fields of the stored device.
int crdev_index(lua_State* L) {
  const std::string key = luaL_checkstring(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  const auto& d = self(L);
  if (key == "id") return push_str(L, d.id);
  if (key == "oui") return push_str(L, d.oui);
  if (key == "product_class") return push_str(L, d.product_class);
  if (key == "serial") return push_str(L, d.serial_number);
  if (key == "manufacturer") return push_str(L, d.manufacturer);
  if (key == "root") return push_str(L, d.data_model_root);
  if (key == "is_mikrotik") {
    std::string m = d.manufacturer;
    for (char& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lua_pushboolean(L, m == "mikrotik");
    return 1;
  }
  if (key == "ip") return push_str(L, d.remote_address);
  if (key == "first_seen" || key == "last_inform") {
    const auto t = key == "first_seen" ? d.first_seen : d.last_inform;
    if (t == device::Time{})
      lua_pushnil(L);
    else
      lua_pushinteger(L, epoch(t));
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

int crdev_newindex(lua_State* L) {
  return luaL_error(L, "dev is read-only in connection_request_auth");
}

void push_snapshot(lua_State* L, const device::Device& d) {
  auto* s = static_cast<Snapshot*>(lua_newuserdatauv(L, sizeof(Snapshot), 0));
  s->d = &d;
  if (luaL_newmetatable(L, kMeta)) {
    luaL_newlib(L, kMethods);
    lua_pushcclosure(L, safe<"dev", crdev_index>, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, (safe<"dev", crdev_newindex>));
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "dev");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
}

bool is_string(lua_State* L, int idx) {
  return lua_type(L, idx) == LUA_TSTRING;
}

}  // namespace

bool Engine::has_connection_request_auth() {
  refresh();
  return current_ && current_->cr_auth_ref() != LUA_NOREF;
}

std::optional<ConnectionRequestAuth> Engine::connection_request_auth(const device::Device& d,
                                                                     std::string* error) {
  error->clear();
  if (!has_connection_request_auth()) return std::nullopt;
  lua_State* L = current_->L();
  const int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, current_->cr_auth_ref());
  push_snapshot(L, d);
  const int snapshot = lua_absindex(L, -1);
  lua_pushvalue(L, snapshot);
  lua_insert(L, top + 1);  // kept below the call, to be cleared after it
  manager_.hook_calls.fetch_add(1, std::memory_order_relaxed);
  const int rc = current_->pcall_budgeted(1, 2);
  static_cast<Snapshot*>(lua_touserdata(L, top + 1))->d = nullptr;  // a kept dev goes stale
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
