// The policy engine (lua/) through whole simulated sessions: hooks as
// coroutines, the dev API, batching and 9005 narrowing, faults, tasks,
// pushes, reload and generations, luacs check.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "core/cwmp/session.h"
#include "core/soap/reader.h"
#include "lua/policy.h"
#include "policy/harness.h"

namespace luacs::test {
namespace {

TEST(PolicyEngine, HooksRunInOrderAsCoroutines) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    local order = {}
    function on_transfer_complete(dev, tc)
      order[#order + 1] = "tc:" .. tc.command_key .. ":" .. tostring(tc.ok)
    end
    function on_event(dev, code, inform)
      order[#order + 1] = "event:" .. code
    end
    function on_inform(dev, inform)
      local v = dev:get{"Device.DeviceInfo.SoftwareVersion", "Device.DeviceInfo.UpTime"}
      order[#order + 1] = "inform:" .. v["Device.DeviceInfo.SoftwareVersion"]
      local sw, ty = dev:param("Device.DeviceInfo.UpTime")
      order[#order + 1] = "type:" .. ty
      dev:summary{ order = table.concat(order, "|") }
      order = {}
    end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  PolicyWorld::Options o;
  o.events = {{"1 BOOT", ""}, {"7 TRANSFER COMPLETE", ""}};
  o.transfers = {{false, "fw-1", 0, "", "", "", false, "", "", "", 0}};
  auto log = w.session(d, o);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_EQ(log.methods, std::vector<std::string>{"GetParameterValues"});
  EXPECT_EQ(summary(log, "order"),
            "tc:fw-1:true|event:1 BOOT|event:7 TRANSFER COMPLETE|"
            "inform:1.12.0 Build 220820 Rel.52419n(4252)|type:unsignedInt");
  EXPECT_EQ(log.generation, 1u);
}

TEST(PolicyEngine, AbsentHooksCostNothing) {
  PolicyWorld w(policy_dir({{"lib.lua", "function helper() return 1 end\n"}}));
  auto d = w.device(corpus_model(kTr181));
  // No hook, no task: the engine gives no run at all.
  auto log = w.session(d);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_EQ(log.generation, 0u);
  EXPECT_TRUE(log.methods.empty());
}

TEST(PolicyEngine, GetIsBatchedAndA9005IsNarrowedToTheBadNames) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      local names = {}
      for i = 1, 40 do names[#names + 1] = "Device.DeviceInfo.SoftwareVersion" end
      names[7] = "Device.Nope.One"
      names[33] = "Device.Nope.Two"
      local v, fault = dev:get(names)
      table.sort(fault.invalid)
      dev:summary{ got = v["Device.DeviceInfo.SoftwareVersion"] ~= nil,
                   code = fault.code, invalid = table.concat(fault.invalid, ",") }
    end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_EQ(summary(log, "got"), "true");
  EXPECT_EQ(summary(log, "code"), "9005");
  EXPECT_EQ(summary(log, "invalid"), "Device.Nope.One,Device.Nope.Two");
  auto gpvs = log.all<soap::GetParameterValues>();
  ASSERT_GE(gpvs.size(), 2u);
  for (const auto& g : gpvs) EXPECT_LE(g.names.size(), 32u);
  EXPECT_EQ(gpvs[0].names.size(), 32u);
  EXPECT_EQ(gpvs[1].names.size(), 8u);
}

TEST(PolicyEngine, NamesAModelRefusedAreNotAskedOfItsNextDevice) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      local v, fault = dev:get{ "Device.DeviceInfo.ModelName", "Device.Nope.One",
                                "Device.DeviceInfo.SoftwareVersion", "Device.Nope.Two" }
      table.sort(fault.invalid)
      dev:summary{ model = v["Device.DeviceInfo.ModelName"], code = fault.code,
                   invalid = table.concat(fault.invalid, ",") }
    end
  )"}}));
  auto first = w.device(corpus_model(kTr181), "FIRST0001");
  auto log1 = w.session(first);
  // The first device of the model: the fault is narrowed, one RPC per half.
  EXPECT_GE(log1.all<soap::GetParameterValues>().size(), 3u);
  EXPECT_EQ(summary(log1, "invalid"), "Device.Nope.One,Device.Nope.Two");

  // Same OUI, ProductClass and SoftwareVersion: one GetParameterValues of the
  // good names, and the same answer for the policy.
  auto second = w.device(corpus_model(kTr181), "SECOND002");
  auto log2 = w.session(second);
  auto gpvs = log2.all<soap::GetParameterValues>();
  ASSERT_EQ(gpvs.size(), 1u);
  EXPECT_EQ(gpvs[0].names, (std::vector<std::string>{"Device.DeviceInfo.ModelName",
                                                     "Device.DeviceInfo.SoftwareVersion"}));
  EXPECT_EQ(summary(log2, "model"), summary(log1, "model"));
  EXPECT_NE(summary(log2, "model"), "<none>");
  EXPECT_EQ(summary(log2, "code"), "9005");
  EXPECT_EQ(summary(log2, "invalid"), "Device.Nope.One,Device.Nope.Two");

  // Another model (TR-098 here) is asked in full.
  auto other = w.device(corpus_model(kTr098), "OTHER0003");
  auto log3 = w.session(other);
  EXPECT_GE(log3.all<soap::GetParameterValues>().size(), 1u);
  EXPECT_EQ(log3.all<soap::GetParameterValues>()[0].names.size(), 4u);
}

TEST(PolicyEngine, ACpeFaultReturnsNilAndTheFault) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      local n, fault = dev:add("Device.NAT.PortMapping.")
      dev:summary{ n = tostring(n), code = fault and fault.code or 0 }
    end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  PolicyWorld::Options o;
  o.fault_at[0] = 9004;
  auto log = w.session(d, o);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_EQ(summary(log, "n"), "nil");
  EXPECT_EQ(summary(log, "code"), "9004");
}

TEST(PolicyEngine, SetSendsOnlyWhatDiffersWithStoredTypes) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      local n = dev:set{
        ["Device.ManagementServer.PeriodicInformInterval"] = 300,
        ["Device.WiFi.SSID.1.SSID"] = dev:param("Device.WiFi.SSID.1.SSID") or "x",
        ["Device.WiFi.SSID.1.Enable"] = true,
      }
      dev:summary{ sent = n }
    end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto first = w.session(d);
  EXPECT_EQ(first.final_status, 204);
  auto spvs = first.all<soap::SetParameterValues>();
  ASSERT_EQ(spvs.size(), 1u);
  std::map<std::string, std::pair<std::string, std::string>> sent;
  for (const auto& p : spvs[0].parameters) sent[p.name] = {p.value, p.type};
  // First session: the values differ from what is known and go.
  EXPECT_TRUE(sent.count("Device.ManagementServer.PeriodicInformInterval"));
  EXPECT_EQ(sent["Device.ManagementServer.PeriodicInformInterval"].first, "300");
  // Second session: the stored values match, nothing is sent.
  auto second = w.session(d);
  EXPECT_EQ(second.count("SetParameterValues"), 0u);
  EXPECT_EQ(summary(second, "sent"), "0");
}

TEST(PolicyEngine, ASetFaultNamesTheBadParametersAndTheOthersStillGo) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      local n, fault = dev:set({ ["Device.WiFi.SSID.1.SSID"] = "lab",
                                 ["Device.Nope.X"] = "1" }, { force = true })
      dev:summary{ bad = fault.parameters[1].name, sent = fault.sent }
    end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_EQ(summary(log, "bad"), "Device.Nope.X");
  EXPECT_EQ(summary(log, "sent"), "1");
  auto spvs = log.all<soap::SetParameterValues>();
  ASSERT_EQ(spvs.size(), 2u);
  ASSERT_EQ(spvs[1].parameters.size(), 1u);
  EXPECT_EQ(spvs[1].parameters[0].name, "Device.WiFi.SSID.1.SSID");
}

