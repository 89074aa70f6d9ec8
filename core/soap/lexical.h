// The lenient readings of SOAP leaf text the reader applies (numbers,
// booleans) and the charsets expat decodes by itself. Pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace luacs::soap::lexical {

// Surrounding whitespace and zero padding are fine ("05"); anything else
// that is not a plain number (garbage, overflow) gives 0.
uint32_t parse_u32(std::string_view s);
int parse_int(std::string_view s);
// "1" or "true" (any case), whitespace around.
bool parse_bool(std::string_view s);
// The name expat knows a charset by ("utf8" -> "UTF-8"); nullptr for one it
// does not decode.
const char* expat_encoding(std::string_view e);

}  // namespace luacs::soap::lexical
