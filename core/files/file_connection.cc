// One file server connection: requests parsed by http::RequestParser, one
// at a time; the answer's head written into the bufferevent, its body added
// by reference (catalog bytes) or as a file segment (sendfile), never
// copied. While an answer is being sent reading stops: pipelined requests
// wait in the input instead of piling up output, and the idle (read)
// timeout does not cut a slow download short — the write timeout watches
// that one for progress.
#include <event2/buffer.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "core/files/file_request.h"
#include "core/files/file_server_loop.h"
#include "core/http/response.h"
#include "core/loop/tls_accept.h"
#include "core/metrics/metrics.h"
#include "core/util/log.h"

namespace luacs::files {
namespace {

constexpr std::string_view kText = "text/plain; charset=utf-8";
// A file sent over TLS: read in slices of kSlice, up to kSendAhead queued.
constexpr size_t kSlice = 64 * 1024;
constexpr size_t kSendAhead = 256 * 1024;

http::Limits file_limits() {
  http::Limits l;
  l.max_header_bytes = 8 * 1024;
  l.max_headers = 64;
  l.max_body_bytes = 64 * 1024;  // a GET has none; whatever comes is read and dropped
  return l;
}

// Constant-time for tokens of the same length (the length is no secret).
bool token_matches(std::string_view expected, std::string_view given) {
  return !expected.empty() && expected.size() == given.size() &&
         CRYPTO_memcmp(expected.data(), given.data(), given.size()) == 0;
}

// The target for a log line: the token cut to 4 characters, at most 200.
std::string loggable_target(std::string_view target) {
  if (target.size() > 200) target = target.substr(0, 200);
  std::string out;
  if (auto t = parse_target(target)) {
    return "/" + redact_token(t->token) + "/" + std::string(t->name);
  }
  // Not a file URL: cut every path segment long enough to be a token.
  size_t seg = 0;
  for (size_t i = 0; i <= target.size(); ++i) {
    if (i == target.size() || target[i] == '/') {
      std::string_view part = target.substr(seg, i - seg);
      out += part.size() > 8 ? redact_token(part) : std::string(part);
      if (i < target.size()) out += '/';
      seg = i + 1;
    }
  }
  return out;
}

void release_bytes(const void*, size_t, void* keep) {
  delete static_cast<std::shared_ptr<const std::string>*>(keep);
}

}  // namespace

Payload& Payload::operator=(Payload&& o) noexcept {
  if (this != &o) {
    close_fd();
    bytes = std::move(o.bytes);
    fd = std::exchange(o.fd, -1);
    size = o.size;
    sha256 = std::move(o.sha256);
    content_type = std::move(o.content_type);
    last_modified = std::move(o.last_modified);
  }
  return *this;
}

void Payload::close_fd() {
  if (fd >= 0) ::close(std::exchange(fd, -1));
}

FileConnection::FileConnection(FileServer::Impl& s, uint64_t id, loop::BufferEvent bev, bool tls,
                               std::string peer)
    : s_(s),
      id_(id),
      bev_(std::move(bev)),
      peer_(std::move(peer)),
      parser_(file_limits()),
      tls_(tls) {
  int one = 1;
  setsockopt(bufferevent_getfd(bev_.get()), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  bufferevent_setcb(bev_.get(), &FileConnection::on_read_cb, &FileConnection::on_write_cb,
                    &FileConnection::on_event_cb, this);
  // Idle: no request byte for this long while reading, or no progress
  // sending an answer.
  const timeval idle = loop::to_timeval(s_.opts.idle_timeout);
  bufferevent_set_timeouts(bev_.get(), &idle, &idle);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  head_timer_.reset(evtimer_new(s_.base.get(), &FileConnection::on_head_timer_cb, this));
  if (tls_) {
    // The whole handshake within its deadline: the idle timeout alone
    // would let a client trickle it in for ever.
    handshaking_ = true;
    const timeval tv = loop::to_timeval(s_.opts.tls_handshake_timeout);
    evtimer_add(head_timer_.get(), &tv);
  }
}

FileConnection::~FileConnection() {
  if (slice_fd_ >= 0) ::close(slice_fd_);
  if (tls_up_ && bev_) loop::tls_close_notify(bev_.get());
}

// ---- libevent callbacks: each frees the connection when it is done.

void FileConnection::on_read_cb(bufferevent*, void* arg) {
  auto* c = static_cast<FileConnection*>(arg);
  c->process();
  c->s_.reap(c);
}

void FileConnection::on_write_cb(bufferevent*, void* arg) {
  auto* c = static_cast<FileConnection*>(arg);
  if (c->slice_left_ > 0) {
    // Down to the low-water mark while a file goes out over TLS.
    if (!c->refill()) c->dead_ = true;
    c->s_.reap(c);
    return;
  }
  // The output has drained.
  if (c->close_after_ && !c->waiting_) {
    c->dead_ = true;
  } else if (c->paused_) {
    c->paused_ = false;
    c->update_reading();
    c->process();
  }
  c->s_.reap(c);
}

void FileConnection::on_event_cb(bufferevent*, short what, void* arg) {
  auto* c = static_cast<FileConnection*>(arg);
  if (c->handshaking_) {
    c->on_handshake_event(what);
  } else if (what & BEV_EVENT_EOF) {
    // The client has finished sending; an answer still owed or being sent
    // goes out first.
    const bool owed = c->waiting_ || evbuffer_get_length(bufferevent_get_output(c->bev_.get())) > 0;
    c->close_after_ = true;
    if (!owed) c->dead_ = true;
  } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
    c->dead_ = true;
  }
  c->s_.reap(c);
}

// The TLS handshake is done (requests follow as on plain HTTP) or has
// failed (closed; plain HTTP was told to use HTTPS).
void FileConnection::on_handshake_event(short what) {
  handshaking_ = false;
  if (what & BEV_EVENT_CONNECTED) {
    tls_up_ = true;
    evtimer_del(head_timer_.get());
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    const std::string why = loop::tls_handshake_failed(bev_.get());
    if (log::enabled(log::Level::kDebug))
      log::debug("files: tls handshake failed peer=" + peer_ + " reason=" + log::quoted(why));
  }
  dead_ = true;
}

void FileConnection::on_head_timer_cb(evutil_socket_t, short, void* arg) {
  // A request head trickling in for longer than the idle timeout, or a
  // handshake for longer than its own.
  auto* c = static_cast<FileConnection*>(arg);
  if (!c->waiting_) c->dead_ = true;
  c->s_.reap(c);
}

void FileConnection::update_reading() {
  if (waiting_ || paused_ || close_after_) {
    bufferevent_disable(bev_.get(), EV_READ);
  } else {
    bufferevent_enable(bev_.get(), EV_READ);
  }
}

// ---- requests

void FileConnection::process() {
  evbuffer* in = bufferevent_get_input(bev_.get());
  evbuffer* out = bufferevent_get_output(bev_.get());
  while (!dead_ && !waiting_ && !close_after_) {
    if (evbuffer_get_length(out) > 0) {
      paused_ = true;  // on_write_cb goes on once it is sent
      update_reading();
      return;
    }
    const size_t avail = evbuffer_get_length(in);
    if (!in_request_) {
      if (avail == 0) return;
      in_request_ = true;
      hashed_ = loaded_ = store_error_ = false;
      const timeval tv = loop::to_timeval(s_.opts.idle_timeout);
      evtimer_add(head_timer_.get(), &tv);
    }
    evbuffer_iovec vec{};
    const int n = avail ? evbuffer_peek(in, -1, nullptr, &vec, 1) : 0;
    const char* data = n > 0 ? static_cast<const char*>(vec.iov_base) : "";
    const size_t len = n > 0 ? vec.iov_len : 0;
    size_t consumed = 0;
    const auto event = parser_.feed(data, len, &consumed, nullptr);
    if (consumed) evbuffer_drain(in, consumed);
    switch (event) {
      case http::RequestParser::Event::kNeedMore:
        if (consumed == 0 || evbuffer_get_length(in) == 0) return;
        break;
      case http::RequestParser::Event::kHeadersComplete: {
        const std::string& m = parser_.request().method;
        if (m != "GET" && m != "HEAD") {
          // The body, if any, is not read: answer and close.
          respond_status(405, {{"Allow", "GET, HEAD"}}, true);
          return;
        }
        break;
      }
      case http::RequestParser::Event::kMessageComplete:
        evtimer_del(head_timer_.get());
        serve();
        break;
      case http::RequestParser::Event::kError: {
        const auto& err = parser_.error();
        if (log::enabled(log::Level::kDebug))
          log::debug("files: bad request peer=" + peer_ + " reason=" + log::quoted(err.reason));
        respond_status(err.status, {}, true);
        return;
      }
    }
  }
}

void FileConnection::resume(bool store_error) {
  if (!waiting_) return;
  waiting_ = false;
  store_error_ = store_error_ || store_error;
  serve();
  if (dead_) return;
  if (close_after_ && !waiting_ && evbuffer_get_length(bufferevent_get_output(bev_.get())) == 0) {
    dead_ = true;
    return;
  }
  update_reading();
  process();
}

void FileConnection::wait() {
  waiting_ = true;
  update_reading();
}

// Catalog, then the dir, then the store; the token must match the file's.
void FileConnection::serve() {
  const auto target = parse_target(parser_.request().target);
  if (!target) return respond_status(404);
  const std::string name(target->name);

  if (auto f = s_.catalog.find(name)) {
    const std::string expected = f->token.empty() ? s_.derived_token(name) : f->token;
    if (!token_matches(expected, target->token)) return respond_status(404);
    if (f->bytes) {
      Payload p;
      p.bytes = f->bytes;
      p.size = f->bytes->size();
      p.sha256 = f->sha256;
      p.content_type = f->content_type;
      return respond(std::move(p));
    }
    if (serve_path_file(*f, target->token)) return;
    return respond_status(404);
  }

  const std::string path = s_.dir_path(name);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0) {
    Payload p;
    p.fd = fd;
    struct stat st {};
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      if (!token_matches(s_.derived_token(name), target->token)) return respond_status(404);
      const DirStamp stamp{
          st.st_dev, st.st_ino, st.st_size,
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
      p.sha256 = s_.cached_hash(name, stamp);
      if (p.sha256.empty()) {
        if (hashed_) {
          // It changed while it was hashed: being copied in, most likely.
          return respond_status(503, {{"Retry-After", "5"}});
        }
        hashed_ = true;
        wait();
        s_.hash_later(name, stamp, id_);
        return;
      }
      p.size = static_cast<uint64_t>(st.st_size);
      p.content_type = content_type_for(name);
      p.last_modified = http_date(st.st_mtim.tv_sec);
      return respond(std::move(p));
    }
    // Not a regular file: as if absent.
  }

