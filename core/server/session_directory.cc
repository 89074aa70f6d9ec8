#include "core/server/session_directory.h"

namespace luacs::server {

int SessionDirectory::owner(std::string_view cookie) const {
  std::lock_guard lock(mu_);
  auto it = owners_.find(std::string(cookie));
  return it == owners_.end() ? -1 : it->second.worker;
}

bool SessionDirectory::add(const std::string& cookie, int worker, const std::string& address,
                           unsigned limit) {
  std::lock_guard lock(mu_);
  if (limit > 0) {
    unsigned& n = per_address_[address];
    if (n >= limit) return false;
    ++n;
    owners_[cookie] = Owner{worker, address};
    return true;
  }
  owners_[cookie] = Owner{worker, {}};
  return true;
}

bool SessionDirectory::claim_device(const std::string& device, const std::string& cookie) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = devices_.try_emplace(device, cookie);
  return inserted || it->second == cookie;
}

int SessionDirectory::device_owner(const std::string& device) const {
  std::lock_guard lock(mu_);
  auto it = devices_.find(device);
  if (it == devices_.end()) return -1;
  auto owner = owners_.find(it->second);
  return owner == owners_.end() ? -1 : owner->second.worker;
}

std::string SessionDirectory::device_session(const std::string& device) const {
  std::lock_guard lock(mu_);
  auto it = devices_.find(device);
  return it == devices_.end() ? std::string() : it->second;
}

void SessionDirectory::remove(const std::string& cookie, const std::string& device) {
  std::lock_guard lock(mu_);
  if (auto it = owners_.find(cookie); it != owners_.end()) {
    if (!it->second.address.empty()) {
      auto n = per_address_.find(it->second.address);
      if (n != per_address_.end() && --n->second == 0) per_address_.erase(n);
    }
    owners_.erase(it);
  }
  if (!device.empty()) {
    auto it = devices_.find(device);
    if (it != devices_.end() && it->second == cookie) devices_.erase(it);
  }
}

}  // namespace luacs::server
