// luacs SIGKILLed under load (issue 15, fault injection): everything it
// acknowledged to a CPE is in PostgreSQL. The acknowledgement contract
// (docs/reliability.md): a TransferCompleteResponse is sent once the
// transfer result is committed, and a session's final 204 once its tags,
// faults and task results are.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/luacs_process.h"
#include "support/pg.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::CpeClient;
using test::HttpResponse;
using test::inform_xml;
using test::LuacsProcess;
using test::Pg;
using test::TempDatabase;

namespace {

constexpr const char* kPolicy = R"(
function on_inform(dev)
  dev:tag("seen")
  dev:fault("marked")
end
)";

const std::string kDevice = "E48D8C-hAP%20lite-";

struct Acks {
  std::mutex mu;
  std::set<std::string> transfers;  // serials whose TransferComplete was answered
  std::set<std::string> sessions;   // serials whose session ended with 204
};

// One session: Inform, TransferComplete, empty POST. False once luacs is gone.
bool session(uint16_t port, const std::string& serial, Acks& acks) {
  CpeClient c(port, std::chrono::milliseconds(5000));
  if (!c.connected()) return false;
  HttpResponse r = c.post(inform_xml(serial, "E48D8C", "hAP lite", {{"7 TRANSFER COMPLETE", ""}}));
  if (r.status != 200) return r.status != 0;
  soap::TransferComplete tc;
  tc.command_key = "k-" + serial;
  tc.start_time = tc.complete_time = "2026-12-03T00:00:00Z";
  r = c.post(test::message_xml(tc, "tc-" + serial));
  if (r.status != 200) return r.status != 0;
  if (std::holds_alternative<soap::TransferCompleteResponse>(test::parse_ok(r.body).body)) {
    std::lock_guard lock(acks.mu);
    acks.transfers.insert(serial);
  }
  r = c.post("");
  if (r.status == 204) {
    std::lock_guard lock(acks.mu);
    acks.sessions.insert(serial);
  }
  return r.status != 0;
}

}  // namespace

TEST(KillUnderLoad, EverythingAcknowledgedIsStored) {
  TempDatabase db("kill");
  const auto dir =
      std::filesystem::temp_directory_path() / ("luacs-e2e-kill-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "policy.lua") << kPolicy;
  LuacsProcess luacs("[cwmp]\nlisten = 127.0.0.1:0\nworkers = 2\n[store]\nsql_dir = " +
                         std::string(LUACS_SOURCE_DIR) +
                         "/sql\nflush_interval = 20ms\n[policy]\ndir = " + dir.string() +
                         "\n[log]\nlevel = info\n",
                     {"--store-dsn", db.dsn()});
  ASSERT_TRUE(luacs.started()) << luacs.log();

  Acks acks;
  std::atomic<bool> gone{false};
  std::vector<std::thread> cpes;
  for (int t = 0; t < 8; ++t)
    cpes.emplace_back([&, t] {
      for (int n = 0; !gone; ++n)
        if (!session(luacs.port(), "K" + std::to_string(t) + "x" + std::to_string(n), acks))
          std::this_thread::sleep_for(5ms);
    });
  // Let it work, then kill it in the middle of whatever it is doing.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(acks.mu);
      if (acks.sessions.size() >= 300) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  luacs.kill9();
  gone = true;
  for (auto& t : cpes) t.join();
  std::filesystem::remove_all(dir);

  ASSERT_GE(acks.sessions.size(), 50u) << luacs.log();
  Pg pg(db.dsn());
  ASSERT_TRUE(pg.ok()) << pg.error();
  size_t missing_tags = 0, missing_faults = 0, missing_transfers = 0;
  for (const auto& serial : acks.sessions) {
    const std::string id = kDevice + serial;
    if (pg.value("SELECT count(*) FROM devices WHERE id = '" + id + "' AND 'seen' = ANY(tags)") !=
        "1")
      ++missing_tags;
    if (pg.value("SELECT count(*) FROM faults WHERE device_id = '" + id +
                 "' AND source = 'policy'") != "1")
      ++missing_faults;
  }
  for (const auto& serial : acks.transfers) {
    if (pg.value("SELECT count(*) FROM transfers WHERE device_id = '" + kDevice + serial +
                 "' AND command_key = 'k-" + serial + "' AND completed_at IS NOT NULL") != "1")
      ++missing_transfers;
  }
  EXPECT_EQ(missing_tags, 0u) << "of " << acks.sessions.size() << " acknowledged sessions";
  EXPECT_EQ(missing_faults, 0u) << "of " << acks.sessions.size() << " acknowledged sessions";
  EXPECT_EQ(missing_transfers, 0u)
      << "of " << acks.transfers.size() << " acknowledged transfers; stored: "
      << pg.value("SELECT count(*) || ' ' || min(device_id || ':' || command_key) FROM transfers");
}
