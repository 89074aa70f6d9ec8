// The file server over real loopback sockets: published (catalog) files and
// files of the dir, ETag / If-None-Match, Range, HEAD, keep-alive, and the
// 404s that never tell whether a name exists.
#include "core/files/file_server.h"

#include "core/util/log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "support/cpe_client.h"
#include "support/temp_dir.h"

namespace luacs::files {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

using Response = test::HttpResponse;
using test::TempDir;

// A blocking HTTP client for the file server: the CWMP tests' client with
// GET/HEAD requests.
class Client : public test::CpeClient {
 public:
  using CpeClient::CpeClient;
  bool send(std::string_view bytes) { return send_raw(bytes); }
  // One response; `head` = the answer to a HEAD (no body follows).
  Response read(bool head = false) { return read_response(head); }
  Response get(const std::string& path, const std::vector<std::string>& headers = {},
               const std::string& method = "GET") {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: files.test\r\n";
    for (const auto& h : headers) req += h + "\r\n";
    req += "\r\n";
    if (!send(req)) return {};
    return read(method == "HEAD");
  }
  // The server closed the connection (EOF) within `wait`, with nothing more sent.
  bool closed_by_peer(std::chrono::milliseconds wait = 5s) {
    return CpeClient::closed_by_peer(wait, false);
  }
};

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

class FileServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }
  void start(std::chrono::milliseconds idle = 30s) {
    FileServerOptions o;
    o.listen = {"127.0.0.1", 0, false};
    o.dir = dir_.path();
    o.secret = "test secret";
    o.idle_timeout = idle;
    server_ = std::make_unique<FileServer>(o, catalog_, nullptr);
    server_->start();
    ASSERT_NE(server_->port(), 0);
  }
  uint16_t port() const { return server_->port(); }

  TempDir dir_;
  Catalog catalog_;
  std::unique_ptr<FileServer> server_;
};

const std::string kScript = "/system identity set name=cpe1\n/ip dns set servers=192.0.2.53\n";

TEST(FileNames, Valid) {
  EXPECT_TRUE(valid_name("routeros-7.14.3-arm.npk"));
  EXPECT_TRUE(valid_name("A_b.c-9"));
  EXPECT_TRUE(valid_name(std::string(200, 'x')));
  EXPECT_FALSE(valid_name(std::string(201, 'x')));
  EXPECT_FALSE(valid_name(""));
  EXPECT_FALSE(valid_name(".hidden"));
  EXPECT_FALSE(valid_name(".."));
  EXPECT_FALSE(valid_name("a/b"));
  EXPECT_FALSE(valid_name("a%2e"));
  EXPECT_FALSE(valid_name("a b"));
  EXPECT_FALSE(valid_name(std::string("a\0b", 3)));
}

TEST(FileNames, Sha256) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(FileServerTest, PublishedFileIsServedWithItsHeaders) {
  const std::string path = server_->publish("cpe1.alter", "", kScript, "DEV-1");
  ASSERT_EQ(path.size(), 1 + 16 + 1 + std::string("cpe1.alter").size()) << path;
  EXPECT_EQ(path.substr(17), "/cpe1.alter");
  EXPECT_EQ(path.find_first_not_of("0123456789abcdef", 1), 17u) << "16 hex digits: " << path;
  EXPECT_EQ(server_->path_of("cpe1.alter"), path);
  auto f = catalog_.find("cpe1.alter");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->device_id, "DEV-1");
  EXPECT_EQ(f->size, kScript.size());

  Client c(port());
  Response r = c.get(path);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, kScript);
  EXPECT_EQ(r.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.header("content-length"), std::to_string(kScript.size()));
  EXPECT_EQ(r.header("etag"), quoted(sha256_hex(kScript)));
  EXPECT_EQ(r.header("accept-ranges"), "bytes");
  EXPECT_FALSE(r.has("connection"));

  // An explicit type; publishing the same again keeps the URL.
  const std::string m = server_->publish("upgrade.json", "application/json", "{\"v\":1}", "");
  EXPECT_EQ(server_->publish("upgrade.json", "application/json", "{\"v\":1}", ""), m);
  const std::string m2 = server_->publish("upgrade.json", "application/json", "{\"v\":2}", "");
  EXPECT_NE(m2, m) << "new content, new token";
  EXPECT_EQ(c.get(m).status, 404) << "the old version is gone";
  r = c.get(m2);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"v\":2}");
  EXPECT_EQ(r.header("content-type"), "application/json");

  EXPECT_THROW(server_->publish("../x", "", "x", ""), std::invalid_argument);
  EXPECT_THROW(server_->publish("", "", "x", ""), std::invalid_argument);
}

