// Internal to core/files: the file server's shape, shared by
// file_server.cc (the thread, the listener, lookups in the dir and the
// store, hashing, publish) and file_connection.cc (one HTTP connection).
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/files/file_server.h"
#include "core/http/request_parser.h"
#include "core/http/response.h"
#include "core/loop/loop.h"

namespace luacs::files {

using Clock = std::chrono::steady_clock;

// A file ready to send: in memory, or an open descriptor (owned).
struct Payload {
  std::shared_ptr<const std::string> bytes;
  int fd = -1;
  uint64_t size = 0;
  std::string sha256;  // "" = no ETag
  std::string content_type;
  std::string last_modified;  // "" = none

  Payload() = default;
  Payload(Payload&& o) noexcept { *this = std::move(o); }
  Payload& operator=(Payload&& o) noexcept;
  Payload(const Payload&) = delete;
  Payload& operator=(const Payload&) = delete;
  ~Payload() { close_fd(); }
  void close_fd();
  int release_fd() { return std::exchange(fd, -1); }
};

// What a dir file's cached hash is valid for: the same file, unchanged.
struct DirStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const DirStamp&) const = default;
};

class FileConnection;

struct FileServer::Impl {
  Impl(FileServerOptions o, Catalog& c, store::Store* s);
  ~Impl();

  void start();
  void stop();

  // Any thread.
  std::string derived_token(std::string_view name) const;  // HMAC-SHA256(secret, name), 16 hex
  std::string dir_path(std::string_view name) const { return opts.dir + "/" + std::string(name); }
  // Runs fn on the loop; dropped once the server is gone.
  store::Executor executor();

  // Loop thread.
  static void on_accept(evconnlistener*, evutil_socket_t, sockaddr*, int, void*);
  // The dir file's sha256 if known for this stamp, else "".
  std::string cached_hash(const std::string& name, const DirStamp& stamp) const;
  // Hashes the dir file off the loop; the connection resumes when done.
  void hash_later(const std::string& name, const DirStamp& stamp, uint64_t conn_id);
  // Loads a stored file; the connection resumes when done (store_error
  // when the store could not answer).
  void load_later(const std::string& name, uint64_t conn_id);
  bool known_missing(const std::string& name);
  // Resumes a waiting connection; frees it if it is done.
  void resume(uint64_t conn_id, bool store_error);
  void reap(FileConnection* c);  // frees c if it has closed

  const FileServerOptions opts;
  Catalog& catalog;
  store::Store* const store;
  std::string secret;

  loop::Base base;
  loop::Listener listener;
  loop::Event stop_event;
  std::unique_ptr<loop::Mailbox> mailbox;  // work from other threads
  std::thread thread;
  std::atomic<uint16_t> bound_port{0};

  // Loop thread only.
  std::unordered_map<uint64_t, std::unique_ptr<FileConnection>> connections;
  uint64_t last_connection_id = 0;
  struct DirHash {
    DirStamp stamp;
    std::string sha256;
  };
  std::unordered_map<std::string, DirHash> hashes;                      // by name
  std::unordered_map<std::string, std::vector<uint64_t>> hash_waiters;  // by name
  std::unordered_map<std::string, std::vector<uint64_t>> load_waiters;  // by name
  std::unordered_map<std::string, Clock::time_point> missing;           // the store has none, until

  // The hashing thread: a dir file is hashed once, off the loop (a 1 GB
  // image takes seconds).
  struct HashJob {
    std::string name;
    DirStamp stamp;
  };
  void hash_loop();
  void hash_done(const std::string& name, const DirStamp& stamp, const std::string& sha256);
  std::thread hasher;
  std::mutex hash_mu;
  std::condition_variable hash_cv;
  std::deque<HashJob> hash_jobs;
  std::atomic<bool> hash_stop{false};
};

// One client connection: HTTP/1.1 requests one at a time (pipelined ones
// wait in the input), keep-alive, the idle timeout.
class FileConnection {
 public:
  // `bev`: a socket one, or with `tls` a loop::tls_accepting one (the
  // client's handshake comes first, within opts.tls_handshake_timeout).
  FileConnection(FileServer::Impl& s, uint64_t id, loop::BufferEvent bev, bool tls,
                 std::string peer);
  ~FileConnection();
  FileConnection(const FileConnection&) = delete;
  FileConnection& operator=(const FileConnection&) = delete;

  uint64_t id() const { return id_; }
  // Freed by the server at the end of the callback that set it.
  bool dead() const { return dead_; }
  // A lookup this connection waited for has finished.
  void resume(bool store_error);

 private:
  static void on_read_cb(bufferevent*, void*);
  static void on_write_cb(bufferevent*, void*);
  static void on_event_cb(bufferevent*, short, void*);
  static void on_head_timer_cb(evutil_socket_t, short, void*);

  void on_handshake_event(short what);
  void process();
  void serve();
  bool serve_path_file(const File& f, std::string_view token);
  void respond(Payload p);
  bool send_file(Payload& p, uint64_t offset, uint64_t length);
  bool refill();
  void respond_status(int status, std::initializer_list<http::Header> extra = {},
                      bool close = false);
  void wait();
  void finish(int status, uint64_t body_bytes);
  void update_reading();
  void log_request(int status, uint64_t body_bytes) const;

  FileServer::Impl& s_;
  const uint64_t id_;
  loop::BufferEvent bev_;
  loop::Event head_timer_;  // the request head's deadline (the handshake's first)
  std::string peer_;
  http::RequestParser parser_;
  std::string head_;  // response head scratch, keeps its capacity
  bool in_request_ = false;
  bool waiting_ = false;      // on the hasher or the store; input is not read
  bool paused_ = false;       // an answer is being sent; input is not read
  bool close_after_ = false;  // no more requests: close once the output is sent
  bool dead_ = false;
  const bool tls_;
  bool handshaking_ = false, tls_up_ = false;
  // A file going out over TLS: its descriptor (owned), where the next
  // slice starts, what is left of the range.
  int slice_fd_ = -1;
  uint64_t slice_at_ = 0, slice_left_ = 0;
  // Per request: which lookups already ran.
  bool hashed_ = false, loaded_ = false, store_error_ = false;
};

}  // namespace luacs::files
