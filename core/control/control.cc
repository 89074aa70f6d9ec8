#include "core/control/control.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/util/log.h"

namespace luacs::control {
namespace {

constexpr size_t kMaxCommand = 256;

sockaddr_un address_of(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa.sun_path)
    throw std::runtime_error("control socket path '" + path + "' is empty or too long");
  std::memcpy(sa.sun_path, path.data(), path.size());
  return sa;
}

// True when something answers on the socket file.
bool in_use(const std::string& path) {
  sockaddr_un sa = address_of(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool used = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  close(fd);
  return used;
}

// One client: read a line, answer, close once written. Deleting it frees
// (and closes) its connection.
struct Client {
  ControlServer::Handler* handler;
  loop::BufferEvent bev;
};

void on_written(bufferevent* bev, void* arg) {
  if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) return;
  delete static_cast<Client*>(arg);
}

void on_event(bufferevent*, short, void* arg) {
  delete static_cast<Client*>(arg);
}

void on_read(bufferevent* bev, void* arg) {
  auto* c = static_cast<Client*>(arg);
  evbuffer* in = bufferevent_get_input(bev);
  size_t len = 0;
  char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
  if (!line) {
    if (evbuffer_get_length(in) > kMaxCommand) on_event(bev, 0, arg);
    return;
  }
  std::string command(line, len);
  std::free(line);
  std::string answer;
  try {
    answer = (*c->handler)(command);
  } catch (const std::exception& e) {
    answer = std::string("error ") + e.what() + "\n";
  }
  bufferevent_disable(bev, EV_READ);
  bufferevent_setcb(bev, nullptr, on_written, on_event, c);
  bufferevent_write(bev, answer.data(), answer.size());
}

}  // namespace

ControlServer::ControlServer(event_base* base, std::string path, Handler handler)
    : path_(std::move(path)), handler_(std::move(handler)) {
  sockaddr_un sa = address_of(path_);
  if (in_use(path_))
    throw std::runtime_error("control socket " + path_ +
                             " is in use by a running luacs; stop it or set [control] socket");
  unlink(path_.c_str());
  mode_t old = umask(0077);
  listener_.reset(evconnlistener_new_bind(base, &ControlServer::on_accept, this,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                          reinterpret_cast<sockaddr*>(&sa), sizeof sa));
  int err = errno;
  umask(old);
  if (!listener_)
    throw std::runtime_error("cannot listen on control socket " + path_ + ": " +
                             std::strerror(err));
}

ControlServer::~ControlServer() {
  listener_.reset();
  unlink(path_.c_str());
}

void ControlServer::on_accept(evconnlistener* l, evutil_socket_t fd, sockaddr*, int, void* arg) {
  auto* self = static_cast<ControlServer*>(arg);
  loop::BufferEvent owned(
      bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE));
  if (!owned) {
    close(fd);
    return;
  }
  bufferevent* bev = owned.get();
  auto* c = new Client{&self->handler_, std::move(owned)};
  bufferevent_setcb(bev, on_read, nullptr, on_event, c);
  timeval t{10, 0};
  bufferevent_set_timeouts(bev, &t, &t);
  bufferevent_enable(bev, EV_READ);
}

std::string request(const std::string& path, std::string_view command,
                    std::chrono::milliseconds timeout) {
  auto fail = [&](const std::string& why) {
    return std::runtime_error("cannot reach luacs at " + path + ": " + why);
  };
  sockaddr_un sa = address_of(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw fail(std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int err = errno;
    close(fd);
    throw fail(std::string(std::strerror(err)) + " (is luacs running with this config?)");
  }
  std::string line = std::string(command) + "\n";
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    int err = errno;
    close(fd);
    throw fail(std::strerror(err));
  }
  std::string answer;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      close(fd);
      throw fail("no answer in time");
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
    if (answer.size() > (1 << 20)) break;
  }
  close(fd);
  return answer;
}

}  // namespace luacs::control
