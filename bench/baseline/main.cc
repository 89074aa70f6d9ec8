// luacs-baseline: the CWMP exchanges answered with canned bytes.
//
// Same stack as luacs (libevent bufferevents, N worker threads each with its
// own SO_REUSEPORT listening socket) but no SOAP parse, no session, no policy,
// no store: a POST with a non-empty body gets a canned InformResponse and a
// Set-Cookie, an empty POST gets 204. Whatever luacs does on top of that is
// what a run against both measures; this is the wire limit of the box.
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/soap/writer.h"
#include "core/util/text.h"

namespace {

namespace text = luacs::text;

constexpr size_t kMaxHead = 16 * 1024;
constexpr uint64_t kMaxBody = 16 << 20;

struct Settings {
  std::string host = "127.0.0.1";
  uint16_t port = 7547;
  unsigned workers = 0;
};

std::string g_inform_response;  // canned envelopes
std::string g_tc_response;
std::string g_head_200;     // status line .. "Set-Cookie: session=" (InformResponse)
std::string g_head_200_tc;  // the same for the TransferCompleteResponse, no cookie
constexpr std::string_view kHead204 = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n";

bool blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

// A byte search, not a parse: the load generator's TransferComplete sessions
// get their canned response, every other non-empty POST is taken for an
// Inform.
bool is_transfer_complete(std::string_view body) {
  return body.find("TransferComplete>") != std::string_view::npos;
}

// The request head, just what framing and the answer need.
struct Head {
  bool post = false;
  bool keep_alive = true;
  bool chunked = false;
  uint64_t content_length = 0;
};

bool parse_head(std::string_view head, Head& h) {
  size_t eol = head.find('\n');
  std::string_view line = text::trim(head.substr(0, eol), " \t\r");
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  h.post = line.substr(0, sp1) == "POST";
  std::string_view version = line.substr(sp2 + 1);
  if (version.substr(0, 7) != "HTTP/1.") return false;
  bool http10 = version == "HTTP/1.0";
  bool close = false, keep = false, have_length = false;
  head.remove_prefix(eol + 1);
  while (!head.empty()) {
    eol = head.find('\n');
    line = text::trim(head.substr(0, eol), " \t\r");
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    std::string_view name = line.substr(0, colon),
                     value = text::trim(line.substr(colon + 1), " \t\r");
    if (text::iequals(name, "Content-Length")) {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), h.content_length);
      if (ec != std::errc() || p != value.data() + value.size()) return false;
      have_length = true;
    } else if (text::iequals(name, "Transfer-Encoding")) {
      h.chunked = text::has_token(value, "chunked");
    } else if (text::iequals(name, "Connection")) {
      close = close || text::has_token(value, "close");
      keep = keep || text::has_token(value, "keep-alive");
    }
  }
  if (h.chunked && have_length) return false;
  h.keep_alive = !close && (!http10 || keep);
  return h.content_length <= kMaxBody;
}

// A complete chunked body in `data`: sets *consumed and *empty. -1 error,
// 0 incomplete, 1 done.
int scan_chunked(std::string_view data, size_t* consumed, bool* empty) {
  size_t pos = 0;
  *empty = true;
  for (;;) {
    size_t eol = data.find('\n', pos);
    if (eol == std::string_view::npos) return 0;
    std::string_view line = data.substr(pos, eol - pos);
    line = text::trim(line.substr(0, line.find(";")), " \t\r");
    uint64_t size = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
    if (ec != std::errc() || p != line.data() + line.size() || size > kMaxBody) return -1;
    pos = eol + 1;
    if (size == 0) {
      for (;;) {  // trailers, then the blank line
        eol = data.find('\n', pos);
        if (eol == std::string_view::npos) return 0;
        bool end = text::trim(data.substr(pos, eol - pos), " \t\r").empty();
        pos = eol + 1;
        if (end) {
          *consumed = pos;
          return 1;
        }
      }
    }
    if (data.size() - pos < size + 2) return 0;
    if (!blank(data.substr(pos, size))) *empty = false;
    pos += size;
    if (data[pos] == '\r') ++pos;
    if (data[pos] != '\n') return -1;
    ++pos;
  }
}

class Worker;

struct Conn {
  Worker* w;
  bufferevent* bev;
  bool closing = false;
};

