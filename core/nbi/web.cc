#include "core/nbi/web.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "core/nbi/api.h"
#include "core/util/hex.h"
#include "core/util/log.h"
#include "core/util/text.h"

namespace luacs::nbi {

namespace {

// What every static answer carries: the page may run only its own scripts
// and styles (no inline ones, no eval), talk only to this origin, and not be
// framed; the browser must not guess types.
constexpr std::string_view kCsp =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

Headers static_headers() {
  return {{"Content-Security-Policy", std::string(kCsp)},
          {"X-Content-Type-Options", "nosniff"},
          {"Referrer-Policy", "no-referrer"},
          {"X-Frame-Options", "DENY"}};
}

bool good_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool compressible(std::string_view type) {
  return type.starts_with("text/") || type.starts_with("application/javascript") ||
         type.starts_with("application/json") || type.starts_with("image/svg+xml");
}

// `body` gzipped, or "" when that does not make it smaller.
std::string gzipped(const std::string& body) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return {};
  std::string out(deflateBound(&zs, body.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  zs.avail_in = static_cast<uInt>(body.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END || out.size() >= body.size()) return {};
  return out;
}

std::string read_file(const std::string& path, size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      throw std::runtime_error("cannot read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) {
      ::close(fd);
      throw std::runtime_error("web_dir: the files are larger than 4 MiB in all");
    }
  }
  ::close(fd);
  return out;
}

// Whether If-None-Match (a list of entity tags, or "*") names `etag`.
bool etag_matches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    const auto comma = header.find(',');
    auto tag = text::trim(header.substr(0, comma));
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

void serve(const ExchangePtr& x, std::string_view name) {
  const WebFiles* files = x->api().web();
  const WebFiles::File* f = files ? files->find(name) : nullptr;
  Headers h = static_headers();
  if (!f) {
    const bool none = !files || files->size() == 0;
    return x->error(404, "not found",
                    none ? "no web page here ([nbi] web_dir is empty or missing)"
                         : "no file " + std::string(name) + " in the web page",
                    std::move(h));
  }
  h.emplace_back("Cache-Control", "no-cache");
  h.emplace_back("ETag", f->etag);
  if (!f->gzip.empty()) h.emplace_back("Vary", "Accept-Encoding");
  if (etag_matches(x->head().header("If-None-Match"), f->etag))
    return x->reply(304, "", "", std::move(h));
  if (!f->gzip.empty() && accepts_gzip(x->head().header("Accept-Encoding"))) {
    h.emplace_back("Content-Encoding", "gzip");
    return x->reply(200, f->content_type, f->gzip, std::move(h));
  }
  x->reply(200, f->content_type, f->body, std::move(h));
}

}  // namespace

std::string_view web_content_type(std::string_view name) {
  const auto dot = name.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? "" : name.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js") return "application/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "json") return "application/json";
  if (ext == "txt") return "text/plain; charset=utf-8";
  if (ext == "woff2") return "font/woff2";
  return "application/octet-stream";
}

bool accepts_gzip(std::string_view accept_encoding) {
  while (!accept_encoding.empty()) {
    const auto comma = accept_encoding.find(',');
    const auto item = accept_encoding.substr(0, comma);
    const auto semi = item.find(';');
    if (text::iequals(text::trim(item.substr(0, semi)), "gzip")) {
      if (semi == std::string_view::npos) return true;
      // "gzip;q=0" refuses it; any other weight accepts it.
      auto q = text::trim(item.substr(semi + 1));
      if (!(q.starts_with("q=") || q.starts_with("Q="))) return true;
      q.remove_prefix(2);
      return q.find_first_not_of("0.") != std::string_view::npos;
    }
    if (comma == std::string_view::npos) break;
    accept_encoding.remove_prefix(comma + 1);
  }
  return false;
}

WebFiles WebFiles::load(const std::string& dir) {
  WebFiles w;
  if (dir.empty()) return w;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) {
      log::info("api: no web page: [nbi] web_dir " + dir + " does not exist");
      return w;
    }
    throw std::runtime_error("cannot read [nbi] web_dir " + dir + ": " + std::strerror(errno));
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::lstat((dir + "/" + name).c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !good_name(name)) {
      log::warn("api: web_dir " + dir + ": " + log::quoted(name) +
                " skipped (only regular files named [A-Za-z0-9._-])");
      continue;
    }
    names.push_back(name);
  }
  ::closedir(d);
  if (names.size() > kMaxFiles)
    throw std::runtime_error("[nbi] web_dir " + dir + " has " + std::to_string(names.size()) +
                             " files; at most " + std::to_string(kMaxFiles) + " are served");
  size_t total = 0;
  for (const auto& name : names) {
    File f;
    f.body = read_file(dir + "/" + name, kMaxBytes - total);
    total += f.body.size();
    f.content_type = std::string(web_content_type(name));
    f.etag = "\"" + util::sha256_hex(f.body).substr(0, 16) + "\"";
    if (compressible(f.content_type)) f.gzip = gzipped(f.body);
    w.files_.emplace(name, std::move(f));
  }
  if (!w.files_.count("index.html"))
    log::warn("api: web_dir " + dir + " has no index.html: GET / answers 404");
  log::info("api: web page: " + std::to_string(w.files_.size()) + " files, " +
            std::to_string(total) + " bytes from " + dir);
  return w;
}

const WebFiles::File* WebFiles::find(std::string_view name) const {
  const auto it = files_.find(name);
  return it == files_.end() ? nullptr : &it->second;
}

void add_web_routes(Router& r) {
  auto index = [](const ExchangePtr& x) { serve(x, "index.html"); };
  r.add(route("GET", "/", Role::kNone, index));
  r.add(route("GET", "/ui", Role::kNone, index));
  r.add(
      route("GET", "/ui/{file}", Role::kNone, [](const ExchangePtr& x) { serve(x, x->param(0)); }));
}

}  // namespace luacs::nbi
