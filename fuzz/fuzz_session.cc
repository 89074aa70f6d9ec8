// The session engine (core/cwmp/session.h) fed sequences of CPE messages,
// with a handler that queues RPCs from every callback, and time that passes.
//
// Input: steering bytes, read as operations (fuzz/common.h Bytes): the
// session's limits, then a CPE message (an Inform, the empty POST, the
// answer to the pending request, a corpus envelope, a message of any
// type, a fault, raw XML through the SOAP reader), an ACS request queued,
// time passing, a malformed request, an abort. The handler's choices come
// from the same bytes. After every step the engine's contract must hold:
// its replies (statuses, close, every envelope reads back and answers the
// right message with the right cwmp:ID, every ACS request sent is the one
// queued, in order), its limits, and at the end every callback called
// exactly once and on_end once.
#include <cctype>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/cwmp/session.h"
#include "core/soap/reader.h"
#include "core/soap/writer.h"
#include "fuzz/common.h"

using namespace luacs;
using cwmp::Clock;
using fuzz::Bytes;

namespace {

constexpr size_t kBodyTypes = std::variant_size_v<soap::Body>;

template <size_t... I>
soap::Body make_body(size_t i, std::index_sequence<I...>) {
  soap::Body b;
  (void)((i == I && (b.emplace<I>(), true)) || ...);
  return b;
}
// A default value of the i-th body type.
soap::Body body_at(size_t i) {
  return make_body(i % kBodyTypes, std::make_index_sequence<kBodyTypes>{});
}

// What the corpus and a few hand-made values give the operations.
struct Pool {
  std::vector<soap::Envelope> corpus;    // every envelope of ../shared/corpus/cwmp
  std::vector<soap::Envelope> informs;   // ... its Informs
  std::vector<soap::Body> acs_requests;  // ACS requests to queue
};
Pool* pool;

void load_pool() {
  pool = new Pool;
  for (const auto& [name, xml] : fuzz::corpus_files("cwmp", ".xml")) {
    soap::Envelope env;
    if (!soap::parse(xml, env)) continue;
    pool->corpus.push_back(env);
    if (std::holds_alternative<soap::Inform>(env.body)) pool->informs.push_back(env);
    if (soap::role_of(env.body) == soap::Role::kAcsRequest) pool->acs_requests.push_back(env.body);
  }
  for (size_t i = 0; i < kBodyTypes; ++i)
    if (soap::role_of(body_at(i)) == soap::Role::kAcsRequest)
      pool->acs_requests.push_back(body_at(i));
  pool->acs_requests.push_back(soap::GetRPCMethods{});  // a request both ways
  pool->acs_requests.push_back(
      soap::GetParameterValues{{"Device.", "Device.DeviceInfo.SerialNumber"}});
  soap::SetParameterValues spv;
  spv.parameters = {{"Device.X_Note", "a & b < c > \"d\" 'e' \xc3\xa9", "string"},
                    {"Device.ManagementServer.PeriodicInformInterval", "300", "unsignedInt"}};
  spv.parameter_key = "k\t1";
  pool->acs_requests.push_back(spv);
}

struct Run;

class Handler : public cwmp::SessionHandler {
 public:
  explicit Handler(Run& run) : run_(run) {}
  void on_inform(cwmp::Session& s) override;
  void on_cpe_request(cwmp::Session& s, const soap::Body& body) override;
  void on_acs_turn(cwmp::Session& s) override;
  void on_rpc_done(cwmp::Session& s, const soap::Body& request,
                   const cwmp::RpcOutcome& outcome) override;
  void on_end(cwmp::Session& s) override;

 private:
  Run& run_;
};

struct Run {
  Bytes& in;
  cwmp::SessionLimits limits;
  Handler handler{*this};
  std::unique_ptr<cwmp::Session> session;
  Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);

