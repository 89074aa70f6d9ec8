// Connection's side of a handover (handover.h): leaving one worker and
// arriving on the session's owner.
#include "core/server/handover.h"

#include "core/server/worker.h"
#include "core/util/net.h"

namespace luacs::server {

void Connection::hand_over(int owner, std::string cookie) {
  Handover h;
  h.input.reset(evbuffer_new());
  if (tls_) {
    h.fd = std::exchange(tls_fd_, -1);
    bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
    // A TLS bufferevent owns neither its socket nor its SSL (setup()); they
    // simply change hands. Its setfd would put a new BIO on the SSL.
    h.ssl = std::exchange(ssl_, nullptr);
    evbuffer_add_buffer(h.input.get(), bufferevent_get_input(bev_.get()));
  } else {
    h.fd = std::exchange(fd_, -1);  // the socket is the handover's now
    enable_reading(false);
    const std::string_view rest = input_chunk();
    evbuffer_add(h.input.get(), rest.data(), rest.size());
  }
  h.parser = std::move(parser_);
  h.cookie = std::move(cookie);
  h.peer = peer_;
  h.auth = auth_;
  handed_over_ = true;
  w_.shared().stats.handovers.fetch_add(1, std::memory_order_relaxed);
  w_.shared().workers[static_cast<size_t>(owner)]->post_handover(std::move(h));
  close_now();
}

Connection::Connection(Worker& w, Handover&& h)
    : w_(w),
      id_(w.next_connection_id()),
      parser_(std::move(h.parser)),
      auth_(std::move(h.auth)),
      cookie_(std::move(h.cookie)),
      peer_(std::move(h.peer)) {
  peer_addr_ = util::address_of(peer_);
  SSL* ssl = h.take_ssl();
  setup(h.take_fd(), ssl, true);
  // The bytes the previous worker had already read.
  if (ssl) {
    evbuffer_add_buffer(bufferevent_get_input(bev_.get()), h.input.get());
  } else if (size_t n = evbuffer_get_length(h.input.get())) {
    // (At most InputBuffer::kMax: no more was held there.)
    in_ = w_.acquire_input();
    if (in_->reserve(n)) {
      evbuffer_remove(h.input.get(), in_->bytes.get() + in_->end, n);
      in_->end += n;
    }
  }
  h.input.reset();
  in_request_ = true;
  request_start_ = std::chrono::steady_clock::now();  // the time spent on the other worker is lost
}

}  // namespace luacs::server
