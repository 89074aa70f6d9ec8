// The shipped default policy (policies/default/), job by job, through whole
// simulated sessions: the real session engine, the real Lua policy engine,
// and a CPE answering from the corpus data models. Each test plays the
// sessions a field device would have (boot, periodic, transfer complete,
// factory reset) and checks what the policy sends, the tags it leaves, the
// summary it writes and the files it publishes.
//
// Expected values come from the corpus CSVs (../shared/corpus/datamodels):
//   TR-098 Huawei BM632w (tr098-huawei-BM632w-genieacs-sim.csv)
//     DeviceID.SerialNumber                                  8KA8WA1151100043
//     DeviceInfo.ModelName                                   BM632w
//     DeviceInfo.SoftwareVersion                             V100R001IRQC56B017
//     WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress  20:2B:C1:E0:06:65
//     WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress  172.3.89.139
//     LANDevice.1.WLANConfiguration.1.SSID                   404 WiMAX Not Found
//   TR-181 TP-Link EC220-G5 (tr181-tplink-EC220-G5v3-anlix-genieacs-sim.csv)
//     DeviceID.SerialNumber                                  22275K2000315
//     DeviceInfo.ModelName                                   EC220-G5
//     DeviceInfo.SoftwareVersion                             1.12.0 Build 220820 Rel.52419n(4252)
//     Ethernet.Link.1.MACAddress (no Ethernet.Interface.1.MACAddress)  9C:A2:F4:00:0C:E8
//     ManagementServer.ConnectionRequestURL                  http://192.168.0.1:7547/TR069
//     WiFi.SSID.1.SSID                                       TP-Link_0CE8
//   mikrotik_model(): the TR-181 rows with DeviceId MikroTik / hAP lite /
//     E48D8C / 7DCF08DC745D, so the same MAC, SSID and ModelName.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/files/catalog.h"
#include "policy/harness.h"

namespace luacs::test {
namespace {

const char* kMikroTikId = "E48D8C-hAP%20lite-7DCF08DC745D";

using Events = std::vector<soap::EventStruct>;
const Events kBoot{{"1 BOOT", ""}};
const Events kBootstrap{{"0 BOOTSTRAP", ""}, {"1 BOOT", ""}};
const Events kPeriodic{{"2 PERIODIC", ""}};
const Events kTransferDone{{"7 TRANSFER COMPLETE", ""}, {"M Download", ""}};
const Events kUpgradeDone{{"1 BOOT", ""}, {"7 TRANSFER COMPLETE", ""}, {"M Download", ""}};

// ---- helpers ----

// A value from the corpus CSV itself, to cross-check the constants above.
std::string corpus_value(const std::string& stem, const std::string& name) {
  auto m = corpus_model(stem);
  const auto* p = m.find(name);
  return p ? p->value : "<missing from " + stem + ">";
}

size_t summary_writes(const SessionLog& log) {
  size_t n = 0;
  for (const auto& [p, t] : log.result.parameters) n += p.name.rfind("Summary.", 0) == 0;
  return n;
}
// A summary field as the store keeps it after the sessions so far.
std::string stored_summary(const PolicyWorld::Device& d, const std::string& key) {
  if (!d.stored) return "<no device>";
  auto it = d.stored->parameters.find("Summary." + key);
  return it == d.stored->parameters.end() ? "<none>" : it->second.value;
}

std::set<std::string> tags(const PolicyWorld::Device& d) {
  return d.stored ? d.stored->tags : std::set<std::string>{};
}
// What an operator does through the API between two sessions.
void operator_tag(PolicyWorld::Device& d, const std::string& t) {
  ASSERT_TRUE(d.stored) << "tag a device after its first session";
  d.edit().tags.insert(t);
}

std::string faults_of(const SessionLog& log) {
  std::string all;
  for (const auto& f : log.result.faults) all += f.source + ": " + f.message + "\n";
  return all;
}
bool has_fault(const SessionLog& log, const std::string& part) {
  for (const auto& f : log.result.faults)
    if (f.source == "policy" && f.message.find(part) != std::string::npos) return true;
  return false;
}

PolicyWorld::Options with(Events events) {
  PolicyWorld::Options o;
  o.events = std::move(events);
  return o;
}
PolicyWorld::Options with_task(Events events, std::string fn, std::string args) {
  auto o = with(std::move(events));
  o.tasks = {{std::move(fn), std::move(args)}};
  return o;
}
PolicyWorld::Options with_transfer(Events events, std::string key, uint32_t fault_code = 0,
                                   std::string fault_string = "") {
  auto o = with(std::move(events));
  lua::TransferInfo t;
  t.command_key = std::move(key);
  t.fault_code = fault_code;
  t.fault_string = std::move(fault_string);
  t.start_time = t.complete_time = "2026-11-21T12:00:00Z";
  o.transfers = {t};
  return o;
}

// name -> (value, type) of every SetParameterValues of the session.
std::map<std::string, std::pair<std::string, std::string>> set_values(const SessionLog& log) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const auto& spv : log.all<soap::SetParameterValues>())
    for (const auto& p : spv.parameters) out[p.name] = {p.value, p.type};
  return out;
}

// The file a Download of this session points at.
const Published* published_for(const PolicyWorld& w, const soap::Download& dl) {
  for (const auto& [name, f] : w.published())
    if (dl.url.size() > name.size() &&
        dl.url.compare(dl.url.size() - name.size(), name.size(), name) == 0 &&
        dl.url[dl.url.size() - name.size() - 1] == '/')
      return &f;
  return nullptr;
}

nlohmann::json task_result(const SessionLog& log, size_t i = 0) {
  if (log.task_results.size() <= i) return nlohmann::json{{"missing", true}};
  return nlohmann::json::parse(log.task_results[i].second);
}

// The TR-098 corpus model with `drop` rows removed and DeviceID.ProductClass
// replaced.
sim::DataModel tr098_variant(const std::vector<std::string>& drop,
                             const std::string& product_class) {
  std::string csv;
  {
    std::ifstream in(std::string(LUACS_SHARED_DIR) + "/corpus/datamodels/" + kTr098 + ".csv");
    std::string line;
    while (std::getline(in, line)) {
      bool skip = false;
      for (const auto& d : drop) skip |= line.rfind(d + ",", 0) == 0;
      if (line.rfind("DeviceID.ProductClass,", 0) == 0) {
        line = "DeviceID.ProductClass,false,false," + product_class + ",xsd:string";
      }
      if (!skip) csv += line + "\n";
    }
  }
  return sim::DataModel::from_csv(csv, "tr098-variant");
}

const std::string kAlterHeader = std::string("# luacs: provisioning of ") + kMikroTikId + "\n";

