#include "core/server/session_directory.h"

namespace luacs::server {

int SessionDirectory::owner(std::string_view cookie) const {
  std::lock_guard lock(mu_);
  auto it = owners_.find(std::string(cookie));
  return it == owners_.end() ? -1 : it->second;
}

void SessionDirectory::add(const std::string& cookie, int worker) {
  std::lock_guard lock(mu_);
  owners_[cookie] = worker;
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
  return owner == owners_.end() ? -1 : owner->second;
}

std::string SessionDirectory::device_session(const std::string& device) const {
  std::lock_guard lock(mu_);
  auto it = devices_.find(device);
  return it == devices_.end() ? std::string() : it->second;
}

void SessionDirectory::remove(const std::string& cookie, const std::string& device) {
  std::lock_guard lock(mu_);
  owners_.erase(cookie);
  if (!device.empty()) {
    auto it = devices_.find(device);
    if (it != devices_.end() && it->second == cookie) devices_.erase(it);
  }
}

}  // namespace luacs::server
