// The checks core/connreq/xmpp.h makes before anything goes to the XMPP
// server (the device's ConnReqJabberID comes from the device: untrusted).
#include <gtest/gtest.h>

#include "core/connreq/xmpp.h"

namespace luacs::connreq {
namespace {

TEST(XmppJid, DeviceJids) {
  EXPECT_TRUE(is_device_jid("cpe1@xmpp.example.net/cwmp"));
  EXPECT_TRUE(is_device_jid("cpe1@xmpp.example.net"));
  EXPECT_TRUE(is_device_jid("00E04C-W5%2D2100G@xmpp.example.net/cwmp/with/slashes"));
  EXPECT_FALSE(is_device_jid(""));
  EXPECT_FALSE(is_device_jid("xmpp.example.net"));  // a server, not a device
  EXPECT_FALSE(is_device_jid("@xmpp.example.net/cwmp"));
  EXPECT_FALSE(is_device_jid("cpe1@"));
  EXPECT_FALSE(is_device_jid("cpe1@/cwmp"));
  EXPECT_FALSE(is_device_jid("cpe1@xmpp.example.net/"));
  EXPECT_FALSE(is_device_jid("cpe1@xmpp.example.net/cw mp"));
  EXPECT_FALSE(is_device_jid(std::string("cpe1@x\0y", 8)));
  EXPECT_FALSE(is_device_jid("cpe1@xmpp.example.net/\n"));
  EXPECT_FALSE(is_device_jid("cpe1@" + std::string(3100, 'a')));
}

TEST(XmppJid, OutcomeNamesAreStable) {
  EXPECT_EQ(outcome_name(XmppOutcome::kAnswered), "answered");
  EXPECT_EQ(outcome_name(XmppOutcome::kOffline), "offline");
  EXPECT_EQ(outcome_name(XmppOutcome::kAuthFailed), "auth_failed");
  EXPECT_EQ(outcome_name(XmppOutcome::kRefused), "refused");
  EXPECT_EQ(outcome_name(XmppOutcome::kTimedOut), "timed_out");
  EXPECT_EQ(outcome_name(XmppOutcome::kUnavailable), "unavailable");
  EXPECT_EQ(outcome_name(XmppOutcome::kInvalid), "invalid");
}

TEST(XmppJid, ClientNeedsAJid) {
  EXPECT_THROW(XmppClient(XmppSettings{}), std::invalid_argument);
}

TEST(XmppJid, SettingsFromConfig) {
  const auto cfg = config::parse(
      "[xmpp]\njid = acs@x.example/luacs\npassword = p\nserver = 192.0.2.1:5223\ntls = off\n"
      "timeout = 2s\n",
      "x.ini");
  const XmppSettings s = XmppSettings::from(cfg);
  EXPECT_EQ(s.jid, "acs@x.example/luacs");
  EXPECT_EQ(s.password, "p");
  EXPECT_EQ(s.server, "192.0.2.1:5223");
  EXPECT_EQ(s.tls, config::XmppTls::kOff);
  EXPECT_EQ(s.timeout, std::chrono::milliseconds{2000});
}

}  // namespace
}  // namespace luacs::connreq
