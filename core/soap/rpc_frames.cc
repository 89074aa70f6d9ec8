// The RPCs by name, and the frames of their arguments (core/soap/frames.h).
#include "core/soap/frames.h"

namespace luacs::soap::frames {

template <size_t... I>
std::array<RpcEntry, sizeof...(I)> make_rpc_table(std::index_sequence<I...>) {
  // method_name() returns views of static string literals, so the names
  // outlive the temporaries.
  return {RpcEntry{method_name(Body(std::in_place_index<kFirstRpc + I>)),
                   [](Body& b) { b.emplace<kFirstRpc + I>(); }}...};
}

const std::array<RpcEntry, kRpcCount>& rpc_table() {
  static const auto table = make_rpc_table(std::make_index_sequence<kRpcCount>());
  return table;
}

// The arguments of each RPC, matched by local name.
Frame rpc_child(size_t rpc, const Frame& p, std::string_view l) {
  switch (rpc) {
    case kIdx<Inform>: {
      auto& m = as<Inform>(p);
      if (l == "DeviceId") return node(Node::kDeviceId, &m.device_id);
      if (l == "Event") return node(Node::kEventList, &m.events);
      if (l == "MaxEnvelopes") return leaf(Leaf::kU32, &m.max_envelopes);
      if (l == "CurrentTime") return trimmed(m.current_time);
      if (l == "RetryCount") return leaf(Leaf::kU32, &m.retry_count);
      if (l == "ParameterList") return node(Node::kPvList, &m.parameters);
      break;
    }
    case kIdx<TransferComplete>: {
      auto& m = as<TransferComplete>(p);
      if (l == "CommandKey") return trimmed(m.command_key);
      if (l == "FaultStruct") return node(Node::kFaultStruct, &m.fault);
      if (l == "StartTime") return trimmed(m.start_time);
      if (l == "CompleteTime") return trimmed(m.complete_time);
      break;
    }
    case kIdx<AutonomousTransferComplete>: {
      auto& m = as<AutonomousTransferComplete>(p);
      if (l == "AnnounceURL") return trimmed(m.announce_url);
      if (l == "TransferURL") return trimmed(m.transfer_url);
      if (l == "IsDownload") return leaf(Leaf::kBool, &m.is_download);
      if (l == "FileType") return trimmed(m.file_type);
      if (l == "FileSize") return leaf(Leaf::kU32, &m.file_size);
      if (l == "TargetFileName") return trimmed(m.target_file_name);
      if (l == "FaultStruct") return node(Node::kFaultStruct, &m.fault);
      if (l == "StartTime") return trimmed(m.start_time);
      if (l == "CompleteTime") return trimmed(m.complete_time);
      break;
    }
    case kIdx<RequestDownload>: {
      auto& m = as<RequestDownload>(p);
      if (l == "FileType") return trimmed(m.file_type);
      if (l == "FileTypeArg") return node(Node::kArgList, &m.file_type_args);
      break;
    }
    case kIdx<Kicked>: {
      auto& m = as<Kicked>(p);
      if (l == "Command") return trimmed(m.command);
      if (l == "Referer") return trimmed(m.referer);
      if (l == "Arg") return trimmed(m.arg);
      if (l == "Next") return trimmed(m.next);
      break;
    }
    case kIdx<DUStateChangeComplete>: {
      auto& m = as<DUStateChangeComplete>(p);
      if (l == "Results") return node(Node::kOpList, &m.results);
      if (l == "CommandKey") return trimmed(m.command_key);
      break;
    }
    case kIdx<AutonomousDUStateChangeComplete>: {
      auto& m = as<AutonomousDUStateChangeComplete>(p);
      if (l == "Results") return node(Node::kOpList, &m.results);
      break;
    }
    case kIdx<InformResponse>: {
      auto& m = as<InformResponse>(p);
      if (l == "MaxEnvelopes") return leaf(Leaf::kU32, &m.max_envelopes);
      break;
    }
    case kIdx<GetRPCMethodsResponse>: {
      auto& m = as<GetRPCMethodsResponse>(p);
      if (l == "MethodList") return node(Node::kStringList, &m.methods);
      break;
    }
    case kIdx<KickedResponse>: {
      auto& m = as<KickedResponse>(p);
      if (l == "NextURL") return trimmed(m.next_url);
      break;
    }
    case kIdx<GetParameterNames>: {
      auto& m = as<GetParameterNames>(p);
      if (l == "ParameterPath") return trimmed(m.path);
      if (l == "NextLevel") return leaf(Leaf::kBool, &m.next_level);
      break;
    }
    case kIdx<GetParameterValues>: {
      auto& m = as<GetParameterValues>(p);
      if (l == "ParameterNames") return node(Node::kStringList, &m.names);
      break;
    }
    case kIdx<SetParameterValues>: {
      auto& m = as<SetParameterValues>(p);
      if (l == "ParameterList") return node(Node::kPvList, &m.parameters);
      if (l == "ParameterKey") return trimmed(m.parameter_key);
      break;
    }
    case kIdx<GetParameterAttributes>: {
      auto& m = as<GetParameterAttributes>(p);
      if (l == "ParameterNames") return node(Node::kStringList, &m.names);
      break;
    }
    case kIdx<SetParameterAttributes>: {
      auto& m = as<SetParameterAttributes>(p);
      if (l == "ParameterList") return node(Node::kSetAttrList, &m.parameters);
      break;
    }
    case kIdx<AddObject>: {
      auto& m = as<AddObject>(p);
      if (l == "ObjectName") return trimmed(m.object_name);
      if (l == "ParameterKey") return trimmed(m.parameter_key);
      break;
    }
    case kIdx<DeleteObject>: {
      auto& m = as<DeleteObject>(p);
      if (l == "ObjectName") return trimmed(m.object_name);
      if (l == "ParameterKey") return trimmed(m.parameter_key);
      break;
    }
    case kIdx<Reboot>: {
      auto& m = as<Reboot>(p);
      if (l == "CommandKey") return trimmed(m.command_key);
      break;
    }
    case kIdx<Download>: {
      auto& m = as<Download>(p);
      if (l == "CommandKey") return trimmed(m.command_key);
      if (l == "FileType") return trimmed(m.file_type);
      if (l == "URL") return trimmed(m.url);
      // Credentials are kept byte-exact: a space can be part of them.
      if (l == "Username") return leaf(Leaf::kRaw, &m.username);
      if (l == "Password") return leaf(Leaf::kRaw, &m.password);
      if (l == "FileSize") return leaf(Leaf::kU32, &m.file_size);
      if (l == "TargetFileName") return trimmed(m.target_file_name);
      if (l == "DelaySeconds") return leaf(Leaf::kU32, &m.delay_seconds);
      if (l == "SuccessURL") return trimmed(m.success_url);
      if (l == "FailureURL") return trimmed(m.failure_url);
      break;
    }
    case kIdx<Upload>: {
      auto& m = as<Upload>(p);
      if (l == "CommandKey") return trimmed(m.command_key);
      if (l == "FileType") return trimmed(m.file_type);
      if (l == "URL") return trimmed(m.url);
      if (l == "Username") return leaf(Leaf::kRaw, &m.username);
      if (l == "Password") return leaf(Leaf::kRaw, &m.password);
      if (l == "DelaySeconds") return leaf(Leaf::kU32, &m.delay_seconds);
      break;
    }
    case kIdx<ScheduleInform>: {
      auto& m = as<ScheduleInform>(p);
      if (l == "DelaySeconds") return leaf(Leaf::kU32, &m.delay_seconds);
      if (l == "CommandKey") return trimmed(m.command_key);
      break;
    }
    case kIdx<GetParameterNamesResponse>: {
      auto& m = as<GetParameterNamesResponse>(p);
      if (l == "ParameterList") return node(Node::kInfoList, &m.parameters);
      break;
    }
    case kIdx<GetParameterValuesResponse>: {
      auto& m = as<GetParameterValuesResponse>(p);
      if (l == "ParameterList") return node(Node::kPvList, &m.parameters);
      break;
    }
    case kIdx<SetParameterValuesResponse>: {
      auto& m = as<SetParameterValuesResponse>(p);
      if (l == "Status") return leaf(Leaf::kInt, &m.status);
      break;
    }
    case kIdx<GetParameterAttributesResponse>: {
      auto& m = as<GetParameterAttributesResponse>(p);
      if (l == "ParameterList") return node(Node::kAttrList, &m.parameters);
      break;
    }
    case kIdx<AddObjectResponse>: {
      auto& m = as<AddObjectResponse>(p);
      if (l == "InstanceNumber") return leaf(Leaf::kU32, &m.instance_number);
      if (l == "Status") return leaf(Leaf::kInt, &m.status);
      break;
    }
    case kIdx<DeleteObjectResponse>: {
      auto& m = as<DeleteObjectResponse>(p);
      if (l == "Status") return leaf(Leaf::kInt, &m.status);
      break;
    }
    case kIdx<DownloadResponse>: {
      auto& m = as<DownloadResponse>(p);
      if (l == "Status") return leaf(Leaf::kInt, &m.status);
      if (l == "StartTime") return trimmed(m.start_time);
      if (l == "CompleteTime") return trimmed(m.complete_time);
      break;
    }
    case kIdx<UploadResponse>: {
      auto& m = as<UploadResponse>(p);
      if (l == "Status") return leaf(Leaf::kInt, &m.status);
      if (l == "StartTime") return trimmed(m.start_time);
      if (l == "CompleteTime") return trimmed(m.complete_time);
      break;
    }
    default:  // argument-less RPCs: anything inside is ignored
      break;
  }
  return kSkipFrame;
}

}  // namespace luacs::soap::frames