TEST_F(FileServerTest, HeadSendsHeadersOnly) {
  const std::string path = server_->publish("cpe1.alter", "", kScript, "");
  Client c(port());
  Response r = c.get(path, {}, "HEAD");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), std::to_string(kScript.size()));
  EXPECT_EQ(r.header("etag"), quoted(sha256_hex(kScript)));
  EXPECT_TRUE(c.nothing_pending());
  // No body followed: the next answer on the connection parses cleanly.
  r = c.get(path, {"Range: bytes=0-3"}, "HEAD");
  EXPECT_EQ(r.status, 200) << "no Range for HEAD";
  r = c.get(path);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, kScript);
}

TEST_F(FileServerTest, IfNoneMatchGives304) {
  const std::string path = server_->publish("cpe1.alter", "", kScript, "");
  const std::string etag = quoted(sha256_hex(kScript));
  Client c(port());
  Response r = c.get(path, {"If-None-Match: " + etag});
  EXPECT_EQ(r.status, 304);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.header("etag"), etag);
  EXPECT_FALSE(r.has("content-length")) << "a 304 must not claim a zero length";
  EXPECT_EQ(c.get(path, {"If-None-Match: \"x\", W/" + etag}).status, 304);
  EXPECT_EQ(c.get(path, {"If-None-Match: *"}).status, 304);
  r = c.get(path, {"If-None-Match: \"0000\""});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, kScript);
}

TEST_F(FileServerTest, SingleRanges) {
  std::string content;
  for (int i = 0; i < 100; ++i) content += static_cast<char>('A' + i % 26);
  const std::string path = server_->publish("data.bin", "", content, "");
  const std::string etag = quoted(sha256_hex(content));
  Client c(port());

  Response r = c.get(path, {"Range: bytes=10-19"});
  ASSERT_EQ(r.status, 206);
  EXPECT_EQ(r.body, content.substr(10, 10));
  EXPECT_EQ(r.header("content-range"), "bytes 10-19/100");
  EXPECT_EQ(r.header("content-length"), "10");
  EXPECT_EQ(r.header("content-type"), "application/octet-stream");
  EXPECT_EQ(r.header("etag"), etag);

  r = c.get(path, {"Range: bytes=95-"});
  ASSERT_EQ(r.status, 206);
  EXPECT_EQ(r.body, content.substr(95));
  EXPECT_EQ(r.header("content-range"), "bytes 95-99/100");

  r = c.get(path, {"Range: bytes=-7"});
  ASSERT_EQ(r.status, 206);
  EXPECT_EQ(r.body, content.substr(93));
  EXPECT_EQ(r.header("content-range"), "bytes 93-99/100");

  r = c.get(path, {"Range: bytes=90-1000"});
  ASSERT_EQ(r.status, 206) << "the end is clamped";
  EXPECT_EQ(r.body, content.substr(90));
  EXPECT_EQ(r.header("content-range"), "bytes 90-99/100");

  r = c.get(path, {"Range: bytes=-500"});
  ASSERT_EQ(r.status, 206);
  EXPECT_EQ(r.body, content);

  for (const char* bad : {"bytes=100-", "bytes=100-200", "bytes=-0"}) {
    r = c.get(path, {std::string("Range: ") + bad});
    EXPECT_EQ(r.status, 416) << bad;
    EXPECT_EQ(r.header("content-range"), "bytes */100") << bad;
    EXPECT_EQ(r.body, "") << bad;
  }

  // Several ranges, bad syntax, another unit: the whole file.
  for (const char* whole : {"bytes=0-1,5-6", "bytes=5-2", "bytes=x-", "items=0-1"}) {
    r = c.get(path, {std::string("Range: ") + whole});
    EXPECT_EQ(r.status, 200) << whole;
    EXPECT_EQ(r.body, content) << whole;
  }
  // If-Range: honoured only for the current ETag.
  r = c.get(path, {"Range: bytes=0-1", "If-Range: " + etag});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "AB");
  r = c.get(path, {"Range: bytes=0-1", "If-Range: \"old\""});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, content);
}

