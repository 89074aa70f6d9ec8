// The load generator (bench/loadgen) and the baseline server (bench/baseline):
// their pieces checked directly, then both binaries run for real, against
// each other and against the luacs binary, at a small scale.
#include <gtest/gtest.h>

#ifndef LUACS_LOADGEN

TEST(Loadgen, NotBuilt) {
  GTEST_SKIP() << "built without bench/ (LUACS_BENCH=OFF)";
}

#else

#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/loadgen/cr_inform.h"
#include "bench/loadgen/fleet.h"
#include "bench/loadgen/histogram.h"
#include "bench/loadgen/http_client.h"
#include "bench/loadgen/options.h"
#include "bench/loadgen/wake.h"
#include "core/auth/digest.h"
#include "core/config/config.h"
#include "core/connreq/stun.h"
#include "core/connreq/udp_request.h"
#include "core/sim/cpe.h"
#include "core/sim/datamodel.h"
#include "core/soap/reader.h"
#include "core/soap/writer.h"
#include "support/api_fixture.h"
#include "support/luacs_process.h"

using namespace luacs;
using namespace luacs::loadgen;
using namespace luacs::sim;
using namespace std::chrono_literals;

namespace {

const std::string kDataModels = std::string(LUACS_SHARED_DIR) + "/corpus/datamodels";
const std::string kTr098 = kDataModels + "/tr098-huawei-BM632w-genieacs-sim.csv";
const std::string kTr181 = kDataModels + "/tr181-tplink-EC220-G5v3-anlix-genieacs-sim.csv";

std::filesystem::path temp_dir() {
  auto dir =
      std::filesystem::temp_directory_path() / ("luacs-test-loadgen-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The decimal number right after the first `marker` in text, UINT64_MAX if none.
uint64_t number_after(const std::string& text, const std::string& marker) {
  size_t at = text.find(marker);
  if (at == std::string::npos) return UINT64_MAX;
  size_t begin = at + marker.size(), end = begin;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  if (end == begin) return UINT64_MAX;
  return std::stoull(text.substr(begin, end - begin));
}

// A socket of `type` bound to 127.0.0.1:port (0: the kernel picks), or -1.
int bound_socket(int type, uint16_t port) {
  int fd = socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

// A port nothing listens on right now (the kernel's pick for an ephemeral
// bind), for servers that are given a fixed port.
uint16_t free_port() {
  int fd = bound_socket(SOCK_STREAM, 0);
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// The base of n consecutive ports on 127.0.0.1 that are free for both TCP
// and UDP right now, for simulated devices listening on base + d. Picked
// below the ephemeral range (32768-60999 on Linux) so that no socket the
// kernel numbers itself -- luacs' own, PostgreSQL's, a resolver's -- can
// take one of them between this check and the load generator's bind.
uint16_t free_port_range(unsigned n) {
  static unsigned seed = static_cast<unsigned>(getpid()) * 7919u;
  for (int attempt = 0; attempt < 200; ++attempt) {
    seed = seed * 1103515245u + 12345u;
    const uint16_t base = static_cast<uint16_t>(20000 + (seed >> 8) % (12000 - n));
    std::vector<int> fds;
    bool ok = true;
    for (unsigned i = 0; i < n && ok; ++i) {
      for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
        const int fd = bound_socket(type, static_cast<uint16_t>(base + i));
        if (fd < 0)
          ok = false;
        else
          fds.push_back(fd);
      }
    }
    for (int fd : fds) close(fd);
    if (ok) return base;
  }
  ADD_FAILURE() << "no " << n << " consecutive free ports in 20000-31999";
  return 0;
}

// A child process with stdout and stderr going to a file.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::filesystem::path& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Waits for the log to say "listening on 127.0.0.1:PORT"; 0 on timeout.
  uint16_t wait_port(std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      uint64_t port = number_after(read_file(log_), "listening on 127.0.0.1:");
      if (port != UINT64_MAX) return static_cast<uint16_t>(port);
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        exited_ = true;
        return 0;
      }
      std::this_thread::sleep_for(20ms);
    }
    return 0;
  }
  // Exit code, or -1 after a signal or when it outlives the limit (killed).
  int wait(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!exited_) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        exited_ = true;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status_, 0);
        exited_ = true;
        return -1;
      }
      std::this_thread::sleep_for(10ms);
    }
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }
  int terminate() {
    if (!exited_) kill(pid_, SIGTERM);
    return wait(10s);
  }
  std::string log() const { return read_file(log_); }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
};

struct LoadgenRun {
  int exit_code = -1;
  std::string json;
  std::string output;
  // The first `"key": <number>` of the JSON.
  uint64_t figure(const std::string& key) const { return number_after(json, "\"" + key + "\": "); }
};

LoadgenRun run_loadgen(uint16_t port, std::vector<std::string> args, const std::string& name) {
  auto dir = temp_dir();
  auto json = dir / (name + ".json");
  std::filesystem::remove(json);
  std::vector<std::string> argv = {
      LUACS_LOADGEN,  "--url",     "http://127.0.0.1:" + std::to_string(port) + "/",
      "--datamodels", kDataModels, "--json",
      json.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  Child c(argv, dir / (name + ".out"));
  LoadgenRun r;
  r.exit_code = c.wait(30s);
  r.json = read_file(json);
  r.output = c.log();
  return r;
}

std::string write_config(const std::string& name, const std::string& text) {
  auto path = temp_dir() / name;
  std::ofstream(path) << luacs::test::with_test_defaults(text);
  return path.string();
}

// Session lines luacs logged with result=completed.
size_t completed_session_lines(const std::string& log) {
  size_t n = 0;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line))
    if (line.find(" session ") != std::string::npos &&
        line.find("result=completed") != std::string::npos)
      ++n;
  return n;
}

// The body as a T, or nullptr with a test failure saying what it was.
template <class T>
const T* as(const soap::Body& body) {
  const T* p = std::get_if<T>(&body);
  if (!p) {
    const auto* f = std::get_if<soap::Fault>(&body);
    ADD_FAILURE() << "got " << soap::method_name(body) << (f ? " " + std::to_string(f->code) : "");
  }
  return p;
}

}  // namespace

// ---- the pieces -------------------------------------------------------------

TEST(LoadgenHistogram, KeepsValuesWithinOnePercentAndOrdersPercentiles) {
  for (uint64_t v : std::initializer_list<uint64_t>{0, 1, 127, 255, 256, 1000, 123456, 987654321,
                                                    uint64_t{1} << 40}) {
    unsigned b = Histogram::bucket_of(v);
    EXPECT_LE(Histogram::bucket_low(b), v) << v;
    EXPECT_GE(Histogram::bucket_high(b), v) << v;
    EXPECT_LE(Histogram::bucket_high(b) - Histogram::bucket_low(b), v / 128) << v;
  }
  Histogram h;
  for (uint64_t v = 1; v <= 10000; ++v) h.record(v);
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 10000u);
  EXPECT_NEAR(static_cast<double>(h.percentile(50)), 5000, 50);
  EXPECT_NEAR(static_cast<double>(h.percentile(99)), 9900, 80);
  EXPECT_EQ(h.percentile(100), 10000u);
  Histogram other;
  other.record(50000);
  h.merge(other);
  EXPECT_EQ(h.max(), 50000u);
  EXPECT_EQ(h.count(), 10001u);
}

TEST(LoadgenDataModel, CsvQuotingAndBothLayouts) {
  auto rows = parse_csv("a,\"b, c\",\"say \"\"hi\"\"\"\nx,,\"\"\r\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b, c", "say \"hi\""}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"x", "", ""}));

  DataModel tr098 = DataModel::load(kTr098);
  EXPECT_EQ(tr098.root(), "InternetGatewayDevice");
  EXPECT_EQ(tr098.device_id().manufacturer, "Huawei Technologies Co., Ltd.");
  EXPECT_EQ(tr098.device_id().oui, "202BC1");
  EXPECT_EQ(tr098.device_id().product_class, "BM632w");
  std::vector<std::string> names;
  for (const auto& p : tr098.inform_parameters()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "InternetGatewayDevice.DeviceSummary",
                       "InternetGatewayDevice.DeviceInfo.SpecVersion",
                       "InternetGatewayDevice.DeviceInfo.HardwareVersion",
                       "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
                       "InternetGatewayDevice.DeviceInfo.ProvisioningCode",
                       "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
                       "InternetGatewayDevice.ManagementServer.ParameterKey",
                       "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
                       "ExternalIPAddress"}));
  EXPECT_EQ(tr098.inform_parameters()[0].value.substr(0, 27), "InternetGatewayDevice:1.1[]");
  EXPECT_EQ(tr098.inform_parameters().back().value, "172.3.89.139");

  DataModel tr181 = DataModel::load(kTr181);
  EXPECT_EQ(tr181.root(), "Device");
  EXPECT_EQ(tr181.device_id().oui, "9CA2F4");
  EXPECT_EQ(tr181.device_id().product_class, "EC220-G5");
  ASSERT_EQ(tr181.inform_parameters().size(), 6u);
  EXPECT_EQ(tr181.inform_parameters()[0].name, "Device.RootDataModelVersion");
  EXPECT_EQ(tr181.inform_parameters()[0].value, "2.12");
  EXPECT_EQ(tr181.inform_parameters()[2].value, "1.12.0 Build 220820 Rel.52419n(4252)");
  const Parameter* uptime = tr181.find("Device.DeviceInfo.UpTime");
  ASSERT_NE(uptime, nullptr);
  EXPECT_EQ(uptime->type, "unsignedInt");
}