// ---- normalise (10-normalise.lua) ----

TEST(Normalise, CorpusValuesAreWhatTheTestsExpect) {
  // The constants of this file, checked against the CSVs they were read from.
  EXPECT_EQ(corpus_value(kTr098, "InternetGatewayDevice.DeviceInfo.ModelName"), "BM632w");
  EXPECT_EQ(corpus_value(kTr098, "InternetGatewayDevice.DeviceInfo.SoftwareVersion"),
            "V100R001IRQC56B017");
  EXPECT_EQ(
      corpus_value(
          kTr098,
          "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress"),
      "20:2B:C1:E0:06:65");
  EXPECT_EQ(corpus_value(kTr098,
                         "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection."
                         "1.ExternalIPAddress"),
            "172.3.89.139");
  EXPECT_EQ(corpus_value(kTr098, "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"),
            "404 WiMAX Not Found");
  EXPECT_EQ(corpus_model(kTr098).device_id().serial_number, "8KA8WA1151100043");
  EXPECT_EQ(corpus_value(kTr181, "Device.DeviceInfo.ModelName"), "EC220-G5");
  EXPECT_EQ(corpus_value(kTr181, "Device.DeviceInfo.SoftwareVersion"),
            "1.12.0 Build 220820 Rel.52419n(4252)");
  EXPECT_EQ(corpus_model(kTr181).find("Device.Ethernet.Interface.1.MACAddress"), nullptr);
  EXPECT_EQ(corpus_value(kTr181, "Device.Ethernet.Link.1.MACAddress"), "9C:A2:F4:00:0C:E8");
  EXPECT_EQ(corpus_value(kTr181, "Device.ManagementServer.ConnectionRequestURL"),
            "http://192.168.0.1:7547/TR069");
  EXPECT_EQ(corpus_value(kTr181, "Device.WiFi.SSID.1.SSID"), "TP-Link_0CE8");
  EXPECT_EQ(corpus_model(kTr181).device_id().serial_number, "22275K2000315");
}

TEST(Normalise, Tr098BootFillsTheSummaryWithOneGetThenPeriodicCostsNothing) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(corpus_model(kTr098));
  auto boot = w.session(d, with(kBoot));
  EXPECT_EQ(boot.final_status, 204);
  EXPECT_EQ(faults_of(boot), "");
  // model, mac (both candidates) and ssid in one GetParameterValues.
  ASSERT_EQ(boot.methods, std::vector<std::string>{"GetParameterValues"});
  auto gpv = boot.all<soap::GetParameterValues>()[0];
  EXPECT_EQ(
      gpv.names,
      (std::vector<std::string>{
          "InternetGatewayDevice.DeviceInfo.ModelName",
          "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress",
          "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.1.MACAddress",
          "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"}));
  EXPECT_EQ(summary(boot, "serial"), "8KA8WA1151100043");
  EXPECT_EQ(summary(boot, "model"), "BM632w");
  EXPECT_EQ(summary(boot, "software_version"), "V100R001IRQC56B017");
  EXPECT_EQ(summary(boot, "mac"), "20:2B:C1:E0:06:65");  // the WAN MAC, first choice
  EXPECT_EQ(summary(boot, "wan_ip"), "172.3.89.139");    // the Inform's ExternalIPAddress
  EXPECT_EQ(summary(boot, "ssid"), "404 WiMAX Not Found");

  auto periodic = w.session(d, with(kPeriodic));
  EXPECT_EQ(periodic.final_status, 204);
  EXPECT_TRUE(periodic.methods.empty()) << periodic.methods[0];
  EXPECT_EQ(summary_writes(periodic), 0u);  // nothing changed, nothing written
  EXPECT_EQ(stored_summary(d, "mac"), "20:2B:C1:E0:06:65");

  // A later boot of a device whose summary is complete costs nothing either.
  auto reboot = w.session(d, with({{"1 BOOT", ""}, {"M Reboot", "r-1"}}));
  EXPECT_TRUE(reboot.methods.empty());
}

TEST(Normalise, Tr181BootFillsTheSummaryAndSkipsTheMissingInterfaceMac) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(corpus_model(kTr181));
  auto boot = w.session(d, with(kBoot));
  EXPECT_EQ(boot.final_status, 204);
  EXPECT_EQ(faults_of(boot), "");
  // The EC220 lacks Ethernet.Interface.1.MACAddress: the 9005 is narrowed,
  // so only GetParameterValues are sent, and the Link MAC is used.
  ASSERT_FALSE(boot.methods.empty());
  EXPECT_EQ(boot.count("GetParameterValues"), boot.methods.size());
  EXPECT_EQ(summary(boot, "serial"), "22275K2000315");
  EXPECT_EQ(summary(boot, "model"), "EC220-G5");
  EXPECT_EQ(summary(boot, "software_version"), "1.12.0 Build 220820 Rel.52419n(4252)");
  EXPECT_EQ(summary(boot, "mac"), "9C:A2:F4:00:0C:E8");
  // No ExternalIPAddress in a TR-181 Inform: the host of the
  // ConnectionRequestURL (in this corpus dump, the EC220's LAN address).
  EXPECT_EQ(summary(boot, "wan_ip"), "192.168.0.1");
  EXPECT_EQ(summary(boot, "ssid"), "TP-Link_0CE8");
  EXPECT_EQ(boot.result.tags_added, std::vector<std::string>{"pending"});

  auto periodic = w.session(d, with(kPeriodic));
  EXPECT_EQ(periodic.final_status, 204);
  EXPECT_TRUE(periodic.methods.empty());
  EXPECT_EQ(summary_writes(periodic), 0u);
  EXPECT_TRUE(periodic.result.tags_added.empty());
}

TEST(Normalise, APeriodicFirstContactStillReadsTheSummaryOnce) {
  // A device first seen on a periodic Inform (say, after an ACS move) has an
  // empty summary: one read, then nothing.
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  auto first = w.session(d, with(kPeriodic));
  EXPECT_GT(first.count("GetParameterValues"), 0u);
  EXPECT_EQ(first.count("GetParameterValues"), first.methods.size());
  EXPECT_EQ(summary(first, "serial"), "7DCF08DC745D");
  EXPECT_EQ(summary(first, "software_version"), "6.49.10");
  EXPECT_EQ(summary(first, "mac"), "9C:A2:F4:00:0C:E8");
  EXPECT_TRUE(w.session(d, with(kPeriodic)).methods.empty());
}

