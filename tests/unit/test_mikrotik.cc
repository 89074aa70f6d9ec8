// The files luacs generates for MikroTik devices (core/files/mikrotik): the
// names of .alter scripts and the bytes of the firmware upgrade manifest.
#include <gtest/gtest.h>

#include <stdexcept>

#include "core/files/mikrotik.h"
#include "core/util/hex.h"

namespace luacs::files::mikrotik {
namespace {

const std::string kDevice = "E48D8C-hAP%20lite-7DCF08DC745D";
const std::string kScript = "/system identity set name=\"lab\"\n";

TEST(MikroTik, AnAlterScriptIsNamedAfterTheDeviceAndItsSha) {
  auto f = alter_script(kDevice, kScript, std::nullopt);
  std::string sha = util::sha256_hex(kScript);
  EXPECT_EQ(f.sha256, sha);
  EXPECT_EQ(f.name, "E48D8C-hAP_20lite-7DCF08DC745D-" + sha.substr(0, 8) + ".alter");
  EXPECT_EQ(f.bytes, kScript);
  EXPECT_EQ(f.device_id, kDevice);
  EXPECT_EQ(f.content_type, "text/plain; charset=utf-8");
}

TEST(MikroTik, AGivenAlterNameGetsItsSuffixOnce) {
  EXPECT_EQ(alter_script(kDevice, kScript, "identity").name, "identity.alter");
  EXPECT_EQ(alter_script(kDevice, kScript, "identity.alter").name, "identity.alter");
  EXPECT_THROW(alter_script(kDevice, kScript, "../etc/x"), std::invalid_argument);
  EXPECT_THROW(alter_script(kDevice, kScript, "a b"), std::invalid_argument);
  try {
    alter_script(kDevice, kScript, "");
    FAIL() << "an empty name is not the default name";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "'.alter' is not a file name ([A-Za-z0-9._-])");
  }
}

TEST(MikroTik, TheUpgradeManifestListsTheUrlsEscaped) {
  auto f = upgrade_manifest({"http://acs.test:7567/tok/routeros-7.15.3-mipsbe.npk",
                             "https://fw.example.net/tr069-client-7.15.3-mipsbe.npk?a=1&b=2"});
  EXPECT_EQ(f.bytes,
            "<upgrade version=\"1\" type=\"links\">\n   <config/>\n   <links>\n"
            "       <link><url>http://acs.test:7567/tok/routeros-7.15.3-mipsbe.npk</url></link>\n"
            "       <link><url>https://fw.example.net/tr069-client-7.15.3-mipsbe.npk?a=1&amp;b=2"
            "</url></link>\n   </links>\n</upgrade>\n");
  EXPECT_EQ(f.sha256, util::sha256_hex(f.bytes));
  EXPECT_EQ(f.name, "upgrade-" + f.sha256.substr(0, 16) + ".xml");
  EXPECT_EQ(f.content_type, "application/xml");
  EXPECT_EQ(f.device_id, "");
}

}  // namespace
}  // namespace luacs::files::mikrotik
