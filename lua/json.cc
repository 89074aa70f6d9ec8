// JSON text <-> Lua values (lua/json.h). Worker thread.
#include "lua/json.h"

#include <cstdint>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/util/json.h"

namespace luacs::lua {
namespace {

constexpr int kMaxJsonDepth = 64;

void push_json_value(lua_State* L, const nlohmann::json& j, int depth) {
  if (depth > kMaxJsonDepth) throw std::runtime_error("nested too deeply");
  luaL_checkstack(L, 3, "json");
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      lua_pushnil(L);
      break;
    case nlohmann::json::value_t::boolean:
      lua_pushboolean(L, j.get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
      lua_pushinteger(L, j.get<int64_t>());
      break;
    case nlohmann::json::value_t::number_unsigned:
      lua_pushinteger(L, static_cast<lua_Integer>(j.get<uint64_t>()));
      break;
    case nlohmann::json::value_t::number_float:
      lua_pushnumber(L, j.get<double>());
      break;
    case nlohmann::json::value_t::string: {
      const auto& s = j.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      break;
    }
    case nlohmann::json::value_t::array: {
      lua_createtable(L, static_cast<int>(j.size()), 0);
      lua_Integer i = 1;
      for (const auto& e : j) {
        push_json_value(L, e, depth + 1);
        lua_rawseti(L, -2, i++);
      }
      break;
    }
    case nlohmann::json::value_t::object: {
      lua_createtable(L, 0, static_cast<int>(j.size()));
      for (const auto& [k, v] : j.items()) {
        lua_pushlstring(L, k.data(), k.size());
        push_json_value(L, v, depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    default:
      lua_pushnil(L);
  }
}

nlohmann::json json_of(lua_State* L, int idx, int depth) {
  if (depth > kMaxJsonDepth) throw std::runtime_error("nested too deeply (or a cycle)");
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return nullptr;
    case LUA_TBOOLEAN:
      return lua_toboolean(L, idx) != 0;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) return static_cast<int64_t>(lua_tointeger(L, idx));
      return lua_tonumber(L, idx);
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, idx, &len);
      return std::string(s, len);
    }
    case LUA_TTABLE: {
      luaL_checkstack(L, 4, "json");
      lua_Unsigned n = lua_rawlen(L, idx);
      // A sequence 1..n with nothing else is an array; {} is an object.
      size_t count = 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        ++count;
        lua_pop(L, 1);
      }
      if (n > 0 && count == n) {
        nlohmann::json a = nlohmann::json::array();
        for (lua_Unsigned i = 1; i <= n; ++i) {
          lua_rawgeti(L, idx, static_cast<lua_Integer>(i));
          a.push_back(json_of(L, -1, depth + 1));
          lua_pop(L, 1);
        }
        return a;
      }
      nlohmann::json o = nlohmann::json::object();
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        std::string key;
        if (lua_type(L, -2) == LUA_TSTRING) {
          size_t len = 0;
          const char* k = lua_tolstring(L, -2, &len);
          key.assign(k, len);
        } else if (lua_type(L, -2) == LUA_TNUMBER) {
          lua_pushvalue(L, -2);
          key = lua_tostring(L, -1);
          lua_pop(L, 1);
        } else {
          lua_pop(L, 2);
          throw std::runtime_error("table keys must be strings or numbers");
        }
        o[key] = json_of(L, -1, depth + 1);
        lua_pop(L, 1);
      }
      return o;
    }
    default:
      throw std::runtime_error(std::string("cannot encode a ") + luaL_typename(L, idx));
  }
}

}  // namespace

void push_json(lua_State* L, std::string_view json) {
  auto j = nlohmann::json::parse(json.begin(), json.end(), nullptr, true, false);
  push_json_value(L, j, 0);
}

std::string to_json(lua_State* L, int index) {
  return util::json_text(json_of(L, index, 0));
}

}  // namespace luacs::lua
