// What the policy layer adds to an Inform: a whole session in process
// (Inform -> InformResponse, empty POST -> 204) through the real session
// engine, without and with a policy, the Inform already parsed. The hook
// overhead per Inform is the difference between the runs (see
// bench/README.md).
//
//   build/rel/bench/bench_policy --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "core/cwmp/device_id.h"
#include "core/cwmp/session.h"
#include "core/session/driver.h"
#include "core/sim/cpe.h"
#include "core/sim/datamodel.h"
#include "core/util/log.h"
#include "lua/policy.h"

namespace {

using namespace luacs;

sim::DataModel& model() {
  static sim::DataModel m =
      sim::DataModel::load(std::string(LUACS_SHARED_DIR) +
                           "/corpus/datamodels/tr181-tplink-EC220-G5v3-anlix-genieacs-sim.csv");
  return m;
}

std::string write_policy(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / ("luacs-bench-policy-" + name);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "main.lua") << text;
  return dir.string();
}

// A known, provisioned device whose summary is complete: the periodic
// Inform of the field, which the default policy must let through without
// an RPC.
std::shared_ptr<device::Device> known_device(const soap::Envelope& inform) {
  auto d = std::make_shared<device::Device>();
  const auto& in = std::get<soap::Inform>(inform.body);
  d->id = cwmp::device_id(in.device_id);
  d->first_seen = d->last_inform = std::chrono::system_clock::now() - std::chrono::hours(24);
  d->data_model_root = "Device";
  d->tags = {"provisioned"};
  auto now = std::chrono::system_clock::now();
  for (const auto& p : model().all())
    if (!p.object) d->parameters[p.name] = {p.value, p.type, now};
  for (const char* k : {"serial", "model", "software_version", "mac", "wan_ip", "ssid"})
    d->parameters[std::string("Summary.") + k] = {"x", "string", now};
  return d;
}

void run_sessions(benchmark::State& state, const std::string& policy_dir) {
  log::set_level("error");
  soap::Envelope inform = sim::make_inform(model(), model().device_id().serial_number,
                                           {{"2 PERIODIC", ""}}, "2026-11-21T12:00:00Z");
  soap::Envelope empty;
  empty.body = soap::Empty{};
  std::unique_ptr<lua::PolicyManager> manager;
  std::unique_ptr<lua::Engine> engine;
  if (!policy_dir.empty()) {
    manager = std::make_unique<lua::PolicyManager>(policy_dir, lua::Limits{});
    auto r = manager->reload();
    if (!r.ok) throw std::runtime_error(r.error);
    engine = std::make_unique<lua::Engine>(*manager, lua::FileServices{}, 0);
  }
  // Each session through the server's own session driver (core/session),
  // up to its end; the result's assembly for the store (finish()) is not
  // part of this figure.
  session::Services services;
  services.engine = engine.get();
  std::shared_ptr<const device::Device> device = known_device(inform);
  uint64_t rpcs = 0;
  for (auto _ : state) {
    auto now = cwmp::Clock::now();
    session::Driver d("bench", {}, services, {}, now);
    d.set_device(device);
    cwmp::Reply r = d.handle(inform, now).reply;
    r = d.handle(empty, now).reply;
    if (r.status != 204) ++rpcs;
    benchmark::DoNotOptimize(r);
  }
  if (rpcs) state.SkipWithError("the policy sent RPCs: not the path measured here");
  if (engine) state.counters["lua_bytes"] = static_cast<double>(engine->memory());
}

void BM_Session_NoPolicy(benchmark::State& state) {
  run_sessions(state, "");
}

// Hooks that are there but do nothing: the cost of a coroutine per hook
// and the dev / inform objects.
void BM_Session_EmptyHooks(benchmark::State& state) {
  static std::string dir = write_policy("empty", R"(
    function on_event(dev, code, inform) end
    function on_inform(dev, inform) end
  )");
  run_sessions(state, dir);
}

// A small realistic hook: reads the identity, a tag and a parameter.
void BM_Session_SmallPolicy(benchmark::State& state) {
  static std::string dir = write_policy("small", R"(
    function on_inform(dev, inform)
      if dev.is_new then dev:tag("pending") return end
      if dev:has_tag("provisioned") then
        local v = dev:param("Device.DeviceInfo.SoftwareVersion")
        if v and luacs.version_compare(v, "1.0") < 0 then dev:tag("old") end
      end
    end
  )");
  run_sessions(state, dir);
}

// The shipped default policy (policies/default): all four jobs on a
// provisioned device's periodic Inform.
void BM_Session_DefaultPolicy(benchmark::State& state) {
  run_sessions(state, std::string(LUACS_SOURCE_DIR) + "/policies/default");
}

BENCHMARK(BM_Session_NoPolicy);
BENCHMARK(BM_Session_EmptyHooks);
BENCHMARK(BM_Session_SmallPolicy);
BENCHMARK(BM_Session_DefaultPolicy);

}  // namespace