  // The engine's queue as it should be: queued and not sent, then the one
  // out; what has been sent.
  std::deque<soap::Body> waiting;
  std::optional<soap::Body> in_flight;
  unsigned sent = 0;
  bool hold = false;
  std::vector<int> calls;  // per queued RPC: how often its callback ran
  size_t rpc_done = 0;     // on_rpc_done calls
  int ends = 0;            // on_end calls
  std::string cpe_id;      // the cwmp:ID of the CPE's last request

  explicit Run(Bytes& b) : in(b) {}

  void queue_some(unsigned n) {
    for (unsigned k = 0; k < n && calls.size() < 300; ++k) {
      const auto& reqs = pool->acs_requests;
      soap::Body req = reqs[in.byte() % reqs.size()];
      const size_t idx = calls.size();
      calls.push_back(0);
      const bool live = !session->ended();
      if (live) waiting.push_back(req);
      const std::string response = soap::response_name(soap::method_name(req));
      session->queue(req, [this, idx, response](const cwmp::RpcOutcome& o) {
        ++calls[idx];
        if (o.kind == cwmp::RpcOutcome::Kind::kResponse)
          FUZZ_CHECK(
              soap::method_name(o.response) == response,
              std::string(soap::method_name(o.response)) + " answers a request for " + response);
        if (o.kind == cwmp::RpcOutcome::Kind::kError)
          FUZZ_CHECK(o.why != cwmp::RpcOutcome::Error::kNone, "an error without a why");
        if ((in.byte() & 3) == 1) queue_some(1);
      });
      if (!live)
        FUZZ_CHECK(calls[idx] == 1, "a request queued on an ended session was not failed at once");
    }
  }

  // The cwmp:ID a message carries: mode 0 the right one (the pending
  // request's, or a new CPE id), 1 what it has, 2 none, 3 empty, 4 a wrong one.
  void set_id(soap::Envelope& env, unsigned mode) {
    switch (mode % 5) {
      case 0:
        if (session->state() == cwmp::SessionState::kAwaitResponse) {
          env.header.id = "luacs-" + std::to_string(sent);
        } else {
          env.header.id = "cpe-" + std::to_string(calls.size());
        }
        break;
      case 1:
        break;
      case 2:
        env.header.id.reset();
        break;
      case 3:
        env.header.id = "";
        break;
      default:
        env.header.id = "luacs-0";
        break;
    }
  }

  soap::Envelope inform() {
    const uint8_t b = in.byte();
    if (b & 1 && !pool->informs.empty()) {
      soap::Envelope env = pool->informs[in.byte() % pool->informs.size()];
      set_id(env, b >> 1);
      return env;
    }
    static constexpr std::string_view kVersions[] = {"",    "",   "1.0,1.4", " 1.2 , 1.3,",
                                                     "2.0", "1.4"};
    static constexpr std::string_view kNs[] = {soap::kCwmpNs10, soap::kCwmpNs12,
                                               "urn:dslforum-org:cwmp-1-4"};
    soap::Envelope env;
    env.cwmp_ns = std::string(kNs[(b >> 1) % 3]);
    env.header.supported_cwmp_versions = std::string(kVersions[(b >> 3) % 6]);
    soap::Inform inf;
    inf.device_id = {"ACME", b & 0x40 ? "" : "00D09E", b & 0x80 ? "" : "HG 1/a", "SN-\xc3\xa9%1"};
    inf.events = {{"1 BOOT", ""}, {"M Reboot", "ck"}};
    env.body = inf;
    set_id(env, 0);
    return env;
  }

  soap::Envelope answer() {
    const uint8_t b = in.byte();
    soap::Envelope env;
    env.cwmp_ns = session->cwmp_ns().empty() ? std::string(soap::kCwmpNs10) : session->cwmp_ns();
    if (in_flight) {
      const std::string name = soap::response_name(soap::method_name(*in_flight));
      for (size_t i = 0; i < kBodyTypes; ++i)
        if (soap::method_name(body_at(i)) == name) env.body = body_at(i);
    }
    set_id(env, b);
    return env;
  }

