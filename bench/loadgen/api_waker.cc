// The trigger's API client (wake.h, ApiWaker): POST
// /devices/{id}/connection_request on kept connections.
#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bench/loadgen/http_client.h"
#include "bench/loadgen/runner_impl.h"
#include "bench/loadgen/wake.h"

namespace luacs::loadgen {
namespace {
constexpr size_t kMaxAnswer = 64 * 1024;
}  // namespace

struct ApiWaker::Conn {
  ApiWaker* w = nullptr;
  bufferevent* bev = nullptr;
  bool reused = false;   // the call rides on a connection an earlier call used
  bool retried = false;  // re-sent once after the kept connection was found closed
  size_t local = 0;
  std::string request;
};

ApiWaker::ApiWaker(event_base* base, const CrOptions& cr, std::chrono::milliseconds io_timeout,
                   unsigned max_inflight, Done done)
    : base_(base),
      cr_(cr),
      io_timeout_(io_timeout),
      max_inflight_(max_inflight),
      done_(std::move(done)) {}

ApiWaker::~ApiWaker() {
  close_all();
}

void ApiWaker::close_all() {
  for (auto& c : conns_)
    if (c->bev) {
      bufferevent_free(c->bev);
      c->bev = nullptr;
    }
}

bool ApiWaker::connect(Conn& c) {
  const Target& t = cr_.api;
  int fd = socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c.bev = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!c.bev) {
    close(fd);
    return false;
  }
  bufferevent_setcb(c.bev, on_read, nullptr, on_event, &c);
  timeval tv = to_timeval(std::chrono::microseconds(io_timeout_).count());
  bufferevent_set_timeouts(c.bev, &tv, &tv);
  bufferevent_enable(c.bev, EV_READ | EV_WRITE);
  if (bufferevent_socket_connect(c.bev, reinterpret_cast<const sockaddr*>(&t.addr),
                                 static_cast<int>(t.addr_len)) < 0) {
    bufferevent_free(c.bev);
    c.bev = nullptr;
    return false;
  }
  return true;
}

bool ApiWaker::wake(size_t local, const std::string& device_id) {
  if (inflight_ >= max_inflight_) return false;
  Conn* c = nullptr;
  if (!idle_.empty()) {
    c = idle_.back();
    idle_.pop_back();
  } else {
    conns_.push_back(std::make_unique<Conn>());
    c = conns_.back().get();
    c->w = this;
  }
  ++inflight_;
  c->local = local;
  c->retried = false;
  std::string base_path = cr_.api.path;
  if (!base_path.empty() && base_path.back() == '/') base_path.pop_back();
  c->request = "POST " + base_path + "/devices/" + path_segment(device_id) +
               "/connection_request?timeout=" + std::to_string(cr_.wake_timeout.count()) +
               " HTTP/1.1\r\nHost: " + cr_.api.host_header + "\r\nAuthorization: Bearer " +
               cr_.api_token + "\r\nContent-Length: 0\r\n\r\n";
  send(*c);
  return true;
}

void ApiWaker::send(Conn& c) {
  c.reused = c.bev != nullptr;
  if (!c.bev && !connect(c)) return finish(c, {0, "connect_failed", ""}, false);
  bufferevent_write(c.bev, c.request.data(), c.request.size());
}

void ApiWaker::on_read(bufferevent*, void* arg) {
  auto& c = *static_cast<Conn*>(arg);
  c.w->parse(c);
}

void ApiWaker::on_event(bufferevent*, short what, void* arg) {
  auto& c = *static_cast<Conn*>(arg);
  ApiWaker& w = *c.w;
  if (what & BEV_EVENT_CONNECTED) return;
  bool idle = false;
  for (Conn* i : w.idle_) idle = idle || i == &c;
  bufferevent_free(c.bev);
  c.bev = nullptr;
  if (idle) return;  // a kept connection the server closed
  if ((what & BEV_EVENT_TIMEOUT) == 0 && c.reused && !c.retried) {
    // The server closed the kept connection as we reused it: once more on a
    // fresh one, as any HTTP client does.
    c.retried = true;
    return w.send(c);
  }
  w.finish(c, {0, (what & BEV_EVENT_TIMEOUT) ? "timeout" : "connection_reset", ""}, false);
}

void ApiWaker::parse(Conn& c) {
  evbuffer* in = bufferevent_get_input(c.bev);
  size_t len = evbuffer_get_length(in);
  evbuffer_ptr pos = evbuffer_search(in, "\r\n\r\n", 4, nullptr);
  if (pos.pos < 0) {
    if (len > kMaxAnswer) finish(c, {0, "bad_answer", ""}, false);
    return;
  }
  size_t head_len = static_cast<size_t>(pos.pos) + 4;
  const char* p = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
  ResponseHead h;
  if (!parse_response_head({p, head_len}, h)) return finish(c, {0, "bad_answer", ""}, false);
  std::string body;
  size_t total = 0;
  if (h.chunked) {
    Dechunk d = dechunk({p + head_len, len - head_len}, body, &total);
    if (d == Dechunk::kError || len > kMaxAnswer) return finish(c, {0, "bad_answer", ""}, false);
    if (d == Dechunk::kIncomplete) return;
    total += head_len;
  } else {
    uint64_t n = h.content_length.value_or(0);
    if (n > kMaxAnswer) return finish(c, {0, "bad_answer", ""}, false);
    total = head_len + n;
    if (len < total) return;
    body.assign(p + head_len, n);
  }
  Answer a{h.status, "", ""};
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (j.contains("outcome") && j["outcome"].is_string()) a.outcome = j["outcome"];
    if (j.contains("transport") && j["transport"].is_string()) a.transport = j["transport"];
  }
  if (a.outcome.empty())
    a.outcome = j.is_object() && j.contains("error") && j["error"].is_string()
                    ? j["error"].get<std::string>()
                    : std::string("-");
  evbuffer_drain(in, total);
  finish(c, a, !h.close);
}

void ApiWaker::finish(Conn& c, const Answer& a, bool keep) {
  if (!keep && c.bev) {
    bufferevent_free(c.bev);
    c.bev = nullptr;
  }
  --inflight_;
  idle_.push_back(&c);
  done_(c.local, a);
}

}  // namespace luacs::loadgen