TEST(LoadgenCpe, InformTemplateIsTheFullWriteWithSerialAndTime) {
  DataModel m = DataModel::load(kTr098);
  std::vector<soap::EventStruct> events = {{"2 PERIODIC", ""}, {"M Download", "k1"}};
  InformTemplate t(m, events);
  std::string serial = serial_for(m, 42);
  EXPECT_EQ(serial, "8KA8WA0000000042");
  EXPECT_NE(serial_for(m, 43), serial);
  // Into a reused string (the generator's sessions): the model's first six
  // characters and the index in at least ten digits, nothing of what was there.
  std::string reused = "a string longer than any serial";
  DataModel tr181 = DataModel::load(kTr181);
  for (const DataModel* model : {&m, &tr181}) {
    for (uint64_t i : {0ull, 7ull, 42ull, 123456789ull, 9999999999ull, 12345678901ull}) {
      assign_serial(reused, *model, i);
      char digits[24];
      std::snprintf(digits, sizeof digits, "%010llu", static_cast<unsigned long long>(i));
      EXPECT_EQ(reused, model->device_id().serial_number.substr(0, 6) + digits);
    }
  }
  std::string rendered;
  t.render(rendered, serial, "2026-01-02T03:04:05Z");
  EXPECT_EQ(rendered, soap::write(make_inform(m, serial, events, "2026-01-02T03:04:05Z")));

  soap::Envelope env;
  std::string err;
  ASSERT_TRUE(soap::parse(rendered, env, &err)) << err;
  const auto& in = std::get<soap::Inform>(env.body);
  EXPECT_EQ(in.device_id.serial_number, serial);
  EXPECT_EQ(in.device_id.manufacturer, "Huawei Technologies Co., Ltd.");
  EXPECT_EQ(in.events, events);
  EXPECT_EQ(in.current_time, "2026-01-02T03:04:05Z");
  EXPECT_EQ(in.parameters, m.inform_parameters());
}

