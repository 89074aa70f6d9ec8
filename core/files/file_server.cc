// The file server's thread, listener and lookups: catalog, then the dir
// (hashed once per file version, off the loop), then the store. See
// file_server.h for what it serves and file_connection.cc for the HTTP side.
#include "core/files/file_server.h"

#include <arpa/inet.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "core/files/file_request.h"
#include "core/files/file_server_loop.h"
#include "core/util/hex.h"
#include "core/util/log.h"
#include "core/util/net.h"

namespace luacs::files {
namespace {

constexpr size_t kMaxMissing = 10000;                   // names the store said it lacks, remembered
constexpr std::chrono::milliseconds kMissingTtl{2000};  // ... for this long
constexpr size_t kHashChunk = 1 << 20;

std::string random_bytes(size_t n) {
  std::string s(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return s;
}

std::string random_token() {
  return util::random_hex(kTokenLength / 2);
}

DirStamp stamp_of(const struct stat& st) {
  return DirStamp{st.st_dev, st.st_ino, st.st_size,
                  static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

// The sha256 of the file at path if it still is `stamp` after reading, else
// "" (changed while read, gone, unreadable, or the server is stopping).
std::string hash_file(const std::string& path, const DirStamp& stamp,
                      const std::atomic<bool>& stop) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return {};
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !(stamp_of(st) == stamp)) return {};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return {};
  std::vector<char> buf(kHashChunk);
  for (;;) {
    if (stop.load(std::memory_order_relaxed)) return {};
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {};
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) return {};
  if (fstat(fd, &st) != 0 || !(stamp_of(st) == stamp)) return {};
  return util::to_hex(md, len);
}

}  // namespace

// ---------------------------------------------------------------- Impl

FileServer::Impl::Impl(FileServerOptions o, Catalog& c, store::Store* s)
    : opts(std::move(o)), catalog(c), store(s), secret(opts.secret) {
  static const bool threads_ready = [] { return evthread_use_pthreads() == 0; }();
  if (!threads_ready) throw std::runtime_error("libevent: evthread_use_pthreads failed");
  if (secret.empty()) secret = random_bytes(32);
  base = loop::new_base();
  mailbox = std::make_unique<loop::Mailbox>(base.get());
  stop_event.reset(event_new(
      base.get(), -1, 0,
      [](evutil_socket_t, short, void* arg) {
        event_base_loopbreak(static_cast<event_base*>(arg));
      },
      base.get()));
}

FileServer::Impl::~Impl() {
  stop();
  mailbox.reset();
}

void FileServer::Impl::start() {
  if (thread.joinable()) return;
  const auto& a = opts.listen;
  const util::ListenAddr addr = util::listen_addr(a.host, a.port);
  if (a.tls && !opts.tls)
    throw std::runtime_error("cannot listen on https://" + addr.spec + ": no TLS certificates");
  listener = loop::listen(base.get(), addr, &Impl::on_accept, this, {});
  bound_port = util::bound_port(evconnlistener_get_fd(listener.get()));

  if (opts.secret.empty()) {
    log::warn(
        "files: [files] secret is not set: the URLs of files in the dir change at every start");
  }
  struct stat st {};
  if (::stat(opts.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    log::info("files: dir " + opts.dir + " does not exist (yet): no files on disk to serve");
  hash_stop = false;
  hasher = std::thread([this] { hash_loop(); });
  thread = std::thread([this] { event_base_dispatch(base.get()); });
  log::info(std::string("files: serving on ") + (a.tls ? "https://" : "") + a.host + ":" +
            std::to_string(bound_port.load()) + " from " + opts.dir);
}

void FileServer::Impl::stop() {
  if (thread.joinable()) {
    event_active(stop_event.get(), 0, 0);
    thread.join();
  }
  if (hasher.joinable()) {
    {
      std::lock_guard lock(hash_mu);
      hash_stop = true;
    }
    hash_cv.notify_all();
    hasher.join();
  }
  // The loop has stopped: nothing else touches the connections.
  connections.clear();
  listener.reset();
  // A freed bufferevent closes its socket in a finalizer run by the loop:
  // one more turn, here, so that clients see the close now.
  event_base_loop(base.get(), EVLOOP_NONBLOCK);
}

store::Executor FileServer::Impl::executor() {
  return mailbox->executor();
}

void FileServer::Impl::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int,
                                 void* arg) {
  auto* self = static_cast<Impl*>(arg);
  if (self->connections.size() >= self->opts.max_connections) {
    evutil_closesocket(fd);
    return;
  }
  const bool tls = self->opts.listen.tls;
  // With TLS, the certificates of this moment: a reload changes what the
  // next handshake gets; this connection keeps its own.
  loop::BufferEvent bev = loop::accepted(self->base.get(), fd, tls ? &self->opts.tls : nullptr);
  if (!bev) {
    log::warn(std::string("files: a connection refused: ") +
              (tls ? "SSL_new failed" : "no bufferevent"));
    return;
  }
  const uint64_t id = ++self->last_connection_id;
  self->connections.emplace(
      id, std::make_unique<FileConnection>(*self, id, std::move(bev), tls, util::format_peer(sa)));
}

std::string FileServer::Impl::derived_token(std::string_view name) const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(name.data()), name.size(), md, &len))
    throw std::runtime_error("HMAC failed");
  return util::to_hex(md, kTokenLength / 2);
}