class Worker {
 public:
  Worker(int index, evutil_socket_t listen_fd) : index_(index) {
    base_ = event_base_new();
    if (!base_) throw std::runtime_error("event_base_new failed");
    listener_ = evconnlistener_new(base_, on_accept, this, LEV_OPT_CLOSE_ON_FREE, -1, listen_fd);
    if (!listener_) throw std::runtime_error("evconnlistener_new failed");
  }
  ~Worker() {
    for (Conn* c : conns_) {
      bufferevent_free(c->bev);
      delete c;
    }
    evconnlistener_free(listener_);
    event_base_free(base_);
  }
  void start() {
    thread_ = std::thread([this] { event_base_dispatch(base_); });
  }
  void stop() {
    event_base_loopbreak(base_);
    if (thread_.joinable()) thread_.join();
  }
  uint64_t requests() const { return requests_; }

 private:
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
    auto* w = static_cast<Worker*>(arg);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bufferevent* bev = bufferevent_socket_new(w->base_, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
      evutil_closesocket(fd);
      return;
    }
    auto* c = new Conn{w, bev};
    w->conns_.insert(c);
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    timeval idle{60, 0};
    bufferevent_set_timeouts(bev, &idle, &idle);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
  }

  static void on_read(bufferevent* bev, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    while (!c->closing) {
      size_t len = evbuffer_get_length(in);
      if (len == 0) return;
      evbuffer_ptr pos = evbuffer_search(in, "\r\n\r\n", 4, nullptr);
      if (pos.pos < 0) {
        if (len > kMaxHead) return c->w->reply_error(c, 431);
        return;
      }
      size_t head_len = static_cast<size_t>(pos.pos) + 4;
      const char* p = reinterpret_cast<const char*>(evbuffer_pullup(in, head_len));
      Head h;
      if (!parse_head({p, head_len}, h)) return c->w->reply_error(c, 400);
      size_t total = head_len;
      bool empty = true, tc = false;
      if (h.chunked) {
        p = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
        size_t consumed = 0;
        int r = scan_chunked({p + head_len, len - head_len}, &consumed, &empty);
        if (r < 0 || (r == 0 && len > kMaxBody)) return c->w->reply_error(c, 400);
        if (r == 0) return;
        total += consumed;
      } else if (h.content_length) {
        total += static_cast<size_t>(h.content_length);
        if (len < total) return;
        p = reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ssize_t>(total)));
        std::string_view body(p + head_len, static_cast<size_t>(h.content_length));
        empty = blank(body);
        tc = !empty && is_transfer_complete(body);
      }
      evbuffer_drain(in, total);
      c->w->reply(c, h, empty, tc);
    }
  }

  void reply(Conn* c, const Head& h, bool empty_body, bool transfer_complete) {
    ++requests_;
    evbuffer* out = bufferevent_get_output(c->bev);
    std::string_view conn = h.keep_alive ? "" : "Connection: close\r\n";
    if (!h.post) {
      evbuffer_add_printf(out,
                          "HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Length: 0\r\n"
                          "Connection: close\r\n\r\n");
      return close_after_write(c);
    }
    if (empty_body) {
      evbuffer_add(out, kHead204.data(), kHead204.size());
    } else if (transfer_complete) {
      evbuffer_add(out, g_head_200_tc.data(), g_head_200_tc.size());
    } else {
      char cookie[48];
      int n = std::snprintf(cookie, sizeof cookie, "%d-%llu", index_,
                            static_cast<unsigned long long>(++sessions_));
      evbuffer_add(out, g_head_200.data(), g_head_200.size());
      evbuffer_add(out, cookie, static_cast<size_t>(n));
      evbuffer_add(out, "; Path=/; HttpOnly\r\n", 20);
    }
    evbuffer_add(out, conn.data(), conn.size());
    evbuffer_add(out, "\r\n", 2);
    if (transfer_complete)
      evbuffer_add(out, g_tc_response.data(), g_tc_response.size());
    else if (!empty_body)
      evbuffer_add(out, g_inform_response.data(), g_inform_response.size());
    if (!h.keep_alive) close_after_write(c);
  }

  void reply_error(Conn* c, int status) {
    evbuffer_add_printf(bufferevent_get_output(c->bev),
                        "HTTP/1.1 %d Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        status);
    close_after_write(c);
  }

  void close_after_write(Conn* c) {
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
  }

  static void on_write(bufferevent*, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    if (c->closing) c->w->drop(c);  // the output is flushed
  }

  static void on_event(bufferevent*, short, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    c->w->drop(c);  // EOF, error or idle timeout
  }

  void drop(Conn* c) {
    conns_.erase(c);
    bufferevent_free(c->bev);
    delete c;
  }

  int index_;
  event_base* base_ = nullptr;
  evconnlistener* listener_ = nullptr;
  std::thread thread_;
  std::unordered_set<Conn*> conns_;
  uint64_t requests_ = 0;
  uint64_t sessions_ = 0;
};

