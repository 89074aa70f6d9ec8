// A slot's plain TCP connection: a non-blocking socket and one
// edge-triggered libevent event for it, added at the connect and deleted at
// the close (no epoll change in between). Requests go out with send() as
// soon as they are written, responses come in with recv() into the slot's
// buffer, and the event's timeout, restarted by every readiness and every
// request, fails a stuck session.
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "bench/loadgen/runner_impl.h"

namespace luacs::loadgen {
namespace {
constexpr size_t kReadChunk = 4096;        // the least room a read offers
constexpr size_t kKeptBuffer = 64 * 1024;  // a larger buffer goes with its connection
}  // namespace

void InBuffer::clear() {
  len_ = 0;
  if (cap_ > kKeptBuffer) {
    buf_.reset();
    cap_ = 0;
  }
}

char* InBuffer::reserve(size_t n) {
  if (cap_ - len_ < n) {
    size_t cap = std::max({cap_ * 2, len_ + n, kReadChunk});
    std::unique_ptr<char[]> bigger(new char[cap]);
    if (len_) std::memcpy(bigger.get(), buf_.get(), len_);
    buf_ = std::move(bigger);
    cap_ = cap;
  }
  return end();
}

void InBuffer::consume(size_t n) {
  if (n >= len_) {
    len_ = 0;
    return;
  }
  std::memmove(buf_.get(), buf_.get() + n, len_ - n);
  len_ -= n;
}

bool Runner::Impl::open_tcp_connection(Slot& s) {
  const Target& t = opt.target;
  int fd = socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail(s, ErrorKind::kConnect);
    return false;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (opt.source_addresses && !bind_source(fd)) {
    close(fd);
    fail(s, ErrorKind::kConnect);
    return false;
  }
  if (!s.io) s.io = event_new(base, -1, 0, on_io, &s);
  if (!s.io ||
      event_assign(s.io, base, fd, EV_READ | EV_WRITE | EV_PERSIST | EV_ET, on_io, &s) < 0) {
    close(fd);
    fail(s, ErrorKind::kConnect);
    return false;
  }
  s.fd = fd;
  s.in.clear();
  s.connected = false;
  ++stats.connections;
  // A refusal is reported by the send that follows, as one that comes later
  // is; anything else failing here is the connect's failure.
  if (connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), static_cast<socklen_t>(t.addr_len)) <
          0 &&
      errno != EINPROGRESS && errno != ECONNREFUSED) {
    fail(s, ErrorKind::kConnect);
    return false;
  }
  event_add(s.io, io_timeout);
  return true;
}

// The next of --source-addresses' 127.0.0.2 ... for this socket; the port
// is left to connect() (IP_BIND_ADDRESS_NO_PORT), which picks one free for
// the whole address pair.
bool Runner::Impl::bind_source(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl((127u << 24) | (2 + next_source++ % opt.source_addresses));
  return bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) == 0;
}

// Sends what the socket has not taken of s.out yet. False when the
// connection failed (on_closed() has dealt with it).
bool Runner::Impl::flush_out(Slot& s) {
  while (s.out_sent < s.out.size()) {
    ssize_t n = send(s.fd, s.out.data() + s.out_sent, s.out.size() - s.out_sent, MSG_NOSIGNAL);
    if (n >= 0) {
      s.out_sent += static_cast<size_t>(n);
      s.connected = true;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN) {
      return true;  // the connect or the peer's window: the write readiness goes on
    } else if (errno != EINTR) {
      on_closed(s, BEV_EVENT_ERROR, errno);
      return false;
    }
  }
  return true;
}

// Reads until the socket has no more (edge-triggered), parsing as it goes.
void Runner::Impl::read_socket(Slot& s) {
  const uint32_t gen = s.conn_gen;
  for (;;) {
    s.in.reserve(kReadChunk);
    const size_t room = s.in.room();
    ssize_t n = recv(s.fd, s.in.end(), room, 0);
    if (n > 0) {
      s.in.commit(static_cast<size_t>(n));
      s.connected = true;
      const uint32_t sends = s.sends;
      parse_responses(s);
      if (s.conn_gen != gen) return;  // closed (and maybe another one opened)
      // The socket was empty and the next request went out: its response
      // comes with a new readiness, and so does an EOF this read ended at
      // (the request draws a reset). Saves the read that finds nothing.
      if (static_cast<size_t>(n) < room && s.sends != sends) return;
    } else if (n == 0) {
      return on_closed(s, BEV_EVENT_EOF, 0);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else if (errno != EINTR) {
      return on_closed(s, BEV_EVENT_ERROR, errno);
    }
  }
}

void Runner::Impl::on_io(evutil_socket_t, short what, void* arg) {
  Slot& s = *static_cast<Slot*>(arg);
  Impl& r = *s.r;
  // A readiness that comes with the timeout restarted it.
  if (!(what & (EV_READ | EV_WRITE))) return r.on_closed(s, BEV_EVENT_TIMEOUT, 0);
  const uint32_t gen = s.conn_gen;
  if ((what & EV_WRITE) && s.out_sent < s.out.size()) {
    if (!r.flush_out(s) || s.conn_gen != gen) return;
  }
  if (what & EV_READ) r.read_socket(s);
}

}  // namespace luacs::loadgen
