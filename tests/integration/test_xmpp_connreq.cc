// Connection requests over XMPP (TR-069 Annex K) through a real prosody.
//
// Each prosody here is a throw-away: its config, accounts, log and pid file
// live in a temp dir, it listens for clients on 127.0.0.1 and a free port
// only (s2s is disabled), and it is stopped (SIGTERM, then SIGKILL) when the
// test that started it ends -- or, should the test process die, by the
// kernel (PR_SET_PDEATHSIG).
//
// prosody 0.12 and root: prosodyctl switches to the `prosody` user when run
// as root, and prosody's mod_posix refuses to start as root ("Danger, Will
// Robinson!"), both unless the config says `run_as_root = true` (an option
// of prosody 0.12: util/startup.lua and mod_posix.lua read it). The
// throw-away config sets it, so the tests run the same as root (CI, this
// container) and as an ordinary user, for whom the option does nothing
// (checked with `runuser -u nobody -- tests/test_xmpp_connreq`). Running
// prosody as the `prosody` user instead would need the temp dir chowned and
// root, so it is not done.
//
// The simulated CPE is a second libstrophe client, cpe1@luacs.test/cwmp,
// which answers the connectionRequest IQ as Annex K says: a result when the
// username and password match, not-authorized otherwise (or nothing at all,
// when told to stay silent).
//
// XmppEndToEnd runs the luacs binary itself (with PostgreSQL) logged in to
// prosody: the API's POST /devices/{id}/connection_request reaches the
// simulated CPE by XMPP, and the CPE then opens its CWMP session.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <strophe.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/connreq/xmpp.h"
#include "core/util/log.h"
#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"

namespace luacs::connreq {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kDomain = "luacs.test";
constexpr const char* kAcsPassword = "acs-secret-1";
constexpr const char* kCpePassword = "cpe-secret-1";
constexpr const char* kCrUser = "cr-user";
constexpr const char* kCrPass = "cr-pass<&>\"'";  // escaped by libstrophe on the way

uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool port_open(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// Runs argv with stdout and stderr appended to `log`; returns the pid. The
// child dies with the test process.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execvp(argv[0], argv.data());
    static const char kMsg[] =
        "cannot run the program (is Debian's prosody installed? "
        "scripts/install-deps)\n";
    [[maybe_unused]] const auto n = write(2, kMsg, sizeof kMsg - 1);
    _exit(127);
  }
  return pid;
}