  void handle(const soap::Envelope& msg) {
    const auto before = session->state();
    const cwmp::Reply r = session->handle(msg, now);
    check_reply(r, before, msg);
  }

  void check_reply(const cwmp::Reply& r, cwmp::SessionState before, const soap::Envelope& msg) {
    const auto& s = *session;
    const std::string what = "status " + std::to_string(r.status) + " after " +
                             std::string(soap::method_name(msg.body)) + ": " + r.body;
    if (before == cwmp::SessionState::kEnded)
      FUZZ_CHECK(r.status == 400 && r.close, "an ended session answered " + what);
    switch (r.status) {
      case 400:
        FUZZ_CHECK(r.close && s.ended() && !r.body.empty(), what);
        break;
      case 204:
        FUZZ_CHECK(r.body.empty() && s.ended(), what);
        break;
      case 200:
      case 500: {
        soap::Envelope out;
        std::string why;
        FUZZ_CHECK(soap::parse(r.body, out, &why), "reply does not read: " + why + "; " + what);
        if (r.status == 500) {
          FUZZ_CHECK(std::holds_alternative<soap::Fault>(out.body), what);
          FUZZ_CHECK(out.header.id.value_or("") == msg.header.id.value_or(""), "fault id; " + what);
          break;
        }
        FUZZ_CHECK(!s.ended() && !r.close, what);
        FUZZ_CHECK(out.cwmp_ns == (s.cwmp_ns().empty() ? soap::kCwmpNs10 : s.cwmp_ns()),
                   "namespace " + out.cwmp_ns + "; " + what);
        if (s.state() == cwmp::SessionState::kAwaitResponse) {
          // An ACS request: the next one queued, under the next id.
          FUZZ_CHECK(!waiting.empty(), "a request nobody queued; " + what);
          in_flight = std::move(waiting.front());
          waiting.pop_front();
          ++sent;
          FUZZ_CHECK(sent <= limits.max_rpcs, "past max_rpcs");
          FUZZ_CHECK(out.body == *in_flight, "sent is not what was queued; " + what);
          FUZZ_CHECK(out.header.id == "luacs-" + std::to_string(sent), "request id; " + what);
          FUZZ_CHECK(out.header.hold_requests.value_or(false) == hold, "HoldRequests; " + what);
          return;
        }
        FUZZ_CHECK(s.state() == cwmp::SessionState::kCpeTurn, what);
        FUZZ_CHECK(soap::role_of(out.body) == soap::Role::kAcsResponse, what);
        FUZZ_CHECK(out.header.id.value_or("") == msg.header.id.value_or(""),
                   "response id; " + what);
        if (before == cwmp::SessionState::kAwaitInform) {
          FUZZ_CHECK(std::holds_alternative<soap::InformResponse>(out.body), what);
          FUZZ_CHECK(out.header.hold_requests.value_or(false) == hold, "HoldRequests; " + what);
          for (char c : s.device_id())
            FUZZ_CHECK(
                std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '%',
                "device id " + s.device_id());
        }
        break;
      }
      default:
        FUZZ_CHECK(false, what);
    }
    if (s.state() != cwmp::SessionState::kAwaitResponse) in_flight.reset();
  }

  // What holds between any two steps.
  void check_state() {
    const auto& s = *session;
    FUZZ_CHECK(s.ended() == (s.state() == cwmp::SessionState::kEnded), "ended()");
    FUZZ_CHECK(s.ended() == (s.end_reason() != cwmp::EndReason::kNone), "end_reason");
    FUZZ_CHECK(ends == (s.ended() ? 1 : 0), "on_end calls: " + std::to_string(ends));
    FUZZ_CHECK(rpc_done == s.rpcs().size(), "on_rpc_done calls and rpcs() differ");
    FUZZ_CHECK(s.cpe_requests() <= limits.max_cpe_requests, "past max_cpe_requests");
    if (s.ended()) {
      FUZZ_CHECK(s.queued() == 0, "requests left queued on an ended session");
      waiting.clear();
      in_flight.reset();
    } else {
      FUZZ_CHECK(s.queued() == waiting.size(), "queued " + std::to_string(s.queued()) +
                                                   ", expected " + std::to_string(waiting.size()));
    }
    FUZZ_CHECK(in_flight.has_value() == (s.state() == cwmp::SessionState::kAwaitResponse),
               "in flight");
  }

