// Batching and fault narrowing of parameter RPCs (core/cwmp/param_batches.h).
#include "core/cwmp/param_batches.h"

#include <algorithm>
#include <set>
#include <variant>

namespace luacs::cwmp {
namespace {

// `items` cut into runs of at most `size` (0 counts as 1), in order.
template <typename T>
std::vector<std::vector<T>> runs(const std::vector<T>& items, unsigned size) {
  std::vector<std::vector<T>> out;
  size_t n = std::max(1u, size);
  for (size_t i = 0; i < items.size(); i += n) {
    size_t end = std::min(items.size(), i + n);
    out.emplace_back(items.begin() + static_cast<std::ptrdiff_t>(i),
                     items.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return out;
}

template <typename T>
std::pair<std::vector<T>, std::vector<T>> halves(const std::vector<T>& v) {
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  return {std::vector<T>(v.begin(), mid), std::vector<T>(mid, v.end())};
}

bool cpe_fault(const RpcOutcome& o) {
  return o.kind == RpcOutcome::Kind::kCpeFault;
}

}  // namespace

void note_failure(ParamAnswers& a, const RpcOutcome& o) {
  if (cpe_fault(o)) {
    if (!a.fault) a.fault = o.fault;
  } else if (a.error.empty()) {
    a.error = o.error();
  }
}

// ---- GetParameterValues ----

std::vector<soap::GetParameterValues> get_values_batches(const std::vector<std::string>& names,
                                                         unsigned batch_size) {
  std::vector<soap::GetParameterValues> out;
  for (auto& run : runs(names, batch_size)) out.push_back({std::move(run)});
  return out;
}

std::vector<soap::GetParameterValues> merge(ParamAnswers& a, const soap::GetParameterValues& rpc,
                                            const RpcOutcome& o) {
  if (o.ok()) {
    if (auto* resp = std::get_if<soap::GetParameterValuesResponse>(&o.response))
      a.values.insert(a.values.end(), resp->parameters.begin(), resp->parameters.end());
    return {};
  }
  if (cpe_fault(o) && o.fault.code == 9005 && !rpc.names.empty()) {
    if (rpc.names.size() == 1) {
      a.invalid.push_back(rpc.names[0]);
      return {};
    }
    auto [first, second] = halves(rpc.names);
    std::vector<soap::GetParameterValues> next;
    next.push_back({std::move(first)});
    next.push_back({std::move(second)});
    return next;
  }
  note_failure(a, o);
  return {};
}

// ---- SetParameterValues ----

std::vector<SetBatch> set_values_batches(const std::vector<soap::ParameterValue>& params,
                                         const std::string& key, unsigned batch_size) {
  std::vector<SetBatch> out;
  for (auto& run : runs(params, batch_size)) out.push_back({{std::move(run), key}, false});
  return out;
}

std::vector<SetBatch> merge(ParamAnswers& a, const SetBatch& b, const RpcOutcome& o) {
  const auto& params = b.rpc.parameters;
  if (o.ok()) {
    a.sent += static_cast<unsigned>(params.size());
    return {};
  }
  if (!cpe_fault(o)) {
    note_failure(a, o);
    return {};
  }
  const auto& listed = o.fault.set_parameter_values_faults;
  std::set<std::string> bad;
  for (const auto& f : listed) bad.insert(f.name);
  std::vector<soap::ParameterValue> rest;
  for (const auto& p : params)
    if (!bad.count(p.name)) rest.push_back(p);
  if (!listed.empty() && rest.size() < params.size()) {
    a.set_faults.insert(a.set_faults.end(), listed.begin(), listed.end());
    if (rest.empty() || b.retried) return {};
    return {SetBatch{{std::move(rest), b.rpc.parameter_key}, true}};
  }
  if (params.size() > 1 && (o.fault.code == 9005 || o.fault.code == 9003) && !b.retried) {
    // A CPE that refuses a batch without naming the bad parameters.
    auto [first, second] = halves(params);
    std::vector<SetBatch> next;
    next.push_back({{std::move(first), b.rpc.parameter_key}, false});
    next.push_back({{std::move(second), b.rpc.parameter_key}, false});
    return next;
  }
  if (params.size() == 1) {
    uint32_t code = o.fault.code;
    std::string text = o.fault.string;
    if (!listed.empty()) {
      code = listed[0].code;
      text = listed[0].string;
    }
    a.set_faults.push_back({params[0].name, code, text});
    return {};
  }
  note_failure(a, o);
  return {};
}

// ---- GetParameterAttributes ----

std::vector<soap::GetParameterAttributes> get_attributes_batches(
    const std::vector<std::string>& names, unsigned batch_size) {
  std::vector<soap::GetParameterAttributes> out;
  for (auto& run : runs(names, batch_size)) out.push_back({std::move(run)});
  return out;
}

void merge(ParamAnswers& a, const soap::GetParameterAttributes&, const RpcOutcome& o) {
  if (auto* r = std::get_if<soap::GetParameterAttributesResponse>(&o.response); r && o.ok())
    a.attributes.insert(a.attributes.end(), r->parameters.begin(), r->parameters.end());
  else
    note_failure(a, o);
}

}  // namespace luacs::cwmp
