// GET /events: Server-Sent Events of real CPE sessions, their faults and
// task results, and policy reloads; the device/tag filters and the token's
// scope; a client that stops reading is dropped with a final event while
// the server keeps serving. Real binary, real PostgreSQL, real sockets.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/nbi/events.h"
#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::ApiServer;
using test::CpeClient;
using test::HttpStream;
using test::inform_xml;

namespace {

const std::string kDevice = "E48D8C-hAP%20lite-";

// One plain session; true when it completed with 204.
bool session(uint16_t port, const std::string& serial) {
  CpeClient c(port);
  if (c.post(inform_xml(serial)).status != 200) return false;
  return c.post("").status == 204;
}

// A stored device carrying `tags`, so that its events carry them.
void add_device(ApiServer& api, const std::string& serial, const std::string& tags) {
  api.pg().query(
      "INSERT INTO devices (id, oui, product_class, serial_number, first_seen, last_inform, tags)"
      " VALUES ($1, 'E48D8C', 'hAP lite', $2, now(), now(), $3::text[])",
      {kDevice + serial, serial, tags});
}

std::unique_ptr<HttpStream> subscribe(ApiServer& api, const std::string& token,
                                      const std::string& target = "/events") {
  auto s = std::make_unique<HttpStream>(api.port(), target,
                                        test::HttpHeaders{{"Authorization", "Bearer " + token}});
  EXPECT_EQ(s->status(), 200) << s->received();
  EXPECT_TRUE(s->wait_for(": luacs events", 5s)) << s->received();
  return s;
}

bool has(const HttpStream& s, const std::string& needle) {
  return s.received().find(needle) != std::string::npos;
}

// A subscriber with a small receive buffer from the start (a buffer shrunk
// after connecting makes TCP stall), which then stops reading.
class SlowReader {
 public:
  SlowReader(uint16_t port, const std::string& token) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int small = 4096;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    const std::string req =
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + "\r\n\r\n";
    EXPECT_EQ(send(fd_, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  }
  ~SlowReader() { close(fd_); }
  // Reads until `needle` arrived, the peer closed or the timeout passed.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (data_.find(needle) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[65536];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return data_.find(needle) != std::string::npos;
      data_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  const std::string& received() const { return data_; }

 private:
  int fd_ = -1;
  std::string data_;
};

}  // namespace

TEST(SseFrame, OneDataLinePerLineOfTheJson) {
  EXPECT_EQ(nbi::sse_frame({"session", "d", {}, "{\"a\":1}"}),
            "event: session\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(nbi::sse_frame({"job", "", {}, "{\n\"a\": 1\n}"}),
            "event: job\ndata: {\ndata: \"a\": 1\ndata: }\n\n");
}

TEST(EventHub, BuildsNothingWhileNobodyListens) {
  nbi::EventHub hub;
  int posted = 0;
  hub.set_executor([&posted](std::function<void()> fn) {
    ++posted;
    fn();
  });
  EXPECT_FALSE(hub.active());
  hub.publish("policy", "", {}, "{}");
  EXPECT_EQ(posted, 0);
  std::vector<std::string> got;
  const auto id = hub.subscribe([&got](const nbi::Event& e) { got.push_back(e.type); });
  EXPECT_TRUE(hub.active());
  hub.publish("policy", "", {}, "{}");
  EXPECT_EQ(posted, 1);
  EXPECT_EQ(got, std::vector<std::string>{"policy"});
  hub.unsubscribe(id);
  EXPECT_FALSE(hub.active());
  hub.publish("policy", "", {}, "{}");
  EXPECT_EQ(posted, 1);
}

TEST(ApiEvents, ASessionItsTaskResultAndItsFaultArriveAsEvents) {
  ApiServer api("nbievents");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string read = api.token("noc", "read");
  auto s = subscribe(api, read);
  EXPECT_NE(s->received().find("Content-Type: text/event-stream"), std::string::npos)
      << s->received();

  const std::string dev = kDevice + "E1";
  api.pg().query("INSERT INTO tasks (device_id, name, args) VALUES ($1, 'tag', '{\"tag\": \"x\"}')",
                 {dev});
  api.pg().query("INSERT INTO tasks (device_id, name, args) VALUES ($1, 'NoSuchRpc', '{}')", {dev});
  ASSERT_TRUE(session(api.cwmp_port(), "E1"));

  ASSERT_TRUE(s->wait_for("event: session\ndata: ", 10s)) << s->received();
  ASSERT_TRUE(s->wait_for("\"outcome\":\"completed\"", 5s)) << s->received();
  EXPECT_TRUE(has(*s, "\"device\":\"" + dev + "\"")) << s->received();
  EXPECT_TRUE(has(*s, "\"tags\":[\"x\"]")) << s->received();
  ASSERT_TRUE(s->wait_for("event: task\ndata: ", 5s)) << s->received();
  EXPECT_TRUE(has(*s, "\"result\":\"done\"")) << s->received();
  EXPECT_TRUE(has(*s, "\"result\":\"fault\"")) << s->received();
  ASSERT_TRUE(s->wait_for("event: fault\ndata: ", 5s)) << s->received();
  EXPECT_TRUE(has(*s, "NoSuchRpc")) << s->received();

  // An unknown filter is refused; without a token, 401.
  EXPECT_EQ(api.call(read, "GET", "/events?devise=x").status, 400);
  EXPECT_EQ(api.call("", "GET", "/events").status, 401);
}

