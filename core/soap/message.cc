#include "core/soap/message.h"

#include <type_traits>

namespace luacs::soap {
namespace {

template <class T>
constexpr std::string_view name_of = "";
#define LUACS_NAME(T) \
  template <>         \
  constexpr std::string_view name_of<T> = #T;
LUACS_NAME(Fault)
LUACS_NAME(Inform)
LUACS_NAME(TransferComplete)
LUACS_NAME(AutonomousTransferComplete)
LUACS_NAME(GetRPCMethods)
LUACS_NAME(RequestDownload)
LUACS_NAME(Kicked)
LUACS_NAME(DUStateChangeComplete)
LUACS_NAME(AutonomousDUStateChangeComplete)
LUACS_NAME(InformResponse)
LUACS_NAME(TransferCompleteResponse)
LUACS_NAME(AutonomousTransferCompleteResponse)
LUACS_NAME(GetRPCMethodsResponse)
LUACS_NAME(RequestDownloadResponse)
LUACS_NAME(KickedResponse)
LUACS_NAME(DUStateChangeCompleteResponse)
LUACS_NAME(AutonomousDUStateChangeCompleteResponse)
LUACS_NAME(GetParameterNames)
LUACS_NAME(GetParameterValues)
LUACS_NAME(SetParameterValues)
LUACS_NAME(GetParameterAttributes)
LUACS_NAME(SetParameterAttributes)
LUACS_NAME(AddObject)
LUACS_NAME(DeleteObject)
LUACS_NAME(Reboot)
LUACS_NAME(FactoryReset)
LUACS_NAME(Download)
LUACS_NAME(Upload)
LUACS_NAME(ScheduleInform)
LUACS_NAME(GetParameterNamesResponse)
LUACS_NAME(GetParameterValuesResponse)
LUACS_NAME(SetParameterValuesResponse)
LUACS_NAME(GetParameterAttributesResponse)
LUACS_NAME(SetParameterAttributesResponse)
LUACS_NAME(AddObjectResponse)
LUACS_NAME(DeleteObjectResponse)
LUACS_NAME(RebootResponse)
LUACS_NAME(FactoryResetResponse)
LUACS_NAME(DownloadResponse)
LUACS_NAME(UploadResponse)
LUACS_NAME(ScheduleInformResponse)
#undef LUACS_NAME

// Index ranges in Body follow the grouping of the variant's declaration.
constexpr size_t kFirstCpeRequest = 3;    // Inform
constexpr size_t kFirstAcsResponse = 11;  // InformResponse
constexpr size_t kFirstAcsRequest = 19;   // GetParameterNames
constexpr size_t kFirstCpeResponse = 31;  // GetParameterNamesResponse

static_assert(std::is_same_v<std::variant_alternative_t<kFirstCpeRequest, Body>, Inform>);
static_assert(std::is_same_v<std::variant_alternative_t<kFirstAcsResponse, Body>, InformResponse>);
static_assert(
    std::is_same_v<std::variant_alternative_t<kFirstAcsRequest, Body>, GetParameterNames>);
static_assert(
    std::is_same_v<std::variant_alternative_t<kFirstCpeResponse, Body>, GetParameterNamesResponse>);

}  // namespace

std::string_view method_name(const Body& body) {
  if (auto* u = std::get_if<Unknown>(&body)) return u->name;
  return std::visit([](const auto& m) { return name_of<std::decay_t<decltype(m)>>; }, body);
}

Role role_of(const Body& body) {
  size_t i = body.index();
  if (i == 0) return Role::kEmpty;
  if (i == 1) return Role::kUnknown;
  if (i == 2) return Role::kFault;
  // GetRPCMethods and GetRPCMethodsResponse travel both ways; the session
  // engine decides from context. Here they count as CPE request / ACS response.
  if (i < kFirstAcsResponse) return Role::kCpeRequest;
  if (i < kFirstAcsRequest) return Role::kAcsResponse;
  if (i < kFirstCpeResponse) return Role::kAcsRequest;
  return Role::kCpeResponse;
}

std::string response_name(std::string_view request_name) {
  std::string r(request_name);
  r += "Response";
  return r;
}

}  // namespace luacs::soap