TEST(LoadgenCpe, AnswersAcsRequestsFromTheDataModel) {
  DataModel m = DataModel::load(kTr181);
  CpeSession s;
  const std::string serial = serial_for(m, 7);

  // GPV: a name, a partial path, the device's own serial.
  auto body = answer_acs_request(
      m, serial,
      soap::GetParameterValues{{"Device.DeviceInfo.HardwareVersion", "Device.DeviceInfo."}}, s);
  const auto* gpvp = as<soap::GetParameterValuesResponse>(body);
  ASSERT_TRUE(gpvp);
  const auto& gpv = *gpvp;
  ASSERT_GT(gpv.parameters.size(), 5u);
  EXPECT_EQ(gpv.parameters[0],
            (soap::ParameterValue{"Device.DeviceInfo.HardwareVersion", "EC220-G5 3.0", "string"}));
  bool saw_serial = false;
  for (const auto& p : gpv.parameters) {
    EXPECT_EQ(p.name.rfind("Device.DeviceInfo.", 0), 0u) << p.name;
    if (p.name == "Device.DeviceInfo.SerialNumber") {
      EXPECT_EQ(p.value, serial);
      saw_serial = true;
    }
  }
  EXPECT_TRUE(saw_serial);
  body = answer_acs_request(m, serial, soap::GetParameterValues{{"Device.NoSuch.Thing"}}, s);
  ASSERT_TRUE(as<soap::Fault>(body));
  EXPECT_EQ(std::get<soap::Fault>(body).code, 9005u);

  // SPV: a writable parameter is applied (to this session), a read-only one is refused.
  body = answer_acs_request(
      m, serial,
      soap::SetParameterValues{{{"Device.DeviceInfo.ProvisioningCode", "ABC", "string"}}, "pk1"},
      s);
  ASSERT_TRUE(as<soap::SetParameterValuesResponse>(body));
  EXPECT_EQ(std::get<soap::SetParameterValuesResponse>(body).status, 0);
  body = answer_acs_request(m, serial,
                            soap::GetParameterValues{{"Device.DeviceInfo.ProvisioningCode",
                                                      "Device.ManagementServer.ParameterKey"}},
                            s);
  const auto* afterp = as<soap::GetParameterValuesResponse>(body);
  ASSERT_TRUE(afterp);
  const auto& after = *afterp;
  ASSERT_EQ(after.parameters.size(), 2u);
  EXPECT_EQ(after.parameters[0].value, "ABC");
  EXPECT_EQ(after.parameters[1].value, "pk1");
  body = answer_acs_request(
      m, serial,
      soap::SetParameterValues{
          {{"Device.DeviceInfo.HardwareVersion", "x", "string"}, {"Device.Nope", "y", "string"}},
          ""},
      s);
  const auto* faultp = as<soap::Fault>(body);
  ASSERT_TRUE(faultp);
  const auto& fault = *faultp;
  EXPECT_EQ(fault.code, 9003u);
  ASSERT_EQ(fault.set_parameter_values_faults.size(), 2u);
  EXPECT_EQ(fault.set_parameter_values_faults[0].code, 9008u);
  EXPECT_EQ(fault.set_parameter_values_faults[1].code, 9005u);

  // AddObject numbers after the highest instance, DeleteObject says 0.
  body = answer_acs_request(m, serial, soap::AddObject{"Device.IP.Interface.", ""}, s);
  ASSERT_TRUE(as<soap::AddObjectResponse>(body));
  uint32_t first = std::get<soap::AddObjectResponse>(body).instance_number;
  EXPECT_GT(first, 1u);
  EXPECT_EQ(m.find("Device.IP.Interface." + std::to_string(first)), nullptr);
  body = answer_acs_request(m, serial, soap::AddObject{"Device.IP.Interface.", ""}, s);
  ASSERT_TRUE(as<soap::AddObjectResponse>(body));
  EXPECT_EQ(std::get<soap::AddObjectResponse>(body).instance_number, first + 1);
  body = answer_acs_request(m, serial, soap::DeleteObject{"Device.IP.Interface.1.", ""}, s);
  ASSERT_TRUE(as<soap::DeleteObjectResponse>(body));
  EXPECT_EQ(std::get<soap::DeleteObjectResponse>(body).status, 0);

  // Download and Reboot are remembered for the next session.
  soap::Download dl;
  dl.command_key = "fw1";
  body = answer_acs_request(m, serial, dl, s);
  ASSERT_TRUE(as<soap::DownloadResponse>(body));
  EXPECT_EQ(std::get<soap::DownloadResponse>(body).status, 1);
  EXPECT_TRUE(s.download);
  EXPECT_EQ(s.download_key, "fw1");
  body = answer_acs_request(m, serial, soap::Reboot{"rb"}, s);
  EXPECT_TRUE(std::holds_alternative<soap::RebootResponse>(body));
  EXPECT_EQ(s.reboot_key, "rb");

  // GPN one level down lists objects with their dot.
  body = answer_acs_request(m, serial, soap::GetParameterNames{"Device.", true}, s);
  const auto* gpnp = as<soap::GetParameterNamesResponse>(body);
  ASSERT_TRUE(gpnp);
  const auto& gpn = *gpnp;
  bool saw_info = false;
  for (const auto& p : gpn.parameters) {
    std::string_view rest = std::string_view(p.name).substr(7);  // after "Device."
    if (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
    EXPECT_EQ(rest.find('.'), std::string_view::npos) << p.name;  // one level only
    if (p.name == "Device.DeviceInfo.") saw_info = true;
  }
  EXPECT_TRUE(saw_info);

  body = answer_acs_request(m, serial, soap::GetRPCMethods{}, s);
  ASSERT_TRUE(as<soap::GetRPCMethodsResponse>(body));
  EXPECT_FALSE(std::get<soap::GetRPCMethodsResponse>(body).methods.empty());
  body = answer_acs_request(m, serial, soap::FactoryReset{}, s);
  ASSERT_TRUE(as<soap::Fault>(body));
  EXPECT_EQ(std::get<soap::Fault>(body).code, 9000u);
}

TEST(LoadgenHttp, ResponseHeadsChunksAndCookies) {
  ResponseHead h;
  ASSERT_TRUE(parse_response_head(
      "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nSet-Cookie: session=ab; Path=/; HttpOnly\r\n"
      "Connection: close\r\n\r\n",
      h));
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.content_length, 12u);
  EXPECT_TRUE(h.close);
  EXPECT_EQ(cookie_pair(h.set_cookie), "session=ab");
  ASSERT_TRUE(parse_response_head(
      "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n"
      "WWW-Authenticate: Digest realm=\"x\", nonce=\"n\"\r\nContent-Length: 0\r\n\r\n",
      h));
  EXPECT_EQ(h.status, 401);
  EXPECT_FALSE(h.close);
  EXPECT_EQ(h.www_authenticate.substr(0, 6), "Digest");
  ASSERT_TRUE(parse_response_head("HTTP/1.0 204 No Content\r\n\r\n", h));
  EXPECT_TRUE(h.close);
  EXPECT_FALSE(has_framed_body(h));
  EXPECT_FALSE(parse_response_head("HTTX/1.1 200 OK\r\n\r\n", h));
  EXPECT_FALSE(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", h));

  std::string out;
  size_t consumed = 0;
  std::string chunked = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT";
  EXPECT_EQ(dechunk(chunked.substr(0, 10), out, &consumed), Dechunk::kIncomplete);
  out.clear();
  ASSERT_EQ(dechunk(chunked, out, &consumed), Dechunk::kDone);
  EXPECT_EQ(out, "hello world");
  EXPECT_EQ(chunked.substr(consumed), "NEXT");
  EXPECT_EQ(dechunk("zz\r\n", out, &consumed), Dechunk::kError);
}

TEST(LoadgenHttp, DigestAnswerIsAcceptedByTheLuacsAuthenticator) {
  config::Config cfg =
      config::parse("[auth]\nmode = digest\nusername = cpe\npassword = pw\n", "test.ini");
  auth::Authenticator acs(cfg);
  auto now = std::chrono::system_clock::now();
  auto challenges = acs.challenges(false, false, now);
  ASSERT_FALSE(challenges.empty());

  DigestClient cpe("cpe", "pw");
  ASSERT_TRUE(cpe.take_challenge(challenges[0], "0123456789abcdef"));
  std::string a1 = cpe.authorization("POST", "/");
  EXPECT_NE(a1.find("nc=00000001"), std::string::npos) << a1;
  EXPECT_EQ(acs.check("POST", "/", a1, false, now).verdict, auth::Verdict::kOk);
  // The same nonce again with the next nonce-count, as on a kept connection.
  std::string a2 = cpe.authorization("POST", "/");
  EXPECT_NE(a2.find("nc=00000002"), std::string::npos) << a2;
  EXPECT_EQ(acs.check("POST", "/", a2, false, now).verdict, auth::Verdict::kOk);
  // Replaying the first one is refused, and so is a wrong password.
  EXPECT_NE(acs.check("POST", "/", a1, false, now).verdict, auth::Verdict::kOk);
  DigestClient wrong("cpe", "nope");
  ASSERT_TRUE(wrong.take_challenge(challenges[0], "fedcba9876543210"));
  EXPECT_EQ(acs.check("POST", "/", wrong.authorization("POST", "/"), false, now).verdict,
            auth::Verdict::kFailed);
  EXPECT_FALSE(cpe.take_challenge("Basic realm=\"x\"", "c"));
}

TEST(LoadgenOptions, LoopbackOnlyUnlessAllowedAndEventMix) {
  EXPECT_NO_THROW(parse_url("http://127.0.0.1:7547/", false));
  EXPECT_NO_THROW(parse_url("http://[::1]:7547/acs", false));
  EXPECT_NO_THROW(parse_url("http://localhost:7547/", false));
  EXPECT_THROW(parse_url("http://10.1.2.3:7547/", false), std::invalid_argument);
  EXPECT_THROW(parse_url("http://192.0.2.1/", false), std::invalid_argument);
  EXPECT_THROW(parse_url("http://example.com/", false), std::invalid_argument);
  EXPECT_THROW(parse_url("ftp://127.0.0.1/", false), std::invalid_argument);
  EXPECT_FALSE(parse_url("http://127.0.0.1/", false).tls);
  Target https = parse_url("https://127.0.0.1/", false);
  EXPECT_TRUE(https.tls);
  EXPECT_EQ(https.port, 443);
  Target t = parse_url("http://10.1.2.3:8080/cwmp", true);
  EXPECT_EQ(t.port, 8080);
  EXPECT_EQ(t.path, "/cwmp");

  auto mix = parse_event_mix("0 BOOTSTRAP+1 BOOT:1, 2 PERIODIC:90,7 TRANSFER COMPLETE:2,x:0");
  ASSERT_EQ(mix.size(), 3u);
  EXPECT_EQ(mix[0].codes, (std::vector<std::string>{"0 BOOTSTRAP", "1 BOOT"}));
  EXPECT_EQ(mix[1].weight, 90);
  EXPECT_TRUE(mix[2].transfer_complete);
  EXPECT_FALSE(mix[1].transfer_complete);
  EXPECT_THROW(parse_event_mix(":3"), std::invalid_argument);
}

Options parse_args(std::vector<std::string> args) {
  args.insert(args.begin(), "luacs-loadgen");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

TEST(LoadgenOptions, SourceAddressesOnlyForPlainIpv4Loopback) {
  EXPECT_EQ(
      parse_args({"--url", "http://127.0.0.1:7547/", "--source-addresses", "4"}).source_addresses,
      4u);
  EXPECT_THROW(parse_args({"--url", "http://[::1]:7547/", "--source-addresses", "4"}),
               std::exception);
  EXPECT_THROW(parse_args({"--url", "https://127.0.0.1:7547/", "--source-addresses", "4"}),
               std::exception);
  EXPECT_THROW(parse_args({"--url", "http://127.0.0.1:7547/", "--source-addresses", "251"}),
               std::exception);
}

TEST(LoadgenOptions, TlsByFlagOrHttpsUrl) {
  EXPECT_FALSE(parse_args({}).tls.on);
  Options o = parse_args({"--url", "https://127.0.0.1:7548/", "--tls-resume"});
  EXPECT_TRUE(o.tls.on);
  EXPECT_TRUE(o.tls.resume);
  o = parse_args({"--tls", "--tls-ca", "/x/ca.crt", "--tls-cert-dir", "/x"});
  EXPECT_TRUE(o.tls.on);
  EXPECT_FALSE(o.target.tls);  // http:// URL, TLS by the flag
  EXPECT_EQ(o.tls.ca, "/x/ca.crt");
  EXPECT_EQ(o.tls.cert_dir, "/x");
  // TLS options without TLS are a mistake, not ignored.
  EXPECT_THROW(parse_args({"--tls-resume"}), std::invalid_argument);
  EXPECT_THROW(parse_args({"--tls-ca", "/x/ca.crt"}), std::invalid_argument);
  EXPECT_THROW(parse_args({"--cr-listen", "http", "--api", "https://127.0.0.1:1/", "--api-token",
                           "t", "--wake-rate", "1"}),
               std::invalid_argument);
}

TEST(LoadgenOptions, EachDeviceOnceAndTheRetrySchedule) {
  Options o = parse_args({});
  EXPECT_FALSE(o.each_device_once);
  EXPECT_EQ(o.busy_retry, BusyRetry::kNone);
  EXPECT_EQ(o.duration_s, 10);

  o = parse_args({"--each-device-once", "--rate", "100"});
  EXPECT_TRUE(o.each_device_once);
  EXPECT_EQ(o.busy_retry, BusyRetry::kCwmp);
  EXPECT_EQ(o.duration_s, kEachDeviceOnceLimitS);  // a hard limit, not a run length
  o = parse_args({"--each-device-once", "--busy-retry", "250", "--duration", "5"});
  EXPECT_EQ(o.busy_retry, BusyRetry::kFixed);
  EXPECT_EQ(o.busy_retry_ms, 250ms);
  EXPECT_EQ(o.duration_s, 5);
  EXPECT_EQ(parse_args({"--each-device-once", "--busy-retry", "none"}).busy_retry,
            BusyRetry::kNone);
  EXPECT_THROW(parse_args({"--busy-retry", "cwmp"}), std::invalid_argument);
  EXPECT_THROW(parse_args({"--each-device-once", "--sessions", "5"}), std::invalid_argument);
  EXPECT_THROW(parse_args({"--each-device-once", "--busy-retry", "0"}), std::invalid_argument);
  EXPECT_THROW(parse_args({"--each-device-once", "--busy-retry", "soon"}), std::invalid_argument);

  // TR-069 3.2.1.1: retry n waits in [5 s * 2^(n-1), 5 s * 2^n), n capped at 10.
  o = parse_args({"--each-device-once"});
  EXPECT_EQ(retry_wait(o, 1, 0), 5s);
  EXPECT_EQ(retry_wait(o, 1, 0.999999), 9999995us);
  EXPECT_EQ(retry_wait(o, 2, 0), 10s);
  EXPECT_EQ(retry_wait(o, 9, 0), 1280s);
  EXPECT_EQ(retry_wait(o, 10, 0), 2560s);
  EXPECT_EQ(retry_wait(o, 200, 0.5), 3840s);
  o = parse_args({"--each-device-once", "--busy-retry", "20"});
  EXPECT_EQ(retry_wait(o, 1, 0), 20ms);
  EXPECT_EQ(retry_wait(o, 7, 0.5), 30ms);
}

// ---- connection requests (--cr-listen) --------------------------------------

TEST(LoadgenCr, OptionsAndUsernames) {
  Options o =
      parse_args({"--cr-listen", "both", "--cr-username", "u{i}x", "--stun", "127.0.0.1:3478",
                  "--wake-rate", "5", "--api", "http://127.0.0.1:7557", "--api-token", "t"});
  EXPECT_TRUE(o.cr.http());
  EXPECT_TRUE(o.cr.udp());
  EXPECT_EQ(cr_username(o.cr, 42), "u42x");
  EXPECT_EQ(o.cr.api.port, 7557);
  EXPECT_NO_THROW(parse_args({"--cr-listen", "udp", "--cr-username", "shared"}));
  // Device d's UDP port is --cr-udp-port + d.
  EXPECT_THROW(parse_args({"--cr-listen", "udp", "--cr-udp-port", "60000", "--devices", "6000"}),
               std::invalid_argument);
  EXPECT_NO_THROW(
      parse_args({"--cr-listen", "udp", "--cr-udp-port", "50000", "--devices", "6000"}));
  EXPECT_THROW(parse_args({"--cr-listen", "http", "--wake-rate", "5"}), std::invalid_argument);
  EXPECT_THROW(parse_args({"--wake-rate", "5", "--api", "http://127.0.0.1:1", "--api-token", "t"}),
               std::invalid_argument);
  EXPECT_THROW(parse_args({"--cr-listen", "http", "--stun", "127.0.0.1:3478"}),
               std::invalid_argument);
  Options w = parse_args({"--cr-listen", "http", "--wake-only", "--wake-rate", "5", "--api",
                          "http://127.0.0.1:1", "--api-token", "t"});
  EXPECT_TRUE(w.cr.devices_known);
  EXPECT_EQ(w.concurrency, 0u);
  EXPECT_THROW(parse_args({"--cr-listen", "http", "--wake-only", "--wake-rate", "5", "--api",
                           "http://127.0.0.1:1", "--api-token", "t", "--concurrency", "2"}),
               std::invalid_argument);
  EXPECT_EQ(path_segment("9CA2F4-EC220%2DG5-0000000001"), "9CA2F4-EC220%252DG5-0000000001");
}

TEST(LoadgenCr, InformReportsWhereTheDeviceTakesRequests) {
  DataModel m = DataModel::load(kTr181);
  CrOptions cr;
  cr.listen = CrListen::kBoth;
  cr.stun = "127.0.0.1:3478";
  CrInformTemplate t(m, {{"6 CONNECTION REQUEST", ""}}, cr);
  std::string out;
  t.render(out, {"SER1", "2026-01-01T00:00:00Z", "http://127.0.0.1:9/7", "127.0.0.1:10", "cr-7"});
  soap::Reader reader;
  soap::Envelope env;
  ASSERT_TRUE(reader.feed(out) && reader.finish(env)) << out;
  const auto* in = as<soap::Inform>(env.body);
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->device_id.serial_number, "SER1");
  EXPECT_EQ(in->events, (std::vector<soap::EventStruct>{{"6 CONNECTION REQUEST", ""}}));
  std::map<std::string, std::string> p;
  for (const auto& v : in->parameters) p[v.name] = v.value;
  const std::string ms = "Device.ManagementServer.";
  EXPECT_EQ(p[ms + "ConnectionRequestURL"], "http://127.0.0.1:9/7");
  EXPECT_EQ(p[ms + "ConnectionRequestUsername"], "cr-7");
  EXPECT_EQ(p[ms + "NATDetected"], "1");
  EXPECT_EQ(p[ms + "UDPConnectionRequestAddress"], "127.0.0.1:10");
  EXPECT_EQ(p[ms + "STUNUsername"], "cr-7");
  // The URL replaced the data model's, it was not added twice.
  size_t urls = 0;
  for (const auto& v : in->parameters) urls += v.name == ms + "ConnectionRequestURL";
  EXPECT_EQ(urls, 1u);
}

// A listener's event loop on a thread of its own until stop(), which lets
// the events already pending run first.
class ListenerLoop {
 public:
  ListenerLoop() : base_(event_base_new()) {
    if (pipe(pipe_) != 0) std::abort();
    stop_ev_ = event_new(
        base_, pipe_[0], EV_READ,
        [](evutil_socket_t, short, void* b) {
          event_base_loopexit(static_cast<event_base*>(b), nullptr);
        },
        base_);
    event_add(stop_ev_, nullptr);
  }
  ~ListenerLoop() {
    stop();
    event_free(stop_ev_);
    event_base_free(base_);
    close(pipe_[0]);
    close(pipe_[1]);
  }
  event_base* base() { return base_; }
  void start() {
    thread_ = std::thread([this] { event_base_dispatch(base_); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    EXPECT_EQ(write(pipe_[1], "x", 1), 1);
    thread_.join();
  }

 private:
  event_base* base_;
  event* stop_ev_ = nullptr;
  int pipe_[2] = {-1, -1};
  std::thread thread_;
};

// A blocking TCP client for the HTTP listener: one request, its answer head.
class CrClient {
 public:
  explicit CrClient(uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~CrClient() { close(fd_); }
  bool connected() const { return connected_; }
  // GET target with an Authorization header unless empty; the answer head
  // ("" when the connection closed first).
  std::string get(const std::string& target, const std::string& authorization = "") {
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!authorization.empty()) req += "Authorization: " + authorization + "\r\n";
    req += "\r\n";
    if (send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      return "";
    std::string head;
    char c;
    while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
      if (recv(fd_, &c, 1, 0) != 1) return "";
      head += c;
    }
    return head;
  }

 private:
  int fd_;
  bool connected_ = false;
};

int status_of(const std::string& head) {
  ResponseHead h;
  return parse_response_head(head, h) ? h.status : 0;
}

std::string challenge_of(const std::string& head) {
  ResponseHead h;
  return parse_response_head(head, h) ? std::string(h.www_authenticate) : "";
}

TEST(LoadgenCr, HttpListenerWantsTheDevicesDigestCredentials) {
  CrOptions cr;
  cr.listen = CrListen::kHttp;
  cr.username = "cr-{i}";
  cr.password = "pw";
  CrStats stats;
  std::vector<uint64_t> woken;
  ListenerLoop loop;  // the listener goes first, then the loop
  {
    CrHttpListener l(
        loop.base(), cr, 0, [](uint64_t d) { return d < 10; },
        [&](uint64_t d, bool udp) {
          EXPECT_FALSE(udp);
          woken.push_back(d);
        },
        stats);
    loop.start();
    CrClient c(l.port());
    ASSERT_TRUE(c.connected());
    std::string head = c.get("/3");
    EXPECT_EQ(status_of(head), 401) << head;
    std::string ch = challenge_of(head);
    EXPECT_NE(ch.find("qop=\"auth\""), std::string::npos) << ch;
    // Another device's username, then a wrong password: refused.
    DigestClient other("cr-4", "pw");
    ASSERT_TRUE(other.take_challenge(ch, "c1"));
    EXPECT_EQ(status_of(c.get("/3", other.authorization("GET", "/3"))), 401);
    DigestClient wrong("cr-3", "nope");
    ASSERT_TRUE(wrong.take_challenge(ch, "c2"));
    EXPECT_EQ(status_of(c.get("/3", wrong.authorization("GET", "/3"))), 401);
    // The right answer wakes device 3; the same answer again is a replay.
    DigestClient right("cr-3", "pw");
    ASSERT_TRUE(right.take_challenge(ch, "c3"));
    std::string auth = right.authorization("GET", "/3");
    EXPECT_EQ(status_of(c.get("/3", auth)), 200);
    head = c.get("/3", auth);
    EXPECT_EQ(status_of(head), 401);
    EXPECT_NE(challenge_of(head).find("stale=true"), std::string::npos) << head;
    // Not one of this listener's devices.
    CrClient d(l.port());
    EXPECT_EQ(status_of(d.get("/99")), 404);
    loop.stop();
  }
  EXPECT_EQ(woken, (std::vector<uint64_t>{3}));
  EXPECT_EQ(stats.http_ok, 1u);
  EXPECT_EQ(stats.http_auth_failed, 2u);
  EXPECT_EQ(stats.http_challenges, 2u);  // the first GET and the replay
  EXPECT_EQ(stats.http_bad, 1u);
}

TEST(LoadgenCr, UdpListenerVerifiesEachDevicesRequestsAndSendsStun) {
  CrOptions cr;
  cr.listen = CrListen::kUdp;
  cr.username = "cr-{i}";
  cr.password = "pw";
  // A stand-in STUN server.
  int stun = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(stun, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t sl = sizeof sa;
  getsockname(stun, reinterpret_cast<sockaddr*>(&sa), &sl);
  std::memcpy(&cr.stun_addr, &sa, sizeof sa);
  cr.stun_addr_len = sizeof sa;
  cr.stun = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));

  CrStats stats;
  std::vector<uint64_t> woken;
  ListenerLoop loop;
  {
    // Devices 10, 12 and 14 (local 0, 1, 2), a socket each.
    CrUdpListener l(
        loop.base(), cr, 0, 10, 2, 3,
        [&](uint64_t d, bool udp) {
          EXPECT_TRUE(udp);
          woken.push_back(d);
        },
        stats);
    EXPECT_NE(l.port(0), l.port(1));
    l.send_stun(2);
    char buf[600];
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(stun, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    ASSERT_GT(n, 0);
    auto req = connreq::stun::parse({buf, static_cast<size_t>(n)});
    ASSERT_TRUE(req.message);
    EXPECT_EQ(req.message->username, "cr-14");
    EXPECT_TRUE(req.message->connection_request_binding);
    EXPECT_EQ(ntohs(from.sin_port), l.port(2));
    std::string answer = connreq::stun::binding_success(
        req.message->transaction, *connreq::stun::address_of(reinterpret_cast<sockaddr*>(&from)),
        std::nullopt);
    loop.start();

    auto send_to = [&](size_t local, const std::string& d) {
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      to.sin_port = htons(l.port(local));
      sendto(stun, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    };
    send_to(2, answer);
    const uint64_t now = static_cast<uint64_t>(time(nullptr));
    connreq::UdpRequest r{"127.0.0.1", l.port(0), now, "100", "cr-10", "cn", ""};
    send_to(0, connreq::format_udp_request(r, "pw"));  // accepted
    send_to(0, connreq::format_udp_request(r, "pw"));  // the retransmission: replayed
    send_to(1, connreq::format_udp_request(r, "pw"));  // device 12's socket: wrong_user
    r.id = "101";
    send_to(0, connreq::format_udp_request(r, "nope"));  // bad_signature
    r.id = "102";
    r.ts = now - 100;
    send_to(0, connreq::format_udp_request(r, "pw"));  // stale
    send_to(1, "GET nonsense");                        // malformed
    // Device 12's own request, even with device 10's id: its own verifier.
    connreq::UdpRequest r12{"127.0.0.1", l.port(1), now, "100", "cr-12", "cn", ""};
    send_to(1, connreq::format_udp_request(r12, "pw"));
    loop.stop();
  }
  close(stun);
  std::sort(woken.begin(), woken.end());  // two sockets: either may be read first
  EXPECT_EQ(woken, (std::vector<uint64_t>{10, 12}));
  EXPECT_EQ(stats.stun_sent, 1u);
  EXPECT_EQ(stats.stun_answers, 1u);
  EXPECT_EQ(stats.udp, (std::map<std::string, uint64_t>{{"accepted", 2},
                                                        {"bad_signature", 1},
                                                        {"malformed", 1},
                                                        {"replayed", 1},
                                                        {"stale", 1},
                                                        {"wrong_user", 1}}));
}

// ---- the binaries -------------------------------------------------------------

TEST(Loadgen, BaselineServerAnswersWholeSessions) {
  auto dir = temp_dir();
  Child baseline({LUACS_BASELINE, "--listen", "127.0.0.1:0", "--workers", "2"},
                 dir / "baseline.log");
  uint16_t port = baseline.wait_port();
  ASSERT_NE(port, 0) << baseline.log();
  LoadgenRun r = run_loadgen(port, {"--sessions", "300", "--concurrency", "20"}, "baseline");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 300u) << r.json;
  EXPECT_EQ(r.figure("total"), 0u) << r.json;
  r = run_loadgen(port, {"--sessions", "200", "--concurrency", "10", "--keep-alive"},
                  "baseline-ka");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 200u) << r.json;
  EXPECT_EQ(r.figure("connections"), 10u) << r.json;
  // --source-addresses 3: the connections come from 127.0.0.2, .3 and .4,
  // as the sockets the generator closed (in TIME_WAIT) show.
  r = run_loadgen(port, {"--sessions", "90", "--concurrency", "3", "--source-addresses", "3"},
                  "baseline-sources");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 90u) << r.json;
  std::set<std::string> sources;
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  char want[8];
  std::snprintf(want, sizeof want, ":%04X", port);
  while (std::getline(tcp, line)) {
    std::istringstream in(line);
    std::string slot, local, remote;
    in >> slot >> local >> remote;
    if (remote.size() > 5 && remote.compare(remote.size() - 5, 5, want) == 0)
      sources.insert(local.substr(0, local.find(':')));
  }
  // /proc/net/tcp writes 127.0.0.N in host order: 0N00007F; 127.0.0.1 is
  // the runs above.
  sources.erase("0100007F");
  EXPECT_EQ(sources, (std::set<std::string>{"0200007F", "0300007F", "0400007F"}));
  EXPECT_EQ(baseline.terminate(), 0) << baseline.log();
}

TEST(Loadgen, ReportsErrorsWhenNothingListens) {
  // A port that was free a moment ago: every connect is refused.
  auto dir = temp_dir();
  Child baseline({LUACS_BASELINE, "--listen", "127.0.0.1:0", "--workers", "1"}, dir / "gone.log");
  uint16_t port = baseline.wait_port();
  ASSERT_NE(port, 0);
  baseline.terminate();
  LoadgenRun r = run_loadgen(port, {"--sessions", "500", "--concurrency", "2"}, "refused");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_GT(r.figure("connect_failed"), 0u) << r.json;
  EXPECT_EQ(r.figure("completed"), 0u) << r.json;
  // The run could not pass after the first error: it stopped there rather
  // than going through all 500 sessions (and their retries).
  EXPECT_NE(r.json.find("\"gave_up\": true"), std::string::npos) << r.json;
  EXPECT_LE(r.figure("started"), 2u) << r.json;
}

// A loopback listener and the thread that serves it. A subclass starts the
// thread at the end of its constructor and stops it first thing in its
// destructor, while the members the thread uses are still there.
class ServedSocket {
 public:
  uint16_t port = 0;

 protected:
  ServedSocket() {
    fd_ = bound_socket(SOCK_STREAM, 0);
    listen(fd_, 64);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~ServedSocket() {
    stop_serving();
    close(fd_);
  }
  void serve_in_thread(std::function<void()> serve) { thread_ = std::thread(std::move(serve)); }
  void stop_serving() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // The next connection; -1 once stopping.
  int accept_next() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c >= 0) return c;
    }
    return -1;
  }
  std::atomic<bool> stop_{false};

 private:
  int fd_ = -1;
  std::thread thread_;
};