TEST(PolicyEngine, AHookErrorIsAFaultAndTheSessionStillEnds) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_event(dev, code)
      if code == "1 BOOT" then local t = nil; return t.x end
    end
    function on_inform(dev) dev:tag("still-ran") end
  )"}}));
  auto d = w.device(corpus_model(kTr098));
  PolicyWorld::Options o;
  o.events = {{"1 BOOT", ""}};
  auto log = w.session(d, o);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_EQ(log.end, cwmp::EndReason::kCompleted);
  ASSERT_EQ(log.result.faults.size(), 1u);
  EXPECT_EQ(log.result.faults[0].source, "policy");
  EXPECT_NE(log.result.faults[0].message.find("on_event: "), std::string::npos);
  EXPECT_NE(log.result.faults[0].message.find("main.lua:3:"), std::string::npos)
      << log.result.faults[0].message;
  EXPECT_TRUE(has(log.result.tags_added, "still-ran"));
  EXPECT_EQ(w.manager().hook_errors.load(), 1u);
}

TEST(PolicyEngine, TagsAndIdentity) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      if dev.is_new then dev:tag("pending") end
      if dev:has_tag("pending") and not dev.is_new then dev:untag("pending"); dev:tag("seen") end
      dev:summary{ id = dev.id, root = dev.root, ip = dev.ip, tags = table.concat(dev:tags(), ",") }
    end
  )"}}));
  auto d = w.device(corpus_model(kTr098));
  auto one = w.session(d);
  EXPECT_EQ(summary(one, "root"), "InternetGatewayDevice");
  EXPECT_EQ(summary(one, "id"), "202BC1-BM632w-8KA8WA1151100043");
  EXPECT_EQ(summary(one, "ip"), "192.0.2.7");
  EXPECT_EQ(summary(one, "tags"), "pending");
  auto two = w.session(d);
  EXPECT_EQ(summary(two, "tags"), "seen");
  EXPECT_TRUE(has(two.result.tags_removed, "pending"));
  EXPECT_EQ(d.stored->tags, (std::set<std::string>{"seen"}));
}

