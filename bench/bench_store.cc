// The store's write path.
//
// BM_EncodeBatch: building the SQL and array parameters of one write-behind
// batch (N sessions of a TR-181 device: 12 Inform parameters, one event, a
// summary) — pure CPU, no database.
//
// BM_StoreWrite: whole sessions through Store::write_session until
// PostgreSQL has committed them (batching, encoding, the server's upsert).
// Needs a database: LUACS_BENCH_DSN="$(scripts/pg-private dsn)" (tables are
// created in a schema `bench`, emptied first). Skipped without it.
#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/store/session_batch.h"
#include "core/store/store.h"

namespace {

using luacs::store::SessionResult;

SessionResult make_session(int i) {
  SessionResult r;
  const std::string serial = "S" + std::to_string(100000 + i);
  r.device_id = "00259E-HG8245H-" + serial;
  r.identity = {"Huawei Technologies Co., Ltd", "00259E", "HG8245H", serial};
  r.data_model_root = "Device";
  r.remote_address = "10.1." + std::to_string(i / 250 % 250) + "." + std::to_string(i % 250);
  r.inform_time = std::chrono::system_clock::now();
  r.events = {{"2 PERIODIC", ""}};
  const std::pair<const char*, const char*> params[] = {
      {"Device.DeviceInfo.Manufacturer", "Huawei Technologies Co., Ltd"},
      {"Device.DeviceInfo.ManufacturerOUI", "00259E"},
      {"Device.DeviceInfo.ProductClass", "HG8245H"},
      {"Device.DeviceInfo.SerialNumber", "4857544312345678"},
      {"Device.DeviceInfo.HardwareVersion", "10C7.A"},
      {"Device.DeviceInfo.SoftwareVersion", "V3R017C10S115"},
      {"Device.DeviceInfo.ProvisioningCode", "TLCO.GRP2"},
      {"Device.ManagementServer.ConnectionRequestURL", "http://10.1.2.3:7547/tr069"},
      {"Device.ManagementServer.ParameterKey", "policy-17"},
      {"Device.IP.Interface.1.IPv4Address.1.IPAddress", "100.64.12.34"},
      {"Device.DeviceInfo.UpTime", "86400"},
      {"Device.WiFi.SSID.1.SSID", "HUAWEI-5G-\"home\""},
  };
  for (const auto& [name, value] : params) {
    r.parameters.push_back({{name, value, "string"}, r.inform_time});
  }
  r.summary = R"({"result":"ok","rpcs":["InformResponse"],"duration_ms":3})";
  return r;
}

void BM_EncodeBatch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<SessionResult> sessions;
  for (int i = 0; i < n; ++i) sessions.push_back(make_session(i));
  std::vector<const SessionResult*> ptrs;
  for (const auto& s : sessions) ptrs.push_back(&s);
  size_t bytes = 0;
  for (auto _ : state) {
    auto batch = luacs::store::encode_batch(ptrs, {});
    bytes = 0;
    for (const auto& st : batch.statements) {
      bytes += st.sql.size();
      for (const auto& p : st.params) bytes += p ? p->size() : 0;
    }
    benchmark::DoNotOptimize(batch);
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["bytes_per_batch"] = static_cast<double>(bytes);
}
BENCHMARK(BM_EncodeBatch)->Arg(1)->Arg(100)->Arg(500);

// The repository's sql/, found from this file's path (CMake compiles it by
// absolute path), or LUACS_SQL_DIR.
std::string sql_dir() {
  if (const char* d = std::getenv("LUACS_SQL_DIR")) return d;
  std::string f = __FILE__;
  return f.substr(0, f.rfind("/bench/")) + "/sql";
}

void BM_StoreWrite(benchmark::State& state) {
  const char* dsn = std::getenv("LUACS_BENCH_DSN");
  if (!dsn || !*dsn) {
    state.SkipWithError("set LUACS_BENCH_DSN (e.g. \"$(scripts/pg-private dsn)\") to run");
    return;
  }
  {
    PGconn* c = PQconnectdb(dsn);
    PQclear(PQexec(c,
                   "SET client_min_messages = warning;"
                   "DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench"));
    PQfinish(c);
  }
  luacs::store::Options opts;
  opts.dsn = std::string(dsn) + " options='-csearch_path=bench'";
  opts.batch_rows = static_cast<size_t>(state.range(1));
  const int devices = 100'000;
  const int per_iteration = static_cast<int>(state.range(0));
  std::unique_ptr<luacs::store::Store> store;
  try {
    store = luacs::store::Store::open(opts, sql_dir());
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  std::vector<SessionResult> templates;
  for (int i = 0; i < devices; ++i) templates.push_back(make_session(i));
  int next = 0;
  uint64_t written = 0;
  const auto before = store->stats();
  for (auto _ : state) {
    for (int i = 0; i < per_iteration; ++i) {
      SessionResult r = templates[next++ % devices];
      r.inform_time = std::chrono::system_clock::now();
      store->write_session(std::move(r));
    }
    written += per_iteration;
    while (store->stats().rows_written - before.rows_written < written) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  const auto after = store->stats();
  store->close();
  state.SetItemsProcessed(static_cast<int64_t>(written));
  const double batches = static_cast<double>(after.batches - before.batches);
  state.counters["avg_batch_rows"] = batches ? static_cast<double>(written) / batches : 0;
  state.counters["max_batch_rows"] = static_cast<double>(after.max_batch_rows);
}
// The same-run baseline for BM_StoreWrite: the cheapest form of the
// statement docs/performance-budget.md §3b measured (one multi-row
// INSERT ... ON CONFLICT DO UPDATE of rows with ~600 B jsonb, generated
// server-side, no session log, no merge), on the same database, so a reader
// can tell the machine's speed today from the store's overhead.
void BM_BaselineUpsert(benchmark::State& state) {
  const char* dsn = std::getenv("LUACS_BENCH_DSN");
  if (!dsn || !*dsn) {
    state.SkipWithError("set LUACS_BENCH_DSN to run");
    return;
  }
  PGconn* c = PQconnectdb(dsn);
  if (PQstatus(c) != CONNECTION_OK) {
    state.SkipWithError(PQerrorMessage(c));
    PQfinish(c);
    return;
  }
  PQclear(PQexec(c,
                 "SET client_min_messages = warning;"
                 "DROP TABLE IF EXISTS bench_baseline;"
                 "CREATE TABLE bench_baseline (id text PRIMARY KEY, last_inform timestamptz,"
                 " addr text, params jsonb) WITH (fillfactor = 80)"));
  const int rows = static_cast<int>(state.range(0));
  const std::string json =
      "{\"Device.DeviceInfo.SoftwareVersion\": \"" + std::string(550, 'x') + "\"}";
  const std::string sql =
      "INSERT INTO bench_baseline AS t (id, last_inform, addr, params)"
      " SELECT 'dev' || ($1::int + g), now(), '10.0.0.1', $2::jsonb FROM generate_series(1, " +
      std::to_string(rows) +
      ") g ON CONFLICT (id) DO UPDATE SET last_inform = EXCLUDED.last_inform,"
      " addr = EXCLUDED.addr, params = EXCLUDED.params";
  int base = 0;
  for (auto _ : state) {
    const std::string b = std::to_string(base);
    base = (base + rows) % 100'000;
    const char* params[] = {b.c_str(), json.c_str()};
    PGresult* r = PQexecParams(c, sql.c_str(), 2, nullptr, params, nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) state.SkipWithError(PQresultErrorMessage(r));
    PQclear(r);
  }
  PQclear(PQexec(c, "DROP TABLE bench_baseline"));
  PQfinish(c);
  state.SetItemsProcessed(state.iterations() * rows);
}
BENCHMARK(BM_BaselineUpsert)->Arg(100)->Arg(500)->UseRealTime()->MinTime(3.0);

BENCHMARK(BM_StoreWrite)
    ->Args({20'000, 500})
    ->Args({20'000, 100})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5);

}  // namespace