int run(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = spawn(args, log);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class Prosody {
 public:
  Prosody() : port_(free_port()) {
    char tmpl[] = "/tmp/luacs-prosody-XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::create_directories(dir_ / "data");
    fs::create_directories(dir_ / "certs");  // empty: no TLS offered
    std::ofstream(config()) << "-- luacs test: a throw-away prosody (tests/integration/"
                               "test_xmpp_connreq.cc)\n"
                            << "run_as_root = true\n"
                            << "data_path = \"" << (dir_ / "data").string() << "\"\n"
                            << "pidfile = \"" << (dir_ / "prosody.pid").string() << "\"\n"
                            << "certificates = \"" << (dir_ / "certs").string() << "\"\n"
                            << "c2s_ports = { " << port_ << " }\n"
                            << "c2s_interfaces = { \"127.0.0.1\" }\n"
                            << "c2s_direct_tls_ports = { }\n"
                            << "modules_disabled = { \"s2s\" }\n"
                            << "authentication = \"internal_plain\"\n"
                            << "c2s_require_encryption = false\n"
                            << "allow_registration = false\n"
                            << "modules_enabled = { \"roster\", \"saslauth\", \"disco\", "
                               "\"ping\", \"posix\" }\n"
                            << "log = { { levels = { min = \"info\" }, to = \"file\", "
                               "filename = \""
                            << (dir_ / "prosody.log").string() << "\" } }\n"
                            << "VirtualHost \"" << kDomain << "\"\n";
    add_account("acs", kAcsPassword);
    add_account("cpe1", kCpePassword);
    start();
  }
  ~Prosody() {
    stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void start() {
    pid_ = spawn({"prosody", "--config", config(), "-F"}, (dir_ / "stdout.log").string());
    const auto until = Clock::now() + 20s;
    while (Clock::now() < until && !port_open(port_)) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(port_open(port_)) << "prosody did not start; its log:\n"
                                  << read_file(dir_ / "prosody.log")
                                  << read_file(dir_ / "stdout.log");
  }

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto until = Clock::now() + 5s;
    while (Clock::now() < until && waitpid(pid_, nullptr, WNOHANG) != pid_)
      std::this_thread::sleep_for(20ms);
    if (kill(pid_, 0) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }

  uint16_t port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_file(dir_ / "prosody.log"); }

 private:
  std::string config() const { return (dir_ / "prosody.cfg.lua").string(); }
  void add_account(const std::string& user, const std::string& password) {
    const int rc = run({"prosodyctl", "--config", config(), "register", user, kDomain, password},
                       (dir_ / "prosodyctl.log").string());
    ASSERT_EQ(rc, 0) << read_file(dir_ / "prosodyctl.log");
  }

  fs::path dir_;
  uint16_t port_;
  pid_t pid_ = -1;
};

// A device on XMPP: logs in as cpe1@luacs.test/cwmp and answers the
// connectionRequest IQ.
class SimCpe {
 public:
  struct Received {
    std::string from, username, password;
  };

  // `woken`: run on a thread of its own after each accepted request (the
  // CPE's CWMP session); `user`/`pass`: the credentials it accepts.
  SimCpe(std::string server, bool silent, std::function<void()> woken = {},
         std::string user = kCrUser, std::string pass = kCrPass)
      : server_(std::move(server)),
        silent_(silent),
        woken_(std::move(woken)),
        user_(std::move(user)),
        pass_(std::move(pass)) {
    static std::once_flag once;  // XmppClient initialises it too, with its own once_flag
    std::call_once(once, [] { xmpp_initialize(); });
    thread_ = std::thread([this] { run(); });
  }
  ~SimCpe() {
    stop_ = true;
    thread_.join();
    for (auto& t : sessions_) t.join();
  }

  bool wait_online() {
    const auto until = Clock::now() + 20s;
    while (Clock::now() < until && !online_) std::this_thread::sleep_for(20ms);
    return online_;
  }
  std::vector<Received> received() {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  void run() {
    xmpp_ctx_t* ctx = xmpp_ctx_new(nullptr, nullptr);
    xmpp_conn_t* conn = xmpp_conn_new(ctx);
    xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_DISABLE_TLS);
    xmpp_conn_set_jid(conn, "cpe1@luacs.test/cwmp");
    xmpp_conn_set_pass(conn, kCpePassword);
    xmpp_handler_add(conn, &on_iq, nullptr, "iq", "get", this);
    const auto colon = server_.find(':');
    xmpp_connect_client(conn, server_.substr(0, colon).c_str(),
                        static_cast<unsigned short>(std::stoi(server_.substr(colon + 1))), &on_conn,
                        this);
    while (!stop_) xmpp_run_once(ctx, 20);
    if (xmpp_conn_is_connected(conn)) {
      xmpp_disconnect(conn);
      for (int i = 0; i < 10 && !xmpp_conn_is_disconnected(conn); ++i) xmpp_run_once(ctx, 20);
    }
    xmpp_conn_release(conn);
    xmpp_ctx_free(ctx);
  }

  static void on_conn(xmpp_conn_t* conn, xmpp_conn_event_t event, int, xmpp_stream_error_t*,
                      void* self) {
    auto* cpe = static_cast<SimCpe*>(self);
    if (event == XMPP_CONN_CONNECT) {
      xmpp_stanza_t* presence = xmpp_presence_new(xmpp_conn_get_context(conn));
      xmpp_send(conn, presence);
      xmpp_stanza_release(presence);
      cpe->online_ = true;
    } else {
      cpe->online_ = false;
    }
  }

  static std::string child_text(xmpp_stanza_t* parent, const char* name) {
    xmpp_stanza_t* el = xmpp_stanza_get_child_by_name(parent, name);
    char* text = el ? xmpp_stanza_get_text(el) : nullptr;
    std::string out = text ? text : "";
    if (text) xmpp_free(xmpp_stanza_get_context(parent), text);
    return out;
  }

  static int on_iq(xmpp_conn_t* conn, xmpp_stanza_t* iq, void* self) {
    auto* cpe = static_cast<SimCpe*>(self);
    xmpp_stanza_t* req = xmpp_stanza_get_child_by_name_and_ns(
        iq, "connectionRequest", "urn:broadband-forum-org:cwmp:xmppConnReq-1-0");
    if (!req) return 1;
    Received r{xmpp_stanza_get_from(iq) ? xmpp_stanza_get_from(iq) : "",
               child_text(req, "username"), child_text(req, "password")};
    const bool ok = r.username == cpe->user_ && r.password == cpe->pass_;
    {
      std::lock_guard lock(cpe->mu_);
      cpe->received_.push_back(std::move(r));
    }
    if (cpe->silent_) return 1;
    xmpp_stanza_t* reply = nullptr;
    if (ok) {
      reply = xmpp_stanza_reply(iq);
      xmpp_stanza_set_type(reply, "result");
    } else {
      // Annex K.2.2: <error type="auth"><not-authorized/></error>.
      reply = xmpp_stanza_reply_error(iq, "auth", "not-authorized", nullptr);
    }
    xmpp_send(conn, reply);
    xmpp_stanza_release(reply);
    if (ok && cpe->woken_) cpe->sessions_.emplace_back(cpe->woken_);  // only this thread adds
    return 1;
  }

  std::string server_;
  bool silent_;
  std::function<void()> woken_;
  std::string user_, pass_;
  std::vector<std::thread> sessions_;  // joined after the XMPP thread
  std::atomic<bool> stop_{false};
  std::atomic<bool> online_{false};
  std::mutex mu_;
  std::vector<Received> received_;
  std::thread thread_;
};

XmppSettings settings_for(const Prosody& p, config::XmppTls tls = config::XmppTls::kOff) {
  XmppSettings s;
  s.jid = std::string("acs@") + kDomain + "/luacs";
  s.password = kAcsPassword;
  s.server = p.server();
  s.tls = tls;
  s.timeout = 1500ms;
  s.reconnect_min = 200ms;
  s.reconnect_max = 1s;
  return s;
}

bool wait_logged_in(const XmppClient& c) {
  const auto until = Clock::now() + 20s;
  while (Clock::now() < until && !c.logged_in()) std::this_thread::sleep_for(20ms);
  return c.logged_in();
}

// Sends one request and waits for its result (at most 20 s).
XmppResult request(XmppClient& c, const std::string& jid, const std::string& user = kCrUser,
                   const std::string& pass = kCrPass) {
  auto promise = std::make_shared<std::promise<XmppResult>>();
  auto future = promise->get_future();
  c.connection_request(jid, user, pass, [promise](const XmppResult& r) { promise->set_value(r); });
  if (future.wait_for(20s) != std::future_status::ready)
    return {XmppOutcome::kInvalid, "the test gave up waiting for done"};
  return future.get();
}

// One prosody and one answering CPE for the tests that need nothing else.
class XmppConnReq : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prosody_ = new Prosody();
    cpe_ = new SimCpe(prosody_->server(), false);
    ASSERT_TRUE(cpe_->wait_online()) << prosody_->log();
  }
  static void TearDownTestSuite() {
    delete cpe_;
    delete prosody_;  // stops it
  }
  static Prosody* prosody_;
  static SimCpe* cpe_;
};
Prosody* XmppConnReq::prosody_ = nullptr;
SimCpe* XmppConnReq::cpe_ = nullptr;