  if (s_.store && !loaded_ && !s_.known_missing(name)) {
    loaded_ = true;
    wait();
    s_.load_later(name, id_);
    return;
  }
  if (store_error_) return respond_status(503, {{"Retry-After", "10"}});
  respond_status(404);
}

// A catalog file kept on disk (path rather than bytes).
bool FileConnection::serve_path_file(const File& f, std::string_view) {
  if (f.path.empty()) return false;
  Payload p;
  p.fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st {};
  if (p.fd < 0 || fstat(p.fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  p.size = static_cast<uint64_t>(st.st_size);
  p.sha256 = f.sha256;
  p.content_type = f.content_type.empty() ? std::string(content_type_for(f.name)) : f.content_type;
  p.last_modified = http_date(st.st_mtim.tv_sec);
  respond(std::move(p));
  return true;
}

void FileConnection::respond(Payload p) {
  const http::Request& req = parser_.request();
  const bool keep = req.keep_alive;
  const bool head_only = req.method == "HEAD";
  const std::string etag = p.sha256.empty() ? std::string() : "\"" + p.sha256 + "\"";

  std::vector<http::Header> h;
  h.reserve(6);
  if (!etag.empty()) h.push_back({"ETag", etag});
  if (!p.last_modified.empty()) h.push_back({"Last-Modified", p.last_modified});
  h.push_back({"Accept-Ranges", "bytes"});
  if (keep && req.minor_version == 0) h.push_back({"Connection", "keep-alive"});

  head_.clear();
  int status = 200;
  ByteRange range{0, p.size ? p.size - 1 : 0};
  uint64_t length = p.size;
  std::string content_range;
  if (!etag.empty() && etag_matches(req.header("If-None-Match"), etag)) {
    status = 304;
    length = 0;
    http::append_head(head_, status, {}, h, std::nullopt, keep);
  } else {
    RangeAnswer r;
    if (!head_only && req.has_header("Range") &&
        (etag.empty() ? !req.has_header("If-Range")
                      : if_range_allows(req.header("If-Range"), etag))) {
      r = parse_range(req.header("Range"), p.size);
    }
    switch (r.kind) {
      case RangeAnswer::Kind::kUnsatisfiable:
        status = 416;
        length = 0;
        content_range = "bytes */" + std::to_string(p.size);
        h.push_back({"Content-Range", content_range});
        http::append_head(head_, status, {}, h, 0, keep);
        break;
      case RangeAnswer::Kind::kPartial:
        status = 206;
        range = r.range;
        length = range.length();
        content_range = "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) +
                        "/" + std::to_string(p.size);
        h.push_back({"Content-Range", content_range});
        http::append_head(head_, status, p.content_type, h, length, keep);
        break;
      case RangeAnswer::Kind::kWhole:
        http::append_head(head_, status, p.content_type, h, length, keep);
        break;
    }
  }
  bufferevent_write(bev_.get(), head_.data(), head_.size());

  uint64_t sent = 0;
  if (!head_only && (status == 200 || status == 206) && length > 0) {
    evbuffer* out = bufferevent_get_output(bev_.get());
    if (p.bytes) {
      auto* keep_alive = new std::shared_ptr<const std::string>(p.bytes);
      if (evbuffer_add_reference(out, p.bytes->data() + range.first, length, &release_bytes,
                                 keep_alive) != 0) {
        delete keep_alive;
        dead_ = true;
        return;
      }
    } else if (!send_file(p, range.first, length)) {
      log::warn("files: cannot send a file to " + peer_);
      dead_ = true;
      return;
    }
    sent = length;
  }
  finish(status, sent);
}

// A range of a file on disk: sendfile on plain HTTP; over TLS, slices read
// as the output drains (libevent would otherwise map the whole file, and a
// file truncated while mapped kills the process).
bool FileConnection::send_file(Payload& p, uint64_t offset, uint64_t length) {
  evbuffer* out = bufferevent_get_output(bev_.get());
  if (!tls_) {
    const int fd = p.release_fd();
    if (evbuffer_add_file(out, fd, static_cast<ev_off_t>(offset), static_cast<ev_off_t>(length)) ==
        0)
      return true;
    ::close(fd);
    return false;
  }
  slice_fd_ = p.release_fd();
  slice_at_ = offset;
  slice_left_ = length;
  bufferevent_setwatermark(bev_.get(), EV_WRITE, kSlice, 0);
  return refill();
}

// Tops the output up to kSendAhead from the file; false on a read error or
// a file now shorter than the length announced (the connection must close).
bool FileConnection::refill() {
  evbuffer* out = bufferevent_get_output(bev_.get());
  while (slice_left_ > 0 && evbuffer_get_length(out) < kSendAhead) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(slice_left_, kSlice));
    evbuffer_iovec v{};
    if (evbuffer_reserve_space(out, static_cast<ev_ssize_t>(want), &v, 1) < 1) return false;
    const ssize_t n = ::pread(slice_fd_, v.iov_base, want, static_cast<off_t>(slice_at_));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    v.iov_len = static_cast<size_t>(n);
    evbuffer_commit_space(out, &v, 1);
    slice_at_ += static_cast<uint64_t>(n);
    slice_left_ -= static_cast<uint64_t>(n);
  }
  if (slice_left_ == 0 && slice_fd_ >= 0) {
    ::close(std::exchange(slice_fd_, -1));
    bufferevent_setwatermark(bev_.get(), EV_WRITE, 0, 0);  // "drained" means empty again
  }
  return true;
}