  void step() {
    const uint8_t op = in.byte();
    switch (op % 12) {
      case 0:
      case 1:
        handle(inform());
        break;
      case 2:
      case 3: {
        soap::Envelope empty;
        handle(empty);
        break;
      }
      case 4:
      case 5:
        handle(answer());
        break;
      case 6: {
        if (pool->corpus.empty()) break;
        soap::Envelope env = pool->corpus[in.byte() % pool->corpus.size()];
        set_id(env, in.byte());
        handle(env);
        break;
      }
      case 7: {
        soap::Envelope env;
        env.body = body_at(in.byte());
        if (auto* f = std::get_if<soap::Fault>(&env.body)) f->code = 9000 + in.byte() % 20;
        set_id(env, in.byte());
        handle(env);
        break;
      }
      case 8:
        queue_some(1 + in.byte() % 3);
        break;
      case 9: {
        // Time passes; a session past its deadline is given up, as the
        // worker does.
        now += std::chrono::milliseconds(in.u16()) * 100;
        if (session->expired(now) && !session->ended())
          session->abort(cwmp::EndReason::kTimeout, "no message from the CPE in time");
        break;
      }
      case 10: {
        // Raw XML through the reader, or the 400 of a body that is not SOAP.
        const std::string_view xml = in.take(in.u16() % 8192);
        soap::Envelope env;
        std::string why;
        if (soap::parse(xml, env, &why)) {
          handle(env);
        } else {
          const cwmp::Reply r = session->handle_malformed(why, now);
          FUZZ_CHECK(r.status == 400 && r.close && session->ended(), "malformed: " + r.body);
        }
        break;
      }
      default:
        if (in.byte() & 1) session->abort(cwmp::EndReason::kAborted, "ended by the server");
        break;
    }
    check_state();
  }
};

void Handler::on_inform(cwmp::Session& s) {
  FUZZ_CHECK(s.state() == cwmp::SessionState::kCpeTurn, "on_inform outside the CPE's turn");
  FUZZ_CHECK(cwmp::names_device(s.inform().device_id), "on_inform for an Inform without a device");
  const uint8_t b = run_.in.byte();
  if (b & 1) {
    s.set_hold_requests(true);
    run_.hold = true;
  }
  run_.queue_some(b >> 1 & 3);
}

void Handler::on_cpe_request(cwmp::Session& s, const soap::Body& body) {
  FUZZ_CHECK(soap::role_of(body) == soap::Role::kCpeRequest, "on_cpe_request for a non-request");
  FUZZ_CHECK(!std::holds_alternative<soap::Inform>(body), "on_cpe_request for an Inform");
  (void)s;
  run_.queue_some(run_.in.byte() & 1);
}

void Handler::on_acs_turn(cwmp::Session& s) {
  FUZZ_CHECK(s.queued() == 0, "on_acs_turn with requests queued");
  run_.queue_some(run_.in.byte() % 3);
}

void Handler::on_rpc_done(cwmp::Session&, const soap::Body& request, const cwmp::RpcOutcome&) {
  FUZZ_CHECK(soap::role_of(request) == soap::Role::kAcsRequest ||
                 std::holds_alternative<soap::GetRPCMethods>(request),
             "on_rpc_done for a non-request");
  ++run_.rpc_done;
}

void Handler::on_end(cwmp::Session& s) {
  FUZZ_CHECK(s.ended(), "on_end on a live session");
  ++run_.ends;
}

