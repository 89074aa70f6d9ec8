// The file server (:7567): what CPEs download — firmware images, upgrade
// manifests, generated .alter scripts — as GET|HEAD /<token>/<name>, with
// ETag, If-None-Match, a single Range, and HTTP/1.1 keep-alive.
//
// It runs its own thread and event loop, apart from the CWMP workers: a
// slow download of a 1 GB image never delays a session. Files come from,
// in order: the Catalog (generated files, in memory), the [files] dir
// (regular files put there by hand, sent from disk with sendfile, never read
// into memory), and the store (a generated file of an earlier run, loaded
// asynchronously and put in the catalog).
//
// Over TLS (an https:// listen) files on disk go through OpenSSL in slices
// read as the output drains, instead of sendfile.
//
// The token in the URL is the access check: a wrong token is a 404, like a
// missing file, so the server never tells which names exist. Generated
// files get a random token each; files of the dir (and stored files without
// a token) get the first 16 hex digits of HMAC-SHA256(secret, name).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/config/config.h"
#include "core/files/catalog.h"
#include "core/loop/tls_accept.h"
#include "core/store/store.h"

namespace luacs::files {

struct FileServerOptions {
  config::ListenAddress listen{"0.0.0.0", 7567, false};  // port 0 = any free port
  std::string dir =
      "var/files";  // files put there by hand, served by name (regular files, not recursive)
  std::string
      secret;  // key of the tokens of files in dir; "" = random at start (a warning is logged)
  size_t max_connections = 10000;
  std::chrono::milliseconds idle_timeout{30000};  // also bounds the time to send a request head
  // An https:// listen: each connection's SSL (App sets it: [cwmp]'s
  // certificates, no client certificate), and how long its handshake may
  // take ([cwmp] tls_handshake_timeout).
  loop::SslFactory tls;
  std::chrono::milliseconds tls_handshake_timeout{10000};
};

class FileServer {
 public:
  // `store` may be null (nothing is kept, nothing loaded); it must outlive
  // the server.
  FileServer(FileServerOptions opts, Catalog& catalog, store::Store* store);
  ~FileServer();  // stops
  FileServer(const FileServer&) = delete;
  FileServer& operator=(const FileServer&) = delete;

  // Binds (throws std::runtime_error "cannot listen on <host:port>: <reason>")
  // and starts the thread.
  void start();
  // Closes every connection and joins the thread; idempotent.
  void stop();
  uint16_t port() const;  // the bound port (after start())

  // Publishes a generated file: a random token, its sha256, into the
  // catalog (served at once) and to the store's put_file (not waited for; a
  // failure is logged). Returns "/<token>/<name>". The same bytes, type and
  // device published again under the same name keep their token and URL.
  // Any thread; does not block. content_type "" = by the name's extension.
  // Throws std::invalid_argument on an invalid name.
  std::string publish(std::string name, std::string content_type, std::string bytes,
                      std::string device_id);

  // "/<token>/<name>" of a catalog file or of a regular file in dir, "" if
  // neither. Any thread; may stat() the file.
  std::string path_of(std::string_view name) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace luacs::files