TEST(Normalise, BootstrapReadsModelMacAndSsidAgain) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(corpus_model(kTr098));
  w.session(d, with(kBoot));
  ASSERT_EQ(stored_summary(d, "ssid"), "404 WiMAX Not Found");
  // The factory reset left the device with another SSID.
  d.cpe.overlay.push_back(
      {"InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID", "Huawei-Reset", "string"});
  auto bootstrap = w.session(d, with(kBootstrap));
  ASSERT_EQ(bootstrap.methods, std::vector<std::string>{"GetParameterValues"});
  EXPECT_EQ(bootstrap.all<soap::GetParameterValues>()[0].names.size(), 4u);
  EXPECT_EQ(summary(bootstrap, "ssid"), "Huawei-Reset");
  EXPECT_EQ(summary(bootstrap, "model"), "<none>");  // read again, unchanged: not rewritten
  EXPECT_EQ(stored_summary(d, "model"), "BM632w");
}

TEST(Normalise, ADeviceWithoutModelNameIsSummarisedByItsProductClass) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(tr098_variant({"InternetGatewayDevice.DeviceInfo.ModelName"}, "BM632w-lab"));
  auto boot = w.session(d, with(kBoot));
  EXPECT_EQ(boot.final_status, 204);
  EXPECT_EQ(faults_of(boot), "");
  EXPECT_EQ(summary(boot, "model"), "BM632w-lab");
  EXPECT_EQ(summary(boot, "mac"), "20:2B:C1:E0:06:65");
  EXPECT_EQ(summary(boot, "ssid"), "404 WiMAX Not Found");
}

// ---- jobs (luacs.job) ----