TEST_F(FileServerTest, WrongTokensAndOtherPathsAre404) {
  const std::string path = server_->publish("cpe1.alter", "", kScript, "");
  const std::string token = path.substr(1, 16);
  std::string wrong = token;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  ASSERT_TRUE(dir_.write("fw.npk", "image").size());
  const std::string dir_token = server_->path_of("fw.npk").substr(1, 16);
  ASSERT_EQ(dir_token.size(), 16u);

  Client c(port());
  const Response missing = c.get("/" + token + "/nothing.alter");
  EXPECT_EQ(missing.status, 404);
  const Response wrong_token = c.get("/" + wrong + "/cpe1.alter");
  EXPECT_EQ(wrong_token.status, 404);
  EXPECT_EQ(wrong_token.body, missing.body)
      << "a wrong token says nothing more than a missing name";
  EXPECT_EQ(wrong_token.headers, missing.headers);
  EXPECT_EQ(c.get("/" + token + "/fw.npk").status, 404) << "another file's token";
  EXPECT_EQ(c.get("/" + dir_token + "/cpe1.alter").status, 404) << "the derived token of a name";
  EXPECT_EQ(c.get("/" + wrong + "/fw.npk").status, 404);
  EXPECT_EQ(c.get("/" + dir_token + "/fw.npk").status, 200);

  for (const std::string& p : std::vector<std::string>{
           "/" + token + "/../etc/passwd", "/" + token + "/%2e%2e%2fx", "/" + token + "/a/b",
           "/" + token + "/cpe1.alter/", "/" + token + "/.hidden", "/" + token + "/%63pe1.alter",
           "/" + token + "/", "/" + token, "/", "/cpe1.alter", "//cpe1.alter",
           "/" + token.substr(0, 15) + "/cpe1.alter", "/" + token + "0/cpe1.alter",
           "/../" + token + "/cpe1.alter", "/" + token + "/cpe1.alter%00"}) {
    Response r = c.get(p);
    EXPECT_EQ(r.status, 404) << p;
  }
  // Absolute form and a query are understood.
  EXPECT_EQ(c.get("http://files.test" + path).status, 200);
  EXPECT_EQ(c.get(path + "?x=1").status, 200);
}

