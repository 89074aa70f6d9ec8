// Batching of GetParameterValues / SetParameterValues / GetParameterAttributes
// and the narrowing of a fault to the names a CPE refused
// (core/cwmp/param_batches), driven by a CPE made of a few lines here.
#include <gtest/gtest.h>

#include <deque>
#include <set>

#include "core/cwmp/param_batches.h"

using namespace luacs;
using cwmp::ParamAnswers;
using cwmp::RpcOutcome;

namespace {

std::vector<std::string> names(size_t n, const std::string& prefix = "Device.X.") {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

RpcOutcome response(soap::Body b) {
  RpcOutcome o;
  o.kind = RpcOutcome::Kind::kResponse;
  o.response = std::move(b);
  return o;
}

RpcOutcome fault(uint32_t code, std::vector<soap::SetParameterValuesFault> listed = {}) {
  RpcOutcome o;
  o.kind = RpcOutcome::Kind::kCpeFault;
  o.fault.code = code;
  o.fault.string = "fault " + std::to_string(code);
  o.fault.set_parameter_values_faults = std::move(listed);
  return o;
}

RpcOutcome error(std::string what) {
  return RpcOutcome::failed(what == "timeout" ? RpcOutcome::Error::kTimeout
                                              : RpcOutcome::Error::kRpcLimit);
}

// A CPE that knows every name but `unknown`: a GetParameterValues with any
// unknown name is a 9005 for the whole RPC, as real CPEs answer.
RpcOutcome answer_get(const soap::GetParameterValues& rpc, const std::set<std::string>& unknown) {
  soap::GetParameterValuesResponse r;
  for (const auto& n : rpc.names) {
    if (unknown.count(n)) return fault(9005);
    r.parameters.push_back({n, "v:" + n, "string"});
  }
  return response(r);
}

// Sends the batches and every retry a merge asks for, as lua/ does; returns
// the RPCs sent, in order.
std::vector<soap::GetParameterValues> run_get(ParamAnswers& a, const std::vector<std::string>& in,
                                              unsigned batch,
                                              const std::set<std::string>& unknown) {
  std::vector<soap::GetParameterValues> sent;
  std::deque<soap::GetParameterValues> queue;
  for (auto& b : cwmp::get_values_batches(in, batch)) queue.push_back(std::move(b));
  while (!queue.empty()) {
    auto rpc = std::move(queue.front());
    queue.pop_front();
    sent.push_back(rpc);
    for (auto& next : cwmp::merge(a, rpc, answer_get(rpc, unknown))) queue.push_back(next);
  }
  return sent;
}

TEST(ParamBatches, GetNamesAreCutIntoBatchesInOrder) {
  auto b = cwmp::get_values_batches(names(40), 32);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].names.size(), 32u);
  EXPECT_EQ(b[1].names.size(), 8u);
  EXPECT_EQ(b[0].names.front(), "Device.X.0");
  EXPECT_EQ(b[1].names.front(), "Device.X.32");
  EXPECT_EQ(b[1].names.back(), "Device.X.39");

  EXPECT_EQ(cwmp::get_values_batches(names(64), 32).size(), 2u) << "exact multiple";
  EXPECT_TRUE(cwmp::get_values_batches({}, 32).empty());
  auto ones = cwmp::get_values_batches(names(3), 0);
  ASSERT_EQ(ones.size(), 3u) << "a batch size of 0 counts as 1";
  EXPECT_EQ(ones[2].names, std::vector<std::string>{"Device.X.2"});
}

TEST(ParamBatches, GetAnswersAreMergedInTheOrderTheyCome) {
  ParamAnswers a;
  auto b = cwmp::get_values_batches(names(5), 2);
  ASSERT_EQ(b.size(), 3u);
  for (size_t i : {2, 0, 1}) EXPECT_TRUE(cwmp::merge(a, b[i], answer_get(b[i], {})).empty());
  ASSERT_EQ(a.values.size(), 5u);
  EXPECT_EQ(a.values[0].name, "Device.X.4");
  EXPECT_EQ(a.values[1].name, "Device.X.0");
  EXPECT_EQ(a.values[1].value, "v:Device.X.0");
  EXPECT_TRUE(a.invalid.empty());
  EXPECT_FALSE(a.fault);
  EXPECT_TRUE(a.error.empty());
}

