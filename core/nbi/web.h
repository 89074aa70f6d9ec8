// The operator web page's files ([nbi] web_dir), served from memory on the
// API listener: GET / and GET /ui/ answer index.html, GET /ui/{file} that
// file, without a token (the page then logs in: core/nbi/login.h).
//
// The folder is read once, before the API's loop serves anything, so no
// request ever touches the disk. It is bounded (kMaxFiles, kMaxBytes) and
// flat: regular files whose names are [A-Za-z0-9._-] only; anything else
// in it is skipped with a warning. A request names a file of that set or
// gets 404, so no path can leave the folder.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace luacs::nbi {

class WebFiles {
 public:
  static constexpr size_t kMaxFiles = 256;
  static constexpr size_t kMaxBytes = size_t{4} << 20;

  struct File {
    std::string content_type;
    std::string body;
    std::string gzip;  // the body gzipped when that is smaller, else ""
    std::string etag;  // "\"<16 hex of its SHA-256>\""
  };

  // Reads `dir`. A folder that does not exist is an empty page (logged);
  // one over the bounds, or unreadable, throws std::runtime_error.
  static WebFiles load(const std::string& dir);

  // nullptr when there is no such file.
  const File* find(std::string_view name) const;
  size_t size() const { return files_.size(); }

 private:
  std::map<std::string, File, std::less<>> files_;
};

// The Content-Type of a file name by its extension
// (application/octet-stream for an unknown one).
std::string_view web_content_type(std::string_view name);
// Whether an Accept-Encoding header value accepts gzip (q > 0).
bool accepts_gzip(std::string_view accept_encoding);

}  // namespace luacs::nbi
