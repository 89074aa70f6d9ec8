// Internal to lua/: what the sandbox changes in Lua's standard libraries
// (sandbox.cc, patterns.cc), into a state being built by State::load.
//
// - The C functions of the libraries that can loop far longer than their
//   allocations say (pattern matching, table.insert/remove/move/concat/sort,
//   string.format, os.date, load) charge their work to the hook's budget
//   (State::charge), or are refused where the work has no bound;
//   string.rep("", n) returns at once.
// - The libraries (string, table, math, utf8, os, luacs) are read-only
//   views once the policy has loaded: a hook cannot change what the next
//   hook on the worker finds in them. The string metatable and the views'
//   metatables are hidden (getmetatable gives false) and rawset refuses a
//   view.
#pragma once

#include <lua.hpp>

namespace luacs::lua {

// Replaces string.format and string.rep, os.date and table.insert, remove,
// move, concat and sort with bounded versions.
void open_bounded(lua_State* L);
// Replaces string.find, match, gmatch and gsub with a matcher that charges
// every step (patterns.cc).
void open_patterns(lua_State* L);
// The global table `name` becomes a read-only view of itself; writes go
// through while the files load (State::loading).
void make_library_view(lua_State* L, const char* name);
// rawset refusing the views; the string metatable hidden.
void protect_shared(lua_State* L);

}  // namespace luacs::lua