// A scripted ACS on a plain socket: it sends the simulated CPE a fixed list
// of requests per session and records what comes back, so the CPE side of
// the RPCs (and what a Reboot or Download does to the next session) is
// checked over the wire. The first `busy_informs` Informs get a 503, as from
// an overloaded ACS.
class ScriptedAcs : public ServedSocket {
 public:
  explicit ScriptedAcs(std::vector<std::vector<soap::Body> > script, size_t busy_informs = 0)
      : script_(std::move(script)), busy_left_(busy_informs) {
    serve_in_thread([this] { serve(); });
  }
  ~ScriptedAcs() { stop_serving(); }
  std::vector<soap::Envelope> received;  // every CPE message, in order
  // By serial number: the sessions that ended with a 204, when the last 503
  // was sent, and the shortest wait from a 503 to the next Inform.
  std::map<std::string, int> completed;
  std::map<std::string, std::chrono::steady_clock::time_point> refused_at;
  std::chrono::steady_clock::duration shortest_retry = std::chrono::hours(1);

 private:
  void serve() {
    for (int c; (c = accept_next()) >= 0;) {
      std::string buf;
      while (!stop_) {
        size_t head_end = buf.find("\r\n\r\n");
        if (head_end == std::string::npos) {
          if (!fill(c, buf)) break;
          continue;
        }
        std::string head = buf.substr(0, head_end);
        for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        size_t cl_pos = head.find("content-length:");
        size_t cl = cl_pos == std::string::npos ? 0 : std::stoul(head.substr(cl_pos + 15));
        if (buf.size() < head_end + 4 + cl) {
          if (!fill(c, buf)) break;
          continue;
        }
        std::string body = buf.substr(head_end + 4, cl);
        buf.erase(0, head_end + 4 + cl);
        std::string reply = answer(body);
        if (send(c, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) break;
      }
      close(c);
    }
  }
  static bool fill(int c, std::string& buf) {
    pollfd p{c, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return false;
    char tmp[16384];
    ssize_t n = recv(c, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  }
  std::string answer(const std::string& body) {
    soap::Envelope env;
    if (!soap::parse(body, env)) return "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    received.push_back(env);
    soap::Envelope out;
    out.cwmp_ns = env.cwmp_ns;
    out.header.id = "acs-" + std::to_string(received.size());
    if (const auto* inform = std::get_if<soap::Inform>(&env.body)) {
      auto now = std::chrono::steady_clock::now();
      serial_ = inform->device_id.serial_number;
      if (auto it = refused_at.find(serial_); it != refused_at.end())
        shortest_retry = std::min(shortest_retry, now - it->second);
      if (busy_left_ > 0) {
        --busy_left_;
        refused_at[serial_] = now;
        return "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 60\r\nConnection: close\r\n"
               "Content-Length: 0\r\n\r\n";
      }
    }
    if (std::holds_alternative<soap::Inform>(env.body)) {
      queue_ = session_ < script_.size() ? script_[session_] : std::vector<soap::Body>{};
      ++session_;
      out.body = soap::InformResponse{1};
    } else if (std::holds_alternative<soap::TransferComplete>(env.body)) {
      out.body = soap::TransferCompleteResponse{};
    } else if (!queue_.empty()) {
      out.body = queue_.front();
      queue_.erase(queue_.begin());
    } else {
      ++completed[serial_];
      return "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
    }
    std::string xml = soap::write(out);
    return "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nSet-Cookie: s=" +
           std::to_string(session_) + "\r\nContent-Length: " + std::to_string(xml.size()) +
           "\r\n\r\n" + xml;
  }

  std::vector<std::vector<soap::Body> > script_;
  std::vector<soap::Body> queue_;
  size_t session_ = 0;
  size_t busy_left_ = 0;
  std::string serial_;  // of the session on the connection being served
};

TEST(Loadgen, AnswersAcsRequestsAndReportsRebootAndDownloadNextSession) {
  soap::Download dl;
  dl.command_key = "dl1";
  dl.file_type = "1 Firmware Upgrade Image";
  dl.url = "http://127.0.0.1/fw.bin";
  ScriptedAcs acs({
      {soap::GetParameterValues{{"Device.DeviceInfo.SoftwareVersion"}},
       soap::SetParameterValues{{{"Device.DeviceInfo.ProvisioningCode", "P1", "string"}}, "k"},
       soap::AddObject{"Device.IP.Interface.", ""}, soap::GetRPCMethods{}, dl, soap::Reboot{"rb1"}},
      {soap::FactoryReset{}},
      {},
  });
  LoadgenRun r = run_loadgen(acs.port,
                             {"--sessions", "3", "--concurrency", "1", "--devices", "1", "--model",
                              "tr181", "--events", "2 PERIODIC:1"},
                             "scripted");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 3u) << r.json;
  EXPECT_EQ(r.figure("transfer_completes"), 1u) << r.json;
  EXPECT_EQ(r.figure("Reboot"), 1u) << r.json;

  std::vector<std::string> names;
  for (const auto& e : acs.received) names.emplace_back(soap::method_name(e.body));
  EXPECT_EQ(names, (std::vector<std::string>{
                       "Inform", "", "GetParameterValuesResponse", "SetParameterValuesResponse",
                       "AddObjectResponse", "GetRPCMethodsResponse", "DownloadResponse",
                       "RebootResponse",                           // session 1
                       "Inform", "TransferComplete", "", "Fault",  // session 2
                       "Inform", ""}))                             // session 3
      << r.output;
  ASSERT_EQ(acs.received.size(), 14u);
  // Responses echo the ID of the request they answer.
  EXPECT_EQ(acs.received[2].header.id, "acs-2");
  const auto* gpv = as<soap::GetParameterValuesResponse>(acs.received[2].body);
  ASSERT_TRUE(gpv);
  ASSERT_EQ(gpv->parameters.size(), 1u);
  EXPECT_EQ(gpv->parameters[0].value, "1.12.0 Build 220820 Rel.52419n(4252)");
  const auto* dlr = as<soap::DownloadResponse>(acs.received[6].body);
  ASSERT_TRUE(dlr);
  EXPECT_EQ(dlr->status, 1);

  // Session 2 reports the reboot and the download it was asked for.
  const auto* in2 = as<soap::Inform>(acs.received[8].body);
  ASSERT_TRUE(in2);
  EXPECT_EQ(in2->events, (std::vector<soap::EventStruct>{{"1 BOOT", ""},
                                                         {"M Reboot", "rb1"},
                                                         {"7 TRANSFER COMPLETE", ""},
                                                         {"M Download", "dl1"}}));
  const auto* tc = as<soap::TransferComplete>(acs.received[9].body);
  ASSERT_TRUE(tc);
  EXPECT_EQ(tc->command_key, "dl1");
  EXPECT_EQ(tc->fault.code, 0u);
  const auto* fault = as<soap::Fault>(acs.received[11].body);
  ASSERT_TRUE(fault);
  EXPECT_EQ(fault->code, 9000u);
  // And session 3 is an ordinary one again, from the same device.
  const auto* in3 = as<soap::Inform>(acs.received[12].body);
  ASSERT_TRUE(in3);
  EXPECT_EQ(in3->events, (std::vector<soap::EventStruct>{{"2 PERIODIC", ""}}));
  EXPECT_EQ(in3->device_id, in2->device_id);
}

// A boot storm in small: 50 devices once each, the ACS refuses the first 20
// Informs; every refused device comes back (same serial, same event) after
// the --busy-retry wait and the run passes.
TEST(Loadgen, EachDeviceOnceRetriesRefusedDevices) {
  constexpr size_t kDevices = 50, kRefused = 20;
  ScriptedAcs acs({}, kRefused);
  LoadgenRun r = run_loadgen(acs.port,
                             {"--each-device-once", "--devices", std::to_string(kDevices),
                              "--busy-retry", "20", "--rate", "500", "--events", "0 BOOTSTRAP:1"},
                             "each-once");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("devices_done"), kDevices) << r.json;
  EXPECT_EQ(r.figure("devices_not_done"), 0u) << r.json;
  EXPECT_EQ(r.figure("retries"), kRefused) << r.json;
  EXPECT_EQ(r.figure("busy_503"), kRefused) << r.json;
  EXPECT_EQ(r.figure("completed"), kDevices) << r.json;
  EXPECT_EQ(r.figure("started"), kDevices + kRefused) << r.json;
  EXPECT_EQ(r.json.find("\"drain_s\": null"), std::string::npos) << r.json;

  // Each device completed exactly once, every Inform was its 0 BOOTSTRAP.
  EXPECT_EQ(acs.completed.size(), kDevices);
  for (const auto& [serial, n] : acs.completed) EXPECT_EQ(n, 1) << serial;
  size_t informs = 0;
  for (const auto& e : acs.received) {
    const auto* in = std::get_if<soap::Inform>(&e.body);
    if (!in) continue;
    ++informs;
    EXPECT_EQ(in->events, (std::vector<soap::EventStruct>{{"0 BOOTSTRAP", ""}}));
  }
  EXPECT_EQ(informs, kDevices + kRefused);
  // A retry may be refused again (it comes 20-40 ms later, while the first
  // 20 Informs take ~40 ms to arrive); every refused device got in at last.
  EXPECT_GE(acs.refused_at.size(), 1u);
  EXPECT_LE(acs.refused_at.size(), kRefused);
  for (const auto& [serial, at] : acs.refused_at) EXPECT_EQ(acs.completed.count(serial), 1u);
  EXPECT_GE(acs.shortest_retry, 20ms);  // --busy-retry 20: a wait in [20, 40) ms

  // Without retries the refused devices stay not done, and the run fails.
  ScriptedAcs strict({}, 5);
  r = run_loadgen(
      strict.port,
      {"--each-device-once", "--devices", "10", "--busy-retry", "none", "--concurrency", "2"},
      "each-once-none");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.figure("devices_done"), 5u) << r.json;
  EXPECT_EQ(r.figure("devices_not_done"), 5u) << r.json;
  EXPECT_EQ(r.figure("retries"), 0u) << r.json;
  EXPECT_EQ(strict.completed.size(), 5u);
}

