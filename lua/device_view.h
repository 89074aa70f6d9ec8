// Internal to lua/: what a session knows of its device. The stored device
// (as the session found it), the Inform, and an overlay of every value read,
// set or summarised in this session, newest first; and the tags, with this
// session's changes on top. The policy API reads the device only through
// here, so `dev:param` sees a value the moment `dev:get` or `dev:set` has it.
//
// One per Run, on the worker thread of its session.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/device/device.h"
#include "core/soap/message.h"
#include "lua/policy.h"

namespace luacs::lua {

class DeviceView {
 public:
  // The session, the stored device and the result of `ctx` must outlive the
  // view (the Run that owns it holds them).
  explicit DeviceView(const RunContext& ctx);

  const soap::Inform& inform() const;
  // The device as stored; null for a device never seen before.
  const device::Device* stored() const { return device_.get(); }

  // The newest known value: read or set in this session, then the
  // Inform's, then the stored one; null when none. The pointer is good
  // until the next call.
  const device::StoredParameter* known(std::string_view name);
  // A value the CPE reported or accepted in this session.
  void learn(const soap::ParameterValue& p);
  // A value no RPC carries (a summary field): known at once, and stored
  // with the session's result as of `now`. False when it had that value
  // already.
  bool remember(soap::ParameterValue p, device::Time now);

  // Calls f(name, value) for every known parameter whose name starts with
  // `prefix`: the stored ones, then (with_inform) the Inform's, then this
  // session's, so a name seen twice is newer the second time.
  void each(std::string_view prefix, bool with_inform,
            const std::function<void(const std::string&, const std::string&)>& f) const;

  // The same with the whole parameter (its type too), for what no Inform
  // carries (summary fields): the stored ones, then this session's.
  void each_stored(
      std::string_view prefix,
      const std::function<void(const std::string&, const device::StoredParameter&)>& f) const;

  bool has_tag(const std::string& t) const;
  std::set<std::string> tags() const;
  void tag(const std::string& t);
  void untag(const std::string& t);

  // "Device" or "InternetGatewayDevice".
  std::string root() const;
  // What fixes a device's data model: OUI, ProductClass and SoftwareVersion
  // (the key of State::invalid_names).
  const std::string& model_key();

 private:
  const cwmp::Session* session_;
  std::shared_ptr<const device::Device> device_;
  device::SessionResult* result_;
  std::unordered_map<std::string, device::StoredParameter> overlay_;
  device::StoredParameter scratch_;  // an Inform value, as known() returns it
  std::string model_key_;
};

}  // namespace luacs::lua
