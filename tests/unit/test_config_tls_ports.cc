// [nbi] listen and [files] listen over HTTPS (issue 14): accepted with the
// [cwmp] certificates, a line-numbered error without them, and a [files]
// url that would send CPEs plain HTTP to the TLS port refused.
#include <gtest/gtest.h>

#include <string>

#include "core/config/config.h"

namespace luacs::config {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse(text, "t.ini");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

const std::string kCerts = "[cwmp]\ntls_cert = c.crt\ntls_key = c.key\n";

TEST(ConfigTlsPorts, HttpsApiAndFilesWithTheCwmpCertificates) {
  const Config c =
      parse(kCerts +
                "[nbi]\nlisten = https://127.0.0.1:7557\n"
                "[files]\nlisten = https://[::1]:7567\nurl = https://acs.example.net\n",
            "t.ini");
  EXPECT_EQ(c.nbi_listen, (ListenAddress{"127.0.0.1", 7557, true}));
  EXPECT_EQ(c.files_listen, (ListenAddress{"::1", 7567, true}));
  EXPECT_FALSE(parse("[nbi]\nlisten = http://127.0.0.1:7557\n", "t.ini").nbi_listen.tls);
}

TEST(ConfigTlsPorts, HttpsWithoutCertificatesIsAnErrorAtItsLine) {
  EXPECT_EQ(error_of("[nbi]\n\nlisten = https://0.0.0.0:7557\n"),
            "t.ini:3: an https:// [nbi] listen needs tls_cert and tls_key in [cwmp]");
  EXPECT_EQ(error_of("[cwmp]\ntls_cert = c.crt\n[files]\nlisten = https://0.0.0.0:7567\n"),
            "t.ini:4: an https:// [files] listen needs tls_cert and tls_key in [cwmp]");
}

TEST(ConfigTlsPorts, OneAddressEach) {
  EXPECT_NE(error_of(kCerts + "[nbi]\nlisten = https://0.0.0.0:1, https://0.0.0.0:2\n")
                .find("t.ini:5: bad value"),
            std::string::npos);
}

TEST(ConfigTlsPorts, PlainFilesUrlForAnHttpsFilePortIsRefused) {
  EXPECT_EQ(error_of(kCerts + "[files]\nlisten = https://0.0.0.0:7567\nurl = http://acs:7567\n"),
            "t.ini:6: [files] url is http:// but [files] listen is https://: CPEs would send "
            "plain HTTP to a TLS port");
  // Behind a TLS-terminating proxy the other way round is fine.
  EXPECT_EQ(error_of("[files]\nlisten = 0.0.0.0:7567\nurl = https://acs.example.net\n"), "");
}

}  // namespace
}  // namespace luacs::config
