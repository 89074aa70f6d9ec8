// Session engine scripts: whole CWMP sessions as messages in, replies out,
// with no socket in sight.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/cwmp/session.h"
#include "core/soap/reader.h"
#include "core/soap/writer.h"

using namespace luacs;
using cwmp::Clock;
using cwmp::Reply;
using cwmp::RpcOutcome;
using cwmp::Session;

namespace {

std::string corpus(const std::string& name) {
  std::ifstream f(std::string(LUACS_SHARED_DIR) + "/corpus/cwmp/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

soap::Envelope parse(std::string_view text) {
  soap::Envelope env;
  std::string err;
  EXPECT_TRUE(soap::parse(text, env, &err)) << err << "\n" << text;
  return env;
}

soap::Envelope inform(std::string oui = "00147F", std::string serial = "CP0644JTHJ4",
                      std::string ns = "urn:dslforum-org:cwmp-1-0") {
  soap::Envelope env;
  env.cwmp_ns = ns;
  env.header.id = "inform-1";
  soap::Inform in;
  in.device_id = {"THOMSON", oui, "SpeedTouch 780", serial};
  in.events = {{"2 PERIODIC", ""}};
  in.parameters = {{"InternetGatewayDevice.DeviceInfo.SoftwareVersion", "6.2.15.5", "string"}};
  env.body = in;
  return env;
}

soap::Envelope msg(soap::Body body, std::optional<std::string> id = std::nullopt) {
  soap::Envelope env;
  env.header.id = std::move(id);
  env.body = std::move(body);
  return env;
}

soap::Envelope empty_post() {
  return msg(soap::Empty{});
}

// A handler that records what it was told and queues what the test asks.
struct Script : cwmp::SessionHandler {
  std::vector<soap::Body> on_turn;  // queued (one batch) on the first ACS turn
  std::vector<RpcOutcome> outcomes;
  int informs = 0, cpe_requests = 0, turns = 0, ends = 0;
  bool hold = false;
  void on_inform(Session& s) override {
    ++informs;
    if (hold) s.set_hold_requests(true);
  }
  void on_cpe_request(Session&, const soap::Body&) override { ++cpe_requests; }
  void on_acs_turn(Session& s) override {
    if (turns++ > 0) return;
    for (auto& b : on_turn) s.queue(b, [this](const RpcOutcome& o) { outcomes.push_back(o); });
  }
  void on_end(Session&) override { ++ends; }
};

struct Engine : ::testing::Test {
  Script handler;
  Clock::time_point t0 = Clock::now();
  cwmp::SessionLimits limits;
  std::unique_ptr<Session> s;
  void SetUp() override { s = std::make_unique<Session>("cookie", limits, &handler, t0); }
  Reply send(const soap::Envelope& e) { return s->handle(e, t0); }
};

}  // namespace

TEST_F(Engine, InformThenEmptyPostEndsWith204) {
  Reply r = send(inform());
  ASSERT_EQ(r.status, 200);
  soap::Envelope out = parse(r.body);
  EXPECT_TRUE(std::holds_alternative<soap::InformResponse>(out.body));
  EXPECT_EQ(std::get<soap::InformResponse>(out.body).max_envelopes, 1u);
  EXPECT_EQ(out.header.id, "inform-1");
  EXPECT_EQ(out.cwmp_ns, "urn:dslforum-org:cwmp-1-0");
  EXPECT_FALSE(out.header.hold_requests.has_value());
  EXPECT_EQ(s->device_id(), "00147F-SpeedTouch%20780-CP0644JTHJ4");
  EXPECT_EQ(s->state(), cwmp::SessionState::kCpeTurn);

  r = send(empty_post());
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(s->ended());
  EXPECT_EQ(s->end_reason(), cwmp::EndReason::kCompleted);
  EXPECT_EQ(handler.informs, 1);
  EXPECT_EQ(handler.ends, 1);
}

TEST_F(Engine, AnswersInTheCpesNamespace) {
  Reply r = send(inform("00147F", "X1", "urn:dslforum-org:cwmp-1-2"));
  EXPECT_EQ(parse(r.body).cwmp_ns, "urn:dslforum-org:cwmp-1-2");
  EXPECT_NE(r.body.find("urn:dslforum-org:cwmp-1-2"), std::string::npos);
}

TEST_F(Engine, InformWithoutIdGetsEmptyId) {
  soap::Envelope in = inform();
  in.header.id.reset();
  Reply r = send(in);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(parse(r.body).header.id, std::string());
}

TEST_F(Engine, CpeRequestsAreAnswered) {
  send(inform());
  soap::TransferComplete tc;
  tc.command_key = "fw-1";
  Reply r = send(msg(tc, "tc-1"));
  ASSERT_EQ(r.status, 200);
  soap::Envelope out = parse(r.body);
  EXPECT_TRUE(std::holds_alternative<soap::TransferCompleteResponse>(out.body));
  EXPECT_EQ(out.header.id, "tc-1");

  r = send(msg(soap::GetRPCMethods{}, "g-1"));
  out = parse(r.body);
  ASSERT_TRUE(std::holds_alternative<soap::GetRPCMethodsResponse>(out.body));
  auto methods = std::get<soap::GetRPCMethodsResponse>(out.body).methods;
  EXPECT_NE(std::find(methods.begin(), methods.end(), "TransferComplete"), methods.end());
  EXPECT_NE(std::find(methods.begin(), methods.end(), "Inform"), methods.end());

  r = send(msg(soap::AutonomousTransferComplete{}, "a-1"));
  EXPECT_TRUE(std::holds_alternative<soap::AutonomousTransferCompleteResponse>(parse(r.body).body));
  r = send(msg(soap::RequestDownload{"2 Web Content", {}}, "r-1"));
  EXPECT_TRUE(std::holds_alternative<soap::RequestDownloadResponse>(parse(r.body).body));
  soap::Kicked k;
  k.next = "http://portal/next";
  r = send(msg(k, "k-1"));
  ASSERT_TRUE(std::holds_alternative<soap::KickedResponse>(parse(r.body).body));
  EXPECT_EQ(std::get<soap::KickedResponse>(parse(r.body).body).next_url, "http://portal/next");
  r = send(msg(soap::DUStateChangeComplete{}, "d-1"));
  EXPECT_TRUE(std::holds_alternative<soap::DUStateChangeCompleteResponse>(parse(r.body).body));
  EXPECT_EQ(handler.cpe_requests, 6);
  EXPECT_EQ(send(empty_post()).status, 204);
}

TEST_F(Engine, UnknownCpeMethodGets8000) {
  send(inform());
  Reply r = send(msg(soap::Unknown{"X_ACME_Frobnicate"}, "x-1"));
  EXPECT_EQ(r.status, 500);
  soap::Envelope out = parse(r.body);
  ASSERT_TRUE(std::holds_alternative<soap::Fault>(out.body));
  EXPECT_EQ(std::get<soap::Fault>(out.body).code, 8000u);
  EXPECT_EQ(std::get<soap::Fault>(out.body).faultcode, "Server");
  EXPECT_EQ(out.header.id, "x-1");
  EXPECT_FALSE(s->ended());  // the session goes on
  EXPECT_EQ(send(empty_post()).status, 204);
}

// The fault names the method, but only the start of a long name (a reply
// may not grow with the request), cut on a UTF-8 character boundary.
TEST_F(Engine, TheEchoedMethodNameIsCut) {
  send(inform());
  const std::string name = "X_" + std::string(61, 'a') + "\xC3\xA9" + std::string(5000, 'b');
  soap::Envelope out = parse(send(msg(soap::Unknown{name}, "x-2")).body);
  ASSERT_TRUE(std::holds_alternative<soap::Fault>(out.body));
  EXPECT_EQ(std::get<soap::Fault>(out.body).string,
            "Method not supported: X_" + std::string(61, 'a') + "...");
}

// A CPE may not keep a session going on requests of its own: the one past
// [limits] cpe_requests_per_session ends it (400, close), known or not.
TEST_F(Engine, CpeRequestsPerSessionAreCapped) {
  limits.max_cpe_requests = 3;
  s = std::make_unique<Session>("cookie", limits, &handler, t0);
  send(inform());
  EXPECT_EQ(send(msg(soap::GetRPCMethods{}, "g-1")).status, 200);
  EXPECT_EQ(send(msg(soap::Unknown{"X_ACME_Frobnicate"}, "x-1")).status, 500);
  EXPECT_EQ(send(msg(soap::GetRPCMethods{}, "g-2")).status, 200);
  const Reply r = send(msg(soap::GetRPCMethods{}, "g-3"));
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(r.close);
  EXPECT_NE(r.body.find("more than 3 CPE requests in one session"), std::string::npos) << r.body;
  EXPECT_TRUE(s->ended());
  EXPECT_EQ(s->end_reason(), cwmp::EndReason::kBadRequest);
  EXPECT_EQ(s->cpe_requests(), 3u);

  s = std::make_unique<Session>("cookie2", limits, &handler, t0);
  send(inform());
  for (int i = 0; i < 3; ++i) send(msg(soap::Unknown{"X_" + std::to_string(i)}, "u"));
  EXPECT_EQ(send(msg(soap::Unknown{"X_3"}, "u")).status, 400);
}

TEST_F(Engine, QueuedRpcRoundTrip) {
  handler.on_turn = {soap::GetParameterValues{{"Device.DeviceInfo.UpTime"}}};
  send(inform());
  Reply r = send(empty_post());
  ASSERT_EQ(r.status, 200);
  soap::Envelope out = parse(r.body);
  ASSERT_TRUE(std::holds_alternative<soap::GetParameterValues>(out.body));
  EXPECT_EQ(std::get<soap::GetParameterValues>(out.body).names,
            std::vector<std::string>{"Device.DeviceInfo.UpTime"});
  ASSERT_TRUE(out.header.id.has_value());
  EXPECT_EQ(s->state(), cwmp::SessionState::kAwaitResponse);

  soap::GetParameterValuesResponse resp;
  resp.parameters = {{"Device.DeviceInfo.UpTime", "1234", "unsignedInt"}};
  r = send(msg(resp, *out.header.id));
  EXPECT_EQ(r.status, 204);
  ASSERT_EQ(handler.outcomes.size(), 1u);
  ASSERT_TRUE(handler.outcomes[0].ok());
  auto got = std::get<soap::GetParameterValuesResponse>(handler.outcomes[0].response);
  EXPECT_EQ(got.parameters[0].value, "1234");
  ASSERT_EQ(s->rpcs().size(), 1u);
  EXPECT_EQ(s->rpcs()[0].method, "GetParameterValues");
  EXPECT_EQ(s->rpcs()[0].outcome, "ok");
}

TEST_F(Engine, CpeFaultGoesBackToTheCallerAndTheSessionGoesOn) {
  handler.on_turn = {soap::GetParameterValues{{"Device.Bogus."}}, soap::Reboot{"rb-1"}};
  send(inform());
  soap::Envelope out = parse(send(empty_post()).body);
  soap::Fault f;
  f.code = 9005;
  f.string = "Invalid parameter name";
  Reply r = send(msg(f, *out.header.id));
  ASSERT_EQ(r.status, 200);
  out = parse(r.body);
  ASSERT_TRUE(std::holds_alternative<soap::Reboot>(out.body));
  EXPECT_EQ(std::get<soap::Reboot>(out.body).command_key, "rb-1");
  r = send(msg(soap::RebootResponse{}, *out.header.id));
  EXPECT_EQ(r.status, 204);
  ASSERT_EQ(handler.outcomes.size(), 2u);
  EXPECT_EQ(handler.outcomes[0].kind, RpcOutcome::Kind::kCpeFault);
  EXPECT_EQ(handler.outcomes[0].fault.code, 9005u);
  EXPECT_TRUE(handler.outcomes[1].ok());
  EXPECT_EQ(s->rpcs()[0].outcome, "fault 9005");
}

TEST_F(Engine, SpvFaultCarriesPerParameterFaults) {
  handler.on_turn = {soap::SetParameterValues{{{"Device.Time.NTPServer1", "x", "string"}}, "k"}};
  send(inform());
  soap::Envelope out = parse(send(empty_post()).body);
  soap::Envelope fault = parse(corpus("fault-spv-9003-per-parameter-handwritten.xml"));
  fault.header.id = *out.header.id;
  EXPECT_EQ(send(fault).status, 204);
  ASSERT_EQ(handler.outcomes.size(), 1u);
  ASSERT_EQ(handler.outcomes[0].fault.set_parameter_values_faults.size(), 2u);
  EXPECT_EQ(handler.outcomes[0].fault.set_parameter_values_faults[0].code, 9007u);
}

TEST_F(Engine, MismatchedIdIsAnInvalidResponse) {
  handler.on_turn = {soap::GetParameterNames{"Device.", true}};
  send(inform());
  send(empty_post());
  Reply r = send(msg(soap::GetParameterNamesResponse{}, "not-our-id"));
  EXPECT_EQ(r.status, 204);
  ASSERT_EQ(handler.outcomes.size(), 1u);
  EXPECT_EQ(handler.outcomes[0].kind, RpcOutcome::Kind::kError);
  EXPECT_EQ(handler.outcomes[0].error().rfind("invalid_response", 0), 0u);
}

TEST_F(Engine, MissingIdInResponseIsAccepted) {
  handler.on_turn = {soap::AddObject{"Device.IP.Interface.", ""}};
  send(inform());
  send(empty_post());
  soap::AddObjectResponse a;
  a.instance_number = 3;
  EXPECT_EQ(send(msg(a)).status, 204);  // MikroTik-style: no header at all
  ASSERT_TRUE(handler.outcomes.at(0).ok());
  EXPECT_EQ(std::get<soap::AddObjectResponse>(handler.outcomes[0].response).instance_number, 3u);
}

TEST_F(Engine, WrongResponseTypeIsAnInvalidResponse) {
  handler.on_turn = {soap::GetParameterValues{{"Device."}}};
  send(inform());
  soap::Envelope out = parse(send(empty_post()).body);
  send(msg(soap::SetParameterValuesResponse{}, *out.header.id));
  ASSERT_EQ(handler.outcomes.size(), 1u);
  EXPECT_NE(handler.outcomes[0].error().find("expected GetParameterValuesResponse"),
            std::string::npos);
}

TEST_F(Engine, EmptyPostInsteadOfResponse) {
  handler.on_turn = {soap::FactoryReset{}, soap::ScheduleInform{30, "si"}};
  send(inform());
  send(empty_post());
  Reply r = send(empty_post());
  ASSERT_EQ(r.status, 200);  // the next RPC goes out
  EXPECT_TRUE(std::holds_alternative<soap::ScheduleInform>(parse(r.body).body));
  EXPECT_EQ(handler.outcomes.at(0).error().rfind("no_response", 0), 0u);
}

TEST_F(Engine, GetRpcMethodsAsAcsRequest) {
  handler.on_turn = {soap::GetRPCMethods{}};
  send(inform());
  soap::Envelope out = parse(send(empty_post()).body);
  EXPECT_TRUE(std::holds_alternative<soap::GetRPCMethods>(out.body));
  soap::GetRPCMethodsResponse resp{{"GetParameterValues", "Download"}};
  EXPECT_EQ(send(msg(resp, *out.header.id)).status, 204);
  ASSERT_TRUE(handler.outcomes.at(0).ok());
}

TEST_F(Engine, CallbacksMayQueueMoreWork) {
  struct Chain : cwmp::SessionHandler {
    int done = 0;
    void on_acs_turn(Session& s) override {
      if (done) return;
      s.queue(soap::AddObject{"Device.NAT.PortMapping.", ""}, [this, &s](const RpcOutcome& o) {
        ++done;
        auto n = std::get<soap::AddObjectResponse>(o.response).instance_number;
        s.queue(soap::DeleteObject{"Device.NAT.PortMapping." + std::to_string(n) + ".", ""},
                [this](const RpcOutcome&) { ++done; });
      });
    }
  } chain;
  Session sess("c", limits, &chain, t0);
  sess.handle(inform(), t0);
  soap::Envelope out = parse(sess.handle(empty_post(), t0).body);
  soap::AddObjectResponse a;
  a.instance_number = 7;
  out = parse(sess.handle(msg(a, *out.header.id), t0).body);
  ASSERT_TRUE(std::holds_alternative<soap::DeleteObject>(out.body));
  EXPECT_EQ(std::get<soap::DeleteObject>(out.body).object_name, "Device.NAT.PortMapping.7.");
  EXPECT_EQ(sess.handle(msg(soap::DeleteObjectResponse{}, *out.header.id), t0).status, 204);
  EXPECT_EQ(chain.done, 2);
}

TEST_F(Engine, HoldRequestsIsSentWhileTheAcsWorks) {
  handler.hold = true;
  handler.on_turn = {soap::GetParameterValues{{"Device."}}};
  soap::Envelope out = parse(send(inform()).body);
  EXPECT_EQ(out.header.hold_requests, true);
  out = parse(send(empty_post()).body);
  EXPECT_EQ(out.header.hold_requests, true);
  EXPECT_EQ(send(msg(soap::GetParameterValuesResponse{}, *out.header.id)).status, 204);
}

TEST_F(Engine, CpeRequestWhileAcsRequestPendingIsBadOrder) {
  handler.on_turn = {soap::GetParameterValues{{"Device."}}, soap::Reboot{}};
  send(inform());
  send(empty_post());
  Reply r = send(msg(soap::TransferComplete{}, "t"));
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(r.close);
  EXPECT_TRUE(s->ended());
  EXPECT_EQ(s->end_reason(), cwmp::EndReason::kBadRequest);
  ASSERT_EQ(handler.outcomes.size(), 2u);  // pending and queued both told
  EXPECT_EQ(handler.outcomes[0].kind, RpcOutcome::Kind::kError);
  EXPECT_EQ(handler.outcomes[1].kind, RpcOutcome::Kind::kError);
}

TEST_F(Engine, SecondInformIsBadState) {
  send(inform());
  Reply r = send(inform());
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("Inform inside a session"), std::string::npos);
  EXPECT_TRUE(s->ended());
}

TEST_F(Engine, SessionMustStartWithInform) {
  Reply r = send(empty_post());
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(r.close);
  r = Session("x", limits, nullptr, t0).handle(msg(soap::TransferComplete{}), t0);
  EXPECT_EQ(r.status, 400);
}

TEST_F(Engine, ResponseWithNothingPendingIsBadState) {
  send(inform());
  EXPECT_EQ(send(msg(soap::GetParameterValuesResponse{})).status, 400);
}

TEST_F(Engine, InformWithoutSerialIsRefusedWithFault) {
  Reply r = send(inform("00147F", ""));
  EXPECT_EQ(r.status, 500);
  EXPECT_TRUE(r.close);
  soap::Envelope out = parse(r.body);
  ASSERT_TRUE(std::holds_alternative<soap::Fault>(out.body));
  EXPECT_EQ(std::get<soap::Fault>(out.body).code, 8003u);
  EXPECT_EQ(s->end_reason(), cwmp::EndReason::kRefused);
  EXPECT_EQ(handler.informs, 0);
}

TEST_F(Engine, InformWithoutOuiIsRefused) {
  EXPECT_EQ(send(inform("", "SN1")).status, 500);
  EXPECT_EQ(s->end_reason(), cwmp::EndReason::kRefused);
}

TEST_F(Engine, Cwmp14VersionNegotiation) {
  soap::Envelope in = inform("00147F", "SN", "urn:dslforum-org:cwmp-1-2");
  in.header.supported_cwmp_versions = "1.0,1.1,1.2,1.3,1.4";
  soap::Envelope out = parse(send(in).body);
  EXPECT_EQ(out.header.use_cwmp_version, "1.4");
  EXPECT_EQ(s->cwmp_version(), "1.4");

  Session other("o", limits, nullptr, t0);
  in.header.supported_cwmp_versions = "2.0,3.1";
  Reply r = other.handle(in, t0);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(std::get<soap::Fault>(parse(r.body).body).code, 8006u);
}

TEST_F(Engine, IdleTimeoutTellsThePendingCaller) {
  handler.on_turn = {soap::GetParameterValues{{"Device."}}};
  send(inform());
  send(empty_post());
  EXPECT_FALSE(s->expired(t0 + std::chrono::seconds(29)));
  EXPECT_TRUE(s->expired(t0 + limits.idle_timeout));
  s->abort(cwmp::EndReason::kTimeout, "idle");
  ASSERT_EQ(handler.outcomes.size(), 1u);
  EXPECT_EQ(handler.outcomes[0].error(), "timeout");
  EXPECT_EQ(handler.ends, 1);
}

TEST_F(Engine, SessionTimeoutBoundsTheWholeSession) {
  limits.session_timeout = std::chrono::seconds(60);
  Session sess("c", limits, nullptr, t0);
  sess.handle(inform(), t0);
  // Keep it busy with CPE requests every 20 s: idle never trips, the total does.
  for (int i = 1; i <= 2; ++i)
    sess.handle(msg(soap::GetRPCMethods{}), t0 + std::chrono::seconds(20 * i));
  EXPECT_FALSE(sess.expired(t0 + std::chrono::seconds(59)));
  EXPECT_TRUE(sess.expired(t0 + std::chrono::seconds(60)));
}

TEST_F(Engine, RpcCapEndsTheSessionCleanly) {
  limits.max_rpcs = 2;
  SetUp();
  handler.on_turn = {soap::Reboot{"1"}, soap::Reboot{"2"}, soap::Reboot{"3"}};
  send(inform());
  soap::Envelope out = parse(send(empty_post()).body);
  out = parse(send(msg(soap::RebootResponse{}, *out.header.id)).body);
  Reply r = send(msg(soap::RebootResponse{}, *out.header.id));
  EXPECT_EQ(r.status, 204);
  ASSERT_EQ(handler.outcomes.size(), 3u);
  EXPECT_TRUE(handler.outcomes[1].ok());
  EXPECT_EQ(handler.outcomes[2].error().rfind("rpc_limit", 0), 0u);
}

TEST_F(Engine, QueueAfterEndCallsBackAtOnce) {
  send(inform());
  send(empty_post());
  bool called = false;
  s->queue(soap::Reboot{}, [&](const RpcOutcome& o) {
    called = true;
    EXPECT_FALSE(o.ok());
  });
  EXPECT_TRUE(called);
}

TEST_F(Engine, MalformedMessageEndsTheSession) {
  handler.on_turn = {soap::Reboot{}};
  send(inform());
  send(empty_post());
  Reply r = s->handle_malformed("not well-formed (invalid token) at line 3", t0);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("line 3"), std::string::npos);
  EXPECT_EQ(handler.outcomes.size(), 1u);
}

