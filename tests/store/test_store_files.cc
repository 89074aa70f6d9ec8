// Files in the store: put_file / load_file against a real PostgreSQL, and
// the file server finding a file that only PostgreSQL still has (after a
// restart).
#include <gtest/gtest.h>

#include "core/files/file_server.h"
#include "core/store/store.h"
#include "support/cpe_client.h"
#include "tests/store/pg_test.h"

namespace luacs::store {
namespace {

using namespace std::chrono_literals;
using test::query;
using test::scalar;

auto* const g_db = static_cast<test::TestDatabase*>(
    ::testing::AddGlobalTestEnvironment(new test::TestDatabase("store_files")));

// Every byte value, NUL first.
std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
  return s + std::string("\0tail\0", 6);
}

class StoreFilesTest : public test::StoreFixture {
 protected:
  StoreFilesTest() : StoreFixture(*g_db) {}
  void SetUp() override {
    StoreFixture::SetUp();
    ASSERT_TRUE(open().available());
  }

  bool put(StoredFile f) {
    bool done = false, ok = false;
    store_->put_file(std::move(f), done_.executor(), [&](bool k) {
      ok = k;
      done = true;
    });
    EXPECT_TRUE(done_.run_until([&] { return done; }));
    return ok;
  }
  std::pair<std::shared_ptr<const StoredFile>, bool> load(const std::string& name) {
    std::shared_ptr<const StoredFile> got;
    bool done = false, ok = false;
    store_->load_file(name, done_.executor(), [&](std::shared_ptr<const StoredFile> f, bool k) {
      got = std::move(f);
      ok = k;
      done = true;
    });
    EXPECT_TRUE(done_.run_until([&] { return done; }));
    return {got, ok};
  }
};

TEST_F(StoreFilesTest, PutThenLoadKeepsEveryByte) {
  const std::string bytes = all_bytes();
  StoredFile f{"cpe1.alter",       "text/plain",      bytes, files::sha256_hex(bytes),
               "0123456789abcdef", "00E04C-Router-A1"};
  ASSERT_TRUE(put(f));

  auto [got, ok] = load("cpe1.alter");
  ASSERT_TRUE(ok);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, f);
  EXPECT_EQ(got->bytes.size(), 262u);

  auto rows = query(conn_.get(),
                    "SELECT name, content_type, size, sha256, token, device_id, path,"
                    " length(bytes) FROM files");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"cpe1.alter", "text/plain", "262", files::sha256_hex(bytes),
                                      "0123456789abcdef", "00E04C-Router-A1", "<null>", "262"}));
}

TEST_F(StoreFilesTest, EmptyFieldsAreNullAndTheHashIsComputed) {
  ASSERT_TRUE(put(StoredFile{"manifest.json", "", "{}", "", "", ""}));
  auto rows = query(conn_.get(), "SELECT content_type, sha256, token, device_id FROM files");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"application/octet-stream", files::sha256_hex("{}"),
                                               "<null>", "<null>"}));
  auto [got, ok] = load("manifest.json");
  ASSERT_TRUE(ok && got);
  EXPECT_EQ(got->sha256, files::sha256_hex("{}"));
  EXPECT_EQ(got->token, "");
  EXPECT_EQ(got->device_id, "");

  ASSERT_TRUE(put(StoredFile{"empty.txt", "text/plain", "", "", "", ""}));
  std::tie(got, ok) = load("empty.txt");
  ASSERT_TRUE(ok && got);
  EXPECT_EQ(got->bytes, "");
}

TEST_F(StoreFilesTest, UpsertReplaces) {
  ASSERT_TRUE(put(StoredFile{"cpe1.alter", "text/plain", "v1", "", "1111111111111111", "D1"}));
  const std::string v2 = std::string("v2\0", 3);
  ASSERT_TRUE(put(StoredFile{"cpe1.alter", "text/x-routeros", v2, "", "2222222222222222", ""}));
  EXPECT_EQ(sql("SELECT count(*) FROM files"), "1");
  auto [got, ok] = load("cpe1.alter");
  ASSERT_TRUE(ok && got);
  EXPECT_EQ(*got, (StoredFile{"cpe1.alter", "text/x-routeros", v2, files::sha256_hex(v2),
                              "2222222222222222", ""}));
  EXPECT_EQ(sql("SELECT size FROM files"), "3");
}