// A raw ACS for the generator's HTTP client: every Inform answered with an
// InformResponse framed as `framing` says, in pieces (the generator reads
// partial responses), every empty POST with a 204. One connection at a
// time: the generator runs with --concurrency 1.
class FramingAcs : public ServedSocket {
 public:
  enum class Framing {
    kChunkedAfterContinue,  // 100 Continue, then a chunked 200
    kUntilEof,              // a 200 without length, ended by the close
    kSilent,                // never answers
    kDropReused,            // closes a kept-alive connection at its next Inform
    kLarge,                 // 256 KiB of white space after the envelope
  };
  explicit FramingAcs(Framing framing) : framing_(framing) {
    serve_in_thread([this] { serve(); });
  }
  ~FramingAcs() { stop_serving(); }
  std::atomic<uint64_t> bytes_sent{0}, requests{0}, connections{0};

 private:
  void serve() {
    for (int c; (c = accept_next()) >= 0;) {
      ++connections;
      std::string buf, body;
      for (int sessions = 0; !stop_ && read_request(c, buf, body);) {
        ++requests;
        if (framing_ == Framing::kSilent) continue;
        if (body.empty()) {
          ++sessions;
          put(c, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
          continue;
        }
        if (framing_ == Framing::kDropReused && sessions > 0) break;
        soap::Envelope out;
        out.header.id = "1";
        out.body = soap::InformResponse{1};
        const std::string xml = soap::write(out);
        const size_t half = xml.size() / 2;
        if (framing_ == Framing::kChunkedAfterContinue) {
          put(c, "HTTP/1.1 100 Continue\r\n\r\n");
          put(c, "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n");
          char size[32];
          std::snprintf(size, sizeof size, "%zx\r\n", half);
          put(c, size + xml.substr(0, half) + "\r\n");
          std::snprintf(size, sizeof size, "%zx; ext=1\r\n", xml.size() - half);
          put(c, size + xml.substr(half) + "\r\n0\r\n\r\n");
        } else if (framing_ == Framing::kUntilEof) {
          put(c, "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n" + xml.substr(0, half));
          put(c, xml.substr(half));
          break;
        } else {
          const std::string body =
              framing_ == Framing::kLarge ? xml + std::string(256 * 1024, ' ') : xml;
          put(c, "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body);
        }
      }
      close(c);
    }
  }
  // A piece of a response, and a pause so that it arrives on its own.
  void put(int c, const std::string& piece) {
    // Counted before it goes: the generator may read it, finish, and the
    // test compare the figures before this thread runs again.
    bytes_sent += piece.size();
    if (send(c, piece.data(), piece.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(piece.size()))
      bytes_sent -= piece.size();
    std::this_thread::sleep_for(2ms);
  }
  // The next request's body; false when the connection ends first.
  bool read_request(int c, std::string& buf, std::string& body) {
    for (;;) {
      size_t head_end = buf.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t cl = number_after(buf.substr(0, head_end), "Content-Length: ");
        if (cl == UINT64_MAX) cl = 0;
        if (buf.size() >= head_end + 4 + cl) {
          body = buf.substr(head_end + 4, cl);
          buf.erase(0, head_end + 4 + cl);
          return true;
        }
      }
      pollfd p{c, POLLIN, 0};
      if (stop_ || poll(&p, 1, 200) < 0) return false;
      if (!(p.revents & POLLIN)) continue;
      char tmp[16384];
      ssize_t n = recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
    }
  }

  Framing framing_;
};

TEST(Loadgen, ResponseFramingsTimeoutAndStaleKeepAlive) {
  using Framing = FramingAcs::Framing;
  const std::vector<std::string> common = {"--concurrency", "1", "--events", "1 BOOT:1"};
  auto args = [&](std::vector<std::string> more) {
    more.insert(more.begin(), common.begin(), common.end());
    return more;
  };
  // The run's exit status and the figures named.
  auto expect = [](const LoadgenRun& r, int exit_code,
                   const std::map<std::string, uint64_t>& figures) {
    EXPECT_EQ(r.exit_code, exit_code) << r.output;
    for (const auto& [name, value] : figures)
      EXPECT_EQ(r.figure(name), value) << name << " in " << r.json;
  };
  {
    // 100 Continue (counted as received, not as a response), then chunks
    // that come in pieces.
    FramingAcs acs(Framing::kChunkedAfterContinue);
    LoadgenRun r = run_loadgen(acs.port, args({"--sessions", "10"}), "chunked");
    expect(r, 0,
           {{"completed", 10},
            {"total", 0},
            {"requests", 20},
            {"responses", 20},
            {"connections", 10},
            {"bytes_received", acs.bytes_sent.load()}});
  }
  {
    // Responses larger than what a read takes, on a kept-alive connection.
    FramingAcs acs(Framing::kLarge);
    LoadgenRun r = run_loadgen(acs.port, args({"--sessions", "5", "--keep-alive"}), "large");
    expect(r, 0,
           {{"completed", 5},
            {"total", 0},
            {"connections", 1},
            {"bytes_received", acs.bytes_sent.load()}});
  }
  {
    // The InformResponse ends with the close: the empty POST goes on a new
    // connection.
    FramingAcs acs(Framing::kUntilEof);
    LoadgenRun r = run_loadgen(acs.port, args({"--sessions", "10"}), "until-eof");
    expect(r, 0,
           {{"completed", 10},
            {"total", 0},
            {"requests", 20},
            {"connections", 20},
            {"bytes_received", acs.bytes_sent.load()}});
    EXPECT_EQ(acs.connections.load(), 20u);
  }
  {
    // A kept-alive connection the server drops as the next session reuses
    // it: that request is sent again on a new connection, once.
    FramingAcs acs(Framing::kDropReused);
    LoadgenRun r = run_loadgen(acs.port, args({"--sessions", "10", "--keep-alive"}), "stale");
    expect(r, 0,
           {{"completed", 10},
            {"total", 0},
            {"stale_keepalive_retries", 9},
            {"connections", 10},
            {"requests", 29}});
    EXPECT_EQ(acs.requests.load(), 29u);
  }
  {
    // No answer: the session fails on --timeout, not later.
    FramingAcs acs(Framing::kSilent);
    auto t0 = std::chrono::steady_clock::now();
    LoadgenRun r = run_loadgen(acs.port, args({"--sessions", "1", "--timeout", "300"}), "silent");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    expect(r, 1, {{"timeout", 1}, {"total", 1}, {"completed", 0}});
  }
}

class LoadgenAgainstLuacs : public ::testing::Test {
 protected:
  // `cwmp_extra` goes on the listen line: more listeners, then more keys
  // of [cwmp].
  void start(const std::string& name, const std::string& extra_config = "",
             const std::string& cwmp_extra = "") {
    std::string path = write_config(
        name + ".ini", "[cwmp]\nlisten = 127.0.0.1:" + std::to_string(free_port()) + cwmp_extra +
                           "\nworkers = 2\n[log]\nlevel = info\n" + extra_config);
    luacs_ = std::make_unique<Child>(std::vector<std::string>{LUACS_BINARY, "--config", path},
                                     temp_dir() / (name + ".log"));
    port_ = luacs_->wait_port();
    ASSERT_NE(port_, 0) << luacs_->log();
  }
  // Stops luacs (so every session line is written) and returns its log.
  std::string stop() {
    EXPECT_EQ(luacs_->terminate(), 0);
    return luacs_->log();
  }
  std::unique_ptr<Child> luacs_;
  uint16_t port_ = 0;
};

TEST_F(LoadgenAgainstLuacs, NewConnectionPerSessionMixedModels) {
  ASSERT_NO_FATAL_FAILURE(start("luacs-new"));
  LoadgenRun r = run_loadgen(
      port_, {"--sessions", "300", "--concurrency", "20", "--model", "mixed", "--new-connection"},
      "luacs-new");
  std::string log = stop();
  EXPECT_EQ(r.exit_code, 0) << r.output << log.substr(0, 4000);
  EXPECT_EQ(r.figure("completed"), 300u) << r.json;
  EXPECT_EQ(r.figure("total"), 0u) << r.json;
  EXPECT_EQ(r.figure("connections"), 300u) << r.json;
  EXPECT_EQ(completed_session_lines(log), 300u) << log.substr(0, 4000);
  // Both data models reached the server.
  EXPECT_NE(log.find("202BC1-BM632w-"), std::string::npos);
  EXPECT_NE(log.find("9CA2F4-EC220%2DG5-"), std::string::npos);
}

TEST_F(LoadgenAgainstLuacs, KeepAliveWithoutCookie) {
  ASSERT_NO_FATAL_FAILURE(start("luacs-ka"));
  LoadgenRun r = run_loadgen(
      port_, {"--sessions", "200", "--concurrency", "10", "--keep-alive", "--no-cookie"},
      "luacs-ka");
  std::string log = stop();
  EXPECT_EQ(r.exit_code, 0) << r.output << log.substr(0, 4000);
  EXPECT_EQ(r.figure("completed"), 200u) << r.json;
  EXPECT_EQ(r.figure("total"), 0u) << r.json;
  EXPECT_LE(r.figure("connections"), 10u + r.figure("stale_keepalive_retries")) << r.json;
  EXPECT_EQ(completed_session_lines(log), 200u) << log.substr(0, 4000);
}

TEST_F(LoadgenAgainstLuacs, DigestAuthentication) {
  ASSERT_NO_FATAL_FAILURE(
      start("luacs-digest", "[auth]\nmode = digest\nusername = cpe\npassword = pw\n"));
  LoadgenRun r = run_loadgen(
      port_, {"--sessions", "100", "--concurrency", "10", "--username", "cpe", "--password", "pw"},
      "luacs-digest");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 100u) << r.json;
  EXPECT_EQ(r.figure("total"), 0u) << r.json;
  // New connection per session: each one is challenged once.
  EXPECT_EQ(r.figure("auth_challenges"), 100u) << r.json;

  // Kept connections reuse the nonce: far fewer challenges than sessions.
  r = run_loadgen(port_,
                  {"--sessions", "100", "--concurrency", "5", "--keep-alive", "--username", "cpe",
                   "--password", "pw"},
                  "luacs-digest-ka");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 100u) << r.json;
  EXPECT_LE(r.figure("auth_challenges"), 10u) << r.json;

