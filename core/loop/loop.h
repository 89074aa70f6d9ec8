// The event-loop toolkit: what every thread that runs a libevent loop (the
// CWMP workers, the file server, the store, the main thread) is built from.
//
// - one owning alias per C handle (libevent, OpenSSL, DIR), so no path has
//   to remember a *_free;
// - one time conversion for libevent's timeouts;
// - one mailbox through which other threads hand work to a loop, and the
//   Executor that completions come back through;
// - one listener bind.
#pragma once

#include <dirent.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/util/net.h"

namespace luacs::loop {

// Frees a handle with its library's own function (a null handle is left
// alone).
template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    if (p) Free(p);
  }
};

using Base = std::unique_ptr<event_base, Deleter<event_base_free>>;
using Event = std::unique_ptr<event, Deleter<event_free>>;
using BufferEvent = std::unique_ptr<bufferevent, Deleter<bufferevent_free>>;
using Buffer = std::unique_ptr<evbuffer, Deleter<evbuffer_free>>;
using Listener = std::unique_ptr<evconnlistener, Deleter<evconnlistener_free>>;
using SslCtx = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using Dir = std::unique_ptr<DIR, Deleter<closedir>>;

// A new event base; throws std::runtime_error when libevent cannot make one.
Base new_base();

// libevent's timeout for a duration (negative: zero).
timeval to_timeval(std::chrono::milliseconds d);

// Runs a function on some loop; any thread may call it. A completion
// handed to an Executor runs on the loop that gave out the Executor, or
// never, when that loop is gone.
using Executor = std::function<void(std::function<void()>)>;

// Work other threads hand to one loop, run there in the order posted.
class Mailbox {
 public:
  // `priority`: the event priority the work runs at (-1: the base's default).
  explicit Mailbox(event_base* base, int priority = -1);
  // What is still queued is dropped (destroyed unrun); executors given out
  // drop what is posted from now on.
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  void post(std::function<void()> fn) const;  // any thread
  Executor executor() const;                  // any thread

 private:
  struct Box {
    std::mutex mu;
    std::vector<std::function<void()>> tasks;
    event* wake = nullptr;  // null once the mailbox is gone
  };
  static void on_wake(evutil_socket_t, short, void* arg);
  static void post_to(Box& box, std::function<void()> fn);
  std::shared_ptr<Box> box_ = std::make_shared<Box>();
  Event wake_;
};

struct ListenOptions {
  int backlog = 1024;
  // Several loops share the address (each has its own socket and the
  // kernel spreads the connections); make sure with
  // util::ensure_not_listening that no other process holds it first.
  bool reuse_port = false;
  // TCP_NODELAY on the listening socket: Linux copies it to every socket
  // accepted from it, one setsockopt per listener instead of per connection.
  bool no_delay = false;
};
// Binds and listens on `addr`, calling `cb(listener, fd, peer, len, arg)`
// for each connection. Throws std::runtime_error("cannot listen on SPEC:
// reason") on failure.
Listener listen(event_base* base, const util::ListenAddr& addr, evconnlistener_cb cb, void* arg,
                const ListenOptions& opts);

}  // namespace luacs::loop