TEST_F(StoreFilesTest, MissingAndOnDiskFilesLoadAsNone) {
  auto [got, ok] = load("nothing.alter");
  EXPECT_TRUE(ok);
  EXPECT_FALSE(got);
  // A file kept on disk (path) has no in-line bytes to load.
  query(conn_.get(),
        "INSERT INTO files (name, path, size, sha256) VALUES ('fw.npk', '/srv/fw.npk', 1, 'x')");
  std::tie(got, ok) = load("fw.npk");
  EXPECT_TRUE(ok);
  EXPECT_FALSE(got);
}

TEST_F(StoreFilesTest, AClosedStoreSaysNo) {
  store_->close();
  EXPECT_FALSE(put(StoredFile{"a.alter", "", "x", "", "", ""}));
  auto [got, ok] = load("a.alter");
  EXPECT_FALSE(ok);
  EXPECT_FALSE(got);
}

// ---- the file server with the store

files::FileServerOptions server_options() {
  files::FileServerOptions o;
  o.listen = {"127.0.0.1", 0, false};
  o.dir = "/nonexistent/luacs-files";
  o.secret = "s";
  return o;
}

luacs::test::HttpResponse get(uint16_t port, const std::string& path) {
  luacs::test::CpeClient c(port);
  if (!c.send_raw("GET " + path + " HTTP/1.1\r\nHost: files.test\r\n\r\n")) return {};
  return c.read_response();
}

TEST_F(StoreFilesTest, FileServerServesAFileOnlyPostgreSQLHas) {
  const std::string bytes = all_bytes();
  ASSERT_TRUE(put(StoredFile{"cpe9.alter", "text/plain", bytes, "", "0123456789abcdef", "D9"}));

  files::Catalog catalog;  // fresh: as after a restart
  files::FileServer server(server_options(), catalog, store_.get());
  server.start();
  EXPECT_EQ(server.path_of("cpe9.alter"), "") << "not known before it is asked for";

  luacs::test::HttpResponse r = get(server.port(), "/0123456789abcdef/cpe9.alter");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, bytes);
  EXPECT_EQ(r.header("content-type"), "text/plain");
  EXPECT_EQ(r.header("etag"), "\"" + files::sha256_hex(bytes) + "\"");
  auto f = catalog.find("cpe9.alter");
  ASSERT_TRUE(f) << "loaded into the catalog";
  EXPECT_EQ(f->device_id, "D9");
  EXPECT_EQ(server.path_of("cpe9.alter"), "/0123456789abcdef/cpe9.alter");

  EXPECT_EQ(get(server.port(), "/fedcba9876543210/cpe9.alter").status, 404) << "wrong token";
  EXPECT_EQ(get(server.port(), "/0123456789abcdef/other.alter").status, 404) << "in no place";

  // Several connections asking at once for a file still to be loaded.
  ASSERT_TRUE(put(StoredFile{"cpe10.alter", "text/plain", "ten", "", "00000000000000aa", ""}));
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      luacs::test::HttpResponse x = get(server.port(), "/00000000000000aa/cpe10.alter");
      if (x.status == 200 && x.body == "ten") ++good;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 6);
}

TEST_F(StoreFilesTest, PublishedFilesSurviveARestart) {
  std::string path;
  {
    files::Catalog catalog;
    files::FileServer server(server_options(), catalog, store_.get());
    server.start();
    path = server.publish("cpe2.alter", "", "/system reboot\n", "D2");
    EXPECT_EQ(get(server.port(), path).status, 200);
  }
  // put_file is not waited for by publish: the row arrives soon after.
  ASSERT_TRUE(test::eventually([&] { return sql("SELECT count(*) FROM files") == "1"; }));
  EXPECT_EQ(sql("SELECT token || ' ' || device_id || ' ' || content_type FROM files"),
            path.substr(1, 16) + " D2 text/plain; charset=utf-8");

  files::Catalog catalog;
  files::FileServer server(server_options(), catalog, store_.get());
  server.start();
  luacs::test::HttpResponse r = get(server.port(), path);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "/system reboot\n");
  EXPECT_EQ(r.header("content-type"), "text/plain; charset=utf-8");
}

TEST_F(StoreFilesTest, FileServerSays503WhenTheStoreCannotAnswer) {
  files::Catalog catalog;
  files::FileServer server(server_options(), catalog, store_.get());
  server.start();
  store_->close();
  luacs::test::HttpResponse r = get(server.port(), "/0123456789abcdef/cpe1.alter");
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(r.header("retry-after").empty());
}

}  // namespace
}  // namespace luacs::store
