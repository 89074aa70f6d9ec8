// loop::listen's socket options as the accepted sockets see them: the CWMP
// workers no longer set TCP_NODELAY per connection but rely on Linux copying
// it from the listener.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/loop/loop.h"
#include "core/util/net.h"

namespace luacs::loop {
namespace {

// The TCP_NODELAY of a socket accepted from a listener made with `opts`.
int accepted_no_delay(const ListenOptions& opts) {
  Base base = new_base();
  int accepted = -1;
  auto cb = [](evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
    *static_cast<int*>(arg) = fd;
  };
  Listener l = listen(base.get(), util::listen_addr("127.0.0.1", 0), cb, &accepted, opts);
  sockaddr_in to{};
  socklen_t len = sizeof to;
  EXPECT_EQ(getsockname(evconnlistener_get_fd(l.get()), reinterpret_cast<sockaddr*>(&to), &len), 0);
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&to), len), 0);
  for (int i = 0; i < 100 && accepted < 0; ++i) event_base_loop(base.get(), EVLOOP_ONCE);
  int value = -1;
  socklen_t vlen = sizeof value;
  EXPECT_GE(accepted, 0);
  if (accepted >= 0) {
    EXPECT_EQ(getsockopt(accepted, IPPROTO_TCP, TCP_NODELAY, &value, &vlen), 0);
    close(accepted);
  }
  close(client);
  return value;
}

TEST(LoopListen, NoDelayReachesEveryAcceptedSocket) {
  ListenOptions opts;
  opts.no_delay = true;
  EXPECT_NE(accepted_no_delay(opts), 0);
}

TEST(LoopListen, WithoutNoDelayAcceptedSocketsKeepNagle) {
  EXPECT_EQ(accepted_no_delay(ListenOptions{}), 0);
}

}  // namespace
}  // namespace luacs::loop