void seeds(fuzz::SeedWriter& w);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(&seeds);
  load_pool();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  Run run(in);
  const uint8_t l = in.byte();
  run.limits.max_rpcs = 1 + (l & 7);
  run.limits.max_cpe_requests = 1 + (l >> 3 & 7);
  run.limits.session_timeout = std::chrono::seconds(1 + in.byte());
  run.limits.idle_timeout = std::chrono::seconds(1 + in.byte() % 32);
  run.session = std::make_unique<cwmp::Session>("s1", run.limits, &run.handler, run.now);
  for (int steps = 0; !in.empty() && steps < 200; ++steps) run.step();
  // The connection is gone: the server aborts the session (the driver
  // does so before destroying it), and every callback has run.
  if (!run.session->ended()) run.session->abort(cwmp::EndReason::kAborted, "connection lost");
  run.check_state();
  FUZZ_CHECK(run.rpc_done >= run.sent, "requests sent but never finished");
  run.session.reset();
  FUZZ_CHECK(run.ends == 1, "on_end calls: " + std::to_string(run.ends));
  for (size_t i = 0; i < run.calls.size(); ++i)
    FUZZ_CHECK(run.calls[i] == 1,
               "callback " + std::to_string(i) + " ran " + std::to_string(run.calls[i]) + " times");
  return 0;
}

namespace {

// Sessions as the corpus has them: an Inform, the empty POST, requests
// queued and answered, CPE requests, time, raw corpus XML. The bytes line
// up with what each operation and handler call reads.
void seeds(fuzz::SeedWriter& w) {
  auto op = [](std::string& s, std::initializer_list<int> bytes) {
    for (int b : bytes) s += static_cast<char>(b);
  };
  const std::string limits = "\x3f\x3c\x1e";  // 8 RPCs, 8 CPE requests, 61 s, 31 s
  std::string s = limits;
  op(s, {0, 0x00});                              // a synthesized Inform
  op(s, {0x06, 0, 5, 12});                       // on_inform: queue three
  op(s, {2});                                    // empty POST: the first request goes out
  for (int i = 0; i < 3; ++i) op(s, {4, 0, 0});  // answered; its callback queues nothing
  op(s, {0});                                    // on_acs_turn: nothing more, 204
  w.add(s);

  s = limits;
  op(s, {1, 0x01, 3});        // a corpus Inform, its own cwmp:ID
  op(s, {0x03, 20});          // on_inform: HoldRequests, queue one
  op(s, {8, 2, 7, 9, 14});    // queue three more
  op(s, {9, 0x10, 0x00});     // 0.4 s pass
  op(s, {2});                 // empty POST
  op(s, {4, 0, 1, 3});        // answered; its callback queues one more
  op(s, {7, 2, 0x07, 0});     // a Fault as the answer
  op(s, {4, 4, 0});           // the answer under a wrong cwmp:ID
  op(s, {5, 2, 0, 4, 3, 0});  // answers without and with an empty cwmp:ID
  op(s, {11, 1});             // the server aborts the session
  w.add(s);

  // Raw corpus envelopes: each Inform, a CPE request, then one request.
  const auto files = fuzz::corpus_files("cwmp", ".xml");
  std::vector<std::string> requests;
  for (const auto& [name, xml] : files)
    if (name.starts_with("transfercomplete-") || name.starts_with("getrpcmethods-cpe"))
      requests.push_back(xml);
  size_t n = 0;
  for (const auto& [name, xml] : files) {
    if (xml.size() > 8000 || !name.starts_with("inform-")) continue;
    s = limits;
    auto raw = [&](const std::string& x) {
      op(s, {10, static_cast<int>(x.size() & 0xff), static_cast<int>(x.size() >> 8)});
      s += x;
    };
    raw(xml);
    op(s, {0x02, static_cast<int>(n)});  // on_inform: queue one
    if (!requests.empty()) {
      raw(requests[n % requests.size()]);
      op(s, {0});  // on_cpe_request: queue nothing
    }
    op(s, {2, 4, 0, 0, 0});  // empty POST, the answer, nothing more
    w.add(s);
    ++n;
  }
}

}  // namespace
