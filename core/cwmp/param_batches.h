// Asking a CPE about many parameters at once: the batching of
// GetParameterValues, SetParameterValues and GetParameterAttributes, and the
// narrowing of a fault down to the names the CPE refused.
//
// Pure protocol logic (no session, no Lua): the policy API (lua/) turns one
// dev:get / dev:set / dev:attributes into the batches made here, queues
// them, and merges each outcome back here, sending whatever retries a merge
// returns, until none is left. A CPE faults a whole GetParameterValues for
// one name it does not know (9005), so a faulted batch is bisected until
// the bad names stand alone and every good value still arrives.
//
// Not thread-safe; one ParamAnswers belongs to one call of the policy API
// (on one worker thread).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/cwmp/session.h"
#include "core/soap/message.h"

namespace luacs::cwmp {

// What the RPCs of one call brought back, merged in the order they came.
struct ParamAnswers {
  std::vector<soap::ParameterValue> values;               // GetParameterValues
  std::vector<std::string> invalid;                       // names a 9005 was narrowed down to
  std::vector<soap::SetParameterValuesFault> set_faults;  // SetParameterValues: refused names
  unsigned sent = 0;                                      // SetParameterValues: accepted values
  std::vector<soap::ParameterAttribute> attributes;       // GetParameterAttributes
  std::optional<soap::Fault> fault;                       // the first CPE fault not narrowed
  std::string error;                                      // the first RPC with no usable answer
};

// Keeps the first CPE fault and the first other failure of `o` (not a
// success) in `a`: a later one says nothing new to the policy.
void note_failure(ParamAnswers& a, const RpcOutcome& o);

// ---- GetParameterValues ----

// `names` in order, at most `batch_size` per RPC (0 counts as 1).
std::vector<soap::GetParameterValues> get_values_batches(const std::vector<std::string>& names,
                                                         unsigned batch_size);

// Merges the outcome of `rpc` into `a` and returns the RPCs to send next: on
// a 9005 for more names than one, its two halves; a 9005 for one name adds
// that name to a.invalid.
std::vector<soap::GetParameterValues> merge(ParamAnswers& a, const soap::GetParameterValues& rpc,
                                            const RpcOutcome& o);

// ---- SetParameterValues ----

struct SetBatch {
  soap::SetParameterValues rpc;
  // Sent again without the parameters the CPE named as bad: a second fault
  // is final (no endless retries).
  bool retried = false;
};

// `params` in order, at most `batch_size` per RPC (0 counts as 1), each with
// the ParameterKey `key`.
std::vector<SetBatch> set_values_batches(const std::vector<soap::ParameterValue>& params,
                                         const std::string& key, unsigned batch_size);

// Merges the outcome of `b` into `a` and returns the RPCs to send next:
// - the CPE named the bad parameters (SetParameterValuesFault): they go to
//   a.set_faults and the others of the batch are sent once more;
// - a 9005 or 9003 naming none, for more parameters than one: the two
//   halves of the batch;
// - a fault for one parameter: that parameter goes to a.set_faults.
std::vector<SetBatch> merge(ParamAnswers& a, const SetBatch& b, const RpcOutcome& o);

// ---- GetParameterAttributes ----

// `names` in order, at most `batch_size` per RPC (0 counts as 1).
std::vector<soap::GetParameterAttributes> get_attributes_batches(
    const std::vector<std::string>& names, unsigned batch_size);

// Merges the outcome of one of those batches into `a` (no narrowing).
void merge(ParamAnswers& a, const soap::GetParameterAttributes& rpc, const RpcOutcome& o);

}  // namespace luacs::cwmp
