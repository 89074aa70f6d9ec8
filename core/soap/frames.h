// Internal to core/soap: what the reader maps each open element to (a
// frame: the container or the field its children or text fill), and the
// table of RPCs by name with the frames of their arguments (rpc_frames.cc).
// reader.cc walks the envelope, header and faults; every RPC's arguments
// live in rpc_child().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/soap/message.h"

namespace luacs::soap::frames {

// ---- body alternatives by name ---------------------------------------------

template <class T, size_t I = 0>
constexpr size_t index_of() {
  if constexpr (std::is_same_v<std::variant_alternative_t<I, Body>, T>)
    return I;
  else
    return index_of<T, I + 1>();
}
template <class T>
constexpr size_t kIdx = index_of<T>();

struct RpcEntry {
  std::string_view name;
  void (*emplace)(Body&);
};

// Every named body type from Inform on (index 0-2 are Empty, Unknown, Fault).
constexpr size_t kFirstRpc = kIdx<Inform>;
constexpr size_t kRpcCount = std::variant_size_v<Body> - kFirstRpc;

// Every RPC by name, in Body order from Inform on.
const std::array<RpcEntry, kRpcCount>& rpc_table();

// ---- element frames ------------------------------------------------------------

// What an open element is. Containers point `obj` at the value their children
// fill; leaves point it at the field their text goes to, converted by `leaf`.
enum class Node : uint8_t {
  kSkip,  // ignored subtree
  kEnvelope,
  kHeader,
  kBody,
  kLeaf,
  kRpc,          // obj: the body alternative (kind = body index)
  kSoapFault,    // obj: Fault
  kDetail,       // obj: Fault
  kCwmpFault,    // obj: Fault
  kSpvFault,     // obj: SetParameterValuesFault
  kDeviceId,     // obj: DeviceIdStruct
  kEventList,    // obj: vector<EventStruct>
  kEvent,        // obj: EventStruct
  kPvList,       // obj: vector<ParameterValue>
  kPv,           // obj: ParameterValue
  kInfoList,     // obj: vector<ParameterInfo>
  kInfo,         // obj: ParameterInfo
  kAttrList,     // obj: vector<ParameterAttribute>
  kAttr,         // obj: ParameterAttribute
  kSetAttrList,  // obj: vector<SetParameterAttributesStruct>
  kSetAttr,      // obj: SetParameterAttributesStruct
  kStringList,   // obj: vector<string>
  kArgList,      // obj: vector<pair<string, string>>
  kArg,          // obj: pair<string, string>
  kFaultStruct,  // obj: FaultStruct
  kOpList,       // obj: vector<OpResult>
  kOp,           // obj: OpResult
};

enum class Leaf : uint8_t {
  kNone,
  kTrim,          // std::string, trimmed
  kRaw,           // std::string, byte-exact (<Value>)
  kU32,           // uint32_t
  kInt,           // int
  kBool,          // bool
  kOptTrim,       // std::optional<std::string>, trimmed
  kOptBool,       // std::optional<bool>
  kOptU32,        // std::optional<uint32_t>
  kFaultCode,     // std::string: trimmed, prefix stripped; empty keeps the default
  kTrimNonEmpty,  // std::string: trimmed; empty keeps the default
};

struct Frame {
  Node node = Node::kSkip;
  Leaf leaf = Leaf::kNone;
  void* obj = nullptr;
};

constexpr Frame kSkipFrame{};

inline Frame node(Node n, void* obj) {
  return {n, Leaf::kNone, obj};
}
inline Frame leaf(Leaf l, void* field) {
  return {Node::kLeaf, l, field};
}
inline Frame trimmed(std::string& s) {
  return leaf(Leaf::kTrim, &s);
}

template <class T>
T& as(const Frame& f) {
  return *static_cast<T*>(f.obj);
}

template <class V>
auto& push(V& v) {
  return v.emplace_back();
}

// The frame of argument `l` (local name) of RPC `rpc` (a Body index), whose
// own frame is `p`; kSkipFrame for anything the RPC does not have.
Frame rpc_child(size_t rpc, const Frame& p, std::string_view l);

}  // namespace luacs::soap::frames
