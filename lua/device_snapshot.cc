// The read-only `dev` of a hook outside a session (lua/device_snapshot.h).
#include "lua/device_snapshot.h"

#include <cctype>

#include "lua/binding.h"

namespace luacs::lua {

namespace {

constexpr const char* kMeta = "luacs.crdev";

struct Snapshot {
  const device::Device* d;  // lives for the call of the hook
};

const device::Device& self(lua_State* L) {
  auto* s = static_cast<Snapshot*>(luaL_checkudata(L, 1, kMeta));
  if (!s->d) luaL_error(L, "dev is gone: it lives for one call of the hook");
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
  return luaL_error(L, "dev is read-only outside a session");
}

}  // namespace

void push_device_snapshot(lua_State* L, const device::Device& d) {
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

void expire_device_snapshot(lua_State* L, int idx) {
  static_cast<Snapshot*>(luaL_checkudata(L, idx, kMeta))->d = nullptr;
}

}  // namespace luacs::lua