TEST_F(XmppConnReq, DeviceAnswersAndGetsTheCredentials) {
  XmppClient client(settings_for(*prosody_));
  ASSERT_TRUE(wait_logged_in(client)) << client.status() << prosody_->log();
  EXPECT_EQ(client.status(), "");
  const size_t before = cpe_->received().size();
  const XmppResult r = request(client, "cpe1@luacs.test/cwmp");
  EXPECT_EQ(r.outcome, XmppOutcome::kAnswered) << r.reason;
  const auto got = cpe_->received();
  ASSERT_EQ(got.size(), before + 1);
  EXPECT_EQ(got.back().username, kCrUser);
  EXPECT_EQ(got.back().password, kCrPass);  // the XML specials went through escaped and back
  EXPECT_EQ(got.back().from.rfind("acs@luacs.test/", 0), 0u) << got.back().from;
}

TEST_F(XmppConnReq, WrongCredentialsAreAuthFailed) {
  XmppClient client(settings_for(*prosody_));
  ASSERT_TRUE(wait_logged_in(client)) << client.status();
  const XmppResult r = request(client, "cpe1@luacs.test/cwmp", kCrUser, "wrong");
  EXPECT_EQ(r.outcome, XmppOutcome::kAuthFailed) << r.reason;
  EXPECT_EQ(r.reason.find("wrong"), std::string::npos);
}

