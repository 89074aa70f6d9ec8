// A plain (non-TLS) CWMP connection's I/O on its socket, and the input and
// output helpers process() and the replies use for either kind: bytes are
// read with recv into a buffer the worker lends (InputBuffer) and written
// with send at once, EPOLLOUT armed only while a reply waits for room. A
// TLS connection goes through its OpenSSL bufferevent (connection.cc).
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/socket.h>

#include <cerrno>

#include "core/server/worker.h"

namespace luacs::server {

void Connection::output_drained() {
  if (closing_) {
    close_now();
    return;
  }
  if (reading_paused_) {
    reading_paused_ = false;
    enable_reading(true);
    process();
  }
}

void Connection::on_readable_cb(evutil_socket_t, short, void* arg) {
  static_cast<Connection*>(arg)->read_socket();
}

void Connection::read_socket() {
  if (!in_) in_ = w_.acquire_input();
  if (!in_->reserve(1)) {
    // InputBuffer::kMax unparsed (the connection waits for the store, or
    // for its client to read): read again once some is parsed.
    input_full_ = true;
    enable_reading(false);
    return;
  }
  const ssize_t n = recv(fd_, in_->bytes.get() + in_->end, in_->size - in_->end, 0);
  if (n > 0) {
    in_->end += static_cast<size_t>(n);
    process();
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    if (in_->empty()) w_.release_input(std::move(in_));
    return;
  }
  close_now();  // EOF or an error, as the bufferevent's event callback
}

// Writes what is queued; the rest waits for the next writable turn.
void Connection::on_writable_cb(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  if (c->out_sent_ < c->out_.size()) {
    const ssize_t n = ::send(c->fd_, c->out_.data() + c->out_sent_, c->out_.size() - c->out_sent_,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      c->close_now();
      return;
    }
    if (n > 0) c->out_sent_ += static_cast<size_t>(n);
    if (c->out_sent_ < c->out_.size()) return;
  }
  // A connection left idle keeps no large reply's room.
  if (c->out_.capacity() > InputBuffer::kMax)
    std::string().swap(c->out_);
  else
    c->out_.clear();
  c->out_sent_ = 0;
  if (c->writing_) {
    event_del(&c->wr_);
    c->writing_ = false;
  }
  c->output_drained();
}

size_t Connection::input_length() const {
  if (tls_) return evbuffer_get_length(bufferevent_get_input(bev_.get()));
  return in_ ? in_->end - in_->begin : 0;
}

std::string_view Connection::input_chunk() const {
  if (!tls_) return in_ ? in_->view() : std::string_view();
  evbuffer_iovec vec{};
  if (evbuffer_peek(bufferevent_get_input(bev_.get()), -1, nullptr, &vec, 1) <= 0) return {};
  return {static_cast<const char*>(vec.iov_base), vec.iov_len};
}

void Connection::drain_input(size_t n) {
  if (tls_) {
    evbuffer_drain(bufferevent_get_input(bev_.get()), n);
    return;
  }
  in_->begin += n;
  if (in_->empty()) w_.release_input(std::move(in_));
  if (input_full_) {
    input_full_ = false;
    if (!reading_paused_) enable_reading(true);
  }
}

size_t Connection::output_length() const {
  if (tls_) return evbuffer_get_length(bufferevent_get_output(bev_.get()));
  return out_.size() - out_sent_;
}

void Connection::enable_reading(bool on) {
  if (tls_) {
    if (on)
      bufferevent_enable(bev_.get(), EV_READ);
    else
      bufferevent_disable(bev_.get(), EV_READ);
    return;
  }
  if (on == reading_) return;
  reading_ = on;
  if (on)
    event_add(&rd_, nullptr);
  else
    event_del(&rd_);
}

evutil_socket_t Connection::socket_fd() const {
  return tls_ ? tls_fd_ : fd_;
}

// A reply goes to the socket at once: the bufferevent would write it only
// once the loop has seen the socket writable (arm EPOLLOUT, one more
// epoll_wait, disarm -- two epoll_ctl and a wakeup per reply, for a socket
// that almost always takes the whole reply at once). What it does not take
// waits for on_writable_cb; so does the close after a closing reply, to run
// on the loop's next turn rather than under this request's callers.
void Connection::write_out(std::string_view bytes, bool close) {
  if (tls_) {
    bufferevent_write(bev_.get(), bytes.data(), bytes.size());
    return;
  }
  if (out_sent_ == out_.size()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) bytes.remove_prefix(static_cast<size_t>(n));
    // An error shows again at the writable callback, which closes.
  }
  if (!bytes.empty()) {
    out_.append(bytes);
    if (!writing_) {
      writing_ = true;
      event_add(&wr_, nullptr);
    }
  } else if (close && !writing_) {
    event_active(&wr_, EV_WRITE, 1);
  }
}

}  // namespace luacs::server