TEST(Jobs, AJobErrorIsAFaultAndTheOtherJobsStillRun) {
  PolicyWorld w(default_policy_with({{"99-test.lua", R"(
    luacs.job{ name = "broken", on_inform = function(dev) error("boom") end }
    luacs.job{ name = "after", on_inform = function(dev) dev:tag("after-ran") end }
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d, with(kBoot));
  EXPECT_EQ(log.final_status, 204);
  ASSERT_EQ(log.result.faults.size(), 1u) << faults_of(log);
  EXPECT_TRUE(has_fault(log, "job broken on_inform: ")) << faults_of(log);
  EXPECT_TRUE(has_fault(log, "99-test.lua:2: boom")) << faults_of(log);
  EXPECT_EQ(summary(log, "model"), "EC220-G5");  // normalise ran before
  EXPECT_TRUE(has(log.result.tags_added, "pending"));
  EXPECT_TRUE(has(log.result.tags_added, "after-ran"));
}

TEST(Jobs, RegisteringANameAgainSwitchesTheJobOff) {
  PolicyWorld w(default_policy_with({{"99-test.lua", R"(
    settings.wifi.test_ssid = true
    luacs.job{ name = "wifi" }
  )"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d, with(kBoot));
  EXPECT_EQ(log.count("SetParameterValues"), 0u);
  EXPECT_EQ(summary(log, "ssid"), "TP-Link_0CE8");
}

// ---- adoption (20-adoption.lua) ----

TEST(Adoption, ANewDeviceIsTaggedPendingAndNothingIsPushed) {
  PolicyWorld w(default_policy_with({}));
  for (const auto& model :
       {corpus_model(kTr098), corpus_model(kTr181), mikrotik_model("6.49.10", "mipsbe")}) {
    auto d = w.device(model);
    auto first = w.session(d, with(kBoot));
    EXPECT_EQ(first.result.tags_added, std::vector<std::string>{"pending"}) << model.name();
    EXPECT_EQ(first.count("Download") + first.count("SetParameterValues"), 0u) << model.name();
    EXPECT_EQ(tags(d), (std::set<std::string>{"pending"}));
    auto second = w.session(d, with(kPeriodic));
    EXPECT_TRUE(second.result.tags_added.empty());
    EXPECT_TRUE(second.result.tags_removed.empty());
    EXPECT_TRUE(second.methods.empty());
  }
}

TEST(Adoption, TaskAdoptPushesAMikroTikScriptAndTagsProvisioned) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  ASSERT_EQ(tags(d), (std::set<std::string>{"pending"}));

  auto log = w.session(d, with_task(kPeriodic, "adopt", R"({"identity": "lab-1"})"));
  EXPECT_EQ(log.final_status, 204);
  EXPECT_EQ(faults_of(log), "");
  ASSERT_EQ(log.methods, std::vector<std::string>{"Download"});
  auto dl = log.all<soap::Download>()[0];
  EXPECT_EQ(dl.file_type, "3 Vendor Configuration File");
  const Published* f = published_for(w, dl);
  ASSERT_NE(f, nullptr) << dl.url;
  const std::string script =
      kAlterHeader +
      "/system identity set name=\"lab-1\"\n"
      "/tr069-client set periodic-inform-enabled=yes periodic-inform-interval=3600s\n";
  EXPECT_EQ(f->bytes, script);
  EXPECT_NE(f->bytes.find("/system identity set name=\"lab-1\""), std::string::npos);
  EXPECT_EQ(f->device_id, kMikroTikId);
  EXPECT_EQ(f->name.substr(f->name.size() - 6), ".alter");
  EXPECT_EQ(dl.target_file_name, f->name);
  EXPECT_EQ(dl.file_size, script.size());
  EXPECT_EQ(dl.command_key, "alter-" + files::sha256_hex(script).substr(0, 8));

  EXPECT_EQ(log.result.tags_added, std::vector<std::string>{"provisioned"});
  EXPECT_EQ(log.result.tags_removed, std::vector<std::string>{"pending"});
  EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
  EXPECT_EQ(stored_summary(d, "identity"), "lab-1");
  ASSERT_EQ(log.task_results.size(), 1u);
  EXPECT_TRUE(log.task_results[0].first) << log.task_results[0].second;
  EXPECT_EQ(task_result(log),
            (nlohmann::json{{"result", {{"identity", "lab-1"}, {"command_key", dl.command_key}}}}));

  // The script's TransferComplete: success. Nothing else is pushed, and a
  // periodic session of a provisioned device costs nothing.
  auto done = w.session(d, with_transfer(kTransferDone, dl.command_key));
  EXPECT_TRUE(done.methods.empty());
  EXPECT_EQ(faults_of(done), "");
  EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
  EXPECT_EQ(stored_summary(d, "provision_attempts"), "0");
  EXPECT_TRUE(w.session(d, with(kPeriodic)).methods.empty());
}

TEST(Adoption, TaskConfigGoesIntoTheMikroTikScript) {
  PolicyWorld w(default_policy_with(
      {{"99-test.lua", R"(settings.adoption.dns_servers = "192.0.2.53, 192.0.2.54")"}}));
  auto d = w.device(mikrotik_model("7.15.3", "arm"));
  w.session(d, with(kBoot));
  auto log = w.session(d, with_task(kPeriodic, "adopt", R"({"identity": "shop-042",
      "config": {"periodic_inform_interval": 900, "ntp_servers": ["0.pool.ntp.org", "1.pool.ntp.org"]}})"));
  ASSERT_EQ(log.count("Download"), 1u) << faults_of(log);
  const Published* f = published_for(w, log.all<soap::Download>()[0]);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->bytes,
            kAlterHeader +
                "/system identity set name=\"shop-042\"\n"
                "/tr069-client set periodic-inform-enabled=yes periodic-inform-interval=900s\n"
                "/system ntp client set enabled=yes servers=\"0.pool.ntp.org,1.pool.ntp.org\"\n"
                "/ip dns set servers=\"192.0.2.53,192.0.2.54\"\n");
  // A bad config is refused before anything is pushed.
  auto bad = w.session(
      d, with_task(kPeriodic, "adopt", R"({"config": {"periodic_inform_interval": -5}})"));
  EXPECT_EQ(bad.count("Download"), 0u);
  ASSERT_EQ(bad.task_results.size(), 1u);
  EXPECT_FALSE(bad.task_results[0].first);
  EXPECT_NE(bad.task_results[0].second.find("periodic_inform_interval must be a whole number"),
            std::string::npos)
      << bad.task_results[0].second;
  auto unknown = w.session(d, with_task(kPeriodic, "adopt", R"({"config": {"dns": "x"}})"));
  ASSERT_EQ(unknown.task_results.size(), 1u);
  EXPECT_FALSE(unknown.task_results[0].first);
  EXPECT_NE(unknown.task_results[0].second.find("unknown config key dns"), std::string::npos);
}

TEST(Adoption, RouterOs6GetsTheSntpClientSyntax) {
  PolicyWorld w(default_policy_with({{"99-test.lua", R"(
    settings.adoption.ntp_servers = { "192.0.2.123", "pool.ntp.org", "192.0.2.124" }
  )"}}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  auto log = w.session(d, with_task(kPeriodic, "adopt", R"({"identity": "r6"})"));
  ASSERT_EQ(log.count("Download"), 1u) << faults_of(log);
  const Published* f = published_for(w, log.all<soap::Download>()[0]);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->bytes.find("\n/system ntp client set enabled=yes primary-ntp=\"192.0.2.123\" "
                          "secondary-ntp=\"192.0.2.124\" server-dns-names=\"pool.ntp.org\"\n"),
            std::string::npos)
      << f->bytes;
}

TEST(Adoption, AHostileIdentityIsQuotedInTheScript) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  const std::string identity =
      "x\" ; /system reset-configuration ; :put $y \\ ?\n/user remove admin";
  auto args = nlohmann::json{{"identity", identity}}.dump();
  auto log = w.session(d, with_task(kPeriodic, "adopt", args));
  ASSERT_EQ(log.count("Download"), 1u) << faults_of(log);
  const Published* f = published_for(w, log.all<soap::Download>()[0]);
  ASSERT_NE(f, nullptr);
  // " $ \ ? escaped with a backslash, the newline as \0A: one string literal,
  // one line, no second command.
  const std::string quoted =
      "\"x\\\" ; /system reset-configuration ; :put \\$y \\\\ \\?\\0A/user remove admin\"";
  EXPECT_NE(f->bytes.find("\n/system identity set name=" + quoted + "\n"), std::string::npos)
      << f->bytes;
  EXPECT_EQ(f->bytes.find("\n/user"), std::string::npos) << f->bytes;
  EXPECT_EQ(std::count(f->bytes.begin(), f->bytes.end(), '\n'), 3);
  // The identity is remembered as given.
  EXPECT_EQ(stored_summary(d, "identity"), identity);
  EXPECT_EQ(task_result(log)["result"]["identity"], identity);
}

TEST(Adoption, ANonMikroTikIsAdoptedWithSetParameterValues) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(corpus_model(kTr181));
  w.session(d, with(kBoot));
  auto log = w.session(d, with_task(kPeriodic, "adopt", R"({"identity": "lab-1"})"));
  EXPECT_EQ(faults_of(log), "");
  EXPECT_EQ(log.methods, std::vector<std::string>{"SetParameterValues"});
  EXPECT_EQ(log.count("Download"), 0u);
  EXPECT_TRUE(w.published().empty());
  auto sent = set_values(log);
  using V = std::pair<std::string, std::string>;
  EXPECT_EQ(sent,
            (std::map<std::string, V>{
                {"Device.ManagementServer.PeriodicInformEnable", {"true", "boolean"}},
                {"Device.ManagementServer.PeriodicInformInterval", {"3600", "unsignedInt"}}}));
  EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
  EXPECT_EQ(stored_summary(d, "identity"), "lab-1");
  EXPECT_EQ(stored_summary(d, "provision_attempts"), "0");
  EXPECT_EQ(task_result(log), (nlohmann::json{{"result", {{"identity", "lab-1"}}}}));
  EXPECT_TRUE(w.session(d, with(kPeriodic)).methods.empty());
}

TEST(Adoption, ANonMikroTikTaskConfigSetsTheProvisioningCode) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(corpus_model(kTr098));
  w.session(d, with(kBoot));
  auto log = w.session(
      d,
      with_task(kPeriodic, "adopt",
                R"({"config": {"periodic_inform_interval": 900, "provisioning_code": "shop-7"}})"));
  EXPECT_EQ(faults_of(log), "");
  auto sent = set_values(log);
  using V = std::pair<std::string, std::string>;
  EXPECT_EQ(
      sent,
      (std::map<std::string, V>{
          {"InternetGatewayDevice.DeviceInfo.ProvisioningCode", {"shop-7", "string"}},
          {"InternetGatewayDevice.ManagementServer.PeriodicInformEnable", {"true", "boolean"}},
          {"InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
           {"900", "unsignedInt"}}}));
  // No identity given: the serial.
  EXPECT_EQ(stored_summary(d, "identity"), "8KA8WA1151100043");
  EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
}

TEST(Adoption, TheOperatorTagAdoptUsesTheSerial) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  operator_tag(d, "adopt");
  auto log = w.session(d, with(kPeriodic));
  ASSERT_EQ(log.methods, std::vector<std::string>{"Download"});
  const Published* f = published_for(w, log.all<soap::Download>()[0]);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->bytes.find("/system identity set name=\"7DCF08DC745D\"\n"), std::string::npos)
      << f->bytes;
  EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
}

TEST(Adoption, AutoAdoptsNewDevicesAtOnce) {
  PolicyWorld w(default_policy_with({{"99-test.lua", "settings.adoption.auto = true\n"}}));
  auto d = w.device(corpus_model(kTr181));
  auto log = w.session(d, with(kBootstrap));
  EXPECT_EQ(log.count("SetParameterValues"), 1u);
  EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
}

TEST(Adoption, BootstrapOfAProvisionedMikroTikPushesTheRememberedIdentity) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  auto adopt = w.session(d, with_task(kPeriodic, "adopt", R"({"identity": "lab-1"})"));
  ASSERT_EQ(adopt.count("Download"), 1u);
  auto first_key = adopt.all<soap::Download>()[0].command_key;
  w.session(d, with_transfer(kTransferDone, first_key));
  ASSERT_EQ(tags(d), (std::set<std::string>{"provisioned"}));

  // Factory reset: the device comes back with 0 BOOTSTRAP.
  auto reset = w.session(d, with(kBootstrap));
  EXPECT_EQ(faults_of(reset), "");
  ASSERT_EQ(reset.count("Download"), 1u) << reset.methods.size();
  EXPECT_EQ(reset.methods[0], "Download");  // on_event runs before on_inform
  auto dl = reset.all<soap::Download>()[0];
  EXPECT_EQ(dl.file_type, "3 Vendor Configuration File");
  EXPECT_EQ(dl.command_key, first_key);  // the same script
  const Published* f = published_for(w, dl);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->bytes.find("/system identity set name=\"lab-1\"\n"), std::string::npos) << f->bytes;
  EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
  // The normalise job read the device again too.
  EXPECT_GT(reset.count("GetParameterValues"), 0u);

  // A bootstrap of a device that was never adopted pushes nothing.
  auto other = w.device(mikrotik_model("6.49.10", "mipsbe"), "OTHER0000001");
  w.session(other, with(kBoot));
  auto other_reset = w.session(other, with(kBootstrap));
  EXPECT_EQ(other_reset.count("Download"), 0u);
}

