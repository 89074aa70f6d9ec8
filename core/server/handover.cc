// Connection's side of a handover (handover.h): leaving one worker and
// arriving on the session's owner.
#include "core/server/handover.h"

#include "core/server/worker.h"
#include "core/util/net.h"

namespace luacs::server {

void Connection::hand_over(int owner, std::string cookie) {
  Handover h;
  h.fd = bufferevent_getfd(bev_.get());
  bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
  // A TLS bufferevent owns neither its socket nor its SSL (setup()); they
  // simply change hands. Its setfd would put a new BIO on the SSL.
  h.ssl = std::exchange(ssl_, nullptr);
  if (tls_) tls_fd_ = -1;
  h.input.reset(evbuffer_new());
  evbuffer_add_buffer(h.input.get(), bufferevent_get_input(bev_.get()));
  h.parser = std::move(parser_);
  h.cookie = std::move(cookie);
  h.peer = peer_;
  h.auth = auth_;
  if (!tls_) bufferevent_setfd(bev_.get(), -1);  // the socket is the handover's now
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
  // A socket bufferevent keeps the end of its input frozen (only its reader
  // appends); open it for the bytes the previous worker had already read.
  // An OpenSSL one does not freeze it.
  evbuffer* in = bufferevent_get_input(bev_.get());
  if (!ssl) evbuffer_unfreeze(in, 0);
  evbuffer_add_buffer(in, h.input.get());
  if (!ssl) evbuffer_freeze(in, 0);
  h.input.reset();
  in_request_ = true;
  request_start_ = std::chrono::steady_clock::now();  // the time spent on the other worker is lost
}

}  // namespace luacs::server