  // A wrong password is an error, not a hang.
  r = run_loadgen(
      port_, {"--sessions", "3", "--concurrency", "1", "--username", "cpe", "--password", "wrong"},
      "luacs-digest-bad");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_GT(r.figure("auth_failed"), 0u) << r.json;
  std::string log = stop();
  EXPECT_EQ(completed_session_lines(log), 200u) << log.substr(0, 4000);
}

// ---- HTTPS -------------------------------------------------------------------

// Throw-away CAs from scripts/dev-ca, made once for the file: "one" signs
// the server's certificates and the devices', "other" is a CA the server
// is not known to.
std::filesystem::path dev_ca(const std::string& name) {
  auto dir = temp_dir() / ("ca-" + name);
  if (!std::filesystem::exists(dir / "ca.crt")) {
    std::string cmd =
        std::string(LUACS_SOURCE_DIR) + "/scripts/dev-ca " + dir.string() + " >/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  return dir;
}

// luacs with an http:// and an https:// listener (ECDSA and RSA
// certificates of CA "one") and the options for a load generator run
// against the https:// one.
class LoadgenAgainstLuacsHttps : public LoadgenAgainstLuacs {
 protected:
  void start_https(const std::string& name, const std::string& cwmp_keys = "") {
    ca_ = dev_ca("one");
    tls_port_ = free_port();
    const std::string d = ca_.string();
    ASSERT_NO_FATAL_FAILURE(start(name, "",
                                  ", https://127.0.0.1:" + std::to_string(tls_port_) +
                                      "\ntls_cert = " + d + "/server-ecdsa.crt, " + d +
                                      "/server-rsa.crt\ntls_key = " + d + "/server-ecdsa.key, " +
                                      d + "/server-rsa.key" + cwmp_keys));
  }
  std::vector<std::string> https(std::vector<std::string> args) const {
    std::vector<std::string> all = {"--url", "https://127.0.0.1:" + std::to_string(tls_port_) + "/",
                                    "--tls-ca", (ca_ / "ca.crt").string()};
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }
  std::filesystem::path ca_;
  uint16_t tls_port_ = 0;
};

TEST_F(LoadgenAgainstLuacsHttps, FullHandshakesResumptionAndKeepAlive) {
  ASSERT_NO_FATAL_FAILURE(start_https("luacs-https"));
  // A full handshake per session.
  LoadgenRun r = run_loadgen(
      port_, https({"--sessions", "60", "--concurrency", "4", "--new-connection"}), "https-full");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 60u) << r.json;
  EXPECT_EQ(r.figure("total"), 0u) << r.json;
  EXPECT_EQ(r.figure("tls_handshakes"), 60u) << r.json;
  EXPECT_EQ(r.figure("tls_resumed"), 0u) << r.json;
  EXPECT_EQ(r.figure("tls_handshake_failures"), 0u) << r.json;
  EXPECT_NE(r.json.find("\"tls_server_keys\": {\"EC\": 60}"), std::string::npos) << r.json;

  // RSA signature algorithms only: luacs sends its RSA certificate.
  r = run_loadgen(port_,
                  https({"--sessions", "10", "--concurrency", "2", "--tls-sigalgs",
                         "RSA-PSS+SHA256:RSA+SHA256"}),
                  "https-rsa");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 10u) << r.json;
  EXPECT_NE(r.json.find("\"tls_server_keys\": {\"RSA\": 10}"), std::string::npos) << r.json;

  // Each slot resumes its previous connection's session: all but the
  // first connection of each of the 4 slots.
  r = run_loadgen(
      port_, https({"--sessions", "60", "--concurrency", "4", "--new-connection", "--tls-resume"}),
      "https-resume");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 60u) << r.json;
  EXPECT_EQ(r.figure("total"), 0u) << r.json;
  EXPECT_EQ(r.figure("tls_handshakes"), 60u) << r.json;
  EXPECT_GE(r.figure("tls_resumed"), 56u) << r.json;
  EXPECT_LE(r.figure("tls_resumed"), 60u) << r.json;

  // Keep-alive: one handshake per slot carries many sessions.
  r = run_loadgen(port_, https({"--sessions", "60", "--concurrency", "4", "--keep-alive"}),
                  "https-ka");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 60u) << r.json;
  EXPECT_EQ(r.figure("total"), 0u) << r.json;
  EXPECT_LE(r.figure("tls_handshakes"), 4u + r.figure("stale_keepalive_retries")) << r.json;
  EXPECT_GE(r.figure("tls_handshakes"), 1u) << r.json;

  std::string log = stop();
  EXPECT_EQ(completed_session_lines(log), 190u) << log.substr(0, 4000);
}