TEST(Adoption, AFailedScriptTagsProvisionFailedAndTheRetryLimitHolds) {
  PolicyWorld w(default_policy_with({}));  // max_attempts = 3
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  auto adopt = w.session(d, with_task(kPeriodic, "adopt", R"({"identity": "lab-1"})"));
  ASSERT_EQ(adopt.count("Download"), 1u);
  const auto key = adopt.all<soap::Download>()[0].command_key;

  for (int attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE("failure " + std::to_string(attempt));
    auto failed = w.session(d, with_transfer(kTransferDone, key, 9010, "Download failed"));
    EXPECT_EQ(failed.final_status, 204);
    EXPECT_EQ(failed.count("Download"), 0u) << "retried in the next session, not in this one";
    EXPECT_EQ(tags(d), (std::set<std::string>{"provision_failed"}));
    ASSERT_EQ(failed.result.faults.size(), 1u) << faults_of(failed);
    EXPECT_TRUE(has_fault(failed, "configuration script " + key +
                                      " failed: 9010 Download failed (attempt " +
                                      std::to_string(attempt) + ")"))
        << faults_of(failed);
    EXPECT_EQ(stored_summary(d, "provision_attempts"), std::to_string(attempt));

    auto next = w.session(d, with(kPeriodic));
    if (attempt < 3) {
      // Pushed again, from the remembered identity.
      ASSERT_EQ(next.count("Download"), 1u);
      EXPECT_EQ(next.all<soap::Download>()[0].command_key, key);
      EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
    } else {
      // The limit: no more pushes, the tag stays.
      EXPECT_TRUE(next.methods.empty());
      EXPECT_EQ(tags(d), (std::set<std::string>{"provision_failed"}));
    }
  }
  EXPECT_TRUE(w.session(d, with(kBoot)).methods.empty());
  EXPECT_EQ(tags(d), (std::set<std::string>{"provision_failed"}));

  // The operator starts over with the tag adopt.
  operator_tag(d, "adopt");
  auto again = w.session(d, with(kPeriodic));
  EXPECT_EQ(again.count("Download"), 1u);
  EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
  EXPECT_EQ(stored_summary(d, "provision_attempts"), "0");
}

TEST(Adoption, ARefusedBootstrapPushIsRetriedInTheNextSessionNotAtOnce) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  auto adopt = w.session(d, with_task(kPeriodic, "adopt", R"({"identity": "lab-1"})"));
  ASSERT_EQ(adopt.count("Download"), 1u);
  w.session(d, with_transfer(kTransferDone, adopt.all<soap::Download>()[0].command_key));
  ASSERT_EQ(tags(d), (std::set<std::string>{"provisioned"}));

  PolicyWorld::Options o = with(kBootstrap);
  o.fault_at[0] = 9002;  // the Download of the on_event push
  auto reset = w.session(d, o);
  EXPECT_EQ(reset.count("Download"), 1u) << "one push in this session";
  EXPECT_TRUE(has_fault(reset, "provisioning of lab-1 failed: 9002")) << faults_of(reset);
  EXPECT_EQ(tags(d), (std::set<std::string>{"provision_failed"}));
  auto retry = w.session(d, with(kPeriodic));
  EXPECT_EQ(retry.methods, std::vector<std::string>{"Download"});
  EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
}

TEST(Adoption, ARefusedSetIsAFailureRetriedInTheNextSession) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(corpus_model(kTr181));
  w.session(d, with(kBoot));
  PolicyWorld::Options o = with_task(kPeriodic, "adopt", R"({"identity": "lab-1"})");
  o.fault_at[0] = 9002;  // the SetParameterValues
  auto log = w.session(d, o);
  EXPECT_EQ(log.methods, std::vector<std::string>{"SetParameterValues"});
  ASSERT_EQ(log.task_results.size(), 1u);
  EXPECT_FALSE(log.task_results[0].first);
  EXPECT_NE(log.task_results[0].second.find("provisioning of lab-1 failed: 9002"),
            std::string::npos)
      << log.task_results[0].second;
  EXPECT_EQ(tags(d), (std::set<std::string>{"provision_failed"}));
  EXPECT_EQ(stored_summary(d, "provision_attempts"), "1");
  auto retry = w.session(d, with(kPeriodic));
  EXPECT_EQ(retry.methods, std::vector<std::string>{"SetParameterValues"});
  EXPECT_EQ(tags(d), (std::set<std::string>{"provisioned"}));
  EXPECT_EQ(stored_summary(d, "provision_attempts"), "0");
}

TEST(Adoption, AnotherJobsAlterResultIsNotJudged) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  auto log = w.session(d, with_transfer(kTransferDone, "alter-deadbeef", 9010, "x"));
  EXPECT_EQ(faults_of(log), "");
  EXPECT_EQ(tags(d), (std::set<std::string>{"pending"}));
}

// ---- firmware (30-firmware.lua) ----

