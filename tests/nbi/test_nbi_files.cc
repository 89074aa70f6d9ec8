// PUT /files/{name}, GET /files, DELETE /files/{name} against the real
// binary: the upload streams into [files] dir, hashed, under the size cap;
// the file server then serves it; bad names, roles, scopes, a missing token
// and a client that leaves mid-upload leave nothing on disk.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/util/hex.h"
#include "support/api_fixture.h"
#include "support/temp_dir.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::ApiServer;
using test::HttpReply;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string ini_for(const TempDir& dir, const std::string& nbi = "") {
  return "[files]\ndir = " + dir.path() + "\nlisten = 127.0.0.1:0\n[nbi]\nlisten = 127.0.0.1:0\n" +
         nbi;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The body in chunked transfer coding, `piece` bytes a chunk.
std::string chunked(const std::string& body, size_t piece) {
  std::string out;
  char size[32];
  for (size_t at = 0; at < body.size(); at += piece) {
    const size_t n = std::min(piece, body.size() - at);
    std::snprintf(size, sizeof size, "%zx\r\n", n);
    out += size;
    out.append(body, at, n);
    out += "\r\n";
  }
  return out + "0\r\n\r\n";
}

HttpReply put_chunked(ApiServer& api, const std::string& token, const std::string& target,
                      const std::string& body) {
  return test::http_request(
      api.port(), "PUT", target, chunked(body, 100'000),
      {{"Authorization", "Bearer " + token}, {"Transfer-Encoding", "chunked"}});
}

std::string encode(const std::string& s) {
  std::string out;
  char hex[4];
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// The file server's port, from the startup line "... files on 127.0.0.1:<port>; ...".
uint16_t files_port(ApiServer& api) {
  const std::string log = api.luacs().log();
  const std::string marker = "files on 127.0.0.1:";
  const auto at = log.find(marker);
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::stoi(log.substr(at + marker.size())));
}

// The entry of GET /files for that name and source, or null.
nlohmann::json listed(const nlohmann::json& list, const std::string& name,
                      const std::string& source) {
  for (const auto& f : list.at("files"))
    if (f.value("name", "") == name && f.value("source", "") == source) return f;
  return nullptr;
}

}  // namespace

TEST(ApiFiles, UploadIsStreamedHashedListedServedReplacedAndDeleted) {
  TempDir dir;
  ApiServer api("nbifiles", ini_for(dir));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string admin = api.token("ops", "admin");
  const uint16_t fport = files_port(api);
  ASSERT_NE(fport, 0) << api.luacs().log();

  // Content-Length, with metadata.
  const std::string v1 = random_bytes(3 << 20, 1);
  const auto up =
      api.call(admin, "PUT", "/files/fw-1.bin?oui=00AABB&product_class=HG8245&version=2.1", v1,
               {{"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(up.status, 201) << up.body;
  const auto j = up.json();
  EXPECT_EQ(j.value("name", ""), "fw-1.bin");
  EXPECT_EQ(j.value("size", 0), v1.size());
  EXPECT_EQ(j.value("sha256", ""), util::sha256_hex(v1));
  EXPECT_EQ(j.value("oui", ""), "00AABB");
  EXPECT_EQ(j.value("product_class", ""), "HG8245");
  EXPECT_EQ(j.value("version", ""), "2.1");
  const std::string url = j.value("url", "");
  // "/<16 hex token>/fw-1.bin"
  ASSERT_EQ(url.size(), 1 + 16 + 9u) << up.body;
  EXPECT_EQ(url.find_first_not_of("0123456789abcdef", 1), 17u) << url;
  EXPECT_EQ(url.substr(17), "/fw-1.bin") << url;
  EXPECT_EQ(dir.names(), std::vector<std::string>{"fw-1.bin"});  // no temporary file left
  EXPECT_EQ(read_file(dir.path() + "/fw-1.bin"), v1);
  EXPECT_EQ(api.pg().value("SELECT sha256 FROM file_meta WHERE name = 'fw-1.bin'"),
            util::sha256_hex(v1));

  const auto list = api.call(admin, "GET", "/files");
  ASSERT_EQ(list.status, 200) << list.body;
  const auto f = listed(list.json(), "fw-1.bin", "dir");
  ASSERT_TRUE(f.is_object()) << list.body;
  EXPECT_EQ(f.value("size", 0), v1.size());
  EXPECT_EQ(f.value("sha256", ""), util::sha256_hex(v1));
  EXPECT_EQ(f.value("oui", ""), "00AABB");
  EXPECT_EQ(f.value("version", ""), "2.1");
  EXPECT_EQ(f.value("uploaded_by", ""), "ops");
  EXPECT_EQ(f.value("url", ""), url);  // the list says where CPEs fetch it, as the upload did
  EXPECT_EQ(list.json()["truncated"].value("dir", true), false);

  // What the API uploaded is what the file server hands to CPEs.
  const auto served = test::http_request(fport, "GET", url);
  ASSERT_EQ(served.status, 200);
  EXPECT_EQ(util::sha256_hex(served.body), util::sha256_hex(v1));

  // Replaced, chunked this time and without metadata: 200, the new bytes.
  const std::string v2 = random_bytes((2 << 20) + 12345, 2);
  const auto again = put_chunked(api, admin, "/files/fw-1.bin", v2);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json().value("sha256", ""), util::sha256_hex(v2));
  EXPECT_EQ(again.json().value("size", 0), v2.size());
  EXPECT_TRUE(again.json()["oui"].is_null());
  EXPECT_EQ(dir.names(), std::vector<std::string>{"fw-1.bin"});
  EXPECT_EQ(util::sha256_hex(test::http_request(fport, "GET", url).body), util::sha256_hex(v2));
  const auto f2 = listed(api.call(admin, "GET", "/files").json(), "fw-1.bin", "dir");
  ASSERT_TRUE(f2.is_object());
  EXPECT_EQ(f2.value("sha256", ""), util::sha256_hex(v2));
  EXPECT_TRUE(f2["oui"].is_null());

  // A file changed by hand since its upload: its old sha256 is not claimed.
  { std::ofstream(dir.path() + "/fw-1.bin", std::ios::app) << "tail"; }
  const auto f3 = listed(api.call(admin, "GET", "/files").json(), "fw-1.bin", "dir");
  ASSERT_TRUE(f3.is_object());
  EXPECT_TRUE(f3["sha256"].is_null());

  const auto del = api.call(admin, "DELETE", "/files/fw-1.bin");
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(del.json().value("dir", false), true);
  EXPECT_EQ(del.json().value("store", true), false);
  EXPECT_TRUE(dir.names().empty());
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM file_meta"), "0");
  EXPECT_EQ(test::http_request(fport, "GET", url).status, 404);
  EXPECT_TRUE(listed(api.call(admin, "GET", "/files").json(), "fw-1.bin", "dir").is_null());
  EXPECT_EQ(api.call(admin, "DELETE", "/files/fw-1.bin").status, 404);
}

TEST(ApiFiles, GeneratedFilesOfTheStoreAreListedProtectedAndDeleted) {
  TempDir dir;
  ApiServer api("nbifilesgen", ini_for(dir));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string admin = api.token("ops", "admin");
  api.pg().query(
      "INSERT INTO files (name, content_type, bytes, size, sha256, token, device_id) "
      "VALUES ('dev1.alter', 'text/plain', 'abc', 3, $1, '0123456789abcdef', 'dev1')",
      {util::sha256_hex("abc")});
  const auto list = api.call(admin, "GET", "/files");
  ASSERT_EQ(list.status, 200) << list.body;
  const auto f = listed(list.json(), "dev1.alter", "store");
  ASSERT_TRUE(f.is_object()) << list.body;
  EXPECT_EQ(f.value("size", 0), 3);
  EXPECT_EQ(f.value("sha256", ""), util::sha256_hex("abc"));
  EXPECT_EQ(f.value("device_id", ""), "dev1");
  EXPECT_EQ(f.value("content_type", ""), "text/plain");
  EXPECT_EQ(f.value("url", ""), "/0123456789abcdef/dev1.alter");  // its own token
  // ... and the file server serves it there.
  const auto served = test::http_request(files_port(api), "GET", "/0123456789abcdef/dev1.alter");
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(served.body, "abc");

  // The file server would serve the generated file, not an upload of that name.
  const auto clash = api.call(admin, "PUT", "/files/dev1.alter", "x");
  EXPECT_EQ(clash.status, 409) << clash.body;
  EXPECT_TRUE(dir.names().empty());

  const auto del = api.call(admin, "DELETE", "/files/dev1.alter");
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(del.json().value("store", false), true);
  EXPECT_EQ(del.json().value("dir", true), false);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM files"), "0");
}

TEST(ApiFiles, BodiesOverTheCapAre413AndLeaveNothing) {
  TempDir dir;
  ApiServer api("nbifilescap", ini_for(dir, "max_file_bytes = 64K\n"));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string admin = api.token("ops", "admin");
  const std::string big = random_bytes(100 * 1024, 3);
  // Announced by Content-Length: refused before a body byte is read.
  const auto by_length = api.call(admin, "PUT", "/files/big.bin", big);
  EXPECT_EQ(by_length.status, 413) << by_length.body;
  EXPECT_NE(by_length.json().value("detail", "").find("max_file_bytes"), std::string::npos);
  // Chunked: refused once the count passes the cap, the partial file removed.
  const auto by_count = put_chunked(api, admin, "/files/big.bin", big);
  EXPECT_EQ(by_count.status, 413) << by_count.body;
  EXPECT_TRUE(by_count.json().is_object()) << by_count.body;  // one answer, not two
  EXPECT_TRUE(dir.names().empty());
  // Exactly the cap is fine.
  const auto fits = put_chunked(api, admin, "/files/fits.bin", big.substr(0, 64 * 1024));
  EXPECT_EQ(fits.status, 201) << fits.body;
  EXPECT_EQ(dir.names(), std::vector<std::string>{"fits.bin"});
}

TEST(ApiFiles, BadNamesAndParametersAre400) {
  TempDir dir;
  ApiServer api("nbifilesnames", ini_for(dir));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string admin = api.token("ops", "admin");
  for (const std::string& name :
       std::vector<std::string>{"..", "a%2Fb", "%2E%2E%2Fetc", "%00", "a%00b", ".hidden", "a%20b",
                                "caf%C3%A9", std::string(201, 'a')}) {
    const auto put = api.call(admin, "PUT", "/files/" + name, "data");
    EXPECT_EQ(put.status, 400) << name << ": " << put.body;
    EXPECT_TRUE(put.json().contains("detail")) << name;
    EXPECT_EQ(api.call(admin, "DELETE", "/files/" + name).status, 400) << name;
  }
  EXPECT_EQ(api.call(admin, "PUT", "/files/a?colour=red", "data").status, 400);
  EXPECT_EQ(api.call(admin, "PUT", "/files/a?oui=", "data").status, 400);
  EXPECT_EQ(api.call(admin, "PUT", "/files/a?version=" + std::string(300, 'v'), "data").status,
            400);
  EXPECT_EQ(api.call(admin, "GET", "/files?dir=/etc").status, 400);
  EXPECT_TRUE(dir.names().empty());
  EXPECT_TRUE(fs::exists(dir.path()));
}

TEST(ApiFiles, MetadataGoesToSqlAsPlainValues) {
  TempDir dir;
  ApiServer api("nbifilesinj", ini_for(dir));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string admin = api.token("ops", "admin");
  const std::string a = "' OR 1=1 --", b = "'); DROP TABLE devices; --", c = "x\"}{,NULL";
  const auto up = api.call(
      admin, "PUT",
      "/files/inj.bin?oui=" + encode(a) + "&product_class=" + encode(b) + "&version=" + encode(c),
      "data");
  ASSERT_EQ(up.status, 201) << up.body;
  EXPECT_EQ(up.json().value("oui", ""), a);
  EXPECT_EQ(up.json().value("product_class", ""), b);
  EXPECT_EQ(api.pg().value("SELECT oui FROM file_meta WHERE name = 'inj.bin'"), a);
  EXPECT_EQ(api.pg().value("SELECT product_class FROM file_meta WHERE name = 'inj.bin'"), b);
  EXPECT_EQ(api.pg().value("SELECT version FROM file_meta WHERE name = 'inj.bin'"), c);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM devices"), "0");  // the table is still there
  // A file named like an SQL keyword is a name in the listing's array too.
  ASSERT_EQ(api.call(admin, "PUT", "/files/NULL", "n").status, 201);
  const auto f = listed(api.call(admin, "GET", "/files").json(), "NULL", "dir");
  ASSERT_TRUE(f.is_object());
  EXPECT_EQ(f.value("sha256", ""), util::sha256_hex("n"));
}

TEST(ApiFiles, OnlyAFleetWideAdminTokenMayUseFilesAndNoBodyIsKeptOtherwise) {
  TempDir dir;
  ApiServer api("nbifilesauth", ini_for(dir));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string read = api.token("noc", "read");
  const std::string operate = api.token("ops", "operate");
  const std::string scoped = api.token("reseller", "admin", "acme");
  const std::string body = random_bytes(256 * 1024, 4);
  for (const auto& [token, status] :
       std::vector<std::pair<std::string, int>>{{"", 401},
                                                {read, 403},
                                                {operate, 403},
                                                {scoped, 403},
                                                {"lcs_1_" + std::string(64, 'a'), 401}}) {
    EXPECT_EQ(api.call(token, "PUT", "/files/x.bin", body).status, status) << token;
    EXPECT_EQ(put_chunked(api, token, "/files/x.bin", body).status, status) << token;
    EXPECT_EQ(api.call(token, "GET", "/files").status, status) << token;
    EXPECT_EQ(api.call(token, "DELETE", "/files/x.bin").status, status) << token;
  }
  const auto scoped_put = api.call(scoped, "PUT", "/files/x.bin", "x");
  EXPECT_NE(scoped_put.json().value("detail", "").find("scoped to tag 'acme'"), std::string::npos)
      << scoped_put.body;
  EXPECT_TRUE(dir.names().empty());  // the bodies were never written anywhere
}

TEST(ApiFiles, AClientThatLeavesMidUploadLeavesNoTemporaryFile) {
  TempDir dir;
  ApiServer api("nbifilesgone", ini_for(dir));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string admin = api.token("ops", "admin");
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(api.port());
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  const size_t total = 4 << 20;
  const std::string head =
      "PUT /files/half.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + admin +
      "\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n";
  const std::string half = head + random_bytes(total / 2, 5);
  for (size_t at = 0; at < half.size();) {
    const ssize_t n = ::send(fd, half.data() + at, half.size() - at, MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    at += static_cast<size_t>(n);
  }
  // The upload is under way: its temporary file is there ...
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    for (const auto& n : dir.names()) seen = seen || n.rfind(".upload-", 0) == 0;
    if (!seen) std::this_thread::sleep_for(25ms);
  }
  EXPECT_TRUE(seen);
  ::close(fd);
  // ... and gone with the client.
  bool empty = false;
  for (int i = 0; i < 200 && !empty; ++i) {
    empty = dir.names().empty();
    if (!empty) std::this_thread::sleep_for(25ms);
  }
  EXPECT_TRUE(empty) << ::testing::PrintToString(dir.names());
  // The name is free again for the next upload.
  EXPECT_EQ(api.call(admin, "PUT", "/files/half.bin", "done").status, 201);
}

// A files directory that fills up: the upload that does not fit is refused
// (507) and leaves nothing behind; the file it would have replaced is still
// served whole. Needs root to mount a 1 MiB tmpfs (CI runs as root).
TEST(ApiFiles, AFullDirectoryRefusesTheUploadAndServesNothingHalfWritten) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  TempDir dir;
  const std::string opts = "size=1m,mode=0755";
  if (std::system(("mount -t tmpfs -o " + opts + " luacs-full " + dir.path()).c_str()) != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here";
  struct Unmount {
    std::string path;
    ~Unmount() { std::system(("umount " + path).c_str()); }
  } unmount{dir.path()};

  ApiServer api("nbifilesfull", ini_for(dir));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string admin = api.token("ops", "admin");
  const uint16_t fport = files_port(api);
  const std::string v1 = random_bytes(600 * 1024, 7);
  const auto up = api.call(admin, "PUT", "/files/fw.bin", v1);
  ASSERT_EQ(up.status, 201) << up.body;
  const std::string url = up.json().value("url", "");
  const std::string other_url = url.substr(0, url.rfind('/')) + "/other.bin";

  // Its replacement does not fit beside it (600 KiB + 600 KiB > 1 MiB).
  const auto full = put_chunked(api, admin, "/files/fw.bin", random_bytes(600 * 1024, 8));
  EXPECT_EQ(full.status, 507) << full.body;
  EXPECT_EQ(full.json().value("error", ""), "insufficient storage") << full.body;
  EXPECT_EQ(dir.names(), std::vector<std::string>{"fw.bin"});  // no temporary file left
  const auto served = test::http_request(fport, "GET", url);
  ASSERT_EQ(served.status, 200);
  EXPECT_EQ(util::sha256_hex(served.body), util::sha256_hex(v1));
  // A new name that does not fit is not served at all.
  EXPECT_EQ(api.call(admin, "PUT", "/files/other.bin", random_bytes(600 * 1024, 9)).status, 507);
  EXPECT_EQ(test::http_request(fport, "GET", other_url).status, 404);
  EXPECT_EQ(dir.names(), std::vector<std::string>{"fw.bin"});
}
