// PUT /files/{name}: the body streamed into [files] dir.
//
// The connection checks the token before it reads a body byte, then hands
// the body to an Upload piece by piece. Each piece is hashed (SHA-256) and
// written to a temporary file in the same folder (".upload-<random>": a
// name the file server never serves), so memory stays flat whatever the
// size. At the end: a generated file of the same name is refused (the file
// server would serve that one instead), then on a thread of its own the
// file is fsynced and renamed over its final name, and back on the loop
// its metadata goes to file_meta (sql/004_files_meta.sql). Whatever goes
// wrong before the rename -- too large, disk full, the client gone --
// removes the temporary file: Staged's destructor does, on every path.
#include "core/nbi/upload.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "core/util/hex.h"
#include "core/util/log.h"
#include "core/util/text.h"

namespace luacs::nbi {

namespace {

constexpr size_t kMaxMetaLength = 256;

struct Meta {
  std::optional<std::string> oui, product_class, version;
};

// Names being uploaded now (API loop only). A second PUT of a name while
// the first runs is refused: the file on disk and its file_meta row then
// always come from the same upload.
std::set<std::string>& uploading() {
  static std::set<std::string> names;
  return names;
}

// Holds a name in uploading() for as long as it lives.
class NameHold {
 public:
  explicit NameHold(std::string name) : name_(std::move(name)) { uploading().insert(name_); }
  ~NameHold() { uploading().erase(name_); }
  NameHold(const NameHold&) = delete;
  NameHold& operator=(const NameHold&) = delete;

 private:
  std::string name_;
};

using DigestPtr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

// The temporary file a body streams into, and its running hash. Removed
// when destroyed, unless commit() renamed it over its final name.
struct Staged {
  std::string dir, temp, final_path;
  int fd = -1;
  DigestPtr digest{nullptr, EVP_MD_CTX_free};
  uint64_t size = 0;