const std::string kV7Manifest =
    "<upgrade version=\"1\" type=\"links\">\n   <config/>\n   <links>\n"
    "       <link><url>http://acs.test:7567/disk/routeros-7.15.3-mipsbe.npk</url></link>\n"
    "       <link><url>http://acs.test:7567/disk/tr069-client-7.15.3-mipsbe.npk</url></link>\n"
    "   </links>\n</upgrade>\n";

// Firmware settings of most tests: 7.15.3 for devices tagged `upgrade` (the
// shipped only_tag), or for every MikroTik.
const std::pair<std::string, std::string> kTargetForTagged{"99-test.lua",
                                                           "settings.firmware.target = '7.15.3'\n"};
const std::pair<std::string, std::string> kTargetForEveryMikroTik{
    "99-test.lua", "settings.firmware.target = '7.15.3'\nsettings.firmware.only_tag = nil\n"};

// Both v7 package files of `version` for `arch` in [files] dir.
void add_v7_packages(PolicyWorld& w, const std::string& version, const std::string& arch) {
  w.add_disk_file("routeros-" + version + "-" + arch + ".npk");
  w.add_disk_file("tr069-client-" + version + "-" + arch + ".npk");
}

// The same device, after it installed `version`: its Inform now says so.
void upgraded_to(PolicyWorld::Device& d, const std::string& version, const std::string& arch) {
  PolicyWorld::Device next{mikrotik_model(version, arch), d.serial, d.cpe, d.stored};
  d = std::move(next);
}

TEST(Firmware, ATaggedMikroTikGetsTheUpgradeAndIsUpgraded) {
  PolicyWorld w(default_policy_with({kTargetForTagged}));
  add_v7_packages(w, "7.15.3", "mipsbe");
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  // Not tagged `upgrade` (only_tag) yet: left alone.
  auto first = w.session(d, with(kBoot));
  EXPECT_EQ(first.count("Download"), 0u);
  operator_tag(d, "upgrade");

  auto log = w.session(d, with(kPeriodic));
  EXPECT_EQ(log.final_status, 204);
  EXPECT_EQ(faults_of(log), "");
  // The architecture is read once, then the manifest goes out.
  ASSERT_EQ(log.methods, (std::vector<std::string>{"GetParameterValues", "Download"}));
  EXPECT_EQ(log.all<soap::GetParameterValues>()[0].names,
            std::vector<std::string>{"Device.DeviceInfo.X_MIKROTIK_ArchName"});
  auto dl = log.all<soap::Download>()[0];
  EXPECT_EQ(dl.file_type, "1 Firmware Upgrade Image");
  EXPECT_EQ(dl.command_key, "upgrade-7.15.3");
  const Published* f = published_for(w, dl);
  ASSERT_NE(f, nullptr) << dl.url;
  EXPECT_EQ(f->bytes, kV7Manifest);
  EXPECT_EQ(f->content_type, "application/xml");
  EXPECT_TRUE(has(log.result.tags_added, "upgrading"));
  EXPECT_EQ(tags(d), (std::set<std::string>{"pending", "upgrade", "upgrading"}));
  EXPECT_EQ(stored_summary(d, "firmware_target"), "7.15.3");

  // Still upgrading (the device is installing): nothing is sent again.
  auto waiting = w.session(d, with(kPeriodic));
  EXPECT_TRUE(waiting.methods.empty());
  EXPECT_EQ(tags(d), (std::set<std::string>{"pending", "upgrade", "upgrading"}));

  // Back after the reboot on 7.15.3, with the TransferComplete.
  upgraded_to(d, "7.15.3", "mipsbe");
  auto done = w.session(d, with_transfer(kUpgradeDone, "upgrade-7.15.3"));
  EXPECT_EQ(faults_of(done), "");
  EXPECT_EQ(done.count("Download"), 0u);
  EXPECT_EQ(tags(d), (std::set<std::string>{"pending", "upgrade", "upgraded"}));
  EXPECT_EQ(stored_summary(d, "software_version"), "7.15.3");
  // Done: no more upgrades.
  EXPECT_TRUE(w.session(d, with(kPeriodic)).methods.empty());
}

