// A session's view of its device (lua/device_view.h). Worker thread.
#include "lua/device_view.h"

#include <algorithm>
#include <chrono>

#include "core/cwmp/device_id.h"
#include "core/cwmp/session.h"

namespace luacs::lua {

DeviceView::DeviceView(const RunContext& ctx)
    : session_(ctx.session), device_(ctx.device), result_(ctx.result) {}

const soap::Inform& DeviceView::inform() const {
  return session_->inform();
}

const device::StoredParameter* DeviceView::known(std::string_view name) {
  if (!overlay_.empty()) {
    if (auto it = overlay_.find(std::string(name)); it != overlay_.end()) return &it->second;
  }
  for (const auto& p : inform().parameters) {
    if (p.name == name) {
      scratch_ = {p.value, p.type, result_->inform_time};
      return &scratch_;
    }
  }
  if (device_) {
    const auto& stored = device_->parameters;
    if (auto it = stored.find(std::string(name)); it != stored.end()) return &it->second;
  }
  return nullptr;
}

void DeviceView::learn(const soap::ParameterValue& p) {
  overlay_[p.name] = device::StoredParameter{p.value, p.type, std::chrono::system_clock::now()};
}

bool DeviceView::remember(soap::ParameterValue p, device::Time now) {
  const device::StoredParameter* k = known(p.name);
  if (k && k->value == p.value && k->type == p.type) return false;
  learn(p);
  result_->parameters.emplace_back(std::move(p), now);
  return true;
}

namespace {

bool under(const std::string& name, std::string_view prefix) {
  return name.compare(0, prefix.size(), prefix) == 0;
}

// f(name, parameter) for the stored parameters under `prefix`: one range of
// the sorted map.
template <class F>
void stored_under(const device::Device* d, std::string_view prefix, F&& f) {
  if (!d) return;
  const auto& stored = d->parameters;
  for (auto it = stored.lower_bound(std::string(prefix));
       it != stored.end() && under(it->first, prefix); ++it)
    f(it->first, it->second);
}

}  // namespace

void DeviceView::each(std::string_view prefix, bool with_inform,
                      const std::function<void(const std::string&, const std::string&)>& f) const {
  stored_under(
      device_.get(), prefix,
      [&](const std::string& name, const device::StoredParameter& p) { f(name, p.value); });
  if (with_inform)
    for (const auto& p : inform().parameters)
      if (under(p.name, prefix)) f(p.name, p.value);
  for (const auto& [name, p] : overlay_)
    if (under(name, prefix)) f(name, p.value);
}

void DeviceView::each_stored(
    std::string_view prefix,
    const std::function<void(const std::string&, const device::StoredParameter&)>& f) const {
  stored_under(device_.get(), prefix, f);
  for (const auto& [name, p] : overlay_)
    if (under(name, prefix)) f(name, p);
}

bool DeviceView::has_tag(const std::string& t) const {
  const auto& res = *result_;
  if (std::find(res.tags_removed.begin(), res.tags_removed.end(), t) != res.tags_removed.end())
    return false;
  if (std::find(res.tags_added.begin(), res.tags_added.end(), t) != res.tags_added.end())
    return true;
  return device_ && device_->tags.count(t);
}

std::set<std::string> DeviceView::tags() const {
  std::set<std::string> t;
  if (device_) t = device_->tags;
  for (const auto& a : result_->tags_added) t.insert(a);
  for (const auto& r : result_->tags_removed) t.erase(r);
  return t;
}

namespace {

void erase_all(std::vector<std::string>& v, const std::string& s) {
  v.erase(std::remove(v.begin(), v.end(), s), v.end());
}

}  // namespace

void DeviceView::tag(const std::string& t) {
  erase_all(result_->tags_removed, t);
  if (!has_tag(t)) result_->tags_added.push_back(t);
}

void DeviceView::untag(const std::string& t) {
  erase_all(result_->tags_added, t);
  if (has_tag(t) || (device_ && device_->tags.count(t))) result_->tags_removed.push_back(t);
}

std::string DeviceView::root() const {
  if (device_ && !device_->data_model_root.empty()) return device_->data_model_root;
  return cwmp::data_model_root(inform());
}

const std::string& DeviceView::model_key() {
  if (model_key_.empty()) {
    const auto& id = inform().device_id;
    const device::StoredParameter* version = known(root() + ".DeviceInfo.SoftwareVersion");
    model_key_ = id.oui + '\x1f' + id.product_class + '\x1f' + (version ? version->value : "");
  }
  return model_key_;
}

}  // namespace luacs::lua
