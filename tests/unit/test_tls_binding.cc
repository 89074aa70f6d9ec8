#include "core/tls/binding.h"

#include <gtest/gtest.h>

namespace luacs::tls {
namespace {

PeerCertificate cert(std::string cn, std::vector<std::string> sans) {
  PeerCertificate c;
  c.present = c.verified = true;
  c.common_name = std::move(cn);
  c.sans = std::move(sans);
  return c;
}

constexpr std::string_view kSerial = "SN0042";
constexpr std::string_view kId = "00259E-HG8245-SN0042";

TEST(TlsBinding, SerialInTheCommonNameOrASan) {
  const Binding any{BindTo::kSerial, BindIn::kAny};
  EXPECT_TRUE(binds(cert("SN0042", {}), any, kSerial, kId));
  EXPECT_TRUE(binds(cert("cpe", {"URI:urn:luacs:device:SN0042"}), any, kSerial, kId));
  EXPECT_TRUE(binds(cert("cpe", {"DNS:x.example", "DNS:SN0042"}), any, kSerial, kId));
  EXPECT_FALSE(binds(cert("SN0043", {"URI:urn:luacs:device:SN0043"}), any, kSerial, kId));
  // Only a whole identifier after a ':' counts, not any suffix.
  EXPECT_FALSE(binds(cert("XSN0042", {"URI:urn:luacs:device:XSN0042"}), any, kSerial, kId));
  EXPECT_FALSE(binds(cert("sn0042", {}), any, kSerial, kId)) << "exact case";
  EXPECT_FALSE(binds(cert("SN0042", {}), any, "", kId)) << "a device without a serial";
}

TEST(TlsBinding, WhereTheRuleLooks) {
  const auto in_cn = cert("SN0042", {"URI:urn:luacs:device:OTHER"});
  const auto in_san = cert("OTHER", {"URI:urn:luacs:device:SN0042"});
  EXPECT_TRUE(binds(in_cn, {BindTo::kSerial, BindIn::kCommonName}, kSerial, kId));
  EXPECT_FALSE(binds(in_san, {BindTo::kSerial, BindIn::kCommonName}, kSerial, kId));
  EXPECT_FALSE(binds(in_cn, {BindTo::kSerial, BindIn::kSan}, kSerial, kId));
  EXPECT_TRUE(binds(in_san, {BindTo::kSerial, BindIn::kSan}, kSerial, kId));
}

TEST(TlsBinding, DeviceIdOrNone) {
  const Binding by_id{BindTo::kDeviceId, BindIn::kAny};
  EXPECT_TRUE(binds(cert("00259E-HG8245-SN0042", {}), by_id, kSerial, kId));
  EXPECT_TRUE(binds(cert("x", {"URI:urn:dev:ops:00259E-HG8245-SN0042"}), by_id, kSerial, kId));
  EXPECT_FALSE(binds(cert("SN0042", {}), by_id, kSerial, kId)) << "the serial alone is not the id";
  EXPECT_TRUE(binds(cert("anything", {}), {BindTo::kNone, BindIn::kAny}, kSerial, kId));
}

}  // namespace
}  // namespace luacs::tls