std::string FileServer::Impl::cached_hash(const std::string& name, const DirStamp& stamp) const {
  auto it = hashes.find(name);
  return it != hashes.end() && it->second.stamp == stamp ? it->second.sha256 : std::string();
}

void FileServer::Impl::hash_later(const std::string& name, const DirStamp& stamp,
                                  uint64_t conn_id) {
  auto& waiters = hash_waiters[name];
  waiters.push_back(conn_id);
  if (waiters.size() > 1) return;  // already being hashed
  {
    std::lock_guard lock(hash_mu);
    hash_jobs.push_back({name, stamp});
  }
  hash_cv.notify_one();
}

void FileServer::Impl::hash_loop() {
  for (;;) {
    HashJob job;
    {
      std::unique_lock lock(hash_mu);
      hash_cv.wait(lock, [&] { return hash_stop.load() || !hash_jobs.empty(); });
      if (hash_stop) return;
      job = std::move(hash_jobs.front());
      hash_jobs.pop_front();
    }
    const auto started = Clock::now();
    std::string sha = hash_file(dir_path(job.name), job.stamp, hash_stop);
    if (log::enabled(log::Level::kDebug)) {
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
      log::debug("files: hashed " + job.name + " (" + std::to_string(job.stamp.size) +
                 " bytes) in " + std::to_string(ms) + " ms" + (sha.empty() ? ": changed" : ""));
    }
    executor()([this, job = std::move(job), sha = std::move(sha)] {
      hash_done(job.name, job.stamp, sha);
    });
  }
}

void FileServer::Impl::hash_done(const std::string& name, const DirStamp& stamp,
                                 const std::string& sha256) {
  if (!sha256.empty()) hashes[name] = DirHash{stamp, sha256};
  auto it = hash_waiters.find(name);
  if (it == hash_waiters.end()) return;
  std::vector<uint64_t> ids = std::move(it->second);
  hash_waiters.erase(it);
  for (const uint64_t id : ids) resume(id, false);
}

bool FileServer::Impl::known_missing(const std::string& name) {
  auto it = missing.find(name);
  if (it == missing.end()) return false;
  if (Clock::now() < it->second) return true;
  missing.erase(it);
  return false;
}

