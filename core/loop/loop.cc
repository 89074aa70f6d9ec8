#include "core/loop/loop.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <utility>

namespace luacs::loop {

Base new_base() {
  Base b(event_base_new());
  if (!b) throw std::runtime_error("libevent: event_base_new failed");
  return b;
}

timeval to_timeval(std::chrono::milliseconds d) {
  if (d.count() < 0) d = std::chrono::milliseconds(0);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

Mailbox::Mailbox(event_base* base, int priority)
    : wake_(event_new(base, -1, 0, &Mailbox::on_wake, box_.get())) {
  if (!wake_) throw std::runtime_error("libevent: event_new failed");
  if (priority >= 0) event_priority_set(wake_.get(), priority);
  box_->wake = wake_.get();
}

Mailbox::~Mailbox() {
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard lock(box_->mu);
    box_->wake = nullptr;
    dropped.swap(box_->tasks);
  }
  // Destroyed outside the lock: what they own may post again.
}

void Mailbox::post_to(Box& box, std::function<void()> fn) {
  std::lock_guard lock(box.mu);
  if (!box.wake) return;
  box.tasks.push_back(std::move(fn));
  event_active(box.wake, 0, 0);
}

void Mailbox::post(std::function<void()> fn) const {
  post_to(*box_, std::move(fn));
}

Executor Mailbox::executor() const {
  return [box = box_](std::function<void()> fn) { post_to(*box, std::move(fn)); };
}

void Mailbox::on_wake(evutil_socket_t, short, void* arg) {
  auto* box = static_cast<Box*>(arg);
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(box->mu);
    tasks.swap(box->tasks);
  }
  for (auto& fn : tasks) fn();
}

Listener listen(event_base* base, const util::ListenAddr& addr, evconnlistener_cb cb, void* arg,
                const ListenOptions& opts) {
  unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
  if (opts.reuse_port) flags |= LEV_OPT_REUSEABLE_PORT;
  if (addr.ss.ss_family == AF_INET6) flags |= LEV_OPT_BIND_IPV6ONLY;
  Listener l(evconnlistener_new_bind(base, cb, arg, flags, opts.backlog, addr.sa(),
                                     static_cast<int>(addr.len)));
  if (!l) {
    const int err = EVUTIL_SOCKET_ERROR();
    throw std::runtime_error("cannot listen on " + addr.spec + ": " +
                             evutil_socket_error_to_string(err) +
                             (err == EADDRINUSE ? " (is another luacs running?)" : ""));
  }
  if (opts.no_delay) {
    int one = 1;
    if (setsockopt(evconnlistener_get_fd(l.get()), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
      throw std::runtime_error("cannot listen on " + addr.spec + ": TCP_NODELAY: " +
                               evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
  }
  return l;
}

}  // namespace luacs::loop