TEST(ApiEvents, DeviceAndTagFiltersAndTheTokensScope) {
  ApiServer api("nbieventsfilter");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  add_device(api, "A1", "{cust-a}");
  add_device(api, "B1", "{cust-b}");
  const std::string read = api.token("noc", "read");
  const std::string scoped = api.token("reseller", "read", "cust-a");
  auto all = subscribe(api, read);
  // The id's own '%' travels percent-encoded.
  auto by_device = subscribe(api, read, "/events?device=E48D8C-hAP%2520lite-A1");
  auto by_tag = subscribe(api, read, "/events?tag=cust-b");
  auto injected = subscribe(api, read, "/events?tag=%27%20OR%201%3D1%20--");
  auto scope = subscribe(api, scoped);

  ASSERT_TRUE(session(api.cwmp_port(), "A1"));
  ASSERT_TRUE(session(api.cwmp_port(), "B1"));
  ASSERT_TRUE(all->wait_for(kDevice + "A1", 10s)) << all->received();
  ASSERT_TRUE(all->wait_for(kDevice + "B1", 10s)) << all->received();
  // Every subscriber got its events in the same turn of the API's loop.
  EXPECT_TRUE(by_device->wait_for(kDevice + "A1", 5s)) << by_device->received();
  EXPECT_TRUE(by_tag->wait_for(kDevice + "B1", 5s)) << by_tag->received();
  EXPECT_TRUE(scope->wait_for(kDevice + "A1", 5s)) << scope->received();
  injected->wait_for("event:", 300ms);
  by_device->wait_for("never", 300ms);
  EXPECT_FALSE(has(*by_device, kDevice + "B1")) << by_device->received();
  EXPECT_FALSE(has(*by_tag, kDevice + "A1")) << by_tag->received();
  EXPECT_FALSE(has(*scope, kDevice + "B1")) << scope->received();
  EXPECT_FALSE(has(*injected, "event:")) << injected->received();
}

TEST(ApiEvents, APolicyReloadIsAnEvent) {
  ApiServer api("nbieventspolicy",
                "[policy]\ndir = " + std::string(LUACS_SOURCE_DIR) + "/policies/default\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string admin = api.token("ops", "admin");
  auto s = subscribe(api, admin);
  // A scoped token sees device events only: a reload is the whole fleet's.
  const std::string scoped = api.token("reseller", "read", "cust-a");
  auto scope = subscribe(api, scoped);
  EXPECT_EQ(api.call(admin, "POST", "/policy/reload").status, 200);
  ASSERT_TRUE(s->wait_for("event: policy\ndata: ", 10s)) << s->received();
  ASSERT_TRUE(s->wait_for("\"generation\":2", 5s)) << s->received();
  EXPECT_TRUE(has(*s, "\"ok\":true")) << s->received();
  scope->wait_for("never", 300ms);
  EXPECT_FALSE(has(*scope, "event: policy")) << scope->received();
}

TEST(ApiEvents, AClientThatStopsReadingIsDroppedWithAFinalEvent) {
  ApiServer api("nbieventsslow", "[nbi]\nevent_buffer = 4K\nlisten = 127.0.0.1:0\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  // Events of about 1 KB (the device's tags): a few fit in the buffer.
  std::string tags = "{";
  for (int i = 0; i < 10; ++i)
    tags += (i ? "," : "") + std::string("tag-") + std::to_string(i) + std::string(90, 'x');
  add_device(api, "S1", tags + "}");
  const std::string read = api.token("noc", "read");
  SlowReader slow(api.port(), read);
  ASSERT_TRUE(slow.wait_for(": luacs events", 5s)) << slow.received();

  // Sessions until the server says it dropped the client (it never waits
  // for it: every session completes).
  bool dropped = false;
  int sessions = 0;
  for (; sessions < 5000 && !dropped; ++sessions) {
    ASSERT_TRUE(session(api.cwmp_port(), "S1")) << sessions;
    if (sessions % 25 == 24)
      dropped = api.call("", "GET", "/metrics").body.find("luacs_api_event_drops_total 1") !=
                std::string::npos;
  }
  ASSERT_TRUE(dropped);
  // Reading again: the events that fitted, then the final one and the end.
  EXPECT_TRUE(slow.wait_for("event: dropped\ndata: ", 20s)) << slow.received().size();
  EXPECT_TRUE(slow.wait_for("\r\n0\r\n\r\n", 5s));
  EXPECT_NE(slow.received().find("event: session\ndata: "), std::string::npos);

  // The server goes on serving, events included.
  EXPECT_EQ(api.call("", "GET", "/healthz").status, 200);
  auto again = subscribe(api, read);
  ASSERT_TRUE(session(api.cwmp_port(), "S1"));
  EXPECT_TRUE(again->wait_for("event: session\ndata: ", 10s)) << again->received();
}