TEST_F(XmppConnReq, DeviceNotOnlineIsOffline) {
  XmppClient client(settings_for(*prosody_));
  ASSERT_TRUE(wait_logged_in(client)) << client.status();
  // An account that does not exist, then a resource of cpe1 that is not
  // connected.
  XmppResult r = request(client, "cpe2@luacs.test/cwmp");
  EXPECT_EQ(r.outcome, XmppOutcome::kOffline) << r.reason;
  r = request(client, "cpe1@luacs.test/elsewhere");
  EXPECT_EQ(r.outcome, XmppOutcome::kOffline) << r.reason;
}

TEST_F(XmppConnReq, NotAJidIsInvalidAndNeverSent) {
  XmppClient client(settings_for(*prosody_));
  const size_t before = cpe_->received().size();
  EXPECT_EQ(request(client, "").outcome, XmppOutcome::kInvalid);
  EXPECT_EQ(request(client, "cpe1@luacs.test/cw mp").outcome, XmppOutcome::kInvalid);
  EXPECT_EQ(request(client, "no-at-sign.example").outcome, XmppOutcome::kInvalid);
  EXPECT_EQ(request(client, "cpe1@luacs.test/cwmp", std::string(300, 'u')).outcome,
            XmppOutcome::kInvalid);
  EXPECT_EQ(cpe_->received().size(), before);
}

TEST_F(XmppConnReq, WrongAccountPasswordIsUnavailableWithoutThePassword) {
  XmppSettings s = settings_for(*prosody_);
  s.password = "not-the-password";
  XmppClient client(std::move(s));
  const auto until = Clock::now() + 20s;
  while (Clock::now() < until && client.status().find("failed") == std::string::npos)
    std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(client.logged_in());
  EXPECT_NE(client.status().find("login"), std::string::npos) << client.status();
  const XmppResult r = request(client, "cpe1@luacs.test/cwmp");
  EXPECT_EQ(r.outcome, XmppOutcome::kUnavailable);
  EXPECT_NE(r.reason.find("not logged in"), std::string::npos) << r.reason;
  EXPECT_EQ(r.reason.find("not-the-password"), std::string::npos);
}

TEST_F(XmppConnReq, TlsRequiredWithoutTlsNeverLogsIn) {
  XmppClient client(settings_for(*prosody_, config::XmppTls::kRequired));
  const auto until = Clock::now() + 20s;
  while (Clock::now() < until && client.status().find("failed") == std::string::npos)
    std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(client.logged_in());
  EXPECT_NE(client.status().find("TLS"), std::string::npos) << client.status();
  EXPECT_EQ(request(client, "cpe1@luacs.test/cwmp").outcome, XmppOutcome::kUnavailable);
}

TEST_F(XmppConnReq, TlsOptionalLogsInWithoutTls) {
  XmppClient client(settings_for(*prosody_, config::XmppTls::kOptional));
  ASSERT_TRUE(wait_logged_in(client)) << client.status();
  EXPECT_EQ(request(client, "cpe1@luacs.test/cwmp").outcome, XmppOutcome::kAnswered);
}

