// The Inform path's device cache (core/store/device_cache): its bounds in
// devices and in memory, the entries it must keep until their write is
// committed, and copy-free updates of a device nobody else holds.
#include "core/store/device_cache.h"

#include <gtest/gtest.h>

#include <atomic>

using namespace luacs::store;

namespace {

// A device as a session leaves it: a dozen Inform values.
SessionResult session_of(const std::string& id, int values = 12) {
  SessionResult r;
  r.device_id = id;
  r.identity.oui = "E48D8C";
  r.identity.product_class = "hAP lite";
  r.identity.serial_number = id;
  r.inform_time = std::chrono::system_clock::now();
  r.events = {{"2 PERIODIC", ""}};
  for (int i = 0; i < values; ++i)
    r.parameters.push_back({{"Device.Some.Rather.Long.Parameter.Name." + std::to_string(i),
                             "a value that does not fit in place " + std::to_string(i), "string"},
                            r.inform_time});
  return r;
}

CacheEntry entry_of(const SessionResult& r) {
  return CacheEntry{apply_session(nullptr, r), true};
}

}  // namespace

TEST(DeviceCache, StaysWithinItsMemoryBound) {
  const size_t one = approx_bytes(*apply_session(nullptr, session_of("probe")));
  ASSERT_GT(one, 1000u) << "a device with a dozen values is not small";
  // Room for about 640 such devices, spread over 64 shards.
  DeviceCache cache(1'000'000, 640 * one);
  for (int i = 0; i < 20'000; ++i) {
    const std::string id = "dev" + std::to_string(i);
    cache.put_if_absent(id, entry_of(session_of(id)));
  }
  EXPECT_LE(cache.bytes(), 640 * one * 12 / 10);  // within the bound give or take a shard
  EXPECT_GE(cache.size(), 300u);
  EXPECT_LE(cache.size(), 800u);
  EXPECT_GE(cache.evictions(), 19'000u);
  // The most recent devices are the ones kept.
  EXPECT_TRUE(cache.get("dev19999"));
  EXPECT_FALSE(cache.get("dev0"));
}

TEST(DeviceCache, StaysWithinItsCountBound) {
  DeviceCache cache(640, size_t{1} << 30);
  for (int i = 0; i < 5'000; ++i) {
    const std::string id = "dev" + std::to_string(i);
    cache.put_if_absent(id, entry_of(session_of(id, 1)));
  }
  EXPECT_LE(cache.size(), 640u);
  EXPECT_GE(cache.size(), 500u);
}

TEST(DeviceCache, KeepsDevicesWhoseLastWriteIsNotCommitted) {
  const size_t one = approx_bytes(*apply_session(nullptr, session_of("probe")));
  std::atomic<uint64_t> committed_below{1};  // nothing committed yet
  DeviceCache cache(1'000'000, 64 * one);    // about one device per shard
  cache.set_unflushed(&committed_below);
  // 500 devices, each updated by write number i + 1, none committed.
  for (uint64_t i = 0; i < 500; ++i) {
    const std::string id = "dev" + std::to_string(i);
    cache.put_if_absent(id, entry_of(session_of(id)));
    cache.update(
        id, [&](CacheEntry& e) { apply_session(e.device, session_of(id)); }, i + 1);
  }
  EXPECT_EQ(cache.size(), 500u) << "a reload from PostgreSQL would miss those writes";
  EXPECT_EQ(cache.evictions(), 0u);

  // Once written, they may go: the next insert trims the shard back to its bound.
  committed_below = 501;
  for (int i = 0; i < 500; ++i) {
    const std::string id = "new" + std::to_string(i);
    cache.put_if_absent(id, entry_of(session_of(id)));
  }
  EXPECT_LT(cache.size(), 200u);
  EXPECT_GE(cache.evictions(), 800u);
}

TEST(DeviceCache, UpdatesInPlaceOnlyWhenNobodyElseHoldsTheDevice) {
  DeviceCache cache(100, size_t{1} << 30);
  cache.put_if_absent("d", entry_of(session_of("d")));
  const Device* before = cache.get("d")->device.get();

  SessionResult later = session_of("d");
  later.parameters = {{{"Device.DeviceInfo.SoftwareVersion", "2.0", "string"}, later.inform_time}};
  later.tags_added = {"seen"};
  cache.update("d", [&](CacheEntry& e) { apply_session(e.device, later); });
  std::shared_ptr<const Device> held = cache.get("d")->device;
  EXPECT_EQ(held.get(), before) << "nobody held it: changed in place";
  EXPECT_EQ(held->parameters.at("Device.DeviceInfo.SoftwareVersion").value, "2.0");
  EXPECT_EQ(held->parameters.size(), 13u);
  EXPECT_TRUE(held->tags.count("seen"));

  // A session holds `held` now: the next write makes a new snapshot and
  // leaves the one it sees alone.
  SessionResult third = session_of("d");
  third.parameters = {{{"Device.DeviceInfo.SoftwareVersion", "3.0", "string"}, third.inform_time}};
  third.tags_removed = {"seen"};
  cache.update("d", [&](CacheEntry& e) { apply_session(e.device, third); });
  auto now = cache.get("d")->device;
  EXPECT_NE(now.get(), held.get());
  EXPECT_EQ(held->parameters.at("Device.DeviceInfo.SoftwareVersion").value, "2.0");
  EXPECT_TRUE(held->tags.count("seen"));
  EXPECT_EQ(now->parameters.at("Device.DeviceInfo.SoftwareVersion").value, "3.0");
  EXPECT_FALSE(now->tags.count("seen"));
}
