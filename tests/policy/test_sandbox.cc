// The policy sandbox: what a policy cannot reach, and what happens to a
// hook that runs away, eats memory or keeps `dev` after its session.
#include <gtest/gtest.h>

#include "policy/harness.h"

namespace luacs::test {
namespace {

// The one policy fault of a session ("" when none).
std::string fault_of(const SessionLog& log) {
  for (const auto& f : log.result.faults)
    if (f.source == "policy") return f.message;
  return "";
}

SessionLog one_session(const std::string& policy, lua::Limits limits = {}) {
  PolicyWorld w(policy_dir({{"main.lua", policy}}), limits);
  auto d = w.device(corpus_model(kTr181));
  return w.session(d);
}

TEST(Sandbox, OnlySafeLibrariesAreThere) {
  auto log = one_session(R"(
    function on_inform(dev)
      local absent = {}
      for _, name in ipairs{"io", "require", "package", "debug", "dofile", "loadfile",
                            "collectgarbage", "coroutine", "warn"} do
        if _G[name] ~= nil then absent[#absent + 1] = name end
      end
      if os.execute or os.exit or os.getenv or os.remove or os.rename or os.tmpname then
        absent[#absent + 1] = "os.*"
      end
      if string.dump then absent[#absent + 1] = "string.dump" end
      dev:summary{ leaked = table.concat(absent, ","),
                   has = tostring(type(os.time) == "function" and type(string.format) == "function"
                                  and type(table.concat) == "function" and type(math.floor) == "function"
                                  and type(utf8.char) == "function") }
    end
  )");
  EXPECT_EQ(log.final_status, 204);
  EXPECT_EQ(summary(log, "leaked"), "");
  EXPECT_EQ(summary(log, "has"), "true");
}

TEST(Sandbox, BinaryChunksAreRefused) {
  // A precompiled chunk starts with "\27Lua".
  auto log = one_session(R"(
    function on_inform(dev)
      local f, err = load("\27LuaT\0\25\147\13\10\26\10")
      local ok, err2 = pcall(load, "return 1", "x", "b")
      local g = load("return 40 + 2")
      dev:summary{ binary = tostring(f) .. " " .. tostring(err), mode = tostring(err2), text = g() }
    end
  )");
  EXPECT_EQ(log.final_status, 204);
  EXPECT_NE(summary(log, "binary").find("nil"), std::string::npos);
  EXPECT_NE(summary(log, "binary").find("binary"), std::string::npos) << summary(log, "binary");
  EXPECT_NE(summary(log, "mode").find("binary chunks are not allowed"), std::string::npos);
  EXPECT_EQ(summary(log, "text"), "42");
}

TEST(Sandbox, AnInfiniteLoopIsStoppedAndPcallCannotSwallowIt) {
  lua::Limits limits;
  limits.max_instructions = 2'000'000;
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_event(dev)
      pcall(function() while true do end end)
      dev:tag("swallowed")
    end
    function on_inform(dev) dev:tag("next-hook-ran") end
  )"}}),
                limits);
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_NE(fault_of(log).find("policy budget exceeded: more than 2000000 instructions"),
            std::string::npos)
      << fault_of(log);
  // The pcall caught the first stop (line 3); the very next line trips again.
  EXPECT_NE(fault_of(log).find("main.lua:4:"), std::string::npos) << fault_of(log);
  EXPECT_FALSE(has(log.result.tags_added, "swallowed"));
  EXPECT_TRUE(has(log.result.tags_added, "next-hook-ran"));
}

TEST(Sandbox, TheTimeLimitStopsSlowCode) {
  lua::Limits limits;
  limits.max_instructions = uint64_t{1} << 40;
  limits.time_limit = std::chrono::milliseconds(30);
  auto start = std::chrono::steady_clock::now();
  auto log = one_session(
      "function on_inform(dev)\n  local s = 0\n  while true do s = s + 1 end\nend\n", limits);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(log.final_status, 204);
  EXPECT_NE(fault_of(log).find("ran longer than 30 ms"), std::string::npos) << fault_of(log);
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(Sandbox, AMemoryBombIsStoppedAndTheStateRecovers) {
  lua::Limits limits;
  limits.memory_limit = 8 << 20;
  limits.time_limit = std::chrono::seconds(20);  // the memory cap must be what stops it
  limits.max_instructions = uint64_t{1} << 40;
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      if dev.is_new then
        local t = {}
        pcall(function()
          for i = 1, 1e9 do t[i] = string.rep("x", 4096) .. i end
        end)
        dev:tag("swallowed")
      else
        dev:tag("fine")
      end
    end
  )"}}),
                limits);
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_NE(fault_of(log).find("policy memory limit exceeded (8 MiB per Lua state)"),
            std::string::npos)
      << fault_of(log);
  EXPECT_FALSE(has(log.result.tags_added, "swallowed"));
  // The garbage went with the hook: the next session runs normally.
  auto next = w.session(d);
  EXPECT_EQ(fault_of(next), "");
  EXPECT_TRUE(has(next.result.tags_added, "fine"));
  EXPECT_LT(w.engine().memory(), size_t{8} << 20);
}

TEST(Sandbox, ALargeStringIsRefused) {
  lua::Limits limits;
  limits.memory_limit = 8 << 20;
  auto log =
      one_session("function on_inform(dev) local s = string.rep('x', 1 << 30) end\n", limits);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_NE(fault_of(log).find("memory limit exceeded"), std::string::npos) << fault_of(log);
}

TEST(Sandbox, ADevKeptInAGlobalGoesStale) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      if saved then saved:tag("through-a-stale-handle") end
      saved = dev
    end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto first = w.session(d);
  EXPECT_EQ(fault_of(first), "");
  auto second = w.session(d);
  EXPECT_EQ(second.final_status, 204);
  EXPECT_NE(fault_of(second).find("dev used after its session ended"), std::string::npos)
      << fault_of(second);
  EXPECT_NE(fault_of(second).find("main.lua:3:"), std::string::npos);
  EXPECT_FALSE(has(second.result.tags_added, "through-a-stale-handle"));
}

TEST(Sandbox, WaitingWhereAYieldIsImpossibleIsACleanError) {
  auto log = one_session(R"(
    function on_inform(dev)
      local t = {"b", "a"}
      table.sort(t, function(x, y) dev:get{"Device.DeviceInfo.UpTime"}; return x < y end)
    end
  )");
  EXPECT_EQ(log.final_status, 204);
  EXPECT_NE(fault_of(log).find("cannot be called here"), std::string::npos) << fault_of(log);
  EXPECT_TRUE(log.methods.empty());
}

TEST(Sandbox, FinalizersAreRefused) {
  auto log = one_session(R"(
    function on_inform(dev)
      setmetatable({}, { __gc = function() while true do end end })
    end
  )");
  EXPECT_NE(fault_of(log).find("__gc metamethods are not allowed"), std::string::npos)
      << fault_of(log);
  auto ok = one_session(R"(
    function on_inform(dev)
      local t = setmetatable({}, { __index = function() return 7 end })
      dev:summary{ v = t.anything }
    end
  )");
  EXPECT_EQ(summary(ok, "v"), "7");
}

TEST(Sandbox, ARunawayTopLevelFailsTheLoad) {
  lua::Limits limits;
  limits.max_instructions = 1'000'000;
  auto r = lua::check(policy_dir({{"main.lua", "while true do end\n"}}), limits);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("main.lua:1: policy budget exceeded"), std::string::npos) << r.error;
}

TEST(Sandbox, DevIsReadOnly) {
  auto log = one_session("function on_inform(dev) dev.id = 'other' end\n");
  EXPECT_NE(fault_of(log).find("dev is read-only"), std::string::npos) << fault_of(log);
}

}  // namespace
}  // namespace luacs::test