TEST_F(LoadgenAgainstLuacsHttps, AServerTheCaDoesNotVouchForFailsTheHandshake) {
  ASSERT_NO_FATAL_FAILURE(start_https("luacs-https-other"));
  const std::string other = (dev_ca("other") / "ca.crt").string();
  std::vector<std::string> args = https({"--sessions", "5", "--concurrency", "1"});
  args.insert(args.end(), {"--tls-ca", other});  // the last --tls-ca counts
  LoadgenRun r = run_loadgen(port_, args, "https-other-ca");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.figure("completed"), 0u) << r.json;
  EXPECT_GT(r.figure("tls_handshake_failures"), 0u) << r.json;
  EXPECT_EQ(r.figure("tls_handshakes"), 0u) << r.json;
  const auto errors = r.json.substr(r.json.find("\"errors\": {"));
  EXPECT_GT(number_after(errors, "\"tls_handshake\": "), 0u) << r.json;
  EXPECT_EQ(number_after(errors, "\"connection_reset\": "), 0u) << r.json;

  // A refused connect is not a handshake failure.
  r = run_loadgen(port_,
                  {"--url", "https://127.0.0.1:" + std::to_string(free_port()) + "/", "--sessions",
                   "2", "--concurrency", "1"},
                  "https-refused");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_GT(r.figure("connect_failed"), 0u) << r.json;
  EXPECT_EQ(r.figure("tls_handshake_failures"), 0u) << r.json;
  // Without --tls-ca nothing is verified: the same server passes.
  r = run_loadgen(port_,
                  {"--url", "https://127.0.0.1:" + std::to_string(tls_port_) + "/", "--sessions",
                   "5", "--concurrency", "1"},
                  "https-no-verify");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 5u) << r.json;
}

TEST_F(LoadgenAgainstLuacsHttps, ClientCertificatesByDeviceSerial) {
  // The devices' certificates in a folder of their own, named as
  // scripts/dev-ca makes them: device-SERIAL.{crt,key}. Devices 0..3 of
  // the tr098 model; device 3 has none.
  const auto ca = dev_ca("one");
  const auto certs = temp_dir() / "device-certs";
  std::filesystem::create_directories(certs);
  DataModel m = DataModel::load(kTr098);
  for (uint64_t i = 0; i < 3; ++i) {
    const std::string serial = serial_for(m, i);
    const std::string cmd = std::string(LUACS_SOURCE_DIR) + "/scripts/dev-ca " + ca.string() +
                            " device " + serial + " >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    for (const char* ext : {".crt", ".key"})
      std::filesystem::copy_file(ca / ("device-" + serial + ext),
                                 certs / ("device-" + serial + ext),
                                 std::filesystem::copy_options::overwrite_existing);
  }
  ASSERT_NO_FATAL_FAILURE(start_https(
      "luacs-https-mtls",
      "\ntls_client_ca = " + (ca / "ca.crt").string() + "\ntls_client_auth = optional"));
  LoadgenRun r =
      run_loadgen(port_,
                  https({"--sessions", "40", "--concurrency", "2", "--model", "tr098", "--devices",
                         "4", "--tls-cert-dir", certs.string(), "--tls-resume"}),
                  "https-mtls");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("completed"), 40u) << r.json;
  EXPECT_EQ(r.figure("total"), 0u) << r.json;
  // Round robin over the 4 devices (about 3 of every 4 connections
  // present a certificate; a slow session can shift the turns).
  EXPECT_GT(r.figure("tls_client_certs"), 0u) << r.json;
  EXPECT_LT(r.figure("tls_client_certs"), 40u) << r.json;
  // Sessions are kept per device: each resumes its own from its second
  // connection on.
  EXPECT_GE(r.figure("tls_resumed"), 36u) << r.json;
  std::string log = stop();
  EXPECT_EQ(completed_session_lines(log), 40u) << log.substr(0, 4000);
}

