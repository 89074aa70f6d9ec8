#include "core/cwmp/device_id.h"

#include <gtest/gtest.h>

namespace luacs::cwmp {
namespace {

soap::DeviceIdStruct id(std::string oui, std::string product_class, std::string serial) {
  return {"Any Manufacturer, Inc.", std::move(oui), std::move(product_class), std::move(serial)};
}

TEST(DeviceId, ExamplesFromTheBrief) {
  EXPECT_EQ(device_id(id("E48D8C", "hAP lite", "8C5B0A1B2C3D")), "E48D8C-hAP%20lite-8C5B0A1B2C3D");
  EXPECT_EQ(device_id(id("00E04C", "W5-2100G", "D8365F659C6E")), "00E04C-W5%2D2100G-D8365F659C6E");
}

TEST(DeviceId, EmptyProductClassDropsThePart) {
  EXPECT_EQ(device_id(id("00E04C", "", "D8365F659C6E")), "00E04C-D8365F659C6E");
}

TEST(DeviceId, OuiKeptAsSent) {
  EXPECT_EQ(device_id(id("00a859", "IGD", "s1")), "00a859-IGD-s1");
  EXPECT_EQ(device_id(id("12345", "", "s1")), "12345-s1");
}

TEST(DeviceId, ManufacturerIsNotPartOfIt) {
  auto a = id("001122", "PC", "SN");
  auto b = a;
  b.manufacturer = "Other";
  EXPECT_EQ(device_id(a), device_id(b));
}

TEST(EscapeIdPart, AsciiPunctuation) {
  EXPECT_EQ(escape_id_part("Aa0_z9Z"), "Aa0_z9Z");
  EXPECT_EQ(escape_id_part("a b"), "a%20b");
  EXPECT_EQ(escape_id_part("a+b"), "a%2Bb");
  EXPECT_EQ(escape_id_part("x^y"), "x%5Ey");
  EXPECT_EQ(escape_id_part("100%"), "100%25");
  EXPECT_EQ(escape_id_part("a-b.c/d:e"), "a%2Db%2Ec%2Fd%3Ae");
  EXPECT_EQ(escape_id_part("~"), "%7E");
  EXPECT_EQ(escape_id_part(""), "");
}

// GenieACS writes b.toString(16).toUpperCase(): no zero padding.
TEST(EscapeIdPart, ControlBytesGetOneHexDigit) {
  EXPECT_EQ(escape_id_part("a\tb"), "a%9b");
  EXPECT_EQ(escape_id_part("a\nb"), "a%Ab");
  EXPECT_EQ(escape_id_part(std::string("\0", 1)), "%0");
  EXPECT_EQ(escape_id_part("\x1f"), "%1F");
  EXPECT_EQ(escape_id_part("\x7f"), "%7F");
}

TEST(EscapeIdPart, Utf8BytesEachEscaped) {
  EXPECT_EQ(escape_id_part("caf\xC3\xA9"), "caf%C3%A9");  // é
  EXPECT_EQ(escape_id_part("\xE2\x82\xAC"
                           "5"),
            "%E2%82%AC5");                                 // €
  EXPECT_EQ(escape_id_part("\xE4\xB8\xAD"), "%E4%B8%AD");  // 中
}

// Outside the BMP, GenieACS's regex sees two lone surrogates, and Node's
// Buffer.from() turns each into U+FFFD.
TEST(EscapeIdPart, AstralCharactersBecomeTwoReplacementCharacters) {
  EXPECT_EQ(escape_id_part("a\xF0\x9F\x98\x80z"), "a%EF%BF%BD%EF%BF%BDz");  // 😀
}

TEST(EscapeIdPart, InvalidUtf8IsEscapedBytewise) {
  EXPECT_EQ(escape_id_part("\xFF"), "%FF");
  EXPECT_EQ(escape_id_part("\xC3"), "%C3");                // truncated
  EXPECT_EQ(escape_id_part("\xC0\xAF"), "%C0%AF");         // overlong
  EXPECT_EQ(escape_id_part("\xED\xA0\x80"), "%ED%A0%80");  // encoded surrogate
  EXPECT_EQ(escape_id_part("\xF0\x9F\x98"), "%F0%9F%98");  // truncated 4-byte
}

TEST(EscapeIdPart, OutputOnlyUsesSafeCharacters) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::string out = escape_id_part(all);
  EXPECT_EQ(
      out.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_%"),
      std::string::npos);
}

}  // namespace
}  // namespace luacs::cwmp