  Staged() = default;
  Staged(const Staged&) = delete;
  Staged& operator=(const Staged&) = delete;
  ~Staged() {
    if (fd >= 0) ::close(fd);
    if (!temp.empty()) ::unlink(temp.c_str());
  }
};

// Creates the folder if it is not there yet, then a temporary file in it
// (O_EXCL: never someone else's). Null with *err set on failure.
std::unique_ptr<Staged> open_staged(const std::string& dir, const std::string& name, int* err) {
  auto st = std::make_unique<Staged>();
  st->dir = dir;
  st->final_path = dir_path(dir, name);
  st->digest.reset(EVP_MD_CTX_new());
  if (!st->digest || EVP_DigestInit_ex(st->digest.get(), EVP_sha256(), nullptr) != 1) {
    *err = ENOMEM;
    return nullptr;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *err = errno;
    return nullptr;
  }
  try {
    std::string temp = dir_path(dir, ".upload-" + util::random_hex(8));
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      *err = errno;
      return nullptr;
    }
    st->fd = fd;
    st->temp = std::move(temp);
  } catch (const std::exception&) {  // the random generator failed
    *err = EIO;
    return nullptr;
  }
  return st;
}

// What commit() did, on its thread.
struct Commit {
  int err = 0;       // errno of the step that failed; 0: committed
  std::string step;  // "fsync", "close", "rename"
  bool replaced = false;
  int64_t mtime_ns = 0;
};

// Off the loop: the bytes on disk, then the file under its final name. On
// failure the temporary file is left to Staged's destructor.
Commit commit(Staged& st) {
  Commit c;
  auto failed = [&c](const char* step) {
    c.err = errno;
    c.step = step;
    return c;
  };
  if (::fsync(st.fd) != 0) return failed("fsync");
  struct stat sb {};
  if (::fstat(st.fd, &sb) != 0) return failed("fstat");
  c.mtime_ns = static_cast<int64_t>(sb.st_mtim.tv_sec) * 1'000'000'000 + sb.st_mtim.tv_nsec;
  const int fd = st.fd;
  st.fd = -1;
  if (::close(fd) != 0) return failed("close");
  c.replaced = ::access(st.final_path.c_str(), F_OK) == 0;
  if (::rename(st.temp.c_str(), st.final_path.c_str()) != 0) return failed("rename");
  st.temp.clear();
  // The folder's new entry durable too; a failure here loses at worst the
  // rename at a power cut, not the bytes, so it is not the client's error.
  const int dfd = ::open(st.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return c;
}

std::string hex_digest(EVP_MD_CTX* ctx) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  return util::to_hex(md, len);
}

nlohmann::json or_null(const std::optional<std::string>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

constexpr const char* kRecordSql =
    "INSERT INTO file_meta (name, size, mtime_ns, sha256, oui, product_class, version, "
    "uploaded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO UPDATE SET "
    "size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns, sha256 = EXCLUDED.sha256, "
    "oui = EXCLUDED.oui, product_class = EXCLUDED.product_class, version = EXCLUDED.version, "
    "uploaded_by = EXCLUDED.uploaded_by, uploaded = now()";

struct Uploaded {
  std::string name, sha256;
  Meta meta;
  uint64_t size = 0;
  Commit commit;
};

// On the loop, after the rename: the file is in place, its row goes to
// file_meta (even when the client has gone: the file is there all the same).
void record(const ExchangePtr& x, std::shared_ptr<NameHold> hold, Uploaded u) {
  const Params params = {u.name,
                         std::to_string(u.size),
                         std::to_string(u.commit.mtime_ns),
                         u.sha256,
                         u.meta.oui,
                         u.meta.product_class,
                         u.meta.version,
                         x->who().name};
  x->api().db()->query(kRecordSql, params, [x, hold, u](PgReply r) {
    if (!r.ok()) {
      const auto e = db_error(r);
      log::error("api: " + u.name + " is in [files] dir but its metadata was not recorded");
      return x->error(e.status, e.error,
                      "the file is in place (sha256 " + u.sha256 +
                          ") but its metadata was not recorded; PUT it again");
    }
    nlohmann::json j = {{"name", u.name},
                        {"size", u.size},
                        {"sha256", u.sha256},
                        {"oui", or_null(u.meta.oui)},
                        {"product_class", or_null(u.meta.product_class)},
                        {"version", or_null(u.meta.version)}};
    // One stat() of the file just renamed: the URL CPEs fetch it from.
    if (const auto& url_of = x->api().services().file_url)
      if (auto url = url_of(u.name); !url.empty()) j["url"] = std::move(url);
    log::info("api: " + x->who().name + " uploaded " + u.name + " (" + std::to_string(u.size) +
              " bytes, sha256 " + u.sha256 + ")");
    x->json(u.commit.replaced ? 200 : 201, j);
  });
}

class Upload final : public BodyStream {
 public:
  Upload(ExchangePtr x, std::string name, Meta meta, std::unique_ptr<Staged> st)
      : x_(std::move(x)),
        name_(std::move(name)),
        meta_(std::move(meta)),
        staged_(std::move(st)),
        hold_(std::make_shared<NameHold>(name_)) {}

  bool write(const char* data, size_t len) override {
    if (!staged_) return false;
    const uint64_t cap = x_->api().options().max_file_bytes;
    if (len > cap - staged_->size) {
      abort();
      x_->error(413, "too large",
                "the file is larger than [nbi] max_file_bytes (" + std::to_string(cap) + " bytes)");
      return false;
    }
    EVP_DigestUpdate(staged_->digest.get(), data, len);
    while (len > 0) {
      const ssize_t n = ::write(staged_->fd, data, len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : EIO;
        abort();
        answer_io_error(x_, err, "writing " + name_);
        return false;
      }
      data += n;
      len -= static_cast<size_t>(n);
      staged_->size += static_cast<uint64_t>(n);
    }
    return true;
  }

  void finish() override {
    if (!staged_) return;
    std::shared_ptr<Staged> st = std::move(staged_);
    Uploaded u{name_, hex_digest(st->digest.get()), meta_, st->size, {}};
    auto x = x_;
    auto hold = std::move(hold_);
    // The file server looks in its catalog (the files table) before the
    // folder: under a generated file's name, this one would never be served.
    x->api().db()->query(
        "SELECT 1 FROM files WHERE name = $1", {u.name}, [x, st, hold, u](PgReply r) {
          if (!x->alive()) return;  // the client left unanswered: nothing is kept
          if (!r.ok()) {
            const auto e = db_error(r);
            return x->error(e.status, e.error, e.detail);
          }
          if (r.rows() > 0)
            return x->error(409, "name taken",
                            "a generated file (the files table) is named '" + u.name +
                                "' and the file server would serve it instead; DELETE /files/" +
                                u.name + " first");
          const bool started = off_loop<Commit>(
              x->api(), [st] { return commit(*st); },
              [x, st, hold, u](Commit c) mutable {
                if (c.err) return answer_io_error(x, c.err, c.step + " of " + u.name);
                u.commit = c;
                record(x, hold, std::move(u));
              });
          if (!started) x->error(503, "busy", "no thread to store the file; try again");
        });
  }

  void abort() override {
    staged_.reset();
    hold_.reset();
  }

 private:
  ExchangePtr x_;
  std::string name_;
  Meta meta_;
  std::unique_ptr<Staged> staged_;  // null once refused, aborted or finished
  std::shared_ptr<NameHold> hold_;  // shared with the callbacks after finish()
};

// Metadata from the query: oui, product_class, version (each 1-256
// characters). Answers 400 and returns nullopt for anything else.
std::optional<Meta> meta_of(const ExchangePtr& x) {
  Meta meta;
  for (const auto& [k, v] : x->query()) {
    std::optional<std::string>* slot = k == "oui"             ? &meta.oui
                                       : k == "product_class" ? &meta.product_class
                                       : k == "version"       ? &meta.version
                                                              : nullptr;
    if (!slot) {
      x->error(400, "unknown parameter", "'" + k + "' (known: oui, product_class, version)");
      return std::nullopt;
    }
    if (v.empty() || v.size() > kMaxMetaLength) {
      x->error(400, "bad parameter",
               "'" + k + "' must be 1 to " + std::to_string(kMaxMetaLength) + " characters");
      return std::nullopt;
    }
    *slot = v;
  }
  return meta;
}

}  // namespace

std::optional<std::string> bad_file_name(const std::string& name) {
  if (text::safe_file_name(name)) return std::nullopt;
  if (name.find('/') != std::string::npos) return std::string("a file name has no '/'");
  return std::string(
      "a file name is 1 to 200 of A-Z a-z 0-9 . _ - and does not start with '.' (the names the "
      "file server serves)");
}

void answer_io_error(const ExchangePtr& x, int err, const std::string& what) {
  const std::string detail = what + ": " + std::strerror(err);
  log::error("api: " + detail);
  if (err == ENOSPC || err == EDQUOT) return x->error(507, "insufficient storage", detail);
  x->error(500, "file error", detail);
}

std::unique_ptr<BodyStream> start_upload(const ExchangePtr& x) {
  const std::string& name = x->param(0);
  if (auto why = bad_file_name(name)) {
    x->error(400, "bad name", *why);
    return nullptr;
  }
  auto meta = meta_of(x);
  if (!meta) return nullptr;
  const auto& opts = x->api().options();
  if (const auto& length = x->head().content_length; length && *length > opts.max_file_bytes) {
    x->error(413, "too large",
             "Content-Length " + std::to_string(*length) + " is over [nbi] max_file_bytes (" +
                 std::to_string(opts.max_file_bytes) + " bytes)");
    return nullptr;
  }
  if (!x->api().db()) {
    x->error(503, "no store", "file metadata lives in PostgreSQL and no [store] dsn is configured");
    return nullptr;
  }
  if (uploading().count(name)) {
    x->error(409, "upload in progress", "another PUT /files/" + name + " is still running");
    return nullptr;
  }
  int err = 0;
  auto st = open_staged(opts.files_dir, name, &err);
  if (!st) {
    answer_io_error(x, err, "creating a temporary file in " + opts.files_dir);
    return nullptr;
  }
  return std::make_unique<Upload>(x, name, std::move(*meta), std::move(st));
}

}  // namespace luacs::nbi
