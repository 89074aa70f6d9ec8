// PUT /files/{name}, GET /files, DELETE /files/{name}: the files the file
// server (:7567) hands to CPEs. Two kinds, as there: files of [files] dir
// (firmware images; uploaded here, streamed to disk by upload.cc) and the
// generated files of the `files` table (.alter scripts, manifests). Admin
// only, and never to a token scoped to a tag: a file is fleet-wide.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>

#include "core/loop/loop.h"
#include "core/nbi/upload.h"
#include "core/util/text.h"
#include "core/util/time.h"

namespace luacs::nbi {

namespace {

// At most this many files of each kind in one GET /files; "truncated" says
// when there were more.
constexpr size_t kMaxListed = 10000;

struct DirEntry {
  std::string name;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string url;  // where CPEs fetch it from ("" if the file server has none)
};

struct DirScan {
  std::vector<DirEntry> entries;  // by name
  bool truncated = false;
  int err = 0;  // errno of opendir; a folder not made yet is empty, not an error
};

// Off the loop: the regular files the file server would serve from the
// folder (safe names only, which leaves out ".upload-*" in progress), each
// with its URL (url_of may stat the file, which is why it is asked here).
DirScan scan_dir(const std::string& dir,
                 const std::function<std::string(const std::string&)>& url_of) {
  DirScan s;
  loop::Dir d(::opendir(dir.c_str()));
  if (!d) {
    if (errno != ENOENT) s.err = errno;
    return s;
  }
  const int dfd = ::dirfd(d.get());
  while (const dirent* e = ::readdir(d.get())) {
    if (!text::safe_file_name(e->d_name)) continue;
    struct stat sb {};
    if (::fstatat(dfd, e->d_name, &sb, 0) != 0 || !S_ISREG(sb.st_mode)) continue;
    if (s.entries.size() == kMaxListed) {
      s.truncated = true;
      break;
    }
    s.entries.push_back(
        {e->d_name, static_cast<uint64_t>(sb.st_size),
         static_cast<int64_t>(sb.st_mtim.tv_sec) * 1'000'000'000 + sb.st_mtim.tv_nsec, ""});
  }
  std::sort(s.entries.begin(), s.entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  if (url_of)
    for (auto& e : s.entries) e.url = url_of(e.name);
  return s;
}

// A text[] literal of safe names: no quote, backslash or comma to escape;
// each quoted so that a file named NULL stays a name.
std::string name_array(const std::vector<DirEntry>& entries) {
  std::string a = "{";
  for (const auto& e : entries) a += (a.size() > 1 ? ",\"" : "\"") + e.name + "\"";
  return a + "}";
}

nlohmann::json text_or_null(const PgReply& r, int row, int col) {
  return r.is_null(row, col) ? nlohmann::json(nullptr)
                             : nlohmann::json(std::string(r.get(row, col)));
}

// The folder's files with what file_meta knows of them. The sha256 counts
// only while the file is the version that was hashed (same size and
// mtime): one replaced by hand since has none.
nlohmann::json dir_files(const DirScan& s, const PgReply& meta) {
  std::map<std::string_view, int> row_of;
  for (int i = 0; i < meta.rows(); ++i) row_of[meta.get(i, 0)] = i;
  auto out = nlohmann::json::array();
  for (const auto& e : s.entries) {
    nlohmann::json f = {{"name", e.name},
                        {"source", "dir"},
                        {"size", e.size},
                        {"modified", util::utc_rfc3339(e.mtime_ns / 1'000'000'000)},
                        {"sha256", nullptr},
                        {"oui", nullptr},
                        {"product_class", nullptr},
                        {"version", nullptr},
                        {"uploaded", nullptr},
                        {"uploaded_by", nullptr},
                        {"url", e.url.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.url)}};
    if (auto it = row_of.find(e.name); it != row_of.end()) {
      const int i = it->second;
      if (meta.get(i, 1) == std::to_string(e.size) && meta.get(i, 2) == std::to_string(e.mtime_ns))
        f["sha256"] = std::string(meta.get(i, 3));
      f["oui"] = text_or_null(meta, i, 4);
      f["product_class"] = text_or_null(meta, i, 5);
      f["version"] = text_or_null(meta, i, 6);
      f["uploaded"] = std::string(meta.get(i, 7));
      f["uploaded_by"] = std::string(meta.get(i, 8));
    }
    out.push_back(std::move(f));
  }
  return out;
}

// The generated files of the `files` table, appended to the folder's. Each
// was published with a token of its own, its URL's middle part (as
// FileServer::publish makes it).
void add_stored_files(const ExchangePtr& x, std::shared_ptr<nlohmann::json> list, bool dir_cut) {
  x->api().db()->query(
      "SELECT name, size, sha256, device_id, content_type, "
      "to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), token "
      "FROM files ORDER BY name LIMIT $1",
      {std::to_string(kMaxListed + 1)}, [x, list, dir_cut](PgReply r) {
        if (!x->alive()) return;
        if (!r.ok()) {
          const auto e = db_error(r);
          return x->error(e.status, e.error, e.detail);
        }
        const int n = std::min(r.rows(), static_cast<int>(kMaxListed));
        for (int i = 0; i < n; ++i)
          list->push_back(
              {{"name", r.get(i, 0)},
               {"source", "store"},
               {"size", std::stoull(std::string(r.get(i, 1)))},
               {"sha256", r.get(i, 2)},
               {"device_id", text_or_null(r, i, 3)},
               {"content_type", r.get(i, 4)},
               {"created", r.get(i, 5)},
               {"url", r.is_null(i, 6) ? nlohmann::json(nullptr)
                                       : nlohmann::json(x->api().options().files_url + "/" +
                                                        std::string(r.get(i, 6)) + "/" +
                                                        std::string(r.get(i, 0)))}});
        x->json(200, {{"files", std::move(*list)},
                      {"limit", kMaxListed},
                      {"truncated", {{"dir", dir_cut}, {"store", r.rows() > n}}}});
      });
}

void list_files(const ExchangePtr& x) {
  if (!x->query().empty())
    return x->error(400, "unknown parameter", "'" + x->query().front().first + "' (none known)");
  if (!x->api().db()) return x->error(503, "no store", "no [store] dsn is configured");
  const std::string dir = x->api().options().files_dir;
  const bool started = off_loop<DirScan>(
      x->api(), [dir, url_of = x->api().services().file_url] { return scan_dir(dir, url_of); },
      [x, dir](DirScan scanned) {
        if (!x->alive()) return;
        if (scanned.err) return answer_io_error(x, scanned.err, "listing " + dir);
        auto s = std::make_shared<DirScan>(std::move(scanned));
        x->api().db()->query(
            "SELECT name, size, mtime_ns, sha256, oui, product_class, version, "
            "to_char(uploaded AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
            "uploaded_by FROM file_meta WHERE name = ANY($1::text[])",
            {name_array(s->entries)}, [x, s](PgReply r) {
              if (!x->alive()) return;
              if (!r.ok()) {
                const auto e = db_error(r);
                return x->error(e.status, e.error, e.detail);
              }
              add_stored_files(x, std::make_shared<nlohmann::json>(dir_files(*s, r)), s->truncated);
            });
      });
  if (!started) x->error(503, "busy", "no thread to list the folder; try again");
}

// Removes the name from the folder (on a thread: unlink may wait on the
// disk), then from file_meta and the files table.
void delete_file(const ExchangePtr& x) {
  const std::string& name = x->param(0);
  if (auto why = bad_file_name(name)) return x->error(400, "bad name", *why);
  if (!x->api().db()) return x->error(503, "no store", "no [store] dsn is configured");
  const std::string path = dir_path(x->api().options().files_dir, name);
  const bool started = off_loop<int>(
      x->api(), [path] { return ::unlink(path.c_str()) == 0 ? 0 : errno; },
      [x, name](int err) {
        if (err != 0 && err != ENOENT) return answer_io_error(x, err, "removing " + name);
        const bool from_dir = err == 0;
        x->api().db()->query(
            "WITH m AS (DELETE FROM file_meta WHERE name = $1), "
            "f AS (DELETE FROM files WHERE name = $1 RETURNING 1) SELECT count(*) FROM f",
            {name}, [x, name, from_dir](PgReply r) {
              if (!x->alive()) return;
              if (!r.ok()) {
                const auto e = db_error(r);
                return x->error(e.status, e.error, e.detail);
              }
              const bool from_store = r.get(0, 0) != "0";
              if (!from_dir && !from_store)
                return x->error(404, "no such file",
                                "'" + name +
                                    "' is neither in [files] dir "
                                    "nor in the files table");
              x->json(200, {{"name", name}, {"dir", from_dir}, {"store", from_store}});
            });
      });
  if (!started) x->error(503, "busy", "no thread to remove the file; try again");
}

}  // namespace

void add_file_routes(Router& r) {
  // The upload's body goes to start_upload's sink, which answers; the
  // handler is never called.
  auto put = route("PUT", "/files/{name}", Role::kAdmin, nullptr);
  put.stream_body = start_upload;
  auto list = route("GET", "/files", Role::kAdmin, list_files);
  auto del = route("DELETE", "/files/{name}", Role::kAdmin, delete_file);
  put.fleet_wide = list.fleet_wide = del.fleet_wide = true;
  r.add(std::move(list));
  r.add(std::move(put));
  r.add(std::move(del));
}

}  // namespace luacs::nbi