TEST(PolicyEngine, TasksRunPolicyFunctionsWithArgsAndResults) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function tasks.rename(dev, args)
      local n = dev:set({ ["Device.WiFi.SSID.1.SSID"] = args.ssid }, { force = true })
      return { sent = n, ssid = args.ssid }
    end
    function tasks.broken(dev, args) error("no way") end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  PolicyWorld::Options o;
  o.tasks = {{"rename", R"({"ssid": "lab-1"})"}, {"broken", "{}"}, {"missing", "{}"}};
  auto log = w.session(d, o);
  EXPECT_EQ(log.final_status, 204);
  ASSERT_EQ(log.task_results.size(), 3u);
  EXPECT_TRUE(log.task_results[0].first);
  auto j = nlohmann::json::parse(log.task_results[0].second);
  EXPECT_EQ(j["result"]["sent"], 1);
  EXPECT_EQ(j["result"]["ssid"], "lab-1");
  EXPECT_FALSE(log.task_results[1].first);
  EXPECT_NE(log.task_results[1].second.find("main.lua:6: no way"), std::string::npos);
  EXPECT_FALSE(log.task_results[2].first);
  EXPECT_NE(log.task_results[2].second.find("no function tasks.missing"), std::string::npos);
  EXPECT_EQ(log.result.faults.size(), 2u);
}

TEST(PolicyEngine, AlterPublishesTheScriptAndSendsAVendorConfigDownload) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      local key, status = dev:alter('/system identity set name="lab"\n')
      dev:summary{ key = key, status = status }
    end
  )"}}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  auto log = w.session(d);
  EXPECT_EQ(log.final_status, 204);
  auto dl = log.all<soap::Download>();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].file_type, "3 Vendor Configuration File");
  EXPECT_EQ(dl[0].url.rfind("http://acs.test:7567/tok0/", 0), 0u) << dl[0].url;
  EXPECT_EQ(dl[0].url.substr(dl[0].url.size() - 6), ".alter");
  EXPECT_EQ(dl[0].command_key, summary(log, "key"));
  EXPECT_EQ(dl[0].command_key.rfind("alter-", 0), 0u);
  EXPECT_EQ(summary(log, "status"), "1");
  ASSERT_EQ(w.published().size(), 1u);
  const auto& f = w.published().begin()->second;
  EXPECT_EQ(f.bytes, "/system identity set name=\"lab\"\n");
  EXPECT_EQ(f.device_id, "E48D8C-hAP%20lite-7DCF08DC745D");
  EXPECT_EQ(dl[0].file_size, f.bytes.size());
  EXPECT_EQ(dl[0].target_file_name, f.name);
}