TEST(Firmware, OnlyTagNilUpgradesEveryMikroTikWithV6NamesUnderBaseUrl) {
  PolicyWorld w(default_policy_with({{"99-test.lua", R"(
    settings.firmware.target = "6.49.13"
    settings.firmware.only_tag = nil
    settings.firmware.base_url = "https://fw.example.net/routeros/"
  )"}}));
  auto d = w.device(mikrotik_model("6.48.6", "smips"));
  auto log = w.session(d, with(kBoot));
  EXPECT_EQ(faults_of(log), "");
  ASSERT_EQ(log.count("Download"), 1u);
  auto dl = log.all<soap::Download>()[0];
  EXPECT_EQ(dl.command_key, "upgrade-6.49.13");
  const Published* f = published_for(w, dl);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(
      f->bytes,
      "<upgrade version=\"1\" type=\"links\">\n   <config/>\n   <links>\n"
      "       <link><url>https://fw.example.net/routeros/routeros-smips-6.49.13.npk</url></link>\n"
      "       "
      "<link><url>https://fw.example.net/routeros/tr069-client-6.49.13-smips.npk</url></link>\n"
      "   </links>\n</upgrade>\n");
  EXPECT_TRUE(tags(d).count("upgrading"));
  // Not a MikroTik: never.
  auto tp = w.device(corpus_model(kTr181));
  EXPECT_EQ(w.session(tp, with(kBoot)).count("Download"), 0u);
}

TEST(Firmware, AFailedUpgradeIsTaggedAndNotRetried) {
  PolicyWorld w(default_policy_with({kTargetForTagged}));
  add_v7_packages(w, "7.15.3", "mipsbe");
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  operator_tag(d, "upgrade");
  ASSERT_EQ(w.session(d, with(kPeriodic)).count("Download"), 1u);

  auto failed =
      w.session(d, with_transfer(kUpgradeDone, "upgrade-7.15.3", 9010, "Download failed"));
  EXPECT_EQ(failed.count("Download"), 0u);
  EXPECT_EQ(tags(d), (std::set<std::string>{"pending", "upgrade", "upgrade_failed"}));
  EXPECT_TRUE(has_fault(failed, "firmware: upgrade-7.15.3 failed: 9010 Download failed"))
      << faults_of(failed);
  // Not retried while tagged upgrade_failed.
  EXPECT_TRUE(w.session(d, with(kPeriodic)).methods.empty());
  EXPECT_TRUE(w.session(d, with(kBoot)).methods.empty());
  // The operator removes the tag: retried.
  d.edit().tags.erase("upgrade_failed");
  EXPECT_EQ(w.session(d, with(kPeriodic)).count("Download"), 1u);
}

TEST(Firmware, SuccessReportedButTheOldVersionRunningIsAFailure) {
  PolicyWorld w(default_policy_with({kTargetForEveryMikroTik}));
  add_v7_packages(w, "7.15.3", "mipsbe");
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  ASSERT_EQ(w.session(d, with(kBoot)).count("Download"), 1u);
  auto log = w.session(d, with_transfer(kUpgradeDone, "upgrade-7.15.3"));
  EXPECT_TRUE(has_fault(log, "reported success, but the device runs 6.49.10")) << faults_of(log);
  EXPECT_EQ(tags(d), (std::set<std::string>{"pending", "upgrade_failed"}));
  EXPECT_EQ(log.count("Download"), 0u);
}

TEST(Firmware, NeverADowngradeAndNothingWithoutATarget) {
  {
    PolicyWorld w(default_policy_with({kTargetForEveryMikroTik}));
    for (const std::string v : {"7.15.3", "7.16", "7.16beta2"}) {
      auto d = w.device(mikrotik_model(v, "arm"));
      auto log = w.session(d, with(kBoot));
      EXPECT_EQ(log.count("Download"), 0u) << v;
      EXPECT_EQ(tags(d), (std::set<std::string>{"pending"})) << v;
    }
  }
  {
    PolicyWorld w(default_policy_with({}));  // target = nil
    add_v7_packages(w, "7.15.3", "mipsbe");
    auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
    w.session(d, with(kBoot));
    operator_tag(d, "upgrade");
    auto log = w.session(d, with(kPeriodic));
    EXPECT_TRUE(log.methods.empty());
    EXPECT_EQ(tags(d), (std::set<std::string>{"pending", "upgrade"}));
  }
}

TEST(Firmware, ALostTransferCompleteIsSettledByTheInform) {
  PolicyWorld w(default_policy_with({kTargetForEveryMikroTik}));
  add_v7_packages(w, "7.15.3", "arm");
  auto d = w.device(mikrotik_model("7.12.1", "arm"));
  ASSERT_EQ(w.session(d, with(kBoot)).count("Download"), 1u);
  upgraded_to(d, "7.15.3", "arm");
  auto log = w.session(d, with(kBoot));  // no TransferComplete
  EXPECT_EQ(faults_of(log), "");
  EXPECT_EQ(tags(d), (std::set<std::string>{"pending", "upgraded"}));
}

TEST(Firmware, StuckUpgradingGivesUpAfterTheLimit) {
  PolicyWorld w(default_policy_with({kTargetForEveryMikroTik}));
  add_v7_packages(w, "7.15.3", "mipsbe");
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  ASSERT_EQ(w.session(d, with(kBoot)).count("Download"), 1u);
  // Within give_up_after: still waiting.
  EXPECT_TRUE(w.session(d, with(kPeriodic)).methods.empty());
  EXPECT_TRUE(tags(d).count("upgrading"));
  // Two days later.
  d.edit().parameters["Summary.firmware_sent_at"].value =
      std::to_string(std::time(nullptr) - 2 * 86400);
  auto log = w.session(d, with(kPeriodic));
  EXPECT_TRUE(has_fault(log, "firmware: still 6.49.10")) << faults_of(log);
  EXPECT_EQ(tags(d), (std::set<std::string>{"pending", "upgrade_failed"}));
  EXPECT_TRUE(log.methods.empty());
}

TEST(Firmware, AMissingPackageFileIsAFailureNotAStuckUpgrade) {
  PolicyWorld w(default_policy_with({kTargetForEveryMikroTik}));
  w.add_disk_file("routeros-7.15.3-mipsbe.npk");  // but no tr069-client
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  auto log = w.session(d, with(kBoot));
  EXPECT_EQ(log.count("Download"), 0u);
  EXPECT_TRUE(has_fault(log, "no file 'tr069-client-7.15.3-mipsbe.npk'")) << faults_of(log);
  EXPECT_EQ(tags(d), (std::set<std::string>{"pending", "upgrade_failed"}));
}

TEST(Firmware, TaskUpgradeIgnoresTheTagAndRefusesADowngrade) {
  PolicyWorld w(default_policy_with({}));  // no target, only_tag "upgrade"
  add_v7_packages(w, "7.15.3", "mipsbe");
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  auto log = w.session(d, with_task(kPeriodic, "upgrade", R"({"version": "7.15.3"})"));
  ASSERT_EQ(log.count("Download"), 1u) << faults_of(log);
  EXPECT_EQ(log.all<soap::Download>()[0].command_key, "upgrade-7.15.3");
  EXPECT_EQ(
      task_result(log),
      (nlohmann::json{{"result", {{"version", "7.15.3"}, {"command_key", "upgrade-7.15.3"}}}}));
  EXPECT_TRUE(tags(d).count("upgrading"));
  // Already under way.
  auto again = w.session(d, with_task(kPeriodic, "upgrade", R"({"version": "7.15.3"})"));
  EXPECT_EQ(again.count("Download"), 0u);
  ASSERT_EQ(again.task_results.size(), 1u);
  EXPECT_FALSE(again.task_results[0].first);
  EXPECT_NE(again.task_results[0].second.find("already under way"), std::string::npos);

  auto newer = w.device(mikrotik_model("7.16", "mipsbe"), "NEWER0000001");
  w.session(newer, with(kBoot));
  auto down = w.session(newer, with_task(kPeriodic, "upgrade", R"({"version": "7.15.3"})"));
  EXPECT_EQ(down.count("Download"), 0u);
  ASSERT_EQ(down.task_results.size(), 1u);
  EXPECT_FALSE(down.task_results[0].first);
  EXPECT_NE(down.task_results[0].second.find("not older than 7.15.3"), std::string::npos);
}

// ---- wifi (40-wifi.lua) ----

// "test_" + the last five hex digits of a MAC, upper case.
std::string test_ssid_for(const std::string& mac) {
  std::string hex;
  for (char c : mac)
    if (std::isxdigit(static_cast<unsigned char>(c))) hex += static_cast<char>(std::toupper(c));
  return "test_" + hex.substr(hex.size() - 5);
}

TEST(Wifi, ATaggedTr181GetsTheTestSsidOnce) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(corpus_model(kTr181));
  w.session(d, with(kBoot));
  const std::string ssid = test_ssid_for(corpus_value(kTr181, "Device.Ethernet.Link.1.MACAddress"));
  ASSERT_EQ(ssid, "test_00CE8");
  operator_tag(d, "wifi_test");

  auto log = w.session(d, with(kPeriodic));
  EXPECT_EQ(faults_of(log), "");
  EXPECT_EQ(log.methods, std::vector<std::string>{"SetParameterValues"});
  using V = std::pair<std::string, std::string>;
  EXPECT_EQ(set_values(log),
            (std::map<std::string, V>{{"Device.WiFi.AccessPoint.1.Enable", {"true", "boolean"}},
                                      {"Device.WiFi.SSID.1.Enable", {"true", "boolean"}},
                                      {"Device.WiFi.SSID.1.SSID", {ssid, "string"}}}));
  EXPECT_EQ(summary(log, "ssid"), ssid);
  EXPECT_EQ(w.session(d, with(kPeriodic)).methods, std::vector<std::string>{});
  // A boot costs nothing either: the device has the values.
  EXPECT_TRUE(w.session(d, with(kBoot)).methods.empty());
  // A factory reset: everything is sent again, even what looks unchanged.
  auto reset = w.session(d, with(kBootstrap));
  EXPECT_EQ(reset.count("SetParameterValues"), 1u);
  EXPECT_EQ(set_values(reset).size(), 3u);
  EXPECT_EQ(set_values(reset)["Device.WiFi.SSID.1.SSID"].first, ssid);
}

TEST(Wifi, TheSettingTurnsItOnForATr098FromItsFirstSession) {
  PolicyWorld w(default_policy_with({{"99-test.lua", "settings.wifi.test_ssid = true\n"}}));
  auto d = w.device(corpus_model(kTr098));
  auto log = w.session(d, with(kBoot));
  EXPECT_EQ(faults_of(log), "");
  const std::string ssid = test_ssid_for(corpus_value(
      kTr098,
      "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress"));
  ASSERT_EQ(ssid, "test_00665");
  // normalise reads the MAC, then wifi sets the SSID in the same session.
  EXPECT_EQ(log.methods, (std::vector<std::string>{"GetParameterValues", "SetParameterValues"}));
  using V = std::pair<std::string, std::string>;
  EXPECT_EQ(
      set_values(log),
      (std::map<std::string, V>{
          {"InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.Enable", {"true", "boolean"}},
          {"InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID", {ssid, "string"}}}));
  EXPECT_EQ(stored_summary(d, "ssid"), ssid);
  EXPECT_TRUE(w.session(d, with(kPeriodic)).methods.empty());
}

TEST(Wifi, AMikroTikGetsAnApBridgeScriptOnce) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(mikrotik_model("6.49.10", "mipsbe"));
  w.session(d, with(kBoot));
  operator_tag(d, "wifi_test");
  const std::string ssid = test_ssid_for(corpus_value(kTr181, "Device.Ethernet.Link.1.MACAddress"));

  auto log = w.session(d, with(kPeriodic));
  EXPECT_EQ(faults_of(log), "");
  ASSERT_EQ(log.methods, std::vector<std::string>{"Download"});
  auto dl = log.all<soap::Download>()[0];
  EXPECT_EQ(dl.file_type, "3 Vendor Configuration File");
  EXPECT_EQ(dl.command_key, "wifi-" + ssid);
  const Published* f = published_for(w, dl);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->bytes, "/interface wireless set [ find default-name=wlan1 ] mode=ap-bridge ssid=\"" +
                          ssid + "\" disabled=no\n");
  EXPECT_EQ(stored_summary(d, "ssid"), ssid);
  // Sent once.
  EXPECT_TRUE(w.session(d, with_transfer(kTransferDone, "wifi-" + ssid)).methods.empty());
  EXPECT_TRUE(w.session(d, with(kPeriodic)).methods.empty());
  // Its adoption state is untouched by the wifi script's result.
  EXPECT_EQ(tags(d), (std::set<std::string>{"pending", "wifi_test"}));
}

