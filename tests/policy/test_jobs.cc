// luacs.job, luacs.settings, the types of summary fields and the failure
// channel of the dev methods, through whole simulated sessions; and each
// shipped job file on its own.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "lua/policy.h"
#include "policy/harness.h"

namespace luacs::test {
namespace {

const std::vector<soap::EventStruct> kBoot{{"1 BOOT", ""}};

PolicyWorld::Options boot() {
  PolicyWorld::Options o;
  o.events = kBoot;
  return o;
}

bool has_fault(const SessionLog& log, const std::string& part) {
  for (const auto& f : log.result.faults)
    if (f.source == "policy" && f.message.find(part) != std::string::npos) return true;
  return false;
}

TEST(LuacsJob, GlobalHookFirstThenJobsInOrderAndARegisteredNameIsReplacedInPlace) {
  PolicyWorld w(policy_dir({{"10-a.lua", R"(
    order = {}
    luacs.job{ name = "a", on_inform = function(dev) order[#order + 1] = "a1" end }
    luacs.job{ name = "b", on_inform = function(dev) order[#order + 1] = "b" end }
    luacs.job{ name = "c", on_inform = function(dev)
      order[#order + 1] = "c"
      dev:summary{ order = table.concat(order, ",") }
      order = {}
    end }
  )"},
                            {"20-b.lua", R"(
    luacs.job{ name = "a", on_inform = function(dev) order[#order + 1] = "a2" end }
    luacs.job{ name = "b" }
    function on_inform(dev) order[#order + 1] = "global" end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d, boot());
  EXPECT_EQ(summary(log, "order"), "global,a2,c");
  auto r = lua::check(policy_dir({{"a.lua", R"(
    luacs.job{ name = "x", on_event = function() end }
    luacs.job{ name = "y" }
  )"}}),
                      {});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.policy->jobs, (std::vector<std::string>{"x", "y (off)"}));
  EXPECT_EQ(r.policy->hooks, std::vector<std::string>{"on_event"});
}

TEST(LuacsJob, AnErrorIsTheJobsFaultAndTheNextJobRuns) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev) error("global boom") end
    luacs.job{ name = "bad", on_inform = function(dev) error("boom") end }
    luacs.job{ name = "good", on_inform = function(dev) dev:tag("good_ran") end }
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d, boot());
  EXPECT_EQ(log.final_status, 204);
  EXPECT_TRUE(has_fault(log, "on_inform: ")) << log.result.faults.size();
  EXPECT_TRUE(has_fault(log, "job bad on_inform: ")) << log.result.faults.size();
  EXPECT_TRUE(has_fault(log, "main.lua:3: boom"));
  EXPECT_TRUE(has(log.result.tags_added, "good_ran"));
}

TEST(LuacsJob, ABudgetOverrunStopsTheWholeHook) {
  lua::Limits limits;
  limits.max_instructions = 200000;
  PolicyWorld w(policy_dir({{"main.lua", R"(
    luacs.job{ name = "spin", on_inform = function(dev) while true do end end }
    luacs.job{ name = "after", on_inform = function(dev) dev:tag("after_ran") end }
    luacs.job{ name = "events", on_event = function(dev) dev:tag("event_ran") end }
  )"}}),
                limits);
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d, boot());
  EXPECT_EQ(log.final_status, 204);
  EXPECT_TRUE(has_fault(log, "job spin on_inform: "));
  EXPECT_TRUE(has_fault(log, "policy budget exceeded"));
  EXPECT_FALSE(has(log.result.tags_added, "after_ran"));
  EXPECT_TRUE(has(log.result.tags_added, "event_ran"));  // another hook: its own budget
}

TEST(LuacsJob, MisuseIsAnErrorAtLoad) {
  auto typo =
      lua::check(policy_dir({{"a.lua", "luacs.job{ name = 'x', on_infrom = print }\n"}}), {});
  EXPECT_FALSE(typo.ok);
  EXPECT_NE(typo.error.find("a.lua:1: "), std::string::npos) << typo.error;
  EXPECT_NE(typo.error.find("unknown key 'on_infrom' (did you mean on_inform?)"), std::string::npos)
      << typo.error;
  auto noname = lua::check(policy_dir({{"a.lua", "luacs.job{ on_inform = print }\n"}}), {});
  EXPECT_NE(noname.error.find("a job needs a name"), std::string::npos) << noname.error;
  auto notfn = lua::check(policy_dir({{"a.lua", "luacs.job{ name = 'x', on_inform = 1 }\n"}}), {});
  EXPECT_NE(notfn.error.find("on_inform is a number, not a function"), std::string::npos)
      << notfn.error;

  PolicyWorld w(policy_dir({{"a.lua", R"(
    function on_inform(dev) luacs.job{ name = "late" } end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d, boot());
  EXPECT_TRUE(has_fault(log, "luacs.job is for the top level of a policy file"));
}

TEST(LuacsSettings, OverridesAreMergedIntoTheDefaults) {
  PolicyWorld w(policy_dir({{"05-early.lua", "settings.x = { early = 'e' }\n"},
                            {"10-job.lua", R"(
    local cfg = luacs.settings("x", { a = 1, early = "default", nested = { c = 2, d = 3 },
                                      list = { "p", "q" }, off = 10 })
    luacs.job{ name = "x", on_inform = function(dev)
      local s = settings.x
      dev:summary{ same = rawequal(s, cfg), a = s.a, early = s.early, c = s.nested.c,
                   d = s.nested.d, list = table.concat(s.list, ","), off = s.off,
                   extra = s.extra }
    end }
  )"},
                            {"99-local.lua", R"(
    settings.x = { nested = { c = 5 }, list = { "r" }, off = false }
    settings.x.extra = "yes"
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d, boot());
  EXPECT_EQ(summary(log, "same"), "true");
  EXPECT_EQ(summary(log, "a"), "1");
  EXPECT_EQ(summary(log, "early"), "e");
  EXPECT_EQ(summary(log, "c"), "5");
  EXPECT_EQ(summary(log, "d"), "3");
  EXPECT_EQ(summary(log, "list"), "r");  // a list is a value, not merged
  EXPECT_EQ(summary(log, "off"), "false");
  EXPECT_EQ(summary(log, "extra"), "yes");

  auto bad = lua::check(policy_dir({{"10-job.lua", "luacs.settings('x', { a = 1 })\n"},
                                    {"99-local.lua", "settings.x = 'y'\n"}}),
                        {});
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find("settings.x is a string, not a table"), std::string::npos) << bad.error;
}

TEST(Summary, NumbersAndBooleansStayWhatTheyWere) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev, inform)
      if inform:has_event("1 boot") then
        dev:summary{ attempts = 3, ok = true, ratio = 1.5, name = "x", digits = "007" }
        return
      end
      local s = dev:summary()
      dev:summary{ types = table.concat({ math.type(s.attempts), type(s.ok), math.type(s.ratio),
                                          type(s.name), type(s.digits) }, ","),
                   next = s.attempts + 1 }
    end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto first = w.session(d, boot());
  ASSERT_TRUE(d.stored);
  const auto& p = d.stored->parameters;
  EXPECT_EQ(p.at("Summary.attempts").value, "3");
  EXPECT_EQ(p.at("Summary.attempts").type, "int");
  EXPECT_EQ(p.at("Summary.ok").value, "true");
  EXPECT_EQ(p.at("Summary.ok").type, "boolean");
  EXPECT_EQ(p.at("Summary.digits").type, "string");
  auto second = w.session(d);
  EXPECT_EQ(summary(second, "types"), "integer,boolean,float,string,string");
  EXPECT_EQ(summary(second, "next"), "4");
}

TEST(FailureChannel, APushThatCannotBeServedIsNilAndAFaultAndABadArgumentRaises) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      local key, fault = dev:upgrade{ version = "7.15.3", links = { "nope-7.15.3.npk" } }
      dev:summary{ key = tostring(key), code = fault.code, why = fault.string }
      local ok, err = pcall(function() return dev:upgrade{ version = "7.15.3", link = {} } end)
      dev:summary{ raised = not ok, err = tostring(err) }
    end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d, boot());
  EXPECT_EQ(log.count("Download"), 0u);
  EXPECT_EQ(summary(log, "key"), "nil");
  EXPECT_EQ(summary(log, "code"), "0");
  EXPECT_EQ(summary(log, "why"),
            "dev:upgrade: no file 'nope-7.15.3.npk' on the file server ([files] dir)");
  EXPECT_EQ(summary(log, "raised"), "true");
  EXPECT_NE(summary(log, "err").find("unknown option 'link'"), std::string::npos);
}

TEST(DevHelpers, IsMikrotikAndHasEvent) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev, inform)
      dev:summary{ mt = dev.is_mikrotik, boot = inform:has_event("1 BOOT"),
                   periodic = inform:has_event("2 PERIODIC") }
    end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d, boot());
  EXPECT_EQ(summary(log, "mt"), "false");
  EXPECT_EQ(summary(log, "boot"), "true");
  EXPECT_EQ(summary(log, "periodic"), "false");
  auto m = w.device(mikrotik_model("7.15.3", "arm"));
  EXPECT_EQ(summary(w.session(m, boot()), "mt"), "true");
}

// Each shipped job file, copied alone into an empty folder, is a policy.
TEST(ShippedJobs, EachFileStandsAlone) {
  for (const char* file :
       {"10-normalise.lua", "20-adoption.lua", "30-firmware.lua", "40-wifi.lua"}) {
    std::ifstream in(std::string(LUACS_SOURCE_DIR) + "/policies/default/" + file);
    std::stringstream text;
    text << in.rdbuf();
    ASSERT_FALSE(text.str().empty()) << file;
    std::string dir = policy_dir({{file, text.str()}});
    auto r = lua::check(dir, {});
    ASSERT_TRUE(r.ok) << file << ": " << r.error;
    EXPECT_TRUE(r.warnings.empty()) << file;
    EXPECT_EQ(r.policy->jobs.size(), 1u) << file;
    PolicyWorld w(dir);
    for (auto model : {corpus_model(kTr181), mikrotik_model("6.49.10", "mipsbe")}) {
      auto d = w.device(model);
      auto log = w.session(d, boot());
      EXPECT_EQ(log.final_status, 204) << file;
      EXPECT_TRUE(log.result.faults.empty()) << file << ": " << log.result.faults[0].message;
    }
  }
}

}  // namespace
}  // namespace luacs::test