TEST(PolicyEngine, UpgradeBuildsTheMikroTikManifest) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      dev:upgrade{ version = "7.15.3",
                   links = { "routeros-7.15.3-mipsbe.npk", "https://fw.example.net/tr069-client-7.15.3-mipsbe.npk?a=1&b=2" } }
    end
  )"}}));
  w.add_disk_file("routeros-7.15.3-mipsbe.npk");
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  auto log = w.session(d);
  auto dl = log.all<soap::Download>();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].file_type, "1 Firmware Upgrade Image");
  EXPECT_EQ(dl[0].command_key, "upgrade-7.15.3");
  ASSERT_EQ(w.published().size(), 1u);
  const auto& f = w.published().begin()->second;
  EXPECT_EQ(f.bytes,
            "<upgrade version=\"1\" type=\"links\">\n   <config/>\n   <links>\n"
            "       <link><url>http://acs.test:7567/disk/routeros-7.15.3-mipsbe.npk</url></link>\n"
            "       <link><url>https://fw.example.net/tr069-client-7.15.3-mipsbe.npk?a=1&amp;b=2"
            "</url></link>\n   </links>\n</upgrade>\n");
  EXPECT_EQ(f.content_type, "application/xml");
}

// A C++ exception in a binding (here the file service refusing a name, and
// the JSON parser) is a Lua error carrying the policy's file:line, which
// pcall catches like any other.
TEST(PolicyEngine, ACppExceptionInABindingIsALuaErrorAtThePolicysLine) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      local ok, err = pcall(function()
        return dev:alter("/system reboot\n", { name = "no good" })
      end)
      local ok2, err2 = pcall(function()
        return luacs.json_decode("{")
      end)
      dev:summary{ alter = tostring(ok) .. " " .. err, json = tostring(ok2) .. " " .. err2 }
    end
  )"}}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  auto log = w.session(d);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_TRUE(log.result.faults.empty());
  EXPECT_TRUE(log.methods.empty());
  EXPECT_TRUE(w.published().empty());
  EXPECT_EQ(summary(log, "alter").rfind("false ", 0), 0u) << summary(log, "alter");
  EXPECT_NE(summary(log, "alter")
                .find("main.lua:4: dev:alter: 'no good.alter' is not a file name ([A-Za-z0-9._-])"),
            std::string::npos)
      << summary(log, "alter");
  EXPECT_EQ(summary(log, "json").rfind("false ", 0), 0u) << summary(log, "json");
  EXPECT_NE(summary(log, "json").find("main.lua:7: json_decode: "), std::string::npos)
      << summary(log, "json");
}

// A misspelt option is an error naming it, never silently the default.
TEST(PolicyEngine, AnUnknownOptionIsAnErrorNamingIt) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    local function try(f)
      local ok, err = pcall(f)
      return tostring(ok) .. " " .. tostring(err)
    end
    function on_inform(dev)
      local r = {}
      r.download = try(function() dev:download{ url = "http://x/f", file_type = "1 Firmware Upgrade Image", commandkey = "k" } end)
      r.upload = try(function() dev:upload{ url = "http://x/f", file_type = "2 Vendor Log File", delay_seconds = 5 } end)
      r.alter = try(function() dev:alter("/system reboot\n", { commandkey = "k" }) end)
      r.upgrade = try(function() dev:upgrade{ links = { "https://x/tr069-client.npk" }, versoin = "7.1" } end)
      r.set = try(function() dev:set({ ["Device.WiFi.SSID.1.SSID"] = "x" }, { froce = true }) end)
      r.set_attributes = try(function() dev:set_attributes{ { name = "Device.X", notfication = 2 } } end)
      r.positional = try(function() dev:download{ "http://x/f", file_type = "1 Firmware Upgrade Image" } end)
      dev:summary(r)
    end
  )"}}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  auto log = w.session(d);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_TRUE(log.result.faults.empty());
  EXPECT_TRUE(log.methods.empty()) << "nothing is sent";
  EXPECT_TRUE(w.published().empty()) << "nothing is published";
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"download",
       "main.lua:8: dev:download: unknown option 'commandkey' (known: url, file_type, command_key, "
       "username, password, delay, target_file_name, file_size)"},
      {"upload",
       "main.lua:9: dev:upload: unknown option 'delay_seconds' (known: url, file_type, "
       "command_key, username, password, delay)"},
      {"alter",
       "main.lua:10: dev:alter: unknown option 'commandkey' (known: name, command_key, delay)"},
      {"upgrade",
       "main.lua:11: dev:upgrade: unknown option 'versoin' (known: links, version, command_key, "
       "delay)"},
      {"set", "main.lua:12: dev:set: unknown option 'froce' (known: force, key)"},
      {"set_attributes",
       "main.lua:13: dev:set_attributes: entry 1: unknown option 'notfication' (known: name, "
       "notification, access)"},
      {"positional", "main.lua:14: dev:download: unknown option [1] (known: url, file_type, "},
  };
  for (const auto& [key, message] : expected) {
    std::string got = summary(log, key);
    EXPECT_EQ(got.rfind("false ", 0), 0u) << key << ": " << got;
    EXPECT_NE(got.find(message), std::string::npos) << key << ": " << got;
  }
}