// Passwords stay out of the log, even at debug level: luacs' own (a good
// and a bad one) and the device's connection request credentials.
TEST_F(XmppConnReq, NoPasswordInTheLog) {
  const std::string path = "/tmp/luacs-xmpp-log-" + std::to_string(getpid()) + ".log";
  log::set_level(log::Level::kDebug);
  log::set_file(path);
  {
    XmppClient good(settings_for(*prosody_));
    XmppSettings s = settings_for(*prosody_);
    s.password = "bad-account-pw";
    XmppClient bad(std::move(s));
    ASSERT_TRUE(wait_logged_in(good));
    EXPECT_EQ(request(good, "cpe1@luacs.test/cwmp").outcome, XmppOutcome::kAnswered);
    EXPECT_EQ(request(good, "cpe1@luacs.test/cwmp", kCrUser, "bad-cr-pw").outcome,
              XmppOutcome::kAuthFailed);
    const auto until = Clock::now() + 20s;
    while (Clock::now() < until && bad.status().find("failed") == std::string::npos)
      std::this_thread::sleep_for(20ms);
  }
  log::set_file("");
  log::set_level(log::Level::kInfo);
  const std::string text = read_file(path);
  std::remove(path.c_str());
  EXPECT_NE(text.find("logged in as acs@luacs.test"), std::string::npos) << text;
  EXPECT_NE(text.find("failed"), std::string::npos) << text;
  for (const std::string secret : {kAcsPassword, "bad-account-pw", "cr-pass", "bad-cr-pw"})
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in:\n" << text;
}

// A CPE that never answers, on a prosody of its own (it must log in as the
// same cpe1/cwmp).
TEST(XmppConnReqAlone, SilentDeviceTimesOut) {
  Prosody prosody;
  SimCpe cpe(prosody.server(), /*silent=*/true);
  ASSERT_TRUE(cpe.wait_online()) << prosody.log();
  XmppClient client(settings_for(prosody));
  ASSERT_TRUE(wait_logged_in(client)) << client.status();
  const auto start = Clock::now();
  const XmppResult r = request(client, "cpe1@luacs.test/cwmp");
  const auto took = Clock::now() - start;
  EXPECT_EQ(r.outcome, XmppOutcome::kTimedOut) << r.reason;
  EXPECT_GE(took, 1400ms);  // not before the 1.5 s timeout
  EXPECT_LT(took, 15s);
  EXPECT_EQ(cpe.received().size(), 1u);  // it got there, it just was not answered
}

TEST(XmppConnReqAlone, ReconnectsAfterTheServerRestarts) {
  Prosody prosody;
  XmppClient client(settings_for(prosody));
  ASSERT_TRUE(wait_logged_in(client)) << client.status();
  prosody.stop();
  const auto until = Clock::now() + 20s;
  while (Clock::now() < until && client.logged_in()) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(client.logged_in());
  const XmppResult down = request(client, "cpe1@luacs.test/cwmp");
  EXPECT_EQ(down.outcome, XmppOutcome::kUnavailable) << down.reason;
  while (Clock::now() < until && client.status().find("cannot connect") == std::string::npos)
    std::this_thread::sleep_for(20ms);
  EXPECT_NE(client.status().find("cannot connect to 127.0.0.1:"), std::string::npos)
      << client.status();
  prosody.start();
  ASSERT_TRUE(wait_logged_in(client)) << client.status() << prosody.log();
  SimCpe cpe(prosody.server(), false);
  ASSERT_TRUE(cpe.wait_online());
  EXPECT_EQ(request(client, "cpe1@luacs.test/cwmp").outcome, XmppOutcome::kAnswered);
}