// A figure of the report's "cr_http" object.
uint64_t cr_http(const LoadgenRun& r, const std::string& key) {
  size_t at = r.json.find("\"cr_http\": {");
  return at == std::string::npos ? UINT64_MAX
                                 : number_after(r.json.substr(at), "\"" + key + "\": ");
}

// Connection requests end to end: luacs (with PostgreSQL and its API) wakes
// the load generator's devices over HTTP, each answers with a session
// carrying 6 CONNECTION REQUEST.
TEST(LoadgenAgainstLuacsApi, WakesDevicesOverHttp) {
  test::ApiServer api("loadgencr",
                      "[connection_request]\nallow = 127.0.0.0/8\ndeny =\nusername = acs\n"
                      "password = secret\ntimeout = 2s\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string token = api.token("bench", "operate");
  ASSERT_FALSE(token.empty());
  // Both runs are the same devices at the same URLs, so the port is fixed.
  const std::string cr_port = std::to_string(free_port_range(10));
  const std::vector<std::string> cr = {"--devices",     "10",    "--cr-listen",   "http",
                                       "--cr-port",     cr_port, "--cr-username", "acs",
                                       "--cr-password", "secret"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), cr.begin(), cr.end());
    return args;
  };

  // Every device informs once: luacs learns where each takes requests.
  LoadgenRun r =
      run_loadgen(api.cwmp_port(), with({"--each-device-once", "--concurrency", "2"}), "cr-inform");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.figure("devices_done"), 10u) << r.json;
  for (int i = 0; i < 100 && api.pg().value("SELECT count(*) FROM devices") != "10"; ++i)
    std::this_thread::sleep_for(50ms);
  ASSERT_EQ(api.pg().value("SELECT count(*) FROM devices"), "10");
  const std::string url = api.pg().value(
      "SELECT coalesce(parameters->'Device.ManagementServer.ConnectionRequestURL'->>0,"
      " parameters->'InternetGatewayDevice.ManagementServer.ConnectionRequestURL'->>0)"
      " FROM devices ORDER BY id LIMIT 1");
  EXPECT_EQ(url.rfind("http://127.0.0.1:" + cr_port + "/", 0), 0u) << url;

  // Then they are woken through the API, 10 a second for 2 s.
  r = run_loadgen(api.cwmp_port(),
                  with({"--wake-only", "--wake-rate", "10", "--duration", "2", "--api",
                        "http://127.0.0.1:" + std::to_string(api.port()), "--api-token", token}),
                  "cr-wake");
  EXPECT_EQ(r.exit_code, 0) << r.output << api.luacs().log().substr(0, 4000);
  const uint64_t wakes = r.figure("wakes_sent");
  EXPECT_GE(wakes, 10u) << r.json;
  EXPECT_LE(wakes, 20u) << r.json;
  EXPECT_EQ(r.figure("200 informed"), wakes) << r.json;
  EXPECT_EQ(r.figure("cr_received"), wakes) << r.json;
  EXPECT_EQ(r.figure("woken_completed"), wakes) << r.json;
  EXPECT_EQ(cr_http(r, "ok"), wakes) << r.json;  // each request authenticated
  // A wake asked for near the end is played after it, and not counted.
  EXPECT_EQ(r.figure("completed") + r.figure("woken_after_end"), wakes) << r.json;
  EXPECT_GT(number_after(r.json, "\"wake_to_inform\": {\"count\": "), 0u) << r.json;

  // luacs' side: every attempt answered and closed by the device's Inform
  // with 6 CONNECTION REQUEST. The attempts are written in batches, behind
  // the answers: the last one may still be on its way.
  const std::string answered =
      "SELECT count(*) FROM connection_requests WHERE outcome = 'answered'"
      " AND informed IS NOT NULL AND latency_ms >= 0";
  for (int i = 0; i < 100 && (api.pg().value(answered) != std::to_string(wakes) ||
                              api.pg().value("SELECT count(*) FROM connection_requests") !=
                                  std::to_string(wakes));
       ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(api.pg().value(answered), std::to_string(wakes));
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM connection_requests"), std::to_string(wakes));
  EXPECT_GE(api.luacs().count("6 CONNECTION REQUEST"), wakes);

  // Alongside a closed loop (as bench/connection-requests measures it): a
  // device picked while idle may be in a session by the time the request
  // comes, and is then woken once it ends. Woken sessions count as sessions.
  r = run_loadgen(
      api.cwmp_port(),
      with({"--concurrency", "3", "--duration", "2", "--devices-known", "--wake-rate", "5", "--api",
            "http://127.0.0.1:" + std::to_string(api.port()), "--api-token", token}),
      "cr-load");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const uint64_t load_wakes = r.figure("wakes_sent");
  EXPECT_GE(load_wakes, 5u) << r.json;
  EXPECT_EQ(r.figure("200 informed"), load_wakes) << r.json;
  EXPECT_EQ(r.figure("woken_completed"), load_wakes) << r.json;
  EXPECT_GT(r.figure("completed"), load_wakes) << r.json;
  EXPECT_EQ(r.figure("total"), 0u) << r.json;  // no session failed

  // Devices that were never told the fleet's password refuse luacs: the
  // wakes end in 504 and the run fails.
  r = run_loadgen(
      api.cwmp_port(),
      {"--devices", "10", "--cr-listen", "http", "--cr-port", cr_port, "--cr-username", "acs",
       "--cr-password", "other", "--wake-only", "--wake-rate", "5", "--duration", "1", "--api",
       "http://127.0.0.1:" + std::to_string(api.port()), "--api-token", token},
      "cr-wake-wrong");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_GT(r.figure("504 auth_failed"), 0u) << r.json;
  EXPECT_EQ(r.figure("woken_completed"), 0u) << r.json;
  EXPECT_GT(cr_http(r, "auth_failed"), 0u) << r.json;
}

// The same over UDP (TR-111): the devices are behind "NAT", keep a STUN
// binding with luacs' STUN server, and have credentials of their own (a
// remembered password per device, the username each reports), so the
// signed datagram names its device.
TEST(LoadgenAgainstLuacsApi, WakesDevicesOverUdp) {
  const std::string stun_port = std::to_string(free_port_range(1));
  test::ApiServer api("loadgencrudp",
                      "[connection_request]\nallow = 127.0.0.0/8\ndeny =\nusername = acs\n"
                      "password = secret\ntimeout = 2s\n[stun]\nlisten = 127.0.0.1:" +
                          stun_port + "\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string token = api.token("bench", "operate");
  const std::string cr_port = std::to_string(free_port_range(12));
  // More devices than wakes: luacs does not send a device a second UDP
  // request within its replay window (5 s).
  const std::vector<std::string> cr = {"--devices",     "12",
                                       "--cr-listen",   "udp",
                                       "--cr-udp-port", cr_port,
                                       "--cr-password", "pw",
                                       "--stun",        "127.0.0.1:" + stun_port};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), cr.begin(), cr.end());
    return args;
  };
  LoadgenRun r = run_loadgen(api.cwmp_port(), with({"--each-device-once", "--concurrency", "2"}),
                             "cr-udp-inform");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (int i = 0; i < 100 && api.pg().value("SELECT count(*) FROM devices") != "12"; ++i)
    std::this_thread::sleep_for(50ms);
  ASSERT_EQ(api.pg().value("SELECT count(*) FROM devices"), "12");
  // What a policy does on adoption: a password per device.
  api.pg().query(
      "INSERT INTO connection_request_credentials (device_id, password) SELECT id, 'pw' FROM "
      "devices");

  r = run_loadgen(api.cwmp_port(),
                  with({"--wake-only", "--wake-rate", "6", "--duration", "1.5", "--api",
                        "http://127.0.0.1:" + std::to_string(api.port()), "--api-token", token}),
                  "cr-udp-wake");
  if (r.json.find("\"wake_transports\": {}") != std::string::npos &&
      r.json.find("\"504 ") != std::string::npos)
    GTEST_SKIP() << "this luacs sends connection requests over HTTP only (no transport in its "
                    "answers)";
  EXPECT_EQ(r.exit_code, 0) << r.output << api.luacs().log().substr(0, 4000);
  const uint64_t wakes = r.figure("wakes_sent");
  EXPECT_GE(wakes, 6u) << r.json;
  EXPECT_LE(wakes, 12u) << r.json;
  EXPECT_EQ(r.figure("200 informed"), wakes) << r.json;
  EXPECT_EQ(number_after(r.json, "\"wake_transports\": {\"udp\": "), wakes) << r.json;
  EXPECT_EQ(number_after(r.json, "\"cr_udp\": {\"accepted\": "), wakes) << r.json;
  EXPECT_EQ(r.figure("woken_completed"), wakes) << r.json;
  EXPECT_GT(number_after(r.json, "\"stun\": {\"sent\": "), 0u) << r.json;
  // The attempts are written in batches, behind the answers.
  const std::string informed =
      "SELECT count(*) FROM connection_requests WHERE transport = 'udp' AND informed IS NOT NULL";
  for (int i = 0; i < 100 && api.pg().value(informed) != std::to_string(wakes); ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(api.pg().value(informed), std::to_string(wakes));
}

#endif  // LUACS_LOADGEN