TEST(ParamBatches, A9005IsBisectedDownToTheOneBadName) {
  ParamAnswers a;
  auto in = names(8);
  auto next = cwmp::merge(a, soap::GetParameterValues{in}, fault(9005));
  ASSERT_EQ(next.size(), 2u) << "the two halves";
  EXPECT_EQ(next[0].names, std::vector<std::string>(in.begin(), in.begin() + 4));
  EXPECT_EQ(next[1].names, std::vector<std::string>(in.begin() + 4, in.end()));
  EXPECT_TRUE(a.invalid.empty());
  EXPECT_FALSE(a.fault) << "a 9005 being narrowed is not the call's fault";

  // One name left: that is the bad one.
  EXPECT_TRUE(cwmp::merge(a, soap::GetParameterValues{{"Device.Nope"}}, fault(9005)).empty());
  EXPECT_EQ(a.invalid, std::vector<std::string>{"Device.Nope"});
  EXPECT_FALSE(a.fault);
}

TEST(ParamBatches, AGetNarrowsEveryBadNameAndKeepsEveryGoodValue) {
  ParamAnswers a;
  auto in = names(40);
  in[6] = "Device.Nope.One";
  in[32] = "Device.Nope.Two";
  auto sent = run_get(a, in, 32, {"Device.Nope.One", "Device.Nope.Two"});
  std::set<std::string> invalid(a.invalid.begin(), a.invalid.end());
  EXPECT_EQ(invalid, (std::set<std::string>{"Device.Nope.One", "Device.Nope.Two"}));
  EXPECT_EQ(a.values.size(), 38u);
  for (const auto& v : a.values) EXPECT_EQ(v.name.rfind("Device.X.", 0), 0u) << v.name;
  EXPECT_FALSE(a.fault);
  EXPECT_EQ(sent[0].names.size(), 32u);
  EXPECT_EQ(sent[1].names.size(), 8u);
  for (const auto& s : sent) EXPECT_LE(s.names.size(), 32u);
  // 32 names: 1 + 2 * log2(32) RPCs to find one bad name; 8: 1 + 2 * 3.
  EXPECT_EQ(sent.size(), 11u + 7u);
}

TEST(ParamBatches, GetFailuresOtherThan9005AreKeptFirstComeFirst) {
  ParamAnswers a;
  soap::GetParameterValues rpc{names(4)};
  EXPECT_TRUE(cwmp::merge(a, rpc, fault(9002)).empty()) << "no narrowing for other faults";
  EXPECT_TRUE(cwmp::merge(a, rpc, fault(9003)).empty());
  EXPECT_TRUE(cwmp::merge(a, rpc, error("timeout")).empty());
  EXPECT_TRUE(cwmp::merge(a, rpc, error("rpc_limit")).empty());
  ASSERT_TRUE(a.fault);
  EXPECT_EQ(a.fault->code, 9002u);
  EXPECT_EQ(a.error, "timeout");
  EXPECT_TRUE(a.invalid.empty());
}

// ---- SetParameterValues ----

std::vector<soap::ParameterValue> values(size_t n) {
  std::vector<soap::ParameterValue> out;
  for (const auto& name : names(n)) out.push_back({name, "1", "int"});
  return out;
}

TEST(ParamBatches, SetValuesAreCutIntoBatchesWithTheKey) {
  auto b = cwmp::set_values_batches(values(5), "key-1", 2);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].rpc.parameters.size(), 2u);
  EXPECT_EQ(b[2].rpc.parameters.size(), 1u);
  EXPECT_EQ(b[2].rpc.parameters[0].name, "Device.X.4");
  for (const auto& s : b) {
    EXPECT_EQ(s.rpc.parameter_key, "key-1");
    EXPECT_FALSE(s.retried);
  }
  ParamAnswers a;
  for (const auto& s : b)
    EXPECT_TRUE(cwmp::merge(a, s, response(soap::SetParameterValuesResponse{})).empty());
  EXPECT_EQ(a.sent, 5u);
  EXPECT_TRUE(a.set_faults.empty());
}