TEST(XmppConnReqAlone, StoppingAnswersWhatIsPending) {
  Prosody prosody;
  SimCpe cpe(prosody.server(), /*silent=*/true);
  ASSERT_TRUE(cpe.wait_online());
  auto promise = std::make_shared<std::promise<XmppResult>>();
  auto future = promise->get_future();
  {
    XmppSettings s = settings_for(prosody);
    s.timeout = 60s;
    XmppClient client(std::move(s));
    ASSERT_TRUE(wait_logged_in(client));
    client.connection_request("cpe1@luacs.test/cwmp", kCrUser, kCrPass,
                              [promise](const XmppResult& r) { promise->set_value(r); });
    const auto until = Clock::now() + 10s;
    while (Clock::now() < until && cpe.received().empty()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(future.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(future.get().outcome, XmppOutcome::kUnavailable);
}

// ---- the luacs binary, end to end

// The device informs with its JID; back once the store has it.
void inform_with_jid(test::ApiServer& api, const std::string& serial, const std::string& jid) {
  test::CpeClient c(api.cwmp_port());
  const std::vector<soap::ParameterValue> params = {
      {"Device.ManagementServer.ConnReqJabberID", jid, "xsd:string"},
      {"Device.ManagementServer.ConnectionRequestURL", "http://127.0.0.1:1/cr", "xsd:string"}};
  ASSERT_EQ(c.post(test::inform_xml(serial, "E48D8C", "hAP lite", {{"1 BOOT", ""}}, params)).status,
            200);
  EXPECT_EQ(c.post("").status, 204);
  for (int i = 0; i < 250; ++i) {
    if (api.pg().value("SELECT count(*) FROM devices WHERE id = $1 AND parameters ?"
                       " 'Device.ManagementServer.ConnReqJabberID'",
                       {"E48D8C-hAP%20lite-" + serial}) == "1")
      return;
    std::this_thread::sleep_for(20ms);
  }
  ADD_FAILURE() << "the Inform of " << serial << " was not stored";
}

TEST(XmppEndToEnd, TheApiWakesTheDeviceThroughProsody) {
  Prosody prosody;
  test::ApiServer api("crxmpp", std::string("[xmpp]\njid = acs@") + kDomain +
                                    "/luacs\npassword = " + kAcsPassword +
                                    "\nserver = " + prosody.server() +
                                    "\ntls = off\n"
                                    "[connection_request]\nusername = acs\npassword = secret\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const uint16_t cwmp = api.cwmp_port();
  SimCpe cpe(
      prosody.server(), false,
      [cwmp] {
        test::CpeClient c(cwmp);
        EXPECT_EQ(
            c.post(test::inform_xml("X1", "E48D8C", "hAP lite", {{"6 CONNECTION REQUEST", ""}}))
                .status,
            200);
        EXPECT_EQ(c.post("").status, 204);
      },
      "acs", "secret");
  ASSERT_TRUE(cpe.wait_online()) << prosody.log();
  inform_with_jid(api, "X1", "cpe1@luacs.test/cwmp");
  inform_with_jid(api, "X2", "cpe2@luacs.test/cwmp");  // no such account
  const std::string op = api.token("oss", "operate");

  // luacs logs in in the background: 503 "unavailable" until it has.
  test::HttpReply r;
  const auto until = Clock::now() + 20s;
  do {
    r = api.call(op, "POST", "/devices/E48D8C-hAP%2520lite-X1/connection_request?timeout=5000");
    if (r.status == 503) std::this_thread::sleep_for(100ms);
  } while (r.status == 503 && Clock::now() < until);
  ASSERT_EQ(r.status, 200) << r.body << api.luacs().log() << prosody.log();
  EXPECT_EQ(r.json().value("transport", ""), "xmpp");
  EXPECT_EQ(r.json().value("outcome", ""), "informed");
  ASSERT_FALSE(cpe.received().empty());
  EXPECT_EQ(cpe.received().back().username, "acs");
  EXPECT_EQ(cpe.received().back().password, "secret");

  const auto offline =
      api.call(op, "POST", "/devices/E48D8C-hAP%2520lite-X2/connection_request?timeout=5000");
  EXPECT_EQ(offline.status, 504) << offline.body;
  EXPECT_EQ(offline.json().value("error", ""), "offline") << offline.body;
  EXPECT_EQ(offline.json().value("transport", ""), "xmpp");
  std::string rows;
  for (int i = 0; i < 100; ++i) {  // the answered one is closed by the Inform, written behind
    rows = api.pg().value(
        "SELECT string_agg(transport || ' ' || outcome || ' ' || (informed IS NOT NULL), ','"
        " ORDER BY id) FROM connection_requests WHERE outcome <> 'unavailable'");
    if (rows == "xmpp answered true,xmpp offline false") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(rows, "xmpp answered true,xmpp offline false");
}

}  // namespace
}  // namespace luacs::connreq