evutil_socket_t listen_socket(const Settings& s, uint16_t port, uint16_t* bound) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (inet_pton(AF_INET, s.host.c_str(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, s.host.c_str(),
                       &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) == 1) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  } else {
    throw std::runtime_error("--listen: not a numeric address: " + s.host);
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0 || listen(fd, 4096) < 0) {
    std::string err = std::strerror(errno);
    close(fd);
    throw std::runtime_error("bind " + s.host + ":" + std::to_string(port) + ": " + err);
  }
  socklen_t alen = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &alen);
  *bound = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                         : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return fd;
}

Settings parse_args(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--listen") {
      std::string v = value();
      size_t colon = v.rfind(':');
      if (colon == std::string::npos) throw std::invalid_argument("--listen HOST:PORT");
      s.host = v.substr(0, colon);
      if (s.host.size() > 1 && s.host.front() == '[') s.host = s.host.substr(1, s.host.size() - 2);
      unsigned long port = std::stoul(v.substr(colon + 1));
      if (port > 65535) throw std::invalid_argument("--listen: bad port");
      s.port = static_cast<uint16_t>(port);
    } else if (a == "--workers") {
      s.workers = static_cast<unsigned>(std::stoul(value()));
    } else if (a == "--help" || a == "-h") {
      throw std::invalid_argument("");
    } else {
      throw std::invalid_argument("unknown option: " + std::string(a));
    }
  }
  if (s.workers == 0) s.workers = std::max(1u, std::thread::hardware_concurrency());
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  try {
    s = parse_args(argc, argv);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (!msg.empty()) std::cerr << "luacs-baseline: " << msg << "\n";
    std::cerr << "usage: luacs-baseline [--listen 127.0.0.1:7547] [--workers N]\n";
    return msg.empty() ? 0 : 2;
  }

  luacs::soap::Envelope env;
  env.header.id = "1";
  env.body = luacs::soap::InformResponse{1};
  g_inform_response = luacs::soap::write(env);
  env.header.id = "2";
  env.body = luacs::soap::TransferCompleteResponse{};
  g_tc_response = luacs::soap::write(env);
  g_head_200_tc =
      "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nContent-Length: " +
      std::to_string(g_tc_response.size()) + "\r\n";
  g_head_200 = "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nContent-Length: " +
               std::to_string(g_inform_response.size()) + "\r\nSet-Cookie: session=";

  evthread_use_pthreads();
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // inherited by the workers

  std::vector<std::unique_ptr<Worker>> workers;
  uint16_t port = s.port;
  try {
    for (unsigned i = 0; i < s.workers; ++i) {
      uint16_t bound = 0;
      evutil_socket_t fd = listen_socket(s, port, &bound);
      port = bound;  // port 0: the others share the first one's port
      workers.push_back(std::make_unique<Worker>(static_cast<int>(i), fd));
    }
  } catch (const std::exception& e) {
    std::cerr << "luacs-baseline: " << e.what() << "\n";
    return 1;
  }
  for (auto& w : workers) w->start();
  std::string where = s.host.find(':') != std::string::npos ? "[" + s.host + "]" : s.host;
  std::cerr << "luacs-baseline listening on " << where << ":" << port << " with " << s.workers
            << " workers" << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  uint64_t requests = 0;
  for (auto& w : workers) {
    w->stop();
    requests += w->requests();
  }
  workers.clear();
  std::cerr << "luacs-baseline stopped after " << requests << " requests" << std::endl;
  return 0;
}