TEST(ParamBatches, ASetFaultNamingTheBadOnesResendsTheOthersOnce) {
  ParamAnswers a;
  auto b = cwmp::set_values_batches(values(3), "k", 32)[0];
  auto next = cwmp::merge(a, b, fault(9003, {{"Device.X.1", 9007, "bad value"}}));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_TRUE(next[0].retried);
  EXPECT_EQ(next[0].rpc.parameter_key, "k");
  ASSERT_EQ(next[0].rpc.parameters.size(), 2u);
  EXPECT_EQ(next[0].rpc.parameters[0].name, "Device.X.0");
  EXPECT_EQ(next[0].rpc.parameters[1].name, "Device.X.2");
  ASSERT_EQ(a.set_faults.size(), 1u);
  EXPECT_EQ(a.set_faults[0], (soap::SetParameterValuesFault{"Device.X.1", 9007, "bad value"}));

  // The retry faults again: final, nothing more is sent.
  EXPECT_TRUE(cwmp::merge(a, next[0], fault(9003, {{"Device.X.2", 9007, "bad too"}})).empty());
  EXPECT_EQ(a.set_faults.size(), 2u);
  EXPECT_EQ(a.sent, 0u);

  // Every parameter of a batch named: nothing to resend.
  ParamAnswers all;
  auto one = cwmp::set_values_batches(values(1), "", 32)[0];
  EXPECT_TRUE(cwmp::merge(all, one, fault(9003, {{"Device.X.0", 9008, "read-only"}})).empty());
  EXPECT_EQ(all.set_faults,
            (std::vector<soap::SetParameterValuesFault>{{"Device.X.0", 9008, "read-only"}}));
}

TEST(ParamBatches, ASetFaultNamingNoneIsBisectedToTheBadParameter) {
  // A CPE that refuses a whole SetParameterValues with a bare 9005 when it
  // holds Device.X.5.
  ParamAnswers a;
  std::deque<cwmp::SetBatch> queue;
  for (auto& b : cwmp::set_values_batches(values(8), "k", 32)) queue.push_back(std::move(b));
  size_t rpcs = 0;
  while (!queue.empty()) {
    auto b = std::move(queue.front());
    queue.pop_front();
    ++rpcs;
    bool bad = false;
    for (const auto& p : b.rpc.parameters) bad |= p.name == "Device.X.5";
    auto o = bad ? fault(9005) : response(soap::SetParameterValuesResponse{});
    for (auto& n : cwmp::merge(a, b, o)) {
      EXPECT_EQ(n.rpc.parameter_key, "k");
      EXPECT_FALSE(n.retried);
      queue.push_back(std::move(n));
    }
  }
  EXPECT_EQ(a.sent, 7u);
  ASSERT_EQ(a.set_faults.size(), 1u);
  EXPECT_EQ(a.set_faults[0].name, "Device.X.5");
  EXPECT_EQ(a.set_faults[0].code, 9005u);
  EXPECT_EQ(a.set_faults[0].string, "fault 9005");
  EXPECT_EQ(rpcs, 7u);  // 1 + 2 * log2(8)
  EXPECT_FALSE(a.fault);
}

TEST(ParamBatches, OtherSetFailuresAreNotNarrowed) {
  ParamAnswers a;
  auto b = cwmp::set_values_batches(values(4), "", 32)[0];
  EXPECT_TRUE(cwmp::merge(a, b, fault(9001)).empty()) << "not 9003/9005: not bisected";
  ASSERT_TRUE(a.fault);
  EXPECT_EQ(a.fault->code, 9001u);
  EXPECT_TRUE(cwmp::merge(a, b, error("timeout")).empty());
  EXPECT_EQ(a.error, "timeout");
  // A retried batch is not bisected either.
  ParamAnswers r;
  b.retried = true;
  EXPECT_TRUE(cwmp::merge(r, b, fault(9005)).empty());
  ASSERT_TRUE(r.fault);
  EXPECT_EQ(r.fault->code, 9005u);
}

// ---- GetParameterAttributes ----

TEST(ParamBatches, AttributesAreBatchedAndMerged) {
  auto b = cwmp::get_attributes_batches(names(5), 4);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].names.size(), 4u);
  EXPECT_EQ(b[1].names, std::vector<std::string>{"Device.X.4"});
  ParamAnswers a;
  soap::GetParameterAttributesResponse r;
  r.parameters.push_back({"Device.X.0", 2, {"Subscriber"}});
  cwmp::merge(a, b[0], response(r));
  cwmp::merge(a, b[1], fault(9005));
  ASSERT_EQ(a.attributes.size(), 1u);
  EXPECT_EQ(a.attributes[0].notification, 2);
  ASSERT_TRUE(a.fault);
  EXPECT_EQ(a.fault->code, 9005u) << "attributes are not narrowed";
}

}  // namespace