// Uncaught, it stops the hook like any error: a fault at the policy's line.
TEST(PolicyEngine, AnUnknownOptionFailsTheHookAtItsLine) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_event(dev)
      dev:download{ url = "http://x/f", file_type = "1 Firmware Upgrade Image", commandkey = "k" }
      dev:tag("went-on")
    end
    function on_inform(dev) dev:tag("next-hook-ran") end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d);
  EXPECT_EQ(log.final_status, 204);
  EXPECT_TRUE(log.methods.empty());
  ASSERT_EQ(log.result.faults.size(), 1u);
  EXPECT_NE(log.result.faults[0].message.find("on_event: "), std::string::npos)
      << log.result.faults[0].message;
  EXPECT_NE(log.result.faults[0].message.find(
                "main.lua:3: dev:download: unknown option 'commandkey' (known: url, "),
            std::string::npos)
      << log.result.faults[0].message;
  EXPECT_FALSE(has(log.result.tags_added, "went-on"));
  EXPECT_TRUE(has(log.result.tags_added, "next-hook-ran"));
}

TEST(PolicyEngine, AHookWaitingWhenTheSessionEndsIsDropped) {
  PolicyWorld w(policy_dir({{"main.lua", R"(
    function on_inform(dev)
      dev:get{"Device.DeviceInfo.UpTime"}
      dev:tag("never")
    end
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  PolicyWorld::Options o;
  o.stop_after = 0;
  auto log = w.session(d, o);
  EXPECT_EQ(log.end, cwmp::EndReason::kTimeout);
  EXPECT_TRUE(log.result.tags_added.empty());
  // The next session runs normally.
  auto next = w.session(d);
  EXPECT_EQ(next.final_status, 204);
  EXPECT_TRUE(has(next.result.tags_added, "never"));
}

TEST(PolicyEngine, VersionCompare) {
  using lua::version_compare;
  EXPECT_EQ(version_compare("6.49.10", "7.1beta2"), -1);
  EXPECT_EQ(version_compare("7.1beta2", "7.1rc1"), -1);
  EXPECT_EQ(version_compare("7.1rc1", "7.1"), -1);
  EXPECT_EQ(version_compare("7.1", "7.1.1"), -1);
  EXPECT_EQ(version_compare("7.1", "7.1.0"), 0);
  EXPECT_EQ(version_compare("6.9", "6.10"), -1);
  EXPECT_EQ(version_compare("7.15.3", "7.15.3"), 0);
  EXPECT_EQ(version_compare("7.16", "7.15.3"), 1);
}

// ---- check and reload ----

TEST(PolicyCheck, ReportsSyntaxErrorsWithFileAndLine) {
  std::string dir = policy_dir(
      {{"10-ok.lua", "x = 1\n"}, {"20-bad.lua", "function on_inform(dev)\n  if then\nend\n"}});
  auto r = lua::check(dir, {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("20-bad.lua:2:"), std::string::npos) << r.error;
}

TEST(PolicyCheck, ReportsLoadErrorsAndBadHookTypes) {
  auto r = lua::check(policy_dir({{"a.lua", "local t = nil\nprint(t.x)\n"}}), {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("a.lua:2:"), std::string::npos) << r.error;
  r = lua::check(policy_dir({{"a.lua", "on_inform = 42\n"}}), {});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "on_inform is a number, not a function");
  r = lua::check(policy_dir({{"a.lua", "tasks.adopt = 'yes'\n"}}), {});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "tasks.adopt is a string, not a function");
  r = lua::check(policy_dir({{"notes.txt", "hello"}}), {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("no *.lua file"), std::string::npos);
}

TEST(PolicyCheck, WarnsAboutMisspeltHooksAndRedefinitions) {
  auto r =
      lua::check(policy_dir({{"a.lua", "function on_infrom(dev) end\nfunction on_event(dev) end\n"},
                             {"b.lua", "function on_event(dev, code) end\n"}}),
                 {});
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.warnings.size(), 2u);
  std::string all = r.warnings[0] + "\n" + r.warnings[1];
  EXPECT_NE(
      all.find("a.lua:1: global function 'on_infrom' is not a hook (did you mean on_inform?)"),
      std::string::npos)
      << all;
  EXPECT_NE(all.find("b.lua:1: on_event redefines the one of"), std::string::npos) << all;
  EXPECT_EQ(r.policy->hooks, std::vector<std::string>{"on_event"});
}

TEST(PolicyReload, ABrokenPolicyKeepsTheOldOneServing) {
  std::string dir = policy_dir({{"main.lua", "function on_inform(dev) dev:tag('v1') end\n"}});
  PolicyWorld w(dir);
  auto d = w.device(corpus_model(kTr181));
  EXPECT_TRUE(has(w.session(d).result.tags_added, "v1"));
  std::ofstream(dir + "/main.lua") << "function on_inform(dev)\n  dev:tag('v2'\nend\n";
  auto r = w.manager().reload();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("main.lua:3:"), std::string::npos) << r.error;
  EXPECT_EQ(w.manager().generation(), 1u);
  EXPECT_EQ(w.manager().status().last_error, r.error);
  auto d2 = w.device(corpus_model(kTr181), "SECOND0000001");
  auto log = w.session(d2);
  EXPECT_TRUE(has(log.result.tags_added, "v1"));
  EXPECT_EQ(log.generation, 1u);
  std::ofstream(dir + "/main.lua") << "function on_inform(dev) dev:tag('v2') end\n";
  r = w.manager().reload();
  ASSERT_TRUE(r.ok) << r.error;
  auto d3 = w.device(corpus_model(kTr181), "THIRD00000001");
  log = w.session(d3);
  EXPECT_TRUE(has(log.result.tags_added, "v2"));
  EXPECT_EQ(log.generation, 2u);
  EXPECT_TRUE(w.manager().status().last_error.empty());
}

// A session in flight keeps the generation it started with; a new one gets
// the new generation, on the same worker (engine).
TEST(PolicyReload, SessionsInFlightKeepTheirGeneration) {
  std::string dir = policy_dir({{"main.lua", R"(
    function on_inform(dev)
      dev:get{"Device.DeviceInfo.UpTime"}
      dev:tag("gen" .. luacs.generation)
    end
  )"}});
  PolicyWorld w(dir);
  auto model = corpus_model(kTr181);

  // Session A, by hand through the session driver: Inform, empty POST, the
  // GPV goes out and waits.
  session::Services services;
  services.engine = &w.engine();
  auto now = cwmp::Clock::now();
  session::Driver a("a", {}, services, {}, now);
  soap::Envelope inform = sim::make_inform(model, "AAAA00000001", {{"2 PERIODIC", ""}}, "t");
  ASSERT_EQ(a.handle(inform, now).reply.status, 200);
  soap::Envelope empty;
  empty.body = soap::Empty{};
  cwmp::Reply r = a.handle(empty, now).reply;
  ASSERT_EQ(r.status, 200);
  soap::Envelope gpv;
  ASSERT_TRUE(soap::parse(r.body, gpv));

  // Reload; session B runs entirely on generation 2.
  std::ofstream(dir + "/main.lua") << R"(
    function on_inform(dev) dev:tag("new" .. luacs.generation) end
  )";
  ASSERT_TRUE(w.manager().reload().ok);
  auto d = w.device(model, "BBBB00000001");
  auto b = w.session(d);
  EXPECT_EQ(b.generation, 2u);
  EXPECT_TRUE(has(b.result.tags_added, "new2"));

  // A resumes on generation 1.
  sim::CpeSession cpe;
  soap::Envelope answer;
  answer.header.id = gpv.header.id;
  answer.body = sim::answer_acs_request(model, "AAAA00000001", gpv.body, cpe);
  EXPECT_EQ(a.handle(answer, now).reply.status, 204);
  EXPECT_EQ(a.policy_generation(), 1u);
  EXPECT_TRUE(has(a.finish(false).result.tags_added, "gen1"));
}

}  // namespace
}  // namespace luacs::test