void FileServer::Impl::load_later(const std::string& name, uint64_t conn_id) {
  auto& waiters = load_waiters[name];
  waiters.push_back(conn_id);
  if (waiters.size() > 1) return;  // already being loaded
  store->load_file(
      name, executor(), [this, name](std::shared_ptr<const store::StoredFile> sf, bool ok) {
        if (ok && sf) {
          auto f = std::make_shared<File>();
          f->name = sf->name;
          f->content_type =
              sf->content_type.empty() ? std::string(content_type_for(sf->name)) : sf->content_type;
          auto bytes = std::make_shared<const std::string>(sf->bytes);
          f->size = bytes->size();
          f->sha256 = sf->sha256.empty() ? sha256_hex(*bytes) : sf->sha256;
          f->bytes = std::move(bytes);
          f->token = sf->token;
          f->device_id = sf->device_id;
          catalog.put_if_absent(std::move(f));
        } else if (ok) {
          if (missing.size() >= kMaxMissing) missing.clear();
          missing[name] = Clock::now() + kMissingTtl;
        }
        auto it = load_waiters.find(name);
        if (it == load_waiters.end()) return;
        std::vector<uint64_t> ids = std::move(it->second);
        load_waiters.erase(it);
        for (const uint64_t id : ids) resume(id, !ok);
      });
}

void FileServer::Impl::resume(uint64_t conn_id, bool store_error) {
  auto it = connections.find(conn_id);
  if (it == connections.end()) return;
  it->second->resume(store_error);
  reap(it->second.get());
}

void FileServer::Impl::reap(FileConnection* c) {
  if (c->dead()) connections.erase(c->id());
}

// ---------------------------------------------------------------- FileServer

FileServer::FileServer(FileServerOptions opts, Catalog& catalog, store::Store* store)
    : impl_(std::make_unique<Impl>(std::move(opts), catalog, store)) {}

FileServer::~FileServer() = default;

void FileServer::start() {
  impl_->start();
}

void FileServer::stop() {
  impl_->stop();
}

uint16_t FileServer::port() const {
  return impl_->bound_port.load();
}

std::string FileServer::publish(std::string name, std::string content_type, std::string bytes,
                                std::string device_id) {
  if (!valid_name(name)) throw std::invalid_argument("invalid file name \"" + name + "\"");
  if (content_type.empty()) content_type = content_type_for(name);
  std::string sha = sha256_hex(bytes);
  if (auto old = impl_->catalog.find(name); old && old->bytes && old->sha256 == sha &&
                                            old->content_type == content_type &&
                                            old->device_id == device_id && !old->token.empty()) {
    return "/" + old->token + "/" + name;  // unchanged: same URL, nothing to store
  }
  auto f = std::make_shared<File>();
  f->name = name;
  f->content_type = content_type;
  f->size = bytes.size();
  f->sha256 = sha;
  f->token = random_token();
  f->device_id = device_id;
  std::string path = "/" + f->token + "/" + name;
  if (impl_->store) {
    store::StoredFile sf{name, content_type, bytes, std::move(sha), f->token, std::move(device_id)};
    f->bytes = std::make_shared<const std::string>(std::move(bytes));
    impl_->catalog.put(std::move(f));
    impl_->store->put_file(std::move(sf), impl_->executor(), [name](bool ok) {
      if (!ok) log::warn("files: " + name + " was not stored: it is lost at the next restart");
    });
  } else {
    f->bytes = std::make_shared<const std::string>(std::move(bytes));
    impl_->catalog.put(std::move(f));
  }
  return path;
}

std::string FileServer::path_of(std::string_view name) const {
  if (!valid_name(name)) return {};
  if (auto f = impl_->catalog.find(name)) {
    const std::string token = f->token.empty() ? impl_->derived_token(name) : f->token;
    return "/" + token + "/" + std::string(name);
  }
  struct stat st {};
  if (::stat(impl_->dir_path(name).c_str(), &st) == 0 && S_ISREG(st.st_mode))
    return "/" + impl_->derived_token(name) + "/" + std::string(name);
  return {};
}

}  // namespace luacs::files
