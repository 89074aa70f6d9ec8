// Internal to lua/: JSON text <-> Lua values, for task arguments and
// results and for luacs.json_encode / json_decode. Objects become tables
// with string keys, arrays sequences; a table is an array when it is a
// non-empty sequence with nothing else. Runs on the worker thread that owns
// the Lua state.
#pragma once

#include <lua.hpp>

#include <string>
#include <string_view>

namespace luacs::lua {

// Pushes the value of `json`; throws on bad JSON or nesting deeper than 64.
void push_json(lua_State* L, std::string_view json);
// The JSON text of the value at `index`; throws on a value JSON cannot
// carry (a function, a table key that is not a string or number, a cycle)
// or one larger than the state's memory limit. `charge`: called by the
// policy in a hook, the work counts against its budget (State::charge).
std::string to_json(lua_State* L, int index, bool charge = false);

}  // namespace luacs::lua