void FileConnection::respond_status(int status, std::initializer_list<http::Header> extra,
                                    bool close) {
  const http::Request& req = parser_.request();
  const bool keep = !close && req.keep_alive && status < 500;
  std::string body;
  if (status != 304) body = std::string(http::reason_phrase(status)) + "\n";
  head_.clear();
  std::vector<http::Header> h(extra);
  if (keep && req.minor_version == 0) h.push_back({"Connection", "keep-alive"});
  if (req.method == "HEAD") {
    // The Content-Length a GET would have had.
    http::append_head(head_, status, kText, h, body.size(), keep);
  } else {
    http::append_response(head_, status, kText, h, body, keep);
  }
  bufferevent_write(bev_.get(), head_.data(), head_.size());
  if (!keep) close_after_ = true;
  finish(status, req.method == "HEAD" ? 0 : body.size());
}

// The request is answered: log it, get ready for the next one.
void FileConnection::finish(int status, uint64_t body_bytes) {
  log_request(status, body_bytes);
  metrics::file_bytes_served(body_bytes);
  if (!parser_.request().keep_alive) close_after_ = true;
  parser_.reset();
  in_request_ = false;
  evtimer_del(head_timer_.get());
  update_reading();
}

void FileConnection::log_request(int status, uint64_t body_bytes) const {
  if (!log::enabled(log::Level::kDebug)) return;
  const http::Request& req = parser_.request();
  log::debug("files: " + (req.method.empty() ? std::string("-") : req.method) + " " +
             loggable_target(req.target) + " " + std::to_string(status) +
             " bytes=" + std::to_string(body_bytes) + " peer=" + peer_);
}

}  // namespace luacs::files
