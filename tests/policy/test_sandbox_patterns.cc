// The sandbox's own string.find, match, gmatch and gsub (lua/patterns.cc)
// against Lua's: the same results and the same errors for a list of
// patterns that walks every feature, run once in a stock Lua state and once
// in a policy.
#include <gtest/gtest.h>

#include <lua.hpp>

#include <sstream>

#include "lua/policy.h"
#include "policy/harness.h"

namespace luacs::test {
namespace {

// Returns one line per case: its results (type:value) or its error without
// the position.
const char* kCases = R"LUA(
local Z = "a\0b\0c"
local cases = {
  {"find", "hello world", "o w"}, {"find", "hello world", "o", 6}, {"find", "hello", "l", -2},
  {"find", "hello", "l", -10}, {"find", "hello", "", 10}, {"find", "hello", "", 6},
  {"find", "hello", "", 0}, {"find", "a.b", ".", 1, true}, {"find", "a+b", "+", 1, true},
  {"find", "aaa", "aaaa", 1, true}, {"find", "", ""}, {"find", "abc", "", 4},
  {"find", "hello", "(l)(l)"}, {"find", "hello", "()ll()"}, {"find", "hello", "^h"},
  {"find", "hello", "^e"}, {"find", "hello", "o$"}, {"find", "hel$lo", "l$l"},
  {"find", "x", "$"}, {"find", "", "^$"}, {"find", Z, "\0b"}, {"find", Z, "b\0", 1, true},
  {"find", Z, "%z"}, {"find", Z, "[\0]"},
  {"match", "key = value", "(%w+)%s*=%s*(%w+)"}, {"match", "  trim  ", "^%s*(.-)%s*$"},
  {"match", "2024-05-01", "(%d+)-(%d+)-(%d+)"}, {"match", "abc", "()b()"},
  {"match", "THE (quick) fox", "%((%a+)%)"}, {"match", "f(a(b)c)d", "%b()"},
  {"match", "[[x]]", "%b[]"}, {"match", "no close (", "%b()"}, {"match", "xx", "%bxx"},
  {"match", "THE (quick) fox", "%f[%a]%a+"}, {"match", "hello world", "%f[%w]%w+$"},
  {"match", "THE", "%f[%l]"}, {"match", "abab", "(ab)%1"}, {"match", "abac", "(ab)%1"},
  {"match", "aaa", "a-"}, {"match", "aaa", "a-$"}, {"match", "aaa", "a*"}, {"match", "baaa", "a+"},
  {"match", "b", "a?b"}, {"match", "ab", "a?b"}, {"match", "x1y22z333", "%d+", 4},
  {"match", "a]b", "[]]"}, {"match", "a]b", "[^]]+"}, {"match", "a-b", "[a-]+"},
  {"match", "a-z", "[%a-]+"}, {"match", "50%", "[%%]"}, {"match", "a^b", "[b^]+"},
  {"match", "Az09_!", "[%w_]+"}, {"match", "x.y", "%."}, {"match", "éa", "[\128-\255]+"},
  {"match", "  \t\n", "%s+"}, {"match", "aB1 .", "%A+"}, {"match", "aB1 .", "%L+"},
  {"match", "aB1 .", "%U+"}, {"match", "aB1 .", "%D+"}, {"match", "aB1 .", "%S+"},
  {"match", "aB1 .", "%W+"}, {"match", "aB1 .", "%P+"}, {"match", "fF9g", "%x+"},
  {"match", "fF9g", "%X+"}, {"match", "\1\2a", "%c+"}, {"match", "a\1", "%C+"},
  {"match", "ab c", "%g+"}, {"match", "ab c", "%G+"}, {"match", "a", "(a)(b?)"},
  {"match", "abc", "((a)(b))"}, {"match", "x", "[a-c-e]"}, {"match", "-", "[a-c-e]"},
  {"match", "hello", ".-(l+)(.*)"}, {"match", "hello", "()"}, {"match", "aaa", "^(a-)a$"},
  {"gmatch", "one two  three", "%a+"}, {"gmatch", "k1=v1, k2=v2", "(%w+)=(%w+)"},
  {"gmatch", "abc", ""}, {"gmatch", "abc", ".-"}, {"gmatch", "a,b,,c", "([^,]*)"},
  {"gmatch", "hello", "^h"}, {"gmatch", "^hello", "^h"}, {"gmatch", "abcabc", "b", 3},
  {"gmatch", "abc", "x*", -1}, {"gmatch", "abc", "()", 10},
  {"gsub", "hello world", "o", "0"}, {"gsub", "hello world", "o", "0", 1},
  {"gsub", "hello", "", "-"}, {"gsub", "abc", "%w", "%0%0"}, {"gsub", "abc", "(%w)", "%1."},
  {"gsub", "abc", "%w", "%1"}, {"gsub", "abc", "()b", "%1"}, {"gsub", "50", "%d", "%%"},
  {"gsub", "hello world", "(%w+) (%w+)", "%2 %1"}, {"gsub", "abc", "^a", "X"},
  {"gsub", "aaa", "^a", "X"}, {"gsub", "abc", "b", {b = "B"}}, {"gsub", "abc", "%w", {a = 1, b = false}},
  {"gsub", "abc", "%w", function(c) if c == "b" then return nil end return c:upper() end},
  {"gsub", "a=1,b=2", "(%w)=(%w)", function(k, v) return v .. k end},
  {"gsub", "abc", "", function() return "." end}, {"gsub", "abc", "b*", "-"},
  {"gsub", "abc", "x", "y"}, {"gsub", "abc", "%w", "x", 0}, {"gsub", "abc", "%w", "x", -1},
  {"gsub", "abc", ".", 7}, {"gsub", Z, "%z", "0"}, {"gsub", "a.b", "%.", "%%."},
  -- errors
  {"find", "a", "%"}, {"find", "a", "[a"}, {"find", "a", "[a%"}, {"find", "a", "(a"},
  {"find", "a", "a)"}, {"find", "a", "%1"}, {"find", "a", "(a)%2"}, {"find", "a", "%0"},
  {"find", "a", "%b"}, {"find", "a", "%bx"}, {"find", "a", "%f"}, {"find", "a", "%fa"},
  {"find", "aa", "(a)%1"}, {"find", "a", "(()" }, {"match", "a", string.rep("()", 33)},
  {"match", string.rep("a", 300), string.rep("a?", 300)}, {"gsub", "abc", "b", "%2"},
  {"gsub", "abc", "b", "%x"}, {"gsub", "abc", "b", "%"}, {"gsub", "abc", "b", {b = {}}},
  {"gsub", "abc", "b", true}, {"gsub", "abc", "(b", "x"}, {"gmatch", "a", "%"},
  {"find", {}, "a"}, {"match", "a", nil}, {"gsub", "abc", "b"},
}
local function show(...)
  local t = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    t[#t + 1] = type(v) .. ":" .. tostring(v):gsub("\0", "<0>")
  end
  return table.concat(t, ",")
end
local out = {}
for i, c in ipairs(cases) do
  local f = string[c[1]]
  local ok, r = pcall(function()
    if c[1] == "gmatch" then
      local all = {}
      for a, b in f(c[2], c[3], c[4]) do all[#all + 1] = show(a, b) end
      return table.concat(all, "|")
    end
    return show(f(table.unpack(c, 2, 5)))
  end)
  if not ok then r = "error: " .. (tostring(r):match("^[^:]*:%d+: (.*)$") or tostring(r)) end
  out[#out + 1] = i .. " " .. c[1] .. " " .. r
end
return table.concat(out, "\n")
)LUA";

std::string stock_results() {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  std::string out;
  if (luaL_loadstring(L, kCases) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
    out = std::string("stock Lua failed: ") + lua_tostring(L, -1);
  else
    out = lua_tostring(L, -1);
  lua_close(L);
  return out;
}

TEST(SandboxPatterns, MatchLikeLua) {
  OneFilePolicy p("cases.lua",
                  std::string("local function cases()\n") + kCases +
                      "\nend\n"
                      "function connection_request_auth(dev) return cases(), 'x' end\n");
  std::string error;
  device::Device d;
  d.id = "D";
  const auto got = p.engine.connection_request_auth(d, &error);
  ASSERT_TRUE(got) << error;
  const std::string want = stock_results();
  ASSERT_EQ(want.find("stock Lua failed"), std::string::npos) << want;
  // Line by line, so a difference names its case.
  std::istringstream a(want), b(got->username);
  std::string la, lb;
  int lines = 0;
  while (std::getline(a, la)) {
    ASSERT_TRUE(std::getline(b, lb)) << "missing: " << la;
    EXPECT_EQ(lb, la);
    ++lines;
  }
  EXPECT_FALSE(std::getline(b, lb)) << "extra: " << lb;
  EXPECT_GT(lines, 130);
}

}  // namespace
}  // namespace luacs::test
