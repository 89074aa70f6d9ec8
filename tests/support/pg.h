// Plain synchronous libpq for tests that look into the database luacs
// writes (tests only: nothing here runs on an event loop).
#pragma once

#include <string>
#include <vector>

namespace luacs::test {

using Rows = std::vector<std::vector<std::string>>;

// The private cluster's maintenance DSN: $LUACS_TEST_DSN, else what
// `scripts/pg-private dsn` prints ("" when neither works).
std::string test_dsn();

class Pg {
 public:
  explicit Pg(const std::string& dsn);
  ~Pg();
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;
  bool ok() const;
  const std::string& error() const { return error_; }
  // Rows of the result (NULL as ""); throws std::runtime_error on an error.
  Rows query(const std::string& sql, const std::vector<std::string>& params = {});
  std::string value(const std::string& sql, const std::vector<std::string>& params = {});

 private:
  void* conn_ = nullptr;
  std::string error_;
};

// A fresh database on the test cluster, dropped at destruction.
class TempDatabase {
 public:
  explicit TempDatabase(const std::string& tag);
  ~TempDatabase();
  const std::string& dsn() const { return dsn_; }
  const std::string& name() const { return name_; }

 private:
  std::string admin_, name_, dsn_;
};

}  // namespace luacs::test