TEST(Wifi, AFailedMikroTikScriptIsTaggedAndNotRetried) {
  PolicyWorld w(default_policy_with({{"99-test.lua", "settings.wifi.test_ssid = true\n"}}));
  auto d = w.device(mikrotik_model("7.15.3", "arm"));
  auto first = w.session(d, with(kBoot));
  ASSERT_EQ(first.count("Download"), 1u);
  auto key = first.all<soap::Download>()[0].command_key;
  auto failed = w.session(d, with_transfer(kTransferDone, key, 9002, "Internal error"));
  EXPECT_TRUE(has_fault(failed, "wifi: script " + key + " failed: 9002 Internal error"))
      << faults_of(failed);
  EXPECT_TRUE(tags(d).count("wifi_failed"));
  // The summary's ssid is no longer the test SSID (wifi clears it, normalise
  // fills it again from the last value read), so the script goes out again
  // once the tag is removed.
  EXPECT_NE(stored_summary(d, "ssid"),
            test_ssid_for(corpus_value(kTr181, "Device.Ethernet.Link.1.MACAddress")));
  EXPECT_TRUE(w.session(d, with(kPeriodic)).methods.empty());
  // The operator removes the tag: pushed again.
  d.edit().tags.erase("wifi_failed");
  EXPECT_EQ(w.session(d, with(kPeriodic)).count("Download"), 1u);
}

TEST(Wifi, ARefusedSetIsTaggedAndNotRetried) {
  PolicyWorld w(default_policy_with({}));
  auto d = w.device(corpus_model(kTr181));
  w.session(d, with(kBoot));
  operator_tag(d, "wifi_test");
  PolicyWorld::Options o = with(kPeriodic);
  o.fault_at[0] = 9001;
  auto log = w.session(d, o);
  EXPECT_EQ(log.methods, std::vector<std::string>{"SetParameterValues"});
  EXPECT_TRUE(has_fault(log, "wifi: SetParameterValues failed: 9001")) << faults_of(log);
  EXPECT_TRUE(tags(d).count("wifi_failed"));
  EXPECT_TRUE(w.session(d, with(kPeriodic)).methods.empty());
}

// ---- the defaults are safe ----

TEST(Defaults, APlainDeviceGetsNoDownloadAndNoSet) {
  PolicyWorld w(default_policy_with({}));
  add_v7_packages(w, "7.15.3", "mipsbe");
  for (const auto& model :
       {corpus_model(kTr098), corpus_model(kTr181), mikrotik_model("6.49.10", "mipsbe")}) {
    SCOPED_TRACE(model.name());
    auto d = w.device(model);
    for (const Events& ev :
         {kBoot, kPeriodic, kBootstrap, Events{{"M Reboot", "r"}, {"1 BOOT", ""}}, kPeriodic}) {
      auto log = w.session(d, with(ev));
      EXPECT_EQ(log.final_status, 204);
      EXPECT_EQ(faults_of(log), "");
      for (const auto& m : log.methods) EXPECT_EQ(m, "GetParameterValues");
    }
    EXPECT_EQ(tags(d), (std::set<std::string>{"pending"}));
  }
  EXPECT_TRUE(w.published().empty());
}

}  // namespace
}  // namespace luacs::test
