// connection_request_auth(dev): the policy's connection-request credentials,
// called outside any session with a read-only `dev` of the stored device.
#include <gtest/gtest.h>

#include "lua/policy.h"
#include "policy/harness.h"

namespace luacs::test {
namespace {

device::Device stored_device() {
  device::Device d;
  d.id = "E48D8C-hAP%20lite-HG1";
  d.oui = "E48D8C";
  d.product_class = "hAP lite";
  d.serial_number = "HG1";
  d.manufacturer = "MikroTik";
  d.data_model_root = "Device";
  d.tags = {"adopted", "vip"};
  d.parameters["Device.ManagementServer.ConnectionRequestUsername"] = {"cpe-HG1", "string", {}};
  d.parameters["Device.DeviceInfo.SoftwareVersion"] = {"7.16", "string", {}};
  return d;
}

struct Engine : OneFilePolicy {
  explicit Engine(const std::string& lua) : OneFilePolicy("cr.lua", lua) {}
};

TEST(ConnectionRequestAuth, DerivesCredentialsFromTheStoredDevice) {
  Engine e(R"(
    local secret = "s3cret"
    function connection_request_auth(dev)
      assert(dev.id == "E48D8C-hAP%20lite-HG1" and dev.serial == "HG1" and dev.is_mikrotik)
      assert(dev:has_tag("vip") and not dev:has_tag("nope") and #dev:tags() == 2)
      assert(dev:params("Device.DeviceInfo.")["Device.DeviceInfo.SoftwareVersion"] == "7.16")
      return dev:param(dev.root .. ".ManagementServer.ConnectionRequestUsername"),
             luacs.hmac_sha256(secret, dev.serial)
    end)");
  ASSERT_TRUE(e.engine.has_connection_request_auth());
  EXPECT_NE(std::find(e.manager.status().hooks.begin(), e.manager.status().hooks.end(),
                      "connection_request_auth"),
            e.manager.status().hooks.end());
  std::string error;
  const auto a = e.engine.connection_request_auth(stored_device(), &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->username, "cpe-HG1");
  // HMAC-SHA256("s3cret", "HG1"), as `printf HG1 | openssl dgst -sha256 -hmac s3cret` says.
  EXPECT_EQ(a->password, "4b1acfbeb5b0967deedac421cad4ff5314d89e044df7eaa835d9b6ddebbdf311");
}

TEST(ConnectionRequestAuth, NilMeansTheNextSourceAndErrorsAreReported) {
  Engine e(R"(
    function connection_request_auth(dev)
      if dev:has_tag("vip") then return nil end
      if dev.serial == "LOOP" then while true do end end
      if dev.serial == "ONE" then return "only-user" end
      if dev.serial == "SET" then dev.serial = "x" end
      error("no credentials for " .. dev.serial)
    end)");
  std::string error;
  auto d = stored_device();
  EXPECT_FALSE(e.engine.connection_request_auth(d, &error));
  EXPECT_EQ(error, "");

  d.tags.clear();
  d.serial_number = "X1";
  EXPECT_FALSE(e.engine.connection_request_auth(d, &error));
  EXPECT_NE(error.find("cr.lua:7: no credentials for X1"), std::string::npos) << error;

  d.serial_number = "ONE";
  EXPECT_FALSE(e.engine.connection_request_auth(d, &error));
  EXPECT_NE(error.find("two strings"), std::string::npos) << error;

  d.serial_number = "SET";
  EXPECT_FALSE(e.engine.connection_request_auth(d, &error));
  EXPECT_NE(error.find("read-only"), std::string::npos) << error;

  // The hook budget holds here too.
  d.serial_number = "LOOP";
  EXPECT_FALSE(e.engine.connection_request_auth(d, &error));
  EXPECT_FALSE(error.empty());
  EXPECT_GE(e.manager.hook_errors.load(), 4u);
}

TEST(ConnectionRequestAuth, AbsentOrNotAFunction) {
  Engine none("function on_inform(dev, inform) end\n");
  std::string error = "stale";
  EXPECT_FALSE(none.engine.has_connection_request_auth());
  EXPECT_FALSE(none.engine.connection_request_auth(stored_device(), &error));
  EXPECT_EQ(error, "");

  const auto r = lua::check(policy_dir({{"bad.lua", "connection_request_auth = 42\n"}}), {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("connection_request_auth is a number, not a function"), std::string::npos)
      << r.error;
}

TEST(ConnectionRequestAuth, RandomHexIsFreshAndBounded) {
  Engine e(R"(
    function connection_request_auth(dev)
      local a, b = luacs.random_hex(16), luacs.random_hex(16)
      assert(#a == 32 and a ~= b and a:match("^%x+$"))
      assert(not pcall(luacs.random_hex, 0) and not pcall(luacs.random_hex, 65))
      return "u", a
    end)");
  std::string error;
  const auto a = e.engine.connection_request_auth(stored_device(), &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->password.size(), 32u);
}

}  // namespace
}  // namespace luacs::test