// Every Inform in the corpus opens a session and is answered in its dialect.
TEST(EngineCorpus, EveryCorpusInformIsAnswered) {
  int seen = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(LUACS_SHARED_DIR) + "/corpus/cwmp")) {
    std::string name = entry.path().filename().string();
    if (name.rfind("inform-", 0) != 0 || entry.path().extension() != ".xml") continue;
    SCOPED_TRACE(name);
    soap::Envelope in = parse(corpus(name));
    Session sess("c", {}, nullptr, Clock::now());
    Reply r = sess.handle(in, Clock::now());
    const auto& id = std::get<soap::Inform>(in.body).device_id;
    if (id.oui.empty() || id.serial_number.empty()) {
      EXPECT_EQ(r.status, 500);
      continue;
    }
    ASSERT_EQ(r.status, 200);
    soap::Envelope out = parse(r.body);
    EXPECT_TRUE(std::holds_alternative<soap::InformResponse>(out.body));
    EXPECT_EQ(out.cwmp_ns, in.cwmp_ns);
    EXPECT_EQ(out.header.id.value_or(""), in.header.id.value_or(""));
    EXPECT_EQ(sess.handle(empty_post(), Clock::now()).status, 204);
    ++seen;
  }
  EXPECT_GE(seen, 15);
}
