// authorize(dev, cert): the policy's say on a client certificate, called
// before a session with a read-only `dev` and the certificate's fields.
#include <gtest/gtest.h>

#include "lua/policy.h"
#include "policy/harness.h"

namespace luacs::test {
namespace {

device::Device stored_device() {
  device::Device d;
  d.id = "00259E-HG8245H-SN7";
  d.oui = "00259E";
  d.product_class = "HG8245H";
  d.serial_number = "SN7";
  d.tags = {"adopted"};
  return d;
}

device::ClientCertificate certificate(std::string cn) {
  device::ClientCertificate c;
  c.subject = "CN=" + cn + ",O=ISP";
  c.issuer = "CN=ISP device CA";
  c.common_name = std::move(cn);
  c.sans = {"URI:urn:isp:cpe:SN7"};
  c.serial = "1a2b";
  c.sha256 = "ab12";
  c.not_after = "2030-01-01T00:00:00Z";
  return c;
}

struct Engine : OneFilePolicy {
  explicit Engine(const std::string& lua) : OneFilePolicy("auth.lua", lua) {}
};

TEST(Authorize, SeesTheDeviceAndTheCertificate) {
  Engine e(R"(
    function authorize(dev, cert)
      assert(cert.issuer == "CN=ISP device CA" and cert.serial == "1a2b" and cert.sha256 == "ab12")
      assert(cert.not_after == "2030-01-01T00:00:00Z" and cert.subject:find("O=ISP"))
      if not dev:has_tag("adopted") then return false, "not adopted yet" end
      if cert.sans[1] == "URI:urn:isp:cpe:" .. dev.serial then return true end
      return cert.bound
    end)");
  ASSERT_TRUE(e.engine.has_authorize());
  auto d = stored_device();
  EXPECT_TRUE(e.engine.authorize(d, certificate("x"), false).allowed);
  auto other = certificate("x");
  other.sans = {"URI:urn:isp:cpe:SN8"};
  EXPECT_FALSE(e.engine.authorize(d, other, false).allowed);
  EXPECT_TRUE(e.engine.authorize(d, other, true).allowed) << "the rule's verdict, passed on";
  d.tags.clear();
  const auto r = e.engine.authorize(d, certificate("x"), true);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.reason, "not adopted yet");
}

TEST(Authorize, FailsClosed) {
  Engine e(R"(
    function authorize(dev, cert)
      if dev.serial == "LOOP" then while true do end end
      if dev.serial == "NUM" then return 1 end
      if dev.serial == "NIL" then return nil end
      error("no rule for " .. dev.serial)
    end)");
  auto d = stored_device();
  auto r = e.engine.authorize(d, certificate("x"), true);
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.reason.find("auth.lua:6: no rule for SN7"), std::string::npos) << r.reason;
  d.serial_number = "NUM";
  r = e.engine.authorize(d, certificate("x"), true);
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.reason.find("must return true"), std::string::npos) << r.reason;
  d.serial_number = "NIL";
  r = e.engine.authorize(d, certificate("x"), true);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.reason, "refused by authorize");
  d.serial_number = "LOOP";  // the hook budget holds
  EXPECT_FALSE(e.engine.authorize(d, certificate("x"), true).allowed);
  EXPECT_GE(e.manager.hook_errors.load(), 3u);
}

TEST(Authorize, Absent) {
  Engine none("function on_inform(dev, inform) end\n");
  EXPECT_FALSE(none.engine.has_authorize());
  const auto r = lua::check(policy_dir({{"bad.lua", "authorize = {}\n"}}), {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("authorize is a table, not a function"), std::string::npos) << r.error;
}

}  // namespace
}  // namespace luacs::test
