// The files luacs serves on its file server (:7567), by name.
//
// Two kinds: files the policy layer generates (RouterOS .alter scripts,
// firmware upgrade manifests), held in memory and kept in PostgreSQL; and
// files put by hand in the [files] dir (firmware images), read from disk.
// Every file is fetched as /<token>/<name>: the token in the URL is the
// access check, so a URL handed to one CPE does not open the others.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/util/hex.h"
#include "core/util/text.h"

namespace luacs::files {

struct File {
  std::string name;  // valid_name()
  std::string content_type;
  std::shared_ptr<const std::string> bytes;  // in memory (generated files); or
  std::string path;                          // on disk (files of [files] dir)
  uint64_t size = 0;
  std::string sha256;     // hex; the ETag
  std::string token;      // URL access token
  std::string device_id;  // "" = not bound to a device
};

// [A-Za-z0-9._-]+, not starting with '.', at most 200 characters: safe in a
// URL path segment and as a file name in a folder, no traversal possible.
inline bool valid_name(std::string_view name) {
  return text::safe_file_name(name);
}

// Lower-case hex SHA-256 of data (the ETag).
using util::sha256_hex;

// Thread-safe: shared by the workers (which publish) and the file server
// (which serves). Files are immutable once in; a new version replaces the
// old one under the same name (readers holding the old keep it alive).
class Catalog {
 public:
  // Replaces a file of the same name.
  void put(std::shared_ptr<const File> f);
  // Adds f unless a file of that name is there already; returns the file
  // the catalog holds afterwards (a load from the store must not replace a
  // version published meanwhile).
  std::shared_ptr<const File> put_if_absent(std::shared_ptr<const File> f);
  std::shared_ptr<const File> find(std::string_view name) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const File>, std::less<>> files_;
};

}  // namespace luacs::files
