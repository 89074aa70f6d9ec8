// Internal to core/store: the text forms PostgreSQL parameters take —
// array literals for unnest(), JSON, epoch milliseconds — built without a
// connection (no PQescapeLiteral) and without intermediate allocations.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/store/store.h"

namespace luacs::store {

// A one-dimensional array literal: {"a","b\"c",NULL,42}. Elements are
// always quoted (text) or bare (numbers, booleans); NUL bytes are dropped
// (a text parameter cannot carry them).
class ArrayLiteral {
 public:
  void add(std::string_view s);
  // An element already escaped for an array literal (see
  // append_json_string_in_array): quoted, copied as is.
  void add_escaped(std::string_view s);
  void add_null() { sep() += "NULL"; }
  void add(int64_t n);
  void add_bool(bool b) { sep() += b ? 't' : 'f'; }
  void reserve(size_t bytes) { text_.reserve(bytes); }
  size_t size() const { return n_; }
  // The literal; the builder is empty afterwards.
  std::string take();

 private:
  std::string& sep() {
    if (n_++) text_ += ',';
    return text_;
  }
  std::string text_ = std::string(1, '{');
  size_t n_ = 0;
};

// Appends s as a JSON string ("..." with escapes; NUL dropped: jsonb refuses \u0000).
void append_json_string(std::string& out, std::string_view s);
// The same JSON string, escaped once more for the inside of a quoted array
// element: a JSON document built from these (and the structural characters
// {}[]:, and numbers, which need nothing) goes into ArrayLiteral::add_escaped
// without a second pass over its bytes.
void append_json_string_in_array(std::string& out, std::string_view s);
// Appends a whole number.
void append_int(std::string& out, int64_t n);
// Appends epoch milliseconds as seconds with three decimals: 1732212345.123.
void append_epoch_seconds(std::string& out, int64_t ms);

int64_t to_epoch_ms(Time t);
Time from_epoch_ms(int64_t ms);
// Seconds (a JSON number, maybe fractional) to Time, rounded to the millisecond.
Time from_epoch_seconds(double s);

// `json` when it is one valid JSON value, else the text as a JSON string;
// "" becomes "{}". Keeps a caller's bad JSON from failing a whole batch.
std::string valid_json(std::string json);

}  // namespace luacs::store
