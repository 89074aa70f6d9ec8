// The file server over TLS, driven directly (no binary): a published file
// (catalog bytes, added to the output by reference), a dir file several
// times what is read ahead (sent in slices, pipelined with a second
// request), and a dir file cut short while it is being sent.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "core/files/file_server.h"
#include "core/tls/context.h"
#include "support/tls_client.h"

namespace luacs::files {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

class FileServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    std::string tmpl = (fs::temp_directory_path() / "luacs-files-tls-XXXXXX").string();
    root_ = ::mkdtemp(tmpl.data());
    const std::string cmd =
        std::string(LUACS_SOURCE_DIR) + "/scripts/dev-ca " + root_ + "/ca >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    fs::create_directories(root_ + "/files");

    tls::Settings s;
    s.certs = {root_ + "/ca/server-ecdsa.crt"};
    s.keys = {root_ + "/ca/server-ecdsa.key"};
    holder_ = std::make_unique<tls::Holder>(s, std::make_shared<tls::TicketKeys>());
    FileServerOptions o;
    o.listen = {"127.0.0.1", 0, true};
    o.dir = root_ + "/files";
    o.secret = "test secret";
    o.tls = [h = holder_.get()] { return SSL_new(h->current()->get()); };
    server_ = std::make_unique<FileServer>(o, catalog_, nullptr);
    server_->start();
    ASSERT_NE(server_->port(), 0);
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void write(const std::string& name, const std::string& bytes) {
    std::ofstream(root_ + "/files/" + name, std::ios::binary) << bytes;
  }
  test::TlsClient client() {
    test::TlsOptions o;
    o.cas = {root_ + "/ca/ca.crt"};
    return test::TlsClient(server_->port(), o);
  }

  std::string root_;
  Catalog catalog_;
  std::unique_ptr<tls::Holder> holder_;
  std::unique_ptr<FileServer> server_;
};

TEST_F(FileServerTlsTest, PublishedAndDirFilesWholeAndPipelined) {
  const std::string script = "/system identity set name=cpe1\n";
  const std::string published = server_->publish("cpe1.alter", "", script, "dev1");
  const std::string image = random_bytes(3 * 1024 * 1024 + 17, 3);
  write("fw.bin", image);
  const std::string fw = server_->path_of("fw.bin");
  ASSERT_FALSE(fw.empty());

  auto c = client();
  ASSERT_TRUE(c.connected()) << c.error();
  auto r = c.get(published);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, script);
  // Two requests at once: the second waits for the whole image.
  ASSERT_TRUE(c.send_raw("GET " + fw + " HTTP/1.1\r\nHost: f\r\n\r\nGET " + published +
                         " HTTP/1.1\r\nHost: f\r\n\r\n"));
  r = c.read_response();
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), image.size());
  EXPECT_TRUE(r.body == image);
  r = c.read_response();
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, script);
}

// A dir file truncated while it goes out (larger than the loopback socket
// buffers hold, so most of it is still on disk): the connection closes short of
// the Content-Length announced (never a crash, never other bytes), and the
// server goes on serving.
TEST_F(FileServerTlsTest, AFileCutShortWhileSentClosesTheConnection) {
  const std::string image = random_bytes(32 * 1024 * 1024, 5);
  write("big.bin", image);
  const std::string big = server_->path_of("big.bin");

  auto c = client();
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.send_raw("GET " + big + " HTTP/1.1\r\nHost: f\r\n\r\n"));
  ASSERT_TRUE(c.wait_for("\r\n\r\n", 10s));
  ::truncate((root_ + "/files/big.bin").c_str(), 1024);
  EXPECT_FALSE(c.wait_for("never in the file", 10s));  // ends at the close
  EXPECT_LT(c.received().size(), image.size());
  EXPECT_TRUE(c.closed_by_peer(1s));

  write("small.bin", "small\n");
  auto again = client();
  ASSERT_TRUE(again.connected()) << again.error();
  EXPECT_EQ(again.get(server_->path_of("small.bin")).body, "small\n");
}

}  // namespace
}  // namespace luacs::files