TEST_F(FileServerTest, OtherMethodsAre405) {
  const std::string path = server_->publish("cpe1.alter", "", kScript, "");
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    Client c(port());
    ASSERT_TRUE(c.send(std::string(method) + " " + path +
                       " HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
    Response r = c.read();
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_EQ(r.header("allow"), "GET, HEAD") << method;
    EXPECT_TRUE(c.closed_by_peer()) << method;
  }
}

TEST_F(FileServerTest, KeepAliveAndClose) {
  const std::string a = server_->publish("a.alter", "", "first", "");
  const std::string b = server_->publish("b.alter", "", "second", "");
  Client c(port());
  Response r = c.get(a);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "first");
  r = c.get(b);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "second");

  // Pipelined: both answers, in order, on the one connection.
  ASSERT_TRUE(
      c.send("GET " + b + " HTTP/1.1\r\nHost: x\r\n\r\nGET " + a + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.read();
  EXPECT_EQ(r.body, "second");
  r = c.read();
  EXPECT_EQ(r.body, "first");

  // A 404 keeps the connection too.
  EXPECT_EQ(c.get("/0000000000000000/none").status, 404);
  r = c.get(a, {"Connection: close"});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "first");
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(c.closed_by_peer());

  // HTTP/1.0: closes unless asked to keep the connection.
  Client d(port());
  ASSERT_TRUE(d.send("GET " + a + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  r = d.read();
  EXPECT_EQ(r.body, "first");
  EXPECT_EQ(r.header("connection"), "keep-alive");
  ASSERT_TRUE(d.send("GET " + a + " HTTP/1.0\r\n\r\n"));
  r = d.read();
  EXPECT_EQ(r.body, "first");
  EXPECT_TRUE(d.closed_by_peer());
}

TEST_F(FileServerTest, MalformedRequestIs400AndClosed) {
  Client c(port());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nBad Header\r\n\r\n"));
  Response r = c.read();
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(c.closed_by_peer());

  Client d(port());
  ASSERT_TRUE(d.send("GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(d.read().status / 100, 4) << "an oversized head";
}

TEST_F(FileServerTest, DirFileServedViaPathOf) {
  const std::string content = "MikroTik firmware image\0with a NUL"s;
  dir_.write("routeros-7.14.npk", content);
  std::filesystem::create_directory(dir_.path() + "/subdir.npk");
  EXPECT_EQ(server_->path_of("subdir.npk"), "") << "not a regular file";
  EXPECT_EQ(server_->path_of("absent.npk"), "");
  EXPECT_EQ(server_->path_of("../etc/passwd"), "");

  const std::string path = server_->path_of("routeros-7.14.npk");
  ASSERT_EQ(path.size(), 1 + 16 + 1 + std::string("routeros-7.14.npk").size()) << path;

  Client c(port());
  Response r = c.get(path);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, content);
  EXPECT_EQ(r.header("content-type"), "application/octet-stream");
  EXPECT_EQ(r.header("etag"), quoted(sha256_hex(content)));
  EXPECT_NE(r.header("last-modified").find(" GMT"), std::string::npos);
  EXPECT_EQ(c.get(path, {"If-None-Match: " + quoted(sha256_hex(content))}).status, 304);
  EXPECT_EQ(c.get(path, {}, "HEAD").header("content-length"), std::to_string(content.size()));
  EXPECT_EQ(c.get("/" + path.substr(1, 16) + "/subdir.npk").status, 404);

  // Replaced by hand: the new bytes and a new ETag, same URL.
  const std::string v2 = "another image, longer than the first one";
  const std::string tmp = dir_.write("new.tmp", v2);
  std::filesystem::rename(tmp, dir_.path() + "/routeros-7.14.npk");
  EXPECT_EQ(server_->path_of("routeros-7.14.npk"), path);
  r = c.get(path);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, v2);
  EXPECT_EQ(r.header("etag"), quoted(sha256_hex(v2)));

  // Removed: gone.
  std::filesystem::remove(dir_.path() + "/routeros-7.14.npk");
  EXPECT_EQ(c.get(path).status, 404);
  EXPECT_EQ(server_->path_of("routeros-7.14.npk"), "");
}

TEST_F(FileServerTest, DirTokensDependOnTheSecret) {
  dir_.write("fw.npk", "x");
  const std::string path = server_->path_of("fw.npk");
  Catalog other_catalog;
  FileServerOptions o;
  o.listen = {"127.0.0.1", 0, false};
  o.dir = dir_.path();
  o.secret = "test secret";
  EXPECT_EQ(FileServer(o, other_catalog, nullptr).path_of("fw.npk"), path) << "same secret";
  o.secret = "another secret";
  EXPECT_NE(FileServer(o, other_catalog, nullptr).path_of("fw.npk"), path);
  o.secret = "";
  FileServer random1(o, other_catalog, nullptr), random2(o, other_catalog, nullptr);
  EXPECT_NE(random1.path_of("fw.npk"), random2.path_of("fw.npk")) << "a random secret each";
}

TEST_F(FileServerTest, BigDirFileRangeFromTheMiddle) {
  std::string content(3 * 1024 * 1024, '\0');
  std::mt19937 rng(42);
  for (auto& ch : content) ch = static_cast<char>(rng());
  dir_.write("big.npk", content);
  const std::string path = server_->path_of("big.npk");
  ASSERT_FALSE(path.empty());

  Client c(port());
  Response r = c.get(path, {"Range: bytes=1500000-1565535"});
  ASSERT_EQ(r.status, 206);
  EXPECT_EQ(r.header("content-range"), "bytes 1500000-1565535/3145728");
  EXPECT_EQ(r.header("content-length"), "65536");
  EXPECT_TRUE(r.body == content.substr(1500000, 65536));
  EXPECT_EQ(r.header("etag"), quoted(sha256_hex(content)));

  r = c.get(path, {"Range: bytes=-1000"});
  ASSERT_EQ(r.status, 206);
  EXPECT_TRUE(r.body == content.substr(content.size() - 1000));

  r = c.get(path);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), content.size());
  EXPECT_TRUE(r.body == content);

  // Several clients at once, each its own range.
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      Client k(port());
      const size_t first = static_cast<size_t>(i) * 300'000;
      Response x = k.get(
          path, {"Range: bytes=" + std::to_string(first) + "-" + std::to_string(first + 99'999)});
      if (x.status == 206 && x.body == content.substr(first, 100'000)) ++good;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 8);
}

TEST_F(FileServerTest, IdleConnectionsAreClosed) {
  server_.reset();
  start(200ms);
  const std::string path = server_->publish("a.alter", "", "first", "");
  Client idle(port());
  ASSERT_TRUE(idle.connected());
  EXPECT_TRUE(idle.closed_by_peer(3s)) << "nothing sent";

  Client slow(port());
  ASSERT_TRUE(slow.send("GET " + path + " HTTP/1.1\r\n"));
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(slow.send("Host: x\r\n"));
  EXPECT_TRUE(slow.closed_by_peer(3s)) << "a head that never ends";

  Client kept(port());
  EXPECT_EQ(kept.get(path).status, 200);
  EXPECT_TRUE(kept.closed_by_peer(3s)) << "idle after a request";
}

TEST_F(FileServerTest, OneDebugLinePerRequestWithoutTheToken) {
  const std::string path = server_->publish("cpe1.alter", "", kScript, "");
  const std::string token = path.substr(1, 16);
  const std::string log_path = dir_.path() + "/log.txt";  // not a valid name: never served
  log::set_file(log_path);
  log::set_level(log::Level::kDebug);
  {
    Client c(port());
    EXPECT_EQ(c.get(path).status, 200);
    EXPECT_EQ(c.get(path, {"Range: bytes=0-3"}).status, 206);
    EXPECT_EQ(c.get("/" + token + "/other.alter").status, 404);
    EXPECT_EQ(c.get("/x/" + token + "/y").status, 404);
  }
  // The lines are written on the server's thread: wait for the fourth.
  std::string text;
  for (int i = 0; i < 200; ++i) {
    std::ifstream f(log_path);
    text.assign(std::istreambuf_iterator<char>(f), {});
    if (text.find("/y 404") != std::string::npos) break;
    std::this_thread::sleep_for(10ms);
  }
  log::set_level(log::Level::kInfo);
  log::set_file("");
  const std::string shown = "/" + token.substr(0, 4) + "\u2026";
  EXPECT_NE(text.find("files: GET " + shown + "/cpe1.alter 200 bytes=" +
                      std::to_string(kScript.size()) + " peer=127.0.0.1:"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("files: GET " + shown + "/cpe1.alter 206 bytes=4 "), std::string::npos)
      << text;
  EXPECT_NE(text.find("files: GET " + shown + "/other.alter 404 "), std::string::npos) << text;
  EXPECT_NE(text.find("files: GET /x" + shown + "/y 404 "), std::string::npos) << text;
  EXPECT_EQ(text.find(token), std::string::npos) << "never a whole token: " << text;
}

TEST_F(FileServerTest, StopsWithOpenConnections) {
  const std::string path = server_->publish("a.alter", "", "first", "");
  Client c(port());
  EXPECT_EQ(c.get(path).status, 200);
  server_->stop();
  EXPECT_TRUE(c.closed_by_peer(3s));
  server_->stop();  // idempotent
}

TEST(FileServerListen, BusyPortIsAClearError) {
  Catalog catalog;
  FileServerOptions o;
  o.listen = {"127.0.0.1", 0, false};
  FileServer first(o, catalog, nullptr);
  first.start();
  o.listen.port = first.port();
  FileServer second(o, catalog, nullptr);
  try {
    second.start();
    FAIL() << "bound twice";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  "cannot listen on 127.0.0.1:" + std::to_string(first.port()) + ": ", 0),
              0u)
        << e.what();
  }
  o.listen = {"not-an-address", 0, false};
  EXPECT_THROW(FileServer(o, catalog, nullptr).start(), std::runtime_error);
}

}  // namespace
}  // namespace luacs::files
